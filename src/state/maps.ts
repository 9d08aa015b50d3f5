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

/** What serves a destination in one generation (struct dest_info). */
export interface DestInfo {
  /** DestKind.none or DestKind.socket. */
  kind: number;
  /** sockets[] slot when kind is socket. */
  slot: number;
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

/** Counters of one destination. */
export interface Counters {
  lookups: bigint;
  misses: bigint;
  errBadSocket: bigint;
  errWrongFamily: bigint;
  errWrongProtocol: bigint;
  errOther: bigint;
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

  destInfo(gen: Gen): DestInfo[];
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
  /** Counters of every id in [0, maxIds). */
  allCounters(): Counters[];
  zeroCounters(id: number): void;
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
  return { lookups: 0n, misses: 0n, errBadSocket: 0n, errWrongFamily: 0n, errWrongProtocol: 0n, errOther: 0n };
}
