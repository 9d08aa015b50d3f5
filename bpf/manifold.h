/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * manifold map ABI: the layouts and index formulas shared by the sk_lookup
 * dispatcher (bpf/manifold.bpf.c), the benchmark baseline
 * (bench/bpf/baseline.bpf.c) and user space (src/core/layout.ts mirrors the
 * constants and formulas; test/unit/layout.test.ts checks that they agree
 * with this file and with the object's BTF).
 *
 * Everything here is part of MANIFOLD_ABI: change it only together with an
 * upgrade path (src/state/migrate.ts).
 */
#ifndef MANIFOLD_H
#define MANIFOLD_H

#include <linux/types.h>

#define MANIFOLD_ABI 3

/* Longest label in bytes (dest_key holds it NUL padded). */
#define MANIFOLD_MAX_LABEL_LEN 255

/* Capacity of one binding trie (no preallocation: a limit, not a cost). */
#define MANIFOLD_MAX_BINDINGS (1 << 21)

/*
 * Default sizes of the id-indexed maps. `manifold load --max-destinations N`
 * sizes them at load time: ids = 2 * N (an apply may swap a full set for a
 * disjoint one), socket slots = 2 * ids (a registration swaps sockets
 * through the staging generation), destination info and destination
 * targets = 2 * ids (one entry per id and generation).
 */
#define MANIFOLD_DEFAULT_MAX_IDS 2048

/* Port bitmaps: 65536 ports * 2 bits / 64 bits per word, per (generation, slot). */
#define MANIFOLD_PORT_WORDS 2048
/* (family, protocol) slots: bit 0 = udp, bit 1 = ipv6. */
#define MANIFOLD_SLOTS 4
#define MANIFOLD_SLOT(is_ipv6, is_udp) (((is_ipv6) ? 2 : 0) | ((is_udp) ? 1 : 0))
/* Index of the port word holding `port` for (gen, slot), and the shift of its two bits. */
#define MANIFOLD_PORT_WORD(gen, slot, port) \
	((((gen) * MANIFOLD_SLOTS + (slot)) << 11) | ((port) >> 5))
#define MANIFOLD_PORT_SHIFT(port) (((port) & 31) * 2)
/* The two bits of a port: bindings of the longest hashed length name it / other exact-port bindings do. */
#define MANIFOLD_PORT_FIRST 1
#define MANIFOLD_PORT_OTHER 2
/* Index of generation `gen`'s exact-port (wild = 0) or all-ports (wild = 1) trie. */
#define MANIFOLD_TRIE_SLOT(gen, wild) ((gen) * 2 + (wild))
/* Index of destination `id`'s information in generation `gen`. */
#define MANIFOLD_DEST_INFO(id, gen) (((id) << 1) | (gen))

/*
 * LPM trie key: 32 bits of (family, protocol, port) always matched in full,
 * then the address. prefixlen = 32 + address prefix length.
 */
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

/*
 * Exact-port bindings are looked up by length in a hash (key: binding_key,
 * value: binding_value) when their (generation, slot) has few distinct
 * prefix lengths: gen_meta.exact_lens lists them, longest first, as
 * length + 1 (0 ends the list); the first hit is the longest match. A host
 * binding (/32, /128 with a port) is then one hash lookup. A slot with more
 * lengths than MANIFOLD_EXACT_LENS keeps its shorter exact-port bindings in
 * the exact-port trie (bit s of gen_meta.trie_slots);
 * its host bindings stay in the hash.
 */
#define MANIFOLD_EXACT_LENS 6

/*
 * Port words, per (generation, slot): two bits per port. MANIFOLD_PORT_FIRST
 * is set when a binding of the first (longest) length of exact_lens may name
 * the port, MANIFOLD_PORT_OTHER when any other exact-port binding may (other
 * hashed lengths, or the trie). Bits may over-approximate (a lookup too
 * many), never under-approximate.
 */
typedef __u64 port_word_t;

/* Per generation: what to look up for each (family, protocol) slot, and the
 * namespace's policy (switched with the generation like everything else). */
struct gen_meta {
	__u8 wild_plus1[MANIFOLD_SLOTS];  /* longest port-0 prefix + 1 (0 = none) */
	__u8 trie_slots;                  /* bit s: slot s has exact-port bindings in the trie */
	__u8 flags;                       /* MANIFOLD_POLICY_* */
	__u8 pad[2];
	__u8 exact_lens[MANIFOLD_SLOTS][MANIFOLD_EXACT_LENS]; /* length + 1, longest first, 0 = end */
};

/*
 * gen_meta.flags: "explicit listeners first". When a binding matched and
 * listener discovery (bpf/discovery.h) is active, a connection whose exact
 * destination address and port has a socket (or a wildcard socket that
 * covers it) is handed back to the kernel's own lookup (SK_PASS, counted as
 * deferred) instead of being steered.
 */
#define MANIFOLD_POLICY_EXPLICIT_FIRST 1u

/* What serves a destination in one generation. */
enum manifold_dest_kind {
	MANIFOLD_DEST_NONE = 0,   /* no socket: traffic is refused (a miss) */
	MANIFOLD_DEST_SOCKET = 1, /* the socket in sockets[slot] */
	MANIFOLD_DEST_TARGET = 2, /* whatever listens on dest_target[MANIFOLD_DEST_INFO(id, gen)] (listener discovery) */
};

struct dest_info {
	__u32 slot;  /* sockets[] slot for MANIFOLD_DEST_SOCKET */
	__u8 kind;   /* enum manifold_dest_kind */
	__u8 flags;  /* reserved */
	__u16 pad;
};

/*
 * The address target of a destination in one generation (index
 * MANIFOLD_DEST_INFO(id, gen), like dest_info): the socket registered by
 * listener discovery on exactly addr and port, in the dispatcher's own
 * namespace, gets the lookup.
 */
struct dest_target {
	__u32 addr[4]; /* network byte order, as in struct bpf_sk_lookup: IPv4 in addr[0] */
	__u16 port;    /* host byte order; 0 = the connection's own port */
	__u8 family;   /* AF_INET or AF_INET6: the destination's family */
	__u8 pad;
};

/* Destination: (label, family, protocol). User space only. */
struct dest_key {
	char label[MANIFOLD_MAX_LABEL_LEN + 1]; /* NUL padded */
	__u8 family;
	__u8 protocol;
	__u16 pad;
};

struct dest_value {
	__u32 id;
	__u32 refs[2]; /* bindings referencing this destination, per generation */
	__u32 flags;   /* MANIFOLD_DEST_CONFIG(gen) bits; the others reserved (0) */
};

/*
 * dest_value.flags, user space only: in generation `gen` the destination's
 * label is defined by the config files (`apply --config` owns its bindings;
 * bindings of labels without it were made by hand). One bit per generation,
 * so it switches with active_gen like the bindings do.
 */
#define MANIFOLD_DEST_CONFIG(gen) (1u << (gen))

/* Per-destination counters, shared by all CPUs (atomic adds). */
struct dest_metrics {
	__u64 lookups;   /* every lookup that matched a binding of the destination */
	__u64 misses;
	__u64 err_bad_socket;
	__u64 err_wrong_family;
	__u64 err_wrong_protocol;
	__u64 err_other;
};

/*
 * Per-destination counters of listener discovery, shared by all CPUs
 * (atomic adds). Indexed by destination id like dest_metrics.
 */
struct dest_metrics2 {
	__u64 deferred;   /* handed back to an explicit listener (policy) */
	__u64 redirected; /* assigned to the target's socket */
	__u64 no_target;  /* refused: the target had no usable socket */
	__u64 target_own; /* passed: addressed to the target's own address and port, no socket registered */
};

/* Per-namespace counters (one entry). */
struct ns_metrics {
	__u64 deferred;   /* all destinations, also those collected since */
	__u64 reserved[3];
};

/* The ABI marker. */
struct manifold_meta {
	__u64 magic;      /* "manifold" */
	__u32 abi;        /* MANIFOLD_ABI */
	__u32 netns_ino;  /* inode of the network namespace loaded into */
	__u64 netns_dev;  /* device of that nsfs inode */
	__u64 loaded_at;  /* unix time in ms */
	__u32 owner_uid;
	__u32 owner_gid;
	char version[32]; /* manifold version that created or last upgraded the state */
};

/*
 * Per generation, user space only: the content version and the state of a
 * write in progress (see docs/ARCHITECTURE.md, "One write path").
 */
struct gen_state {
	__u64 seq;            /* content version; equal on both generations = in sync */
	__u32 flags;          /* MANIFOLD_GEN_* */
	__u32 exact_capacity; /* entries the generation's exact hash can hold */
	__u64 txid;           /* transaction that last wrote it */
	__u32 exact_count;    /* entries in the exact hash */
	__u32 pad;
};

#define MANIFOLD_GEN_DIRTY 1u /* a writer is changing it: content unknown */
#define MANIFOLD_GEN_STALE 2u /* out of date: rebuilt before the next use */

/* Load-time configuration (one entry). */
struct manifold_config {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the namespace, for listener discovery */
	__u32 flags;        /* reserved */
	__u32 max_ids;      /* destination ids: [0, max_ids) */
	__u32 sock_slots;   /* sockets[] slots */
	__u32 max_bindings; /* bindings per generation */
	__u64 reserved[2];  /* user space: the apply record (content version, set digest; src/ops/apply-digest.ts) */
};

#endif /* MANIFOLD_H */
