// SPDX-License-Identifier: BSD-3-Clause
/*
 * Benchmark floor: an sk_lookup program that does nothing (SK_PASS).
 * BPF_PROG_TEST_RUN of this program measures the fixed cost of one run of
 * the hook (context setup, program call, timer) that every dispatcher pays.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("sk_lookup")
int empty_dispatch(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
