/**
 * The in-memory twin of the dispatcher's maps: same interface and the same
 * observable behaviour as KernelMaps (a full hash refuses new keys, a
 * created destination must not exist, a closed socket leaves its slot), so
 * the ops algorithms can be unit-tested without root.
 * test/integration/differential.test.ts runs the same operations against
 * both and compares everything they hold.
 */
import { BindingList } from '../core/binding-list.js';
import { DEFAULT_MAX_IDS, DestKind, INITIAL_EXACT_CAPACITY, MAX_BINDINGS, PORT_WORDS, SLOTS } from '../core/layout.js';
import { copyMeta, emptyMeta, Place, type GenMeta, type PlaceId } from '../core/placement.js';
import { SysError } from '../sys/errno.js';
import {
  noCounters, type ApplyRecord, type BindingValue, type Counters, type DestInfo, type DestKey, type DestRecord, type DispatcherMaps, type Gen,
  type GenState, type Limits, type NamespaceCounters, type SocketHandle, type TargetAddress, type TargetRegistry, targetAddressKey,
} from './maps.js';

const ENOENT = 2;
const EEXIST = 17;
const E2BIG = 7;

interface TwinGeneration {
  state: GenState;
  meta: GenMeta;
  words: BigUint64Array;
  hash: Map<string, { key: Buffer; value: BindingValue }>;
  hashCapacity: number;
  tries: [Map<string, { key: Buffer; value: BindingValue }>, Map<string, { key: Buffer; value: BindingValue }>];
  destInfo: DestInfo[];
}


function emptyGeneration(maxIds: number): TwinGeneration {
  return {
    state: { seq: 0n, flags: 0, exactCapacity: INITIAL_EXACT_CAPACITY, exactCount: 0, txid: 0n },
    meta: emptyMeta(),
    words: new BigUint64Array(SLOTS * PORT_WORDS),
    hash: new Map(),
    hashCapacity: INITIAL_EXACT_CAPACITY,
    tries: [new Map(), new Map()],
    destInfo: Array.from({ length: maxIds }, () => ({ kind: DestKind.none, slot: 0 })),
  };
}

function destText(k: DestKey): string {
  return `${k.domain}:${k.protocol}:${k.label}`;
}

/** A copy of a DestInfo as the kernel keeps it: the target only where the kind says "target". */
function copyInfo(d: DestInfo): DestInfo {
  const out: DestInfo = { kind: d.kind, slot: d.slot };
  if (d.kind === DestKind.target && d.target) out.target = { domain: d.target.domain, addr: Uint8Array.from(d.target.addr), port: d.target.port };
  return out;
}

/** An in-memory TargetRegistry (listener discovery's disc_targets of one namespace). */
export class TwinRegistry implements TargetRegistry {
  readonly refs = new Map<string, { address: TargetAddress; refs: number }>();
  /** Addresses whose existing sockets were registered (0 → n), in order. */
  readonly seeded: string[] = [];

  registered(): { address: TargetAddress; refs: number }[] {
    return [...this.refs.values()].map((e) => ({ address: { ...e.address, addr: Uint8Array.from(e.address.addr) }, refs: e.refs }));
  }

  setRefs(address: TargetAddress, refs: number): void {
    const k = targetAddressKey(address);
    if (refs <= 0) {
      this.refs.delete(k);
      return;
    }
    if (!this.refs.has(k)) this.seeded.push(k);
    this.refs.set(k, { address: { ...address, addr: Uint8Array.from(address.addr) }, refs });
  }
}

/** In-memory maps. */
export class TwinMaps implements DispatcherMaps {
  readonly limits: Limits;
  private active: Gen = 0;
  private readonly gens: [TwinGeneration, TwinGeneration];
  private readonly dests = new Map<string, DestRecord>();
  private readonly slots: (bigint | null)[];
  private readonly metrics: Counters[];
  private readonly ns: NamespaceCounters = { deferred: 0n };
  private record: ApplyRecord | null = null;
  /** Listener discovery's target addresses (null: discovery not enabled). */
  registry: TargetRegistry | null;
  /** Writes so far (tests use it to count the work an operation did). */
  writes = 0;

  constructor(limits: Partial<Limits> = {}, registry: TargetRegistry | null = null) {
    this.registry = registry;
    const maxIds = limits.maxIds ?? DEFAULT_MAX_IDS;
    this.limits = { maxIds, sockSlots: limits.sockSlots ?? maxIds * 2, maxBindings: limits.maxBindings ?? MAX_BINDINGS };
    this.gens = [emptyGeneration(maxIds), emptyGeneration(maxIds)];
    this.slots = new Array<bigint | null>(this.limits.sockSlots).fill(null);
    this.metrics = Array.from({ length: maxIds }, noCounters);
  }

  activeGen(): Gen {
    return this.active;
  }

  setActiveGen(gen: Gen): void {
    this.writes++;
    this.active = gen;
  }

  genState(gen: Gen): GenState {
    return { ...this.gens[gen].state };
  }

  setGenState(gen: Gen, state: GenState): void {
    this.writes++;
    this.gens[gen].state = { ...state };
  }

  genMeta(gen: Gen): GenMeta {
    return copyMeta(this.gens[gen].meta);
  }

  setGenMeta(gen: Gen, meta: GenMeta): void {
    this.writes++;
    this.gens[gen].meta = copyMeta(meta);
  }

  portWords(gen: Gen): BigUint64Array {
    return BigUint64Array.from(this.gens[gen].words);
  }

  portWord(gen: Gen, w: number): bigint {
    return this.gens[gen].words[w] ?? 0n;
  }

  setPortWords(gen: Gen, words: ReadonlyMap<number, bigint> | BigUint64Array): void {
    this.writes++;
    const w = this.gens[gen].words;
    if (words instanceof BigUint64Array) w.set(words);
    else for (const [i, v] of words) w[i] = v;
  }

  resetGeneration(gen: Gen, exactCapacity: number): void {
    if (gen === this.active) throw new Error('resetGeneration on the live generation');
    this.writes++;
    const g = this.gens[gen];
    g.hash = new Map();
    g.hashCapacity = exactCapacity;
    g.tries = [new Map(), new Map()];
  }

  private store(gen: Gen, place: PlaceId): Map<string, { key: Buffer; value: BindingValue }> {
    const g = this.gens[gen];
    return place === Place.hash ? g.hash : place === Place.exactTrie ? g.tries[0] : g.tries[1];
  }

  putBindings(gen: Gen, place: PlaceId, list: BindingList, indices?: readonly number[]): void {
    const m = this.store(gen, place);
    const g = this.gens[gen];
    const all = indices ?? Array.from({ length: list.count }, (_, i) => i);
    for (const i of all) {
      const key = Buffer.from(list.key(i));
      const k = key.toString('hex');
      if (place === Place.hash && !m.has(k) && m.size >= g.hashCapacity) throw new SysError('bpf_map_update_elem', E2BIG);
      if (place !== Place.hash && !m.has(k) && m.size >= this.limits.maxBindings) throw new SysError('bpf_map_update_elem', E2BIG);
      m.set(k, { key, value: { destId: list.tag(i), len: list.len(i) } });
      this.writes++;
    }
  }

  deleteBindings(gen: Gen, place: PlaceId, list: BindingList, indices: readonly number[]): void {
    const m = this.store(gen, place);
    for (const i of indices) {
      m.delete(list.key(i).toString('hex'));
      this.writes++;
    }
  }

  lookupBinding(gen: Gen, place: PlaceId, list: BindingList, index: number): BindingValue | null {
    const e = this.store(gen, place).get(list.key(index).toString('hex'));
    return e ? { ...e.value } : null;
  }

  readBindings(gen: Gen): BindingList {
    const g = this.gens[gen];
    const out = new BindingList(g.hash.size + g.tries[0].size + g.tries[1].size);
    for (const m of [g.hash, g.tries[0], g.tries[1]]) for (const e of m.values()) out.pushKey(e.key, 0, e.value.destId);
    return out;
  }

  destInfo(gen: Gen, ids = this.limits.maxIds): DestInfo[] {
    return this.gens[gen].destInfo.map((d, id) => (id < ids ? copyInfo(d) : ({ kind: DestKind.none, slot: 0 })));
  }

  setDestInfo(gen: Gen, id: number, info: DestInfo): void {
    if (id < 0 || id >= this.limits.maxIds) throw new SysError('bpf_map_update_elem', 7 /* E2BIG */);
    this.writes++;
    this.gens[gen].destInfo[id] = copyInfo(info);
  }

  destinations(): DestRecord[] {
    return [...this.dests.values()].map((d) => ({ ...d, refs: [d.refs[0], d.refs[1]] }));
  }

  putDestination(rec: DestRecord, create: boolean): void {
    const k = destText(rec);
    if (create && this.dests.has(k)) throw new SysError('bpf_map_update_elem', EEXIST);
    if (!create && !this.dests.has(k)) throw new SysError('bpf_map_update_elem', ENOENT);
    this.writes++;
    this.dests.set(k, { ...rec, refs: [rec.refs[0], rec.refs[1]] });
  }

  deleteDestination(key: DestKey): void {
    this.writes++;
    this.dests.delete(destText(key));
  }

  socketCookie(slot: number): bigint | null {
    return this.slots[slot] ?? null;
  }

  putSocket(slot: number, socket: SocketHandle): void {
    if (slot < 0 || slot >= this.limits.sockSlots) throw new SysError('bpf_map_update_elem', E2BIG);
    this.writes++;
    this.slots[slot] = socket.cookie;
  }

  deleteSocket(slot: number): boolean {
    this.writes++;
    const had = this.slots[slot] !== null && this.slots[slot] !== undefined;
    this.slots[slot] = null;
    return had;
  }

  memory(): null {
    return null;
  }

  counters(id: number): Counters {
    return { ...(this.metrics[id] ?? noCounters()) };
  }

  allCounters(ids = this.limits.maxIds): Counters[] {
    return this.metrics.map((c, id) => (id < ids ? { ...c } : noCounters()));
  }

  zeroCounters(id: number): void {
    this.writes++;
    this.metrics[id] = noCounters();
  }

  namespaceCounters(): NamespaceCounters {
    return { ...this.ns };
  }

  applyRecord(): ApplyRecord | null {
    return this.record ? { ...this.record } : null;
  }

  setApplyRecord(record: ApplyRecord | null): void {
    this.record = record && record.seq !== 0n ? { ...record } : null;
  }

  targetRegistry(): TargetRegistry | null {
    return this.registry;
  }

  /** Twin only: the kernel drops a closed socket from every slot holding it. */
  closeSocket(cookie: bigint): void {
    for (let i = 0; i < this.slots.length; i++) if (this.slots[i] === cookie) this.slots[i] = null;
  }

  /** Twin only: traffic counted by the data plane. */
  count(id: number, field: keyof Counters, n = 1n): void {
    const c = this.metrics[id];
    if (c) c[field] += n;
    if (field === 'deferred') this.ns.deferred += n;
  }
}
