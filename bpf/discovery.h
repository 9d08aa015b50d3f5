/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * manifold listener discovery: the shared layouts, the maps a dispatcher
 * reads, and the inline functions it calls.
 *
 * bpf/discovery.bpf.c (host-wide, attached to a cgroup v2) keeps an index of
 * which (network namespace, protocol, address, port) currently have a TCP
 * listener or a bound UDP socket, and keeps the sockets of "address targets"
 * in a SOCKHASH. A per-namespace sk_lookup program #includes this header and
 * asks two questions:
 *
 *   discovery_has_listener(netns, proto, family, addr, port)
 *       Does a socket of this namespace listen exactly on addr:port, or on a
 *       wildcard (0.0.0.0 / ::) that the kernel's normal lookup would use?
 *   discovery_target_sk(netns, proto, family, addr, port)
 *       A referenced socket listening (TCP) / bound unconnected (UDP) on
 *       exactly addr:port, to pass to bpf_sk_assign() and then
 *       bpf_sk_release(); NULL when none is registered.
 *
 * netns is the namespace cookie (SO_NETNS_COOKIE read in the namespace by
 * user space and stored in one of the dispatcher's maps: sk_lookup programs
 * cannot call bpf_get_netns_cookie). It is part of every key because
 * bpf_sk_assign() does not check namespaces: a socket of another namespace
 * must never be returned.
 *
 * Addresses are passed as four __u32 in network byte order, exactly as in
 * struct bpf_sk_lookup: for AF_INET only addr[0] is read (local_ip4), for
 * AF_INET6 all four (local_ip6). Ports are in host byte order (local_port).
 * Internally IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so an AF_INET6
 * dual-stack socket bound to ::ffff:a.b.c.d has the same key as an AF_INET
 * socket bound to a.b.c.d, which is what the kernel's lookup does too.
 *
 * Wildcards: an AF_INET 0.0.0.0 socket and a dual-stack (v6only=0) [::]
 * socket are indexed under ::ffff:0.0.0.0 and cover IPv4 traffic; every
 * [::] socket (v6only or not) is indexed under :: and covers IPv6 traffic.
 * A v6only [::] listener therefore never hides IPv4 traffic.
 *
 * Map sharing: a dispatcher object that includes this header gets its own
 * definitions of the maps below; its loader must replace them with the
 * pinned ones of <bpffs>/manifold_discovery/ (bpf_map__reuse_fd) so that
 * both objects read and write the same maps. disc_meta[0].active is 0
 * until `manifold discovery enable` has attached the programs and seeded the
 * existing sockets, and again from the moment `disable` starts: call
 * discovery_active() first and treat "inactive" as "no information".
 *
 * Map ABI: DISC_ABI. Every layout below is checked against user space
 * (src/discovery/codec.ts) by test/unit/bpf-object.test.ts.
 */
#ifndef MANIFOLD_DISCOVERY_H
#define MANIFOLD_DISCOVERY_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DISC_ABI 1
#define DISC_MAGIC 0x6d66646973636f76ULL /* "mfdiscov" */

/* Index: one entry per socket, in the first free of DISC_INDEX_SLOTS slots
 * of its (netns, proto, addr, port); more sockets on one tuple (a big
 * SO_REUSEPORT group, SO_REUSEADDR UDP) go to disc_overflow. */
#define DISC_INDEX_SLOTS 16
#define DISC_INDEX_MAX 262144
/* Target sockets per tuple in the SOCKHASH (members of a reuseport group;
 * one live member is enough: the kernel balances the group after
 * bpf_sk_assign). */
#define DISC_TARGET_SLOTS 8
#define DISC_TARGET_SOCKS_MAX 16384
#define DISC_TARGETS_MAX 4096
/* Counting filter: 2^DISC_FILTER_BITS counters, so that a lookup for a tuple
 * with no socket usually costs one array read. */
#define DISC_FILTER_BITS 18
#define DISC_FILTER_SIZE (1 << DISC_FILTER_BITS)
#define DISC_OVERFLOW_MAX 4096

#define DISC_NO_SLOT 0xff
#define DISC_SLOT_OVERFLOW 0xfe
#define DISC_SLOT_FILTER_ONLY 0xfd /* not indexed (map full), counted in disc_filter only */

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* (netns, address, port, protocol, slot): the key of disc_index and of
 * disc_target_socks. 32 bytes. The filter and disc_overflow use it with
 * slot 0. */
struct disc_key {
	__u64 netns;   /* network namespace cookie */
	__u32 addr[4]; /* IPv6, or IPv4-mapped; network byte order */
	__u16 port;    /* host byte order */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 slot;
	__u32 pad;
};

_Static_assert(sizeof(struct disc_key) == 32, "disc_key is ABI");

/* disc_meta[0]: the ABI marker of the pinned state. */
struct disc_meta {
	__u64 magic;      /* DISC_MAGIC */
	__u32 abi;        /* DISC_ABI */
	__u32 active;     /* 1 while attached and seeded */
	__u64 cgroup_id;  /* cgroup v2 id the programs are attached to */
	__u64 enabled_at; /* unix time in ms */
	char version[32]; /* manifold version that enabled discovery */
};

_Static_assert(sizeof(struct disc_meta) == 64, "disc_meta is ABI");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DISC_INDEX_MAX);
	__type(key, struct disc_key);
	__type(value, __u64); /* socket cookie */
} disc_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DISC_FILTER_SIZE);
	__type(key, __u32);
	__type(value, __u32); /* open sockets seen on the tuples hashing here */
} disc_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DISC_OVERFLOW_MAX);
	__type(key, struct disc_key); /* slot 0 */
	__type(value, __u32);         /* sockets beyond the slots; never deleted */
} disc_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, DISC_TARGET_SOCKS_MAX);
	__type(key, struct disc_key);
	__type(value, __u64);
} disc_target_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct disc_meta);
} disc_meta SEC(".maps");

/* Fill key->addr from a family and an address as in struct bpf_sk_lookup.
 * Returns 0, or -1 for another family. */
static __always_inline int disc_set_addr(struct disc_key *key, __u32 family, const __u32 *addr)
{
	if (family == AF_INET) {
		key->addr[0] = 0;
		key->addr[1] = 0;
		key->addr[2] = bpf_htonl(0xffff);
		key->addr[3] = addr[0];
		return 0;
	}
	if (family == AF_INET6) {
		key->addr[0] = addr[0];
		key->addr[1] = addr[1];
		key->addr[2] = addr[2];
		key->addr[3] = addr[3];
		return 0;
	}
	return -1;
}

/* Counter index of a tuple in disc_filter (slot and padding ignored). The
 * same function runs in every program: do not change it without a new ABI. */
static __always_inline __u32 disc_filter_hash(const struct disc_key *key)
{
	__u64 h = key->netns * 0x9e3779b97f4a7c15ULL;

	h ^= ((__u64)key->addr[0] << 32 | key->addr[1]) * 0xc2b2ae3d27d4eb4fULL;
	h ^= ((__u64)key->addr[2] << 32 | key->addr[3]) * 0x165667b19e3779f9ULL;
	h ^= ((__u64)key->port << 8 | key->proto) * 0x27d4eb2f165667c5ULL;
	h ^= h >> 29;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 32;
	return (__u32)h & (DISC_FILTER_SIZE - 1);
}

/* 0 when no socket was seen on this tuple: the counting filter never
 * under-counts (raised before an entry appears, lowered after it is gone),
 * so 0 is exact; non-zero may be another tuple sharing the counter. */
static __always_inline int disc_maybe_present(struct disc_key *key)
{
	__u32 h, *count;

	key->slot = 0;
	key->pad = 0;
	h = disc_filter_hash(key);
	count = bpf_map_lookup_elem(&disc_filter, &h);
	return count && *count != 0;
}

/* Is any socket indexed under exactly this tuple? key->slot is clobbered. */
static __always_inline int disc_tuple_present(struct disc_key *key)
{
	__u32 *over;
	int i;

	if (!disc_maybe_present(key))
		return 0;
	for (i = 0; i < DISC_INDEX_SLOTS; i++) {
		key->slot = i;
		if (bpf_map_lookup_elem(&disc_index, key))
			return 1;
	}
	key->slot = 0;
	over = bpf_map_lookup_elem(&disc_overflow, key);
	return over && *over != 0;
}

/* 1 when discovery is enabled and seeded (its index can be trusted). */
static __always_inline int discovery_active(void)
{
	__u32 zero = 0;
	struct disc_meta *m = bpf_map_lookup_elem(&disc_meta, &zero);

	return m && m->magic == DISC_MAGIC && m->active == 1;
}

/*
 * 1 when a socket of namespace `netns` listens (TCP) or is bound (UDP) on
 * exactly addr:port, or on the wildcard address of the family that covers
 * it: 0.0.0.0 or a dual-stack [::] for IPv4, [::] for IPv6. 0 otherwise.
 *
 * Cost: one array read per address tried when nothing is bound there (the
 * counting filter), plus one hash lookup per occupied slot scanned on a hit.
 */
static __always_inline int discovery_has_listener(__u64 netns, __u8 proto, __u32 family, const __u32 *addr, __u16 port)
{
	struct disc_key key = {};

	key.netns = netns;
	key.proto = proto;
	key.port = port;
	if (disc_set_addr(&key, family, addr))
		return 0;
	if (disc_tuple_present(&key))
		return 1;
	/* ::ffff:0.0.0.0 for IPv4, :: for IPv6. */
	key.addr[0] = 0;
	key.addr[1] = 0;
	key.addr[3] = 0;
	if (family != AF_INET)
		key.addr[2] = 0;
	return disc_tuple_present(&key);
}

/*
 * A socket of namespace `netns` registered as a target on exactly addr:port
 * that can take the lookup: a listening TCP socket, an unconnected UDP
 * socket. The caller owns the reference: bpf_sk_assign() it, then
 * bpf_sk_release() it. NULL when there is none (not a target address, not
 * bound, a UDP bind not yet registered by the watcher, or shut down).
 */
static __always_inline struct bpf_sock *discovery_target_sk(__u64 netns, __u8 proto, __u32 family, const __u32 *addr, __u16 port)
{
	struct disc_key key = {};
	struct bpf_sock *sk;
	__u32 want;
	int i;

	key.netns = netns;
	key.proto = proto;
	key.port = port;
	if (disc_set_addr(&key, family, addr))
		return 0;
	/* Every target socket was counted when it listened or bound: skip the
	 * slot scan when nothing is there (rule 3's refusals stay cheap). */
	if (!disc_maybe_present(&key))
		return 0;
	want = proto == IPPROTO_TCP ? BPF_TCP_LISTEN : BPF_TCP_CLOSE;
	for (i = 0; i < DISC_TARGET_SLOTS; i++) {
		key.slot = i;
		sk = bpf_map_lookup_elem(&disc_target_socks, &key);
		if (!sk)
			continue;
		if (sk->state == want)
			return sk;
		bpf_sk_release(sk);
	}
	return 0;
}

#endif /* MANIFOLD_DISCOVERY_H */
