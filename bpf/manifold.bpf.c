// SPDX-License-Identifier: BSD-3-Clause
/*
 * manifold sk_lookup dispatcher.
 *
 * One program, attached to a network namespace, that steers new TCP
 * connections and UDP datagrams to registered sockets according to a set of
 * bindings (protocol, prefix, port -> destination id).
 *
 * The layout of every map below is part of the manifold map ABI
 * (MANIFOLD_ABI). User space (src/core/codec.ts) encodes the same layouts;
 * test/unit/codec.test.ts checks the sizes against this file's BTF.
 *
 * Precedence: the longest address prefix wins; on equal prefix length an
 * exact port beats port 0 ("all ports").
 *
 * Atomic bulk replacement: the bindings live in one of two LPM tries held by
 * an ARRAY_OF_MAPS ("generations"). active_gen[0] names the live one; user
 * space builds the other, then flips active_gen with a single 4-byte write.
 * port_bits and gen_meta are per generation too, so every lookup sees one
 * consistent generation.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MANIFOLD_ABI 1
#define MAX_BINDINGS (1 << 21)
#define MAX_DESTINATIONS 32768
#define MAX_LABEL_LEN 255
#define PORT_WORDS 1024 /* 65536 ports / 64 bits per word */

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Error codes returned by bpf_sk_assign (kernel-internal values). */
#define E_AFNOSUPPORT 97
#define E_PROTOTYPE 91
#define E_SOCKTNOSUPPORT 94

/* LPM key: 32 bits of (family, protocol, port) always fully matched, then
 * the address. prefixlen = 32 + address prefix length. */
struct binding_key {
	__u32 prefixlen;
	__u8 family;   /* AF_INET or AF_INET6 */
	__u8 protocol; /* IPPROTO_TCP or IPPROTO_UDP */
	__be16 port;   /* 0 = all ports */
	__u32 addr[4]; /* network byte order; IPv4 uses addr[0] only */
};

struct binding_value {
	__u32 dest_id;
	__u32 prefixlen; /* address prefix length, 0..128 */
};

/* Destination: (label, family, protocol). */
struct dest_key {
	char label[MAX_LABEL_LEN + 1]; /* NUL padded */
	__u8 family;
	__u8 protocol;
	__u16 pad;
};

struct dest_value {
	__u32 id;
	__u32 refs[2]; /* bindings referencing this destination, per generation */
	__u32 flags;
};

struct dest_metrics {
	__u64 lookups;
	__u64 misses;
	__u64 err_bad_socket;
	__u64 err_wrong_family;
	__u64 err_wrong_protocol;
	__u64 err_other;
};

/* Per generation: for each (family, protocol) slot, the longest address
 * prefix of any port-0 binding plus one (0 = there is none). */
struct gen_meta {
	__u8 wild_plus1[4];
	__u32 pad;
};

struct manifold_meta {
	__u64 magic;      /* MANIFOLD_MAGIC */
	__u32 abi;        /* MANIFOLD_ABI */
	__u32 netns_ino;  /* inode of the network namespace loaded into */
	__u64 netns_dev;  /* device of that nsfs inode */
	__u64 loaded_at;  /* unix time in ms */
	__u32 owner_uid;
	__u32 owner_gid;
	char version[32]; /* manifold version that created the state */
};

struct bindings_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_BINDINGS);
	/* Sizes, not types: clang emits only forward declarations for types
	 * reached through an inner map definition. */
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
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct gen_meta);
} gen_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 4 * PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} port_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, struct dest_key);
	__type(value, struct dest_value);
} destinations SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct manifold_meta);
} manifold_meta SEC(".maps");

SEC("sk_lookup")
int manifold_dispatch(struct bpf_sk_lookup *ctx)
{
	struct binding_key key = {};
	struct binding_value *best = 0, *wild;
	struct dest_metrics *m;
	struct bpf_sock *sk;
	__u32 zero = 0, gen, fp, port, widx, id, full;
	__u32 *genp;
	struct gen_meta *gm;
	__u64 *word;
	void *trie;
	long err;

	if (ctx->protocol == IPPROTO_TCP)
		fp = 0;
	else if (ctx->protocol == IPPROTO_UDP)
		fp = 1;
	else
		return SK_PASS;

	/* Two independent ifs, not if/else: see docs/ARCHITECTURE.md (verifier). */
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
		fp |= 2;
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
	gm = bpf_map_lookup_elem(&gen_meta, &gen);
	if (!gm)
		return SK_PASS;

	port = ctx->local_port & 0xffff;
	key.prefixlen = full;

	/* Exact port: only when some binding of this generation, family and
	 * protocol names this port. */
	widx = ((gen * 4 + fp) << 10) | (port >> 6);
	word = bpf_map_lookup_elem(&port_bits, &widx);
	if (word && ((*word >> (port & 63)) & 1)) {
		key.port = bpf_htons(port);
		best = bpf_map_lookup_elem(trie, &key);
	}

	/* All ports: only when a port-0 binding could be more specific than
	 * the exact-port match (equal length: the exact port wins). */
	if (gm->wild_plus1[fp & 3] && (!best || best->prefixlen + 1 < gm->wild_plus1[fp & 3])) {
		key.port = 0;
		wild = bpf_map_lookup_elem(trie, &key);
		if (wild && (!best || wild->prefixlen > best->prefixlen))
			best = wild;
	}

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
