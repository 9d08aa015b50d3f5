// SPDX-License-Identifier: BSD-3-Clause
/*
 * manifold listener discovery: host-wide programs on a cgroup v2.
 *
 * They keep bpf/discovery.h's index of which (network namespace, protocol,
 * address, port) have a socket, synchronously with listen(), bind(),
 * shutdown() and close(), and put the sockets of target addresses into the
 * SOCKHASH that dispatchers assign from:
 *
 *   disc_sockops  sock_ops        TCP_LISTEN_CB: index the listener (and put
 *                                 it into disc_target_socks if its address is
 *                                 a target), ask for STATE_CB;
 *                                 STATE_CB from LISTEN: unindex (close or
 *                                 shutdown); PASSIVE_ESTABLISHED_CB: accepted
 *                                 sockets inherit the listener's callback
 *                                 flags, clear STATE_CB on them again.
 *   disc_bind4/6  post_bind4/6    UDP: index the socket before bind()
 *                                 returns; on a target address also send a
 *                                 disc_event (no bind-time hook may insert a
 *                                 UDP socket into a sockmap: the watcher
 *                                 runs disc_iter_file for the binding pid).
 *   disc_release  sock_release    unindex whatever the closing socket had.
 *   disc_iter_tcp iter/tcp        seeding (kernel >= 6.5: the iterator holds
 *   disc_iter_udp iter/udp        lock_sock, so a sockmap update is safe):
 *                                 index the namespace's listeners / bound
 *                                 unconnected UDP sockets created inside the
 *                                 cgroup, insert target sockets, and (>= 6.10)
 *                                 enable STATE_CB on seeded listeners.
 *   disc_iter_file iter/task_file the same over the files of every task (or
 *                                 one, with a pid filter): the seeding
 *                                 fallback for kernels < 6.5 and the UDP
 *                                 target registrar.
 *
 * Nothing here holds a socket reference except disc_target_socks (the
 * kernel drops an entry when its socket closes).
 */
#include "discovery.h"
#include <bpf/bpf_core_read.h>

#define TCP_LISTEN 10
#define TCP_CLOSE 7
#define SOL_TCP 6
#define TCP_BPF_SOCK_OPS_CB_FLAGS 1008 /* kernel >= 6.10 */

/* Kernel types read with CO-RE (only the fields used; offsets come from the
 * running kernel's BTF at load time, so no vmlinux.h is needed to build). */
struct net {
	__u64 net_cookie;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup;
struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __attribute__((preserve_access_index));

struct cgroup {
	struct cgroup_subsys_state self;
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct disc_in6 {
	__u32 a[4];
};

struct sock_common {
	__be32 skc_rcv_saddr;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	unsigned char skc_reuse : 4;
	unsigned char skc_reuseport : 1;
	unsigned char skc_ipv6only : 1;
	unsigned char skc_net_refcnt : 1;
	struct {
		struct net *net;
	} skc_net;
	struct disc_in6 skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock_cgroup_data {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	struct sock_cgroup_data sk_cgrp_data;
	__u16 sk_type;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 snd_cwnd; /* unused: tcp_sock starts with struct sock */
} __attribute__((preserve_access_index));

struct udp_sock {
	__u32 pending; /* unused: udp_sock starts with struct sock */
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
} __attribute__((preserve_access_index));

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

struct file;
struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct file *file;
} __attribute__((preserve_access_index));

/* cookie -> where the socket is indexed. */
struct disc_sock {
	struct disc_key key; /* key.slot: its slot, DISC_SLOT_OVERFLOW, DISC_SLOT_FILTER_ONLY or DISC_NO_SLOT */
	__u8 slot2;          /* DISC_F_DUAL: slot of its ::ffff:0.0.0.0 entry */
	__u8 flags;          /* DISC_F_* */
	__u16 family;        /* AF_INET or AF_INET6 */
	__u32 pad;
};

_Static_assert(sizeof(struct disc_sock) == 40, "disc_sock is ABI");

#define DISC_F_DUAL 1     /* dual-stack [::]: also indexed under ::ffff:0.0.0.0 */
#define DISC_F_SEEDED 2   /* found by a seeding iterator, not by its listen/bind */
#define DISC_F_V6ONLY 4   /* AF_INET6 with IPV6_V6ONLY */
#define DISC_F_STATECB 8  /* TCP: STATE_CB enabled, shutdown() is seen */

/* disc_config[0], written by user space before the programs are attached. */
struct disc_config {
	__u64 cgroup_id;       /* the attach cgroup (seeding keeps sockets created below it) */
	__u32 scope_all;       /* 1: the root cgroup, every socket is in scope */
	__u32 pad;
	char cgroup_path[240]; /* for status (NUL padded; not read by the programs) */
};

_Static_assert(sizeof(struct disc_config) == 256, "disc_config is ABI");

/* A UDP bind on a target address (disc_events). */
struct disc_event {
	__u64 netns;
	__u64 cookie;
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 family;
	__u32 tgid;
};

/* One record per socket a seeding iterator did something with. */
struct disc_seed_rec {
	__u64 cookie;
	__u8 proto;
	__u8 what; /* DISC_SEED_* bits */
	__u16 pad;
	__u32 pad2;
};

_Static_assert(sizeof(struct disc_event) == 40, "disc_event is ABI");
_Static_assert(sizeof(struct disc_seed_rec) == 16, "disc_seed_rec is ABI");

#define DISC_SEED_INDEXED 1      /* newly indexed */
#define DISC_SEED_TARGET 2       /* newly put into disc_target_socks */
#define DISC_SEED_NO_STATECB 4   /* listener indexed, STATE_CB unavailable */
#define DISC_SEED_OUT_OF_SCOPE 8 /* created outside the cgroup: ignored */
#define DISC_SEED_FAILED 16      /* not indexed: a map is full */

/* Counters (disc_counters, per CPU). The order is ABI. */
enum {
	DISC_C_LISTEN,        /* TCP listeners indexed at listen() */
	DISC_C_BIND,          /* UDP sockets indexed at bind() */
	DISC_C_SEEDED,        /* sockets indexed by seeding */
	DISC_C_UNINDEXED,     /* sockets removed from the index */
	DISC_C_INDEX_FULL,    /* a socket NOT indexed: disc_socks or disc_index full */
	DISC_C_OVERFLOW,      /* sockets beyond DISC_INDEX_SLOTS of one tuple */
	DISC_C_OVERFLOW_FULL, /* a socket NOT indexed: disc_overflow full */
	DISC_C_TARGET_ADDED,  /* sockets put into disc_target_socks */
	DISC_C_TARGET_FULL,   /* target sockets NOT inserted: slots or map full */
	DISC_C_TARGET_REMOVED,
	DISC_C_EVENTS,        /* UDP target bind events sent */
	DISC_C_EVENTS_LOST,   /* events lost: ring buffer full */
	DISC_C_NO_STATECB,    /* seeded listeners without STATE_CB (kernel < 6.10) */
	DISC_C_OUT_OF_SCOPE,  /* sockets seeding skipped: created outside the cgroup */
	DISC_C_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DISC_INDEX_MAX);
	__type(key, __u64); /* socket cookie */
	__type(value, struct disc_sock);
} disc_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DISC_TARGETS_MAX);
	__type(key, struct disc_key); /* port 0, slot 0 */
	__type(value, __u32);         /* references (owned by user space) */
} disc_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DISC_TARGET_SOCKS_MAX);
	__type(key, __u64);             /* socket cookie */
	__type(value, struct disc_key); /* its disc_target_socks key */
} disc_target_ck SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} disc_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DISC_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} disc_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct disc_config);
} disc_config SEC(".maps");

static __always_inline void disc_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&disc_counters, &idx);

	if (c)
		*c += 1;
}

static __always_inline void disc_filter_add(struct disc_key *key, int delta)
{
	__u32 h;
	__u32 *count;

	key->slot = 0;
	h = disc_filter_hash(key);
	count = bpf_map_lookup_elem(&disc_filter, &h);
	if (count)
		__sync_fetch_and_add(count, delta);
}

/* Put one index entry for `cookie` under key's tuple; returns its slot,
 * DISC_SLOT_OVERFLOW, or DISC_SLOT_FILTER_ONLY when the maps are full (the
 * socket is then only counted in the filter, which stays raised until the
 * socket goes, so the filter never under-counts). */
static __always_inline __u8 disc_slot_insert(struct disc_key *key, __u64 cookie)
{
	__u32 zero = 0, *over;
	long err;
	int i;

	disc_filter_add(key, 1);
	for (i = 0; i < DISC_INDEX_SLOTS; i++) {
		key->slot = i;
		err = bpf_map_update_elem(&disc_index, key, &cookie, BPF_NOEXIST);
		if (!err)
			return i;
		if (err != -17 /* EEXIST */)
			goto full;
	}
	key->slot = 0;
	bpf_map_update_elem(&disc_overflow, key, &zero, BPF_NOEXIST);
	over = bpf_map_lookup_elem(&disc_overflow, key);
	if (over) {
		__sync_fetch_and_add(over, 1);
		disc_count(DISC_C_OVERFLOW);
		return DISC_SLOT_OVERFLOW;
	}
	disc_count(DISC_C_OVERFLOW_FULL);
	return DISC_SLOT_FILTER_ONLY;
full:
	disc_count(DISC_C_INDEX_FULL);
	return DISC_SLOT_FILTER_ONLY;
}

/* Remove one entry put by disc_slot_insert; the filter is lowered last. */
static __always_inline void disc_slot_remove(struct disc_key *key, __u8 slot)
{
	__u32 *over;

	if (slot == DISC_NO_SLOT)
		return;
	if (slot == DISC_SLOT_OVERFLOW) {
		key->slot = 0;
		over = bpf_map_lookup_elem(&disc_overflow, key);
		if (over)
			__sync_fetch_and_add(over, -1);
	} else if (slot != DISC_SLOT_FILTER_ONLY) {
		key->slot = slot;
		bpf_map_delete_elem(&disc_index, key);
	}
	disc_filter_add(key, -1);
}

/* Index a socket once (the cookie entry is the claim). `dual`: a dual-stack
 * [::] socket, indexed under :: and ::ffff:0.0.0.0. Returns 1 when newly
 * indexed, 0 when it already was, -1 when it could not be. */
static __always_inline int disc_index_add(const struct disc_key *tuple, __u64 cookie, __u16 family, __u8 flags)
{
	struct disc_sock ds = {}, *p;
	struct disc_key key;
	__u8 slot, slot2 = DISC_NO_SLOT;
	long err;

	ds.key = *tuple;
	ds.key.slot = DISC_NO_SLOT;
	ds.slot2 = DISC_NO_SLOT;
	ds.flags = flags;
	ds.family = family;
	err = bpf_map_update_elem(&disc_socks, &cookie, &ds, BPF_NOEXIST);
	if (err == -17)
		return 0;
	if (err) {
		disc_count(DISC_C_INDEX_FULL);
		return -1;
	}
	key = *tuple;
	slot = disc_slot_insert(&key, cookie);
	if (flags & DISC_F_DUAL) {
		key = *tuple;
		key.addr[2] = bpf_htonl(0xffff);
		slot2 = disc_slot_insert(&key, cookie);
	}
	p = bpf_map_lookup_elem(&disc_socks, &cookie);
	if (p) {
		p->key.slot = slot;
		p->slot2 = slot2;
	}
	if (slot == DISC_SLOT_FILTER_ONLY)
		return -1;
	return 1;
}

/* Forget a socket's index entries (idempotent: deleting the cookie entry is
 * the claim, so two callers never both remove). */
static __always_inline void disc_index_remove(__u64 cookie)
{
	struct disc_sock *p, ds;
	struct disc_key key;

	p = bpf_map_lookup_elem(&disc_socks, &cookie);
	if (!p)
		return;
	ds = *p;
	if (bpf_map_delete_elem(&disc_socks, &cookie))
		return;
	key = ds.key;
	disc_slot_remove(&key, ds.key.slot);
	if (ds.flags & DISC_F_DUAL) {
		key = ds.key;
		key.addr[2] = bpf_htonl(0xffff);
		disc_slot_remove(&key, ds.slot2);
	}
	disc_count(DISC_C_UNINDEXED);
}

/* Is tuple's address a target of its namespace and protocol? */
static __always_inline int disc_is_target(const struct disc_key *tuple)
{
	struct disc_key t = {};

	t.netns = tuple->netns;
	t.addr[0] = tuple->addr[0];
	t.addr[1] = tuple->addr[1];
	t.addr[2] = tuple->addr[2];
	t.addr[3] = tuple->addr[3];
	t.proto = tuple->proto;
	return bpf_map_lookup_elem(&disc_targets, &t) != 0;
}

/* Claim a target socket by cookie; 0 when it is already in the SOCKHASH. */
static __always_inline int disc_target_claim(__u64 cookie, const struct disc_key *tuple)
{
	long err = bpf_map_update_elem(&disc_target_ck, &cookie, tuple, BPF_NOEXIST);

	if (err == -17)
		return 0;
	if (err) {
		disc_count(DISC_C_TARGET_FULL);
		return 0;
	}
	return 1;
}

static __always_inline void disc_target_record(__u64 cookie, const struct disc_key *key, int ok)
{
	struct disc_key *p;

	if (!ok) {
		bpf_map_delete_elem(&disc_target_ck, &cookie);
		disc_count(DISC_C_TARGET_FULL);
		return;
	}
	p = bpf_map_lookup_elem(&disc_target_ck, &cookie);
	if (p)
		p->slot = key->slot;
	disc_count(DISC_C_TARGET_ADDED);
}

/* Put a target socket into the first free slot, from a seeding iterator. */
static __always_inline int disc_target_add_sk(const struct disc_key *tuple, __u64 cookie, void *sk)
{
	struct disc_key key = *tuple;
	int i, ok = 0;

	if (!disc_target_claim(cookie, tuple))
		return 0;
	for (i = 0; i < DISC_TARGET_SLOTS; i++) {
		key.slot = i;
		if (!bpf_map_update_elem(&disc_target_socks, &key, sk, BPF_NOEXIST)) {
			ok = 1;
			break;
		}
	}
	disc_target_record(cookie, &key, ok);
	return ok;
}

/* Drop a socket's target bookkeeping; from sock_ops also its SOCKHASH entry
 * (a shut-down listener keeps it until close otherwise). */
static __always_inline void disc_target_forget(__u64 cookie, int delete_sock)
{
	struct disc_key *p, key;

	p = bpf_map_lookup_elem(&disc_target_ck, &cookie);
	if (!p)
		return;
	key = *p;
	if (bpf_map_delete_elem(&disc_target_ck, &cookie))
		return;
	if (delete_sock && key.slot < DISC_TARGET_SLOTS)
		bpf_map_delete_elem(&disc_target_socks, &key);
	disc_count(DISC_C_TARGET_REMOVED);
}

static __always_inline int disc_is_any6(const __u32 *a)
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

/* IPV6_V6ONLY of a socket, read through any kernel pointer to it. */
static __always_inline int disc_v6only(const struct sock_common *skc)
{
	return BPF_CORE_READ_BITFIELD_PROBED(skc, skc_ipv6only) != 0;
}

/* ---- TCP: sock_ops ---------------------------------------------------- */

static __always_inline void disc_on_listen(struct bpf_sock_ops *skops)
{
	struct disc_key key = {};
	struct tcp_sock *tp;
	__u32 family = skops->family;
	__u64 cookie;
	__u8 flags = DISC_F_STATECB;
	int i, ok = 0;

	key.netns = bpf_get_netns_cookie(skops);
	key.proto = IPPROTO_TCP;
	key.port = skops->local_port;
	/* Two independent ifs (see docs/ARCHITECTURE.md, verifier). */
	if (family == AF_INET) {
		key.addr[2] = bpf_htonl(0xffff);
		key.addr[3] = skops->local_ip4;
	}
	if (family == AF_INET6) {
		key.addr[0] = skops->local_ip6[0];
		key.addr[1] = skops->local_ip6[1];
		key.addr[2] = skops->local_ip6[2];
		key.addr[3] = skops->local_ip6[3];
	}
	if (family != AF_INET && family != AF_INET6)
		return;
	if (family == AF_INET6 && disc_is_any6(key.addr)) {
		if (!skops->sk)
			return;
		tp = bpf_skc_to_tcp_sock(skops->sk);
		if (!tp)
			return;
		if (disc_v6only((struct sock_common *)tp))
			flags |= DISC_F_V6ONLY;
		else
			flags |= DISC_F_DUAL;
	}
	cookie = bpf_get_socket_cookie(skops);
	/* Ask for STATE_CB first: from here on close and shutdown are seen. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	if (disc_index_add(&key, cookie, family, flags) > 0)
		disc_count(DISC_C_LISTEN);
	if (!disc_is_target(&key) || !disc_target_claim(cookie, &key))
		return;
	for (i = 0; i < DISC_TARGET_SLOTS; i++) {
		key.slot = i;
		if (!bpf_sock_hash_update(skops, &disc_target_socks, &key, BPF_NOEXIST)) {
			ok = 1;
			break;
		}
	}
	disc_target_record(cookie, &key, ok);
}

SEC("sockops")
int disc_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	__u64 cookie;

	if (op == BPF_SOCK_OPS_TCP_LISTEN_CB) {
		disc_on_listen(skops);
	} else if (op == BPF_SOCK_OPS_STATE_CB) {
		if (skops->args[0] == TCP_LISTEN) {
			cookie = bpf_get_socket_cookie(skops);
			disc_index_remove(cookie);
			disc_target_forget(cookie, 1);
		}
	} else if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		/* Accepted sockets inherit the listener's flags: without this,
		 * every connection would call us ~4 more times. */
		if (skops->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_STATE_CB_FLAG)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_STATE_CB_FLAG);
	}
	return 1;
}

/* ---- UDP: post_bind / sock_release ------------------------------------ */

static __always_inline void disc_on_bind(struct bpf_sock *ctx, struct disc_key *key, __u16 family, __u8 flags)
{
	struct disc_event *ev;
	__u64 cookie = bpf_get_socket_cookie(ctx);

	key->netns = bpf_get_netns_cookie(ctx);
	key->proto = IPPROTO_UDP;
	key->port = ctx->src_port;
	if (disc_index_add(key, cookie, family, flags) > 0)
		disc_count(DISC_C_BIND);
	if (!disc_is_target(key))
		return;
	ev = bpf_ringbuf_reserve(&disc_events, sizeof(*ev), 0);
	if (!ev) {
		disc_count(DISC_C_EVENTS_LOST);
		return;
	}
	ev->netns = key->netns;
	ev->cookie = cookie;
	ev->addr[0] = key->addr[0];
	ev->addr[1] = key->addr[1];
	ev->addr[2] = key->addr[2];
	ev->addr[3] = key->addr[3];
	ev->port = key->port;
	ev->proto = IPPROTO_UDP;
	ev->family = family;
	ev->tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(ev, 0);
	disc_count(DISC_C_EVENTS);
}

SEC("cgroup/post_bind4")
int disc_bind4(struct bpf_sock *ctx)
{
	struct disc_key key = {};

	if (ctx->protocol != IPPROTO_UDP)
		return 1;
	key.addr[2] = bpf_htonl(0xffff);
	key.addr[3] = ctx->src_ip4;
	disc_on_bind(ctx, &key, AF_INET, 0);
	return 1;
}

SEC("cgroup/post_bind6")
int disc_bind6(struct bpf_sock *ctx)
{
	struct disc_key key = {};
	__u8 flags = 0;

	if (ctx->protocol != IPPROTO_UDP)
		return 1;
	key.addr[0] = ctx->src_ip6[0];
	key.addr[1] = ctx->src_ip6[1];
	key.addr[2] = ctx->src_ip6[2];
	key.addr[3] = ctx->src_ip6[3];
	if (disc_is_any6(key.addr)) {
		/* The context is the socket itself. */
		if (disc_v6only((struct sock_common *)ctx))
			flags = DISC_F_V6ONLY;
		else
			flags = DISC_F_DUAL;
	}
	disc_on_bind(ctx, &key, AF_INET6, flags);
	return 1;
}

SEC("cgroup/sock_release")
int disc_release(struct bpf_sock *ctx)
{
	__u64 cookie;

	if (ctx->protocol != IPPROTO_UDP && ctx->protocol != IPPROTO_TCP)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	disc_index_remove(cookie);
	/* The SOCKHASH entry goes with the close that follows. */
	disc_target_forget(cookie, 0);
	return 1;
}

/* ---- seeding iterators ------------------------------------------------ */

/* Was the socket created inside the attach cgroup's subtree? Sockets from
 * outside would never be unindexed (their close runs no program of ours). */
static __always_inline int disc_in_scope(struct sock *sk)
{
	struct disc_config *cfg;
	struct cgroup *cg;
	__u32 zero = 0;
	int i;

	cfg = bpf_map_lookup_elem(&disc_config, &zero);
	if (!cfg)
		return 0;
	if (cfg->scope_all)
		return 1;
	cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	for (i = 0; i < 64 && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == cfg->cgroup_id)
			return 1;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return 0;
}

static __always_inline void disc_seed_out(struct seq_file *seq, __u64 cookie, __u8 proto, __u8 what)
{
	struct disc_seed_rec rec = {};

	rec.cookie = cookie;
	rec.proto = proto;
	rec.what = what;
	bpf_seq_write(seq, &rec, sizeof(rec));
}

/* Seed one socket: TCP in LISTEN, UDP unconnected with a local port. */
static __always_inline void disc_seed(struct seq_file *seq, struct sock *sk, int tcp_iter)
{
	struct sock_common *skc = (struct sock_common *)sk;
	struct disc_key key = {};
	struct disc_in6 a6;
	__u16 family, proto;
	__u8 state, flags = DISC_F_SEEDED, what = 0;
	__u64 cookie;
	int r, cb = 0;

	family = BPF_CORE_READ(skc, skc_family);
	state = BPF_CORE_READ(skc, skc_state);
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (family != AF_INET && family != AF_INET6)
		return;
	if (proto == IPPROTO_TCP) {
		if (state != TCP_LISTEN)
			return;
	} else if (proto == IPPROTO_UDP) {
		if (state != TCP_CLOSE)
			return;
	} else {
		return;
	}
	key.port = BPF_CORE_READ(skc, skc_num);
	if (key.port == 0)
		return;
	cookie = bpf_get_socket_cookie(sk);
	if (!disc_in_scope(sk)) {
		disc_count(DISC_C_OUT_OF_SCOPE);
		disc_seed_out(seq, cookie, proto, DISC_SEED_OUT_OF_SCOPE);
		return;
	}
	key.netns = BPF_CORE_READ(skc, skc_net.net, net_cookie);
	key.proto = proto;
	if (family == AF_INET) {
		key.addr[2] = bpf_htonl(0xffff);
		key.addr[3] = BPF_CORE_READ(skc, skc_rcv_saddr);
	} else {
		BPF_CORE_READ_INTO(&a6, skc, skc_v6_rcv_saddr);
		key.addr[0] = a6.a[0];
		key.addr[1] = a6.a[1];
		key.addr[2] = a6.a[2];
		key.addr[3] = a6.a[3];
		if (disc_is_any6(key.addr))
			flags |= disc_v6only(skc) ? DISC_F_V6ONLY : DISC_F_DUAL;
	}
	if (proto == IPPROTO_TCP && tcp_iter) {
		/* Enable STATE_CB so that shutdown() is seen (>= 6.10). */
		if (!bpf_getsockopt(sk, SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &cb, sizeof(cb))) {
			cb |= BPF_SOCK_OPS_STATE_CB_FLAG;
			if (!bpf_setsockopt(sk, SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &cb, sizeof(cb)))
				flags |= DISC_F_STATECB;
		}
	}
	r = disc_index_add(&key, cookie, family, flags);
	if (r > 0) {
		what |= DISC_SEED_INDEXED;
		disc_count(DISC_C_SEEDED);
		if (proto == IPPROTO_TCP && !(flags & DISC_F_STATECB)) {
			what |= DISC_SEED_NO_STATECB;
			disc_count(DISC_C_NO_STATECB);
		}
	} else if (r < 0) {
		what |= DISC_SEED_FAILED;
	}
	if (disc_is_target(&key) && disc_target_add_sk(&key, cookie, sk))
		what |= DISC_SEED_TARGET;
	if (what)
		disc_seed_out(seq, cookie, proto, what);
}

SEC("iter/tcp")
int disc_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	/* Only full sockets (not request or time-wait sockets). */
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	disc_seed(ctx->meta->seq, (struct sock *)tp, 1);
	return 0;
}

SEC("iter/udp")
int disc_iter_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;

	if (!up)
		return 0;
	disc_seed(ctx->meta->seq, (struct sock *)up, 0);
	return 0;
}

SEC("iter/task_file")
int disc_iter_file(struct bpf_iter__task_file *ctx)
{
	struct file *file = ctx->file;
	struct socket *sock;
	struct sock *sk;

	if (!file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk)
		return 0;
	disc_seed(ctx->meta->seq, sk, 0);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
