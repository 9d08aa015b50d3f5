// SPDX-License-Identifier: BSD-3-Clause
/*
 * Benchmark baseline: the straightforward two-lookup dispatcher.
 *
 * The same key layouts as the dispatcher (bpf/manifold.h) and the same
 * precedence (longest prefix wins, exact port beats port 0 on a tie), in
 * the obvious design: every binding in one LPM trie (in an ARRAY_OF_MAPS
 * of generations), always two trie lookups per packet (the exact port, then
 * port 0), the socket in sockets[dest id], per-CPU counters. No hash, no
 * port words, no skips. bench/dataplane.ts compares the real dispatcher
 * against this.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "../../bpf/manifold.h"

#define MAX_DESTINATIONS MANIFOLD_DEFAULT_MAX_IDS

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define E_AFNOSUPPORT 97
#define E_PROTOTYPE 91
#define E_SOCKTNOSUPPORT 94

struct bindings_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MANIFOLD_MAX_BINDINGS);
	__uint(key_size, sizeof(struct binding_key));
	__uint(value_size, sizeof(struct binding_value));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct bindings_trie);
} bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, __u32);
	__type(value, struct dest_metrics);
} dest_metrics SEC(".maps");

SEC("sk_lookup")
int baseline_dispatch(struct bpf_sk_lookup *ctx)
{
	struct binding_key key = {};
	struct binding_value *best, *wild;
	struct dest_metrics *m;
	struct bpf_sock *sk;
	__u32 zero = 0, gen, id, full = 0;
	__u32 *genp;
	void *trie;
	long err;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return SK_PASS;

	/* Two independent ifs (verifier: see bpf/manifold.bpf.c). */
	if (ctx->family == AF_INET) {
		key.family = AF_INET;
		key.addr[0] = ctx->local_ip4;
		full = 32 + 32;
	}
	if (ctx->family == AF_INET6) {
		key.family = AF_INET6;
		key.addr[0] = ctx->local_ip6[0];
		key.addr[1] = ctx->local_ip6[1];
		key.addr[2] = ctx->local_ip6[2];
		key.addr[3] = ctx->local_ip6[3];
		full = 32 + 128;
	}
	if (key.family == 0)
		return SK_PASS;
	key.protocol = ctx->protocol;

	genp = bpf_map_lookup_elem(&active_gen, &zero);
	if (!genp)
		return SK_PASS;
	gen = *genp & 1;
	trie = bpf_map_lookup_elem(&bindings, &gen);
	if (!trie)
		return SK_PASS;

	/* Always both lookups: exact port, then all ports. */
	key.prefixlen = full;
	key.port = bpf_htons(ctx->local_port & 0xffff);
	best = bpf_map_lookup_elem(trie, &key);
	key.port = 0;
	wild = bpf_map_lookup_elem(trie, &key);
	if (wild && (!best || wild->prefixlen > best->prefixlen))
		best = wild;

	if (!best)
		return SK_PASS;

	id = best->dest_id;
	m = bpf_map_lookup_elem(&dest_metrics, &id);
	sk = bpf_map_lookup_elem(&sockets, &id);
	if (!sk) {
		if (m)
			m->misses++;
		return SK_DROP;
	}

	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		if (m) {
			if (err == -E_SOCKTNOSUPPORT)
				m->err_bad_socket++;
			else if (err == -E_AFNOSUPPORT)
				m->err_wrong_family++;
			else if (err == -E_PROTOTYPE)
				m->err_wrong_protocol++;
			else
				m->err_other++;
		}
		return SK_DROP;
	}
	if (m)
		m->lookups++;
	return SK_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
