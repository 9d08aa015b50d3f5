/**
 * The typed map layer: one interface for everything the dispatcher's maps
 * hold — the active generation, each generation's bindings, lookup metadata,
 * destination info and write state, the destinations table, the sockets and
 * the counters. Two implementations behave the same:
 *
 * - KernelMaps (kernel-maps.ts): the pinned BPF maps through src/sys; the
 *   only code that encodes map keys and values;
 * - TwinMaps (twin-maps.ts): an in-memory twin for root-free unit tests,
 *   checked against the kernel by test/integration/differential.test.ts.
 *
 * Bindings go in and out as BindingLists (core/binding-list.ts) whose tags
 * are destination ids. Where a binding lives inside a generation (hash,
 * exact-port trie, all-ports trie) is decided by core/placement.ts; the
 * implementations store what they are told.
 */
import type { BindingList } from '../core/binding-list.js';
import type { GenMeta, PlaceId } from '../core/placement.js';
import { DestKind } from '../core/layout.js';
import type { Domain, Protocol } from '../core/net.js';

/** A generation: 0 or 1. */
export type Gen = 0 | 1;

/** Write state of a generation (struct gen_state). */
export interface GenState {
  /** Content version; both generations equal and clean = in sync. */
  seq: bigint;
  /** GEN_DIRTY | GEN_STALE. */
  flags: number;
  /** Entries the generation's exact hash can hold. */
  exactCapacity: number;
  /** Entries in the exact hash. */
  exactCount: number;
  /** Transaction that last wrote it. */
  txid: bigint;
}

/**
 * An address target (struct dest_target): the socket listener discovery
 * keeps for exactly this address and port, in the namespace, serves the
 * destination.
 */
export interface TargetSpec {
  /** The destination's family. */
  domain: Domain;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  /** 0 = the connection's own port. */
  port: number;
}

/** One more than the highest destination id of `dests` (0 for none): the `ids` bound of destInfo and allCounters. */
export function idsInUse(dests: readonly { id: number }[]): number {
  let n = 0;
  for (const d of dests) if (d.id >= n) n = d.id + 1;
  return n;
}

/** What serves a destination in one generation (struct dest_info, and dest_target for targets). */
export interface DestInfo {
  /** DestKind.none, DestKind.socket or DestKind.target. */
  kind: number;
  /** sockets[] slot when kind is socket. */
  slot: number;
  /** The target when kind is target. */
  target?: TargetSpec | undefined;
}

/** True when two DestInfos say the same. */
export function sameInfo(a: DestInfo, b: DestInfo): boolean {
  if (a.kind !== b.kind || a.slot !== b.slot) return false;
  if (a.kind !== DestKind.target) return true;
  return sameTarget(a.target, b.target);
}

/** True when two targets are equal (both absent counts as equal). */
export function sameTarget(a: TargetSpec | undefined, b: TargetSpec | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.domain === b.domain && a.port === b.port && Buffer.from(a.addr).equals(Buffer.from(b.addr));
}

/** A destination's identity. */
export interface DestKey {
  label: string;
  domain: Domain;
  protocol: Protocol;
}

/** A destination as stored in the destinations table. */
export interface DestRecord extends DestKey {
  id: number;
  /** Bindings referencing it, per generation. */
  refs: [number, number];
  flags: number;
}

/** Counters of one destination (struct dest_metrics and struct dest_metrics2). */
export interface Counters {
  lookups: bigint;
  misses: bigint;
  errBadSocket: bigint;
  errWrongFamily: bigint;
  errWrongProtocol: bigint;
  errOther: bigint;
  /** Handed back to an explicit listener (policy explicit-first). */
  deferred: bigint;
  /** Assigned to the target's socket. */
  redirected: bigint;
  /** Refused: the target had no usable socket. */
  noTarget: bigint;
  /** Passed: addressed to the target itself while no socket was registered there. */
  targetOwn: bigint;
}

/** Per-namespace counters (struct ns_metrics). */
export interface NamespaceCounters {
  /** Lookups handed back to explicit listeners, all destinations. */
  deferred: bigint;
}

/** A target address as listener discovery knows it: (protocol, address) in the namespace. */
export interface TargetAddress {
  protocol: Protocol;
  domain: Domain;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
}

/** "tcp 7f000005": the key of a target address. */
export function targetAddressKey(a: TargetAddress): string {
  return `${a.protocol} ${Buffer.from(a.addr).toString('hex')}`;
}

/**
 * The target addresses listener discovery keeps sockets for, in this
 * namespace (src/discovery/registry.ts; an in-memory one for tests). The
 * executor keeps it equal to the targets the dispatcher's generations use.
 */
export interface TargetRegistry {
  /** Registered addresses with their reference counts (destinations using them). */
  registered(): { address: TargetAddress; refs: number }[];
  /** Set an address's reference count: 0 forgets it; from 0 registers the sockets already bound there. */
  setRefs(address: TargetAddress, refs: number): void;
}

/** Load-time limits (struct manifold_config). */
export interface Limits {
  /** Destination ids are [0, maxIds). */
  maxIds: number;
  /** sockets[] slots. */
  sockSlots: number;
  /** Bindings per generation. */
  maxBindings: number;
}

/** A socket to put into a slot: the kernel needs the fd, the twin the cookie. */
export interface SocketHandle {
  fd: number;
  cookie: bigint;
}

/** A binding's value: destination id and address prefix length. */
export interface BindingValue {
  destId: number;
  len: number;
}

/**
 * What the last plain apply left: the content version (gen_state.seq) the
 * live generation had right after it, and a digest of the binding set it
 * applied (src/ops/apply-digest.ts). While the live generation still has
 * that version (no write since), it holds exactly that set, so an apply of
 * a set with the same digest changes nothing. Kept in manifold_config's
 * reserved words (user space only; zero = none; anything rewriting the
 * config clears it).
 */
export interface ApplyRecord {
  seq: bigint;
  digest: bigint;
}

/** Everything the dispatcher's maps hold. */
export interface DispatcherMaps {
  readonly limits: Limits;

  /** The live generation. */
  activeGen(): Gen;
  /** Make `gen` live: the commit point of every write (one 4-byte write). */
  setActiveGen(gen: Gen): void;

  genState(gen: Gen): GenState;
  setGenState(gen: Gen, state: GenState): void;
  genMeta(gen: Gen): GenMeta;
  setGenMeta(gen: Gen, meta: GenMeta): void;
  /** All SLOTS * PORT_WORDS port words of a generation. */
  portWords(gen: Gen): BigUint64Array;
  /** One port word of a generation (generation-relative index). */
  portWord(gen: Gen, w: number): bigint;
  /** Write port words: generation-relative index → value. */
  setPortWords(gen: Gen, words: ReadonlyMap<number, bigint> | BigUint64Array): void;

  /** Give `gen` a fresh, empty hash (of `exactCapacity` entries) and fresh tries. Never call on the live generation. */
  resetGeneration(gen: Gen, exactCapacity: number): void;
  /** Put entries `indices` (all when omitted) of `list` (tags = destination ids) into `place`. */
  putBindings(gen: Gen, place: PlaceId, list: BindingList, indices?: readonly number[]): void;
  /** Delete entries `indices` of `list` from `place`; absent keys are ignored. */
  deleteBindings(gen: Gen, place: PlaceId, list: BindingList, indices: readonly number[]): void;
  /** The value stored at exactly this key in `place`, or null. */
  lookupBinding(gen: Gen, place: PlaceId, list: BindingList, index: number): BindingValue | null;
  /** Every binding of a generation (tags = destination ids), each once. */
  readBindings(gen: Gen): BindingList;

  /**
   * What serves each destination id in generation `gen` (maxIds entries). With `ids`, only the
   * ids below it are read and the others are NONE: the ids no destination has are NONE in both
   * generations (execute sets an id's info only once its destination exists; collectGarbage
   * clears it in both generations before deleting the destination), so `idsInUse` of the
   * destinations gives the same array for less reading.
   */
  destInfo(gen: Gen, ids?: number): DestInfo[];
  setDestInfo(gen: Gen, id: number, info: DestInfo): void;

  destinations(): DestRecord[];
  /** Create (`create`: fails if it exists) or update a destination. */
  putDestination(rec: DestRecord, create: boolean): void;
  deleteDestination(key: DestKey): void;

  /** Cookie of the socket in a slot, or null when empty (the kernel empties slots of closed sockets). */
  socketCookie(slot: number): bigint | null;
  putSocket(slot: number, socket: SocketHandle): void;
  /** Empty a slot; false when it was empty. */
  deleteSocket(slot: number): boolean;

  /** Kernel memory the maps lock, per map name and in total (null when not in a kernel). */
  memory(): MemoryUse | null;

  counters(id: number): Counters;
  /** Counters of every id in [0, maxIds); with `ids`, only the ids below it are read (the others read as zero). */
  allCounters(ids?: number): Counters[];
  zeroCounters(id: number): void;
  /** Per-namespace counters. */
  namespaceCounters(): NamespaceCounters;

  /** The apply record, or null when there is none. */
  applyRecord(): ApplyRecord | null;
  /** Set (or, with null, clear) the apply record. Not a change of what the dispatcher reads. */
  setApplyRecord(record: ApplyRecord | null): void;

  /** Listener discovery's target addresses of this namespace, or null when discovery is not enabled. */
  targetRegistry(): TargetRegistry | null;
}

/** Kernel memory locked by a state's maps. */
export interface MemoryUse {
  /** Bytes, as bpftool's bytes_memlock, summed over every map (inner maps included, each once). */
  total: number;
  /** Bytes per pinned map name. */
  byMap: Record<string, number>;
}

/** Counters at zero. */
export function noCounters(): Counters {
  return { lookups: 0n, misses: 0n, errBadSocket: 0n, errWrongFamily: 0n, errWrongProtocol: 0n, errOther: 0n, deferred: 0n, redirected: 0n, noTarget: 0n, targetOwn: 0n };
}
