// SPDX-License-Identifier: BSD-3-Clause
/*
 * manifold sk_lookup dispatcher.
 *
 * One program, attached to a network namespace, that steers new TCP
 * connections and UDP datagrams to registered sockets according to a set of
 * bindings (protocol, prefix, port -> destination id). Layouts and index
 * formulas live in manifold.h (the map ABI).
 *
 * Precedence: the longest address prefix wins; on equal prefix length an
 * exact port beats port 0 ("all ports").
 *
 * Generations: everything a lookup reads after active_gen (the host hash,
 * the two tries, the port words, gen_meta and dest_info) exists once per
 * generation. User space prepares the inactive generation, then flips
 * active_gen with a single 4-byte write, so every lookup sees one
 * consistent generation.
 *
 * Lookup order:
 *  1. host bindings (/32, /128 with an exact port: the most specific kind)
 *     in a hash, only when the port word says one may name this port;
 *  2. shorter exact-port bindings in the exact-port trie, only when the
 *     port word says one may name this port;
 *  3. port-0 bindings in the all-ports trie, only when one could be longer
 *     than the match so far (equal length: the exact port wins).
 *
 * Then, for the matching binding's destination:
 *  4. "explicit listeners first" (gen_meta.flags, only while listener
 *     discovery is active): a socket bound exactly to the destination
 *     address and port, or a wildcard socket covering it, gets the
 *     connection through the kernel's own lookup (SK_PASS, counted deferred);
 *  5. a socket-served destination: bpf_sk_assign its socket (none: SK_DROP,
 *     a miss);
 *  6. a target-served destination: bpf_sk_assign the socket discovery keeps
 *     for the target address and port (redirected); none: SK_PASS when the
 *     traffic is addressed to the target itself, else SK_DROP (no target).
 *
 * Listener discovery's maps (bpf/discovery.h) are the pinned shared ones
 * while discovery is enabled, else private one-entry maps whose marker says
 * "inactive": then 4 never defers and 6 finds no socket.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "manifold.h"
#include "discovery.h"

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

struct bindings_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MANIFOLD_MAX_BINDINGS);
	/* Sizes, not types: clang emits only forward declarations for types
	 * reached through an inner map definition. */
	__uint(key_size, sizeof(struct binding_key));
	__uint(value_size, sizeof(struct binding_value));
};

/* Exact-port bindings by length. Preallocated (fast to fill); user space
 * sizes each one to its set. */
struct exact_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct binding_key));
	__uint(value_size, sizeof(struct binding_value));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct bindings_trie);
} tries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct exact_hash);
} exact SEC(".maps");

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
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MANIFOLD_SLOTS * MANIFOLD_PORT_WORDS);
	__type(key, __u32);
	__type(value, port_word_t);
} port_words SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, __u32);
	__type(value, struct dest_info);
} dest_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, __u32);
	__type(value, struct dest_target);
} dest_target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, struct dest_key);
	__type(value, struct dest_value);
} destinations SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2 * MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, __u32);
	__type(value, struct dest_metrics);
} dest_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MANIFOLD_DEFAULT_MAX_IDS);
	__type(key, __u32);
	__type(value, struct dest_metrics2);
} dest_metrics2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns_metrics);
} ns_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct manifold_meta);
} manifold_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct manifold_config);
} config SEC(".maps");

/* Address bits [32 * word, 32 * word + 32) of a prefix of length len, as a
 * network-order mask. */
static __always_inline __u32 mask_word(__u32 len, __u32 word)
{
	__u32 lo = 32 * word;

	if (len >= lo + 32)
		return 0xffffffff;
	if (len <= lo)
		return 0;
	return bpf_htonl(0xffffffff << (32 - (len - lo)));
}

/* Count a failed bpf_sk_assign by reason. */
static __always_inline void count_assign_error(struct dest_metrics *m, long err)
{
	if (!m)
		return;
	if (err == -E_SOCKTNOSUPPORT)
		__sync_fetch_and_add(&m->err_bad_socket, 1);
	else if (err == -E_AFNOSUPPORT)
		__sync_fetch_and_add(&m->err_wrong_family, 1);
	else if (err == -E_PROTOTYPE)
		__sync_fetch_and_add(&m->err_wrong_protocol, 1);
	else
		__sync_fetch_and_add(&m->err_other, 1);
}

/* The namespace cookie when listener discovery is active, else 0. */
static __always_inline __u64 discovery_netns(void)
{
	struct manifold_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->netns_cookie || !discovery_active())
		return 0;
	return cfg->netns_cookie;
}

/* What the target and policy steps need of a lookup (built only on their
 * paths, so the binding search keeps its registers). */
struct lookup_ref {
	__u32 addr[4]; /* network byte order, as in struct bpf_sk_lookup */
	__u32 id;      /* destination id */
	__u32 idx;     /* MANIFOLD_DEST_INFO(id, gen) */
	__u16 port;    /* host byte order */
	__u8 proto;
	__u8 family;
};

/* Step 4: does an explicit listener own this address and port? Counted.
 * A subprogram (not inlined): the common paths do not pay for its code. */
static __noinline int defer_to_listener(const struct lookup_ref *r)
{
	struct dest_metrics2 *m2;
	struct ns_metrics *nm;
	__u64 netns = discovery_netns();
	__u32 zero = 0, id = r->id;

	if (!netns || !discovery_has_listener(netns, r->proto, r->family, r->addr, r->port))
		return 0;
	m2 = bpf_map_lookup_elem(&dest_metrics2, &id);
	if (m2)
		__sync_fetch_and_add(&m2->deferred, 1);
	nm = bpf_map_lookup_elem(&ns_metrics, &zero);
	if (nm)
		__sync_fetch_and_add(&nm->deferred, 1);
	return 1;
}

/* Step 6: steer to whatever listens on the destination's target. A
 * subprogram, like step 4. */
static __noinline int steer_to_target(struct bpf_sk_lookup *ctx, const struct lookup_ref *r)
{
	__u32 id = r->id, idx = r->idx;
	struct dest_metrics *m = bpf_map_lookup_elem(&dest_metrics, &id);
	struct dest_metrics2 *m2 = bpf_map_lookup_elem(&dest_metrics2, &id);
	struct dest_target *t = bpf_map_lookup_elem(&dest_target, &idx);
	struct bpf_sock *sk = 0;
	__u64 netns;
	__u16 tport;
	long err;

	if (!t || t->family != r->family) {
		if (m2)
			__sync_fetch_and_add(&m2->no_target, 1);
		return SK_DROP;
	}
	tport = t->port ? t->port : r->port;
	netns = discovery_netns();
	if (netns)
		sk = discovery_target_sk(netns, r->proto, r->family, t->addr, tport);
	if (sk) {
		err = bpf_sk_assign(ctx, sk, 0);
		bpf_sk_release(sk);
		if (!err) {
			if (m2)
				__sync_fetch_and_add(&m2->redirected, 1);
			return SK_PASS;
		}
		count_assign_error(m, err);
	}
	/* Traffic addressed to the target itself goes to whatever the kernel
	 * finds there (e.g. a UDP socket not registered yet). */
	if (r->port == tport && r->addr[0] == t->addr[0] && r->addr[1] == t->addr[1] && r->addr[2] == t->addr[2] && r->addr[3] == t->addr[3]) {
		if (m2)
			__sync_fetch_and_add(&m2->target_own, 1);
		return SK_PASS;
	}
	if (m2)
		__sync_fetch_and_add(&m2->no_target, 1);
	return SK_DROP;
}

SEC("sk_lookup")
int manifold_dispatch(struct bpf_sk_lookup *ctx)
{
	struct binding_key key = {};
	struct binding_value *best = 0, *hit;
	struct dest_metrics *m;
	struct dest_info *di;
	struct gen_meta *gm;
	struct bpf_sock *sk;
	__u32 zero = 0, gen, fp, port, widx, id, full, idx, len, i, bits, *genp;
	__u32 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	struct lookup_ref ref;
	port_word_t *pw;
	__u8 l1, wild;
	void *map;
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
		a0 = ctx->local_ip4;
		/* barrier_var (bpf_helpers.h) keeps the compiler from merging the
		 * two branches' ctx loads into one load through a computed
		 * pointer, which the verifier rejects ("dereference of modified
		 * ctx ptr"). */
		barrier_var(a0);
		full = 32;
	}
	if (ctx->family == AF_INET6) {
		key.family = AF_INET6;
		a0 = ctx->local_ip6[0];
		a1 = ctx->local_ip6[1];
		a2 = ctx->local_ip6[2];
		a3 = ctx->local_ip6[3];
		barrier_var(a0);
		full = 128;
		fp |= 2;
	}
	if (key.family == 0)
		return SK_PASS;
	key.protocol = ctx->protocol;

	genp = bpf_map_lookup_elem(&active_gen, &zero);
	if (!genp)
		return SK_PASS;
	gen = *genp & 1;
	gm = bpf_map_lookup_elem(&gen_meta, &gen);
	if (!gm)
		return SK_PASS;

	port = ctx->local_port & 0xffff;
	key.port = bpf_htons(port);
	widx = MANIFOLD_PORT_WORD(gen, fp, port);
	pw = bpf_map_lookup_elem(&port_words, &widx);

	/* Exact-port bindings, only when one may name this port: by length in
	 * the hash, longest first, then the trie for slots that need it. */
	bits = pw ? (*pw >> MANIFOLD_PORT_SHIFT(port)) & 3 : 0;
	if (bits) {
		map = bpf_map_lookup_elem(&exact, &gen);
		if (map) {
			for (i = (bits & MANIFOLD_PORT_FIRST) ? 0 : 1; i < MANIFOLD_EXACT_LENS; i++) {
				l1 = gm->exact_lens[fp & 3][i];
				if (!l1)
					break;
				len = l1 - 1;
				key.prefixlen = 32 + len;
				key.addr[0] = a0 & mask_word(len, 0);
				key.addr[1] = a1 & mask_word(len, 1);
				key.addr[2] = a2 & mask_word(len, 2);
				key.addr[3] = a3 & mask_word(len, 3);
				best = bpf_map_lookup_elem(map, &key);
				if (best || !(bits & MANIFOLD_PORT_OTHER))
					break;
			}
		}
		if (!best && (bits & MANIFOLD_PORT_OTHER) && ((gm->trie_slots >> (fp & 3)) & 1)) {
			idx = MANIFOLD_TRIE_SLOT(gen, 0);
			map = bpf_map_lookup_elem(&tries, &idx);
			if (map) {
				key.prefixlen = 32 + full;
				key.addr[0] = a0;
				key.addr[1] = a1;
				key.addr[2] = a2;
				key.addr[3] = a3;
				best = bpf_map_lookup_elem(map, &key);
			}
		}
	}

	/* All ports: only when a port-0 binding could be more specific than
	 * the exact-port match (equal length: the exact port wins). */
	wild = gm->wild_plus1[fp & 3];
	if (wild && (!best || best->prefixlen + 1 < wild)) {
		idx = MANIFOLD_TRIE_SLOT(gen, 1);
		map = bpf_map_lookup_elem(&tries, &idx);
		if (map) {
			key.prefixlen = 32 + full;
			key.port = 0;
			key.addr[0] = a0;
			key.addr[1] = a1;
			key.addr[2] = a2;
			key.addr[3] = a3;
			hit = bpf_map_lookup_elem(map, &key);
			if (hit && (!best || hit->prefixlen > best->prefixlen))
				best = hit;
		}
	}

	if (!best)
		return SK_PASS;
	id = best->dest_id;
	idx = MANIFOLD_DEST_INFO(id, gen);
	/* A lookup that matched a binding of the destination counts, whatever
	 * follows: steered, a miss, an error, handed to an explicit listener
	 * or to the target (what tubular's lookups count). */
	m = bpf_map_lookup_elem(&dest_metrics, &id);
	if (m)
		__sync_fetch_and_add(&m->lookups, 1);
	if (gm->flags & MANIFOLD_POLICY_EXPLICIT_FIRST) {
		ref = (struct lookup_ref){ .addr = { a0, a1, a2, a3 }, .id = id, .idx = idx, .port = port, .proto = key.protocol, .family = key.family };
		if (defer_to_listener(&ref))
			return SK_PASS;
	}

	di = bpf_map_lookup_elem(&dest_info, &idx);
	if (di && di->kind == MANIFOLD_DEST_TARGET) {
		ref = (struct lookup_ref){ .addr = { a0, a1, a2, a3 }, .id = id, .idx = idx, .port = port, .proto = key.protocol, .family = key.family };
		return steer_to_target(ctx, &ref);
	}
	sk = 0;
	if (di && di->kind == MANIFOLD_DEST_SOCKET)
		sk = bpf_map_lookup_elem(&sockets, &di->slot);
	if (!sk) {
		if (m)
			__sync_fetch_and_add(&m->misses, 1);
		return SK_DROP;
	}

	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		count_assign_error(m, err);
		return SK_DROP;
	}
	return SK_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
