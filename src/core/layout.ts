/**
 * The dispatcher's map ABI as user space sees it: constants, struct sizes
 * and index formulas of bpf/manifold.h, in one pure module.
 * test/unit/bpf-object.test.ts compiles a probe against bpf/manifold.h and checks
 * every value here against the C definitions.
 */
import type { Domain, Protocol } from './net.js';

/** Version of the map layouts; bumped on any incompatible change (with a migration). */
export const MANIFOLD_ABI = 3;
/** "manifold" in ASCII, little-endian u64 marker in manifold_meta. */
export const MANIFOLD_MAGIC = 0x646c6f66696e616dn;
/** Longest label in bytes. */
export const MAX_LABEL_BYTES = 255;
/** Capacity of one binding trie. */
export const MAX_BINDINGS = 1 << 21;
/** Default number of destination ids (twice the default maximum of destinations). */
export const DEFAULT_MAX_IDS = 2048;
/** u64 port words per (generation, slot): 65536 ports × 2 bits. */
export const PORT_WORDS = 2048;
/** (family, protocol) slots. */
export const SLOTS = 4;
/** Exact-port prefix lengths a slot may keep in the hash before it needs the trie. */
export const EXACT_LENS = 6;
/** Port bit: bindings of the first (longest) hashed length may name the port. */
export const PORT_FIRST = 1;
/** Port bit: other exact-port bindings may name the port. */
export const PORT_OTHER = 2;
/** Exact-hash capacity of a freshly loaded generation. */
export const INITIAL_EXACT_CAPACITY = 64;
/** gen_state flag: a writer is changing the generation. */
export const GEN_DIRTY = 1;
/** gen_state flag: the generation is out of date and rebuilt before its next use. */
export const GEN_STALE = 2;

/** What serves a destination in a generation (enum manifold_dest_kind). */
export const DestKind = { none: 0, socket: 1, target: 2 } as const;

/** gen_meta.flags: hand connections to explicit listeners first (MANIFOLD_POLICY_EXPLICIT_FIRST). */
export const POLICY_EXPLICIT_FIRST = 1;

/** Sizes in bytes of the C structs. */
export const Sizes = {
  bindingKey: 24,
  bindingValue: 8,
  portWord: 8,
  genMeta: 32,
  genState: 32,
  destInfo: 8,
  destKey: 260,
  destValue: 16,
  metrics: 48,
  destTarget: 20,
  metrics2: 32,
  nsMetrics: 32,
  meta: 72,
  config: 40,
} as const;

/** Slot of a (family, protocol) pair: bit 0 = udp, bit 1 = ipv6. */
export function slotOf(domain: Domain, protocol: Protocol): number {
  return (domain === 'ipv6' ? 2 : 0) | (protocol === 'udp' ? 1 : 0);
}

/** Index of the port word holding `port` for (gen, slot). */
export function portWordIndex(gen: number, slot: number, port: number): number {
  return (((gen * SLOTS + slot) << 11) | (port >> 5)) >>> 0;
}

/** Shift of `port`'s two bits inside its word. */
export function portShift(port: number): number {
  return (port & 31) * 2;
}

/** Index of generation `gen`'s exact-port (wild false) or all-ports (wild true) trie. */
export function trieSlot(gen: number, wild: boolean): number {
  return gen * 2 + (wild ? 1 : 0);
}

/** Index of destination `id`'s information in generation `gen`. */
export function destInfoIndex(id: number, gen: number): number {
  return ((id << 1) | gen) >>> 0;
}

/**
 * dest_value.flags bit (MANIFOLD_DEST_CONFIG): in generation `gen` the
 * destination's label is defined by the config files. User space only.
 */
export function destConfigBit(gen: number): number {
  return 1 << gen;
}

/** Full address length of a family. */
export function fullLength(domain: Domain): number {
  return domain === 'ipv4' ? 32 : 128;
}
