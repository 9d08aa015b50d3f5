/**
 * The dispatcher's pinned BPF maps behind the DispatcherMaps interface.
 * The only code (with the loader and the ABI migration) that encodes map
 * keys and values; index formulas come from core/layout.ts.
 */
import { BindingList, firstInvalidKey } from '../core/binding-list.js';
import { destInfoIndex, DestKind, PORT_WORDS, SLOTS, Sizes, trieSlot } from '../core/layout.js';
import { Place, type GenMeta, type PlaceId } from '../core/placement.js';
import { ManifoldError } from '../errors.js';
import {
  BPF_NOEXIST, BPF_F_NO_PREALLOC, mapCreate, mapDeleteBatch, mapDelete, mapDump, mapFdById, mapInfo, mapLookup, mapLookupRange, mapNextKey, mapShape, mapUpdate, shapeMismatch,
  mapUpdateBatch, MapType, objMemlock, type MapShape,
} from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';
import { closeFd } from '../sys/libc.js';
import {
  decodeApplyRecord, decodeCounters, decodeDestInfo, decodeDestKey, decodeDestTarget, decodeDestValue, decodeGenMeta, decodeGenState, encodeCounters, encodeCounters2,
  encodeDestInfo, encodeDestKey, encodeDestTarget, encodeDestValue, encodeGenMeta, encodeGenState, u32, withApplyRecord,
} from './kernel-codec.js';
import {
  noCounters, type ApplyRecord, type BindingValue, type Counters, type DestInfo, type DestKey, type DestRecord, type DispatcherMaps, type Gen, type GenState,
  type Limits, type MemoryUse, type NamespaceCounters, type SocketHandle, type TargetRegistry,
} from './maps.js';
import type { PinDir } from './pins.js';
import { ObjectPins } from './paths.js';

/** Pinned maps of the state directory (names in the BPF object). */
export const MapPins = {
  meta: 'manifold_meta',
  config: 'config',
  activeGen: 'active_gen',
  genMeta: 'gen_meta',
  genState: 'gen_state',
  portWords: 'port_words',
  tries: 'tries',
  exact: 'exact',
  destInfo: 'dest_info',
  destTarget: 'dest_target',
  destinations: 'destinations',
  sockets: 'sockets',
  metrics: 'dest_metrics',
  metrics2: 'dest_metrics2',
  nsMetrics: 'ns_metrics',
} as const;

/** A pinned map's key in MapPins. */
export type MapPin = keyof typeof MapPins;

const array = (valueSize: number): MapShape => ({ type: MapType.ARRAY, keySize: 4, valueSize });

/**
 * What each pinned map must be (bpf/manifold.bpf.c). Generation maps need no
 * entry: the kernel checks what enters an outer map against its template.
 */
const SHAPES: Record<MapPin, MapShape> = {
  meta: array(Sizes.meta),
  config: array(Sizes.config),
  activeGen: array(4),
  genMeta: array(Sizes.genMeta),
  genState: array(Sizes.genState),
  portWords: array(Sizes.portWord),
  tries: { type: MapType.ARRAY_OF_MAPS, keySize: 4, valueSize: 4 },
  exact: { type: MapType.ARRAY_OF_MAPS, keySize: 4, valueSize: 4 },
  destInfo: array(Sizes.destInfo),
  destTarget: array(Sizes.destTarget),
  destinations: { type: MapType.HASH, keySize: Sizes.destKey, valueSize: Sizes.destValue },
  sockets: { type: MapType.SOCKMAP, keySize: 4, valueSize: 8 },
  metrics: array(Sizes.metrics),
  metrics2: array(Sizes.metrics2),
  nsMetrics: array(Sizes.nsMetrics),
};

/**
 * Why `fd`, the pin `pin`, is not the map manifold declares, or null when it
 * is: a map of other sizes would be read past the end of a buffer, or written
 * from beyond one (only root can replace a pin; still never trusted).
 */
export function mapShapeProblem(fd: number, pin: MapPin): string | null {
  const mismatch = shapeMismatch(mapShape(fd), SHAPES[pin]);
  return mismatch && `the pinned map ${MapPins[pin]} is not a manifold map (${mismatch})`;
}

/** Throw ERR_STALE_STATE when mapShapeProblem finds one (`where`: the state directory). */
export function checkMapShape(fd: number, pin: MapPin, where: string): void {
  const problem = mapShapeProblem(fd, pin);
  if (problem) throw new ManifoldError('ERR_STALE_STATE', `${problem} in ${where}: it was replaced; "manifold unload" then "manifold load" starts afresh`);
}

/** Pin name of a generation's inner map. */
export function innerPin(gen: Gen, place: PlaceId): string {
  return `gen${gen}_${place === Place.hash ? 'exact' : place === Place.exactTrie ? 'trie' : 'wild'}`;
}

const KEY = Sizes.bindingKey;
const VALUE = Sizes.bindingValue;

/** The first u32 (the destination id) of each of `count` packed binding values into `tags` from `at`; returns the next index. */
function valueTags(values: Buffer, count: number, tags: Uint32Array, at: number): number {
  if (values.byteOffset % 4 === 0 && VALUE % 4 === 0) {
    const words = new Uint32Array(values.buffer, values.byteOffset, (count * VALUE) / 4);
    const step = VALUE / 4;
    for (let i = 0; i < count; i++) tags[at + i] = words[i * step] as number;
  } else {
    for (let i = 0; i < count; i++) tags[at + i] = values.readUInt32LE(i * VALUE);
  }
  return at + count;
}

/** Create an empty LPM trie for bindings. */
export function createTrie(maxBindings: number): number {
  return mapCreate(MapType.LPM_TRIE, 'manifold_trie', KEY, VALUE, maxBindings, { flags: BPF_F_NO_PREALLOC });
}

/** Create an empty exact-port hash (preallocated: fast to fill). */
export function createExactHash(capacity: number): number {
  return mapCreate(MapType.HASH, 'manifold_exact', KEY, VALUE, Math.max(1, capacity), { flags: 0 });
}

/** The pinned maps of one state, opened lazily. */
export class KernelMaps implements DispatcherMaps {
  readonly limits: Limits;
  private readonly dir: PinDir;
  private readonly fds = new Map<string, number>();
  private readonly inner = new Map<string, number>();
  private readonly registry: () => TargetRegistry | null;

  /** `registry` opens listener discovery's target addresses of the namespace (null: discovery not enabled). */
  constructor(dir: PinDir, limits: Limits, registry: () => TargetRegistry | null = () => null) {
    this.dir = dir;
    this.limits = limits;
    this.registry = registry;
  }

  targetRegistry(): TargetRegistry | null {
    return this.registry();
  }

  /** fd of a top-level pinned map. */
  fd(pin: MapPin): number {
    const name = MapPins[pin];
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = this.dir.openMap(name);
      try {
        checkMapShape(fd, pin, this.dir.path(''));
      } catch (err) {
        closeFd(fd);
        throw err;
      }
      this.fds.set(name, fd);
    }
    return fd;
  }

  /** Close every fd. */
  close(): void {
    for (const fd of this.fds.values()) closeFd(fd);
    for (const fd of this.inner.values()) closeFd(fd);
    this.fds.clear();
    this.inner.clear();
  }

  activeGen(): Gen {
    const v = mapLookup(this.fd('activeGen'), u32(0), 4);
    return ((v?.readUInt32LE(0) ?? 0) & 1) as Gen;
  }

  setActiveGen(gen: Gen): void {
    mapUpdate(this.fd('activeGen'), u32(0), u32(gen));
  }

  genState(gen: Gen): GenState {
    const v = mapLookup(this.fd('genState'), u32(gen), Sizes.genState);
    return decodeGenState(v ?? Buffer.alloc(Sizes.genState));
  }

  setGenState(gen: Gen, state: GenState): void {
    mapUpdate(this.fd('genState'), u32(gen), encodeGenState(state));
  }

  genMeta(gen: Gen): GenMeta {
    return decodeGenMeta(mapLookup(this.fd('genMeta'), u32(gen), Sizes.genMeta) ?? Buffer.alloc(Sizes.genMeta));
  }

  setGenMeta(gen: Gen, meta: GenMeta): void {
    mapUpdate(this.fd('genMeta'), u32(gen), encodeGenMeta(meta));
  }

  portWords(gen: Gen): BigUint64Array {
    const n = SLOTS * PORT_WORDS;
    const raw = mapLookupRange(this.fd('portWords'), gen * n, n, 8);
    // One copy: the map holds host-order (little-endian) u64 words.
    const out = new BigUint64Array(n);
    new Uint8Array(out.buffer).set(raw.subarray(0, n * 8));
    return out;
  }

  portWord(gen: Gen, w: number): bigint {
    const v = mapLookup(this.fd('portWords'), u32(gen * SLOTS * PORT_WORDS + w), 8);
    return v ? v.readBigUInt64LE(0) : 0n;
  }

  setPortWords(gen: Gen, words: ReadonlyMap<number, bigint> | BigUint64Array): void {
    const base = gen * SLOTS * PORT_WORDS;
    const entries: [number, bigint][] = words instanceof BigUint64Array ? [...words].map((v, i) => [i, v]) : [...words];
    if (entries.length === 0) return;
    const keys = Buffer.alloc(entries.length * 4);
    const values = Buffer.alloc(entries.length * 8);
    entries.forEach(([i, v], j) => {
      keys.writeUInt32LE(base + i, j * 4);
      values.writeBigUInt64LE(v, j * 8);
    });
    mapUpdateBatch(this.fd('portWords'), keys, values, entries.length, 4, 8);
  }

  /** Id of the inner map in an outer slot (0 = empty). */
  private slotId(gen: Gen, place: PlaceId): number {
    const outer = place === Place.hash ? this.fd('exact') : this.fd('tries');
    const idx = place === Place.hash ? gen : trieSlot(gen, place === Place.wildTrie);
    return mapLookup(outer, u32(idx), 4)?.readUInt32LE(0) ?? 0;
  }

  /**
   * fd of a generation's inner map. The pin is checked against the outer
   * map's slot: a pin left behind by an interrupted writer is repaired by a
   * writer; a reader reports it.
   */
  private innerFd(gen: Gen, place: PlaceId): number {
    const name = innerPin(gen, place);
    const cached = this.inner.get(name);
    if (cached !== undefined) return cached;
    const want = this.slotId(gen, place);
    if (want === 0) throw new ManifoldError('ERR_STALE_STATE', `generation ${gen} has no ${name} map: the state is incomplete; run "manifold load" to repair it`);
    let fd = this.dir.tryOpenMap(name);
    if (fd !== null && mapInfo(fd).id !== want) {
      closeFd(fd);
      fd = null;
    }
    if (fd === null) {
      if (!this.dir.write) {
        throw new ManifoldError('ERR_STALE_STATE', `the pin ${name} is out of date (a write was interrupted); run any write command as root to repair it`);
      }
      fd = mapFdById(want);
      this.dir.pin(fd, name);
    }
    this.inner.set(name, fd);
    return fd;
  }

  resetGeneration(gen: Gen, exactCapacity: number): void {
    if (gen === this.activeGen()) throw new Error('resetGeneration on the live generation');
    // Each write to an outer map waits for an RCU grace period (~10 ms): tries that are already
    // empty (the staging generation after load) are kept, and the tries' outer map not written.
    const triesEmpty = this.isEmpty(gen, Place.exactTrie) && this.isEmpty(gen, Place.wildTrie);
    const made: [PlaceId, number][] = [];
    try {
      made.push([Place.hash, createExactHash(exactCapacity)]);
      if (!triesEmpty) {
        made.push([Place.exactTrie, createTrie(this.limits.maxBindings)]);
        made.push([Place.wildTrie, createTrie(this.limits.maxBindings)]);
      }
      // Pin first, then install: the pin and the outer slot agree again at the end.
      for (const [place, fd] of made) this.dir.pin(fd, innerPin(gen, place));
      const [hash, trie, wild] = made.map(([, fd]) => fd) as [number, number | undefined, number | undefined];
      mapUpdate(this.fd('exact'), u32(gen), u32(hash));
      this.useInner(gen, Place.hash, hash);
      if (trie === undefined || wild === undefined) return;
      // Both tries in one batch (one wait).
      const slots = Buffer.alloc(8);
      slots.writeUInt32LE(trieSlot(gen, false), 0);
      slots.writeUInt32LE(trieSlot(gen, true), 4);
      const fds = Buffer.alloc(8);
      fds.writeUInt32LE(trie, 0);
      fds.writeUInt32LE(wild, 4);
      mapUpdateBatch(this.fd('tries'), slots, fds, 2, 4, 4);
      this.useInner(gen, Place.exactTrie, trie);
      this.useInner(gen, Place.wildTrie, wild);
    } catch (err) {
      for (const [place, fd] of made) if (this.inner.get(innerPin(gen, place)) !== fd) closeFd(fd);
      throw err;
    }
  }

  /** True when generation gen's inner map at `place` holds no element (false when it cannot tell: then it is replaced). */
  private isEmpty(gen: Gen, place: PlaceId): boolean {
    try {
      return mapNextKey(this.innerFd(gen, place), null, KEY) === null;
    } catch {
      return false;
    }
  }

  /** Cache `fd` as generation gen's inner map at `place` (it was just installed), closing the one it replaces. */
  private useInner(gen: Gen, place: PlaceId, fd: number): void {
    const old = this.inner.get(innerPin(gen, place));
    if (old !== undefined) closeFd(old);
    this.inner.set(innerPin(gen, place), fd);
  }

  putBindings(gen: Gen, place: PlaceId, list: BindingList, indices?: readonly number[]): void {
    const all = indices ?? null;
    const n = all ? all.length : list.count;
    if (n === 0) return;
    const fd = this.innerFd(gen, place);
    const chunk = Math.min(n, 65536);
    // Keys and values as 32-bit words (host order, as the kernel reads them); buffers reused per chunk.
    const keyBuf = all ? Buffer.allocUnsafeSlow(chunk * KEY) : null;
    const keyWords = keyBuf ? new Uint32Array(keyBuf.buffer, keyBuf.byteOffset, (chunk * KEY) / 4) : null;
    const values = Buffer.allocUnsafeSlow(chunk * VALUE);
    const valueWords = new Uint32Array(values.buffer, values.byteOffset, (chunk * VALUE) / 4);
    const words = list.words;
    const kw = KEY / 4;
    const vw = VALUE / 4;
    for (let off = 0; off < n; off += chunk) {
      const m = Math.min(chunk, n - off);
      for (let j = 0; j < m; j++) {
        const i = all ? (all[off + j] as number) : off + j;
        const from = i * kw;
        if (keyWords) {
          const to = j * kw;
          for (let w = 0; w < kw; w++) keyWords[to + w] = words[from + w] as number;
        }
        // binding_value: {dest_id, prefixlen (the address prefix length)}.
        valueWords[j * vw] = list.tags[i] as number;
        valueWords[j * vw + 1] = (words[from] as number) - 32;
      }
      const keys = keyBuf ?? list.keys.subarray(off * KEY, (off + m) * KEY);
      mapUpdateBatch(fd, keys, values, m, KEY, VALUE);
    }
  }

  deleteBindings(gen: Gen, place: PlaceId, list: BindingList, indices: readonly number[]): void {
    if (indices.length === 0) return;
    const keys = Buffer.alloc(indices.length * KEY);
    indices.forEach((i, j) => list.keys.copy(keys, j * KEY, i * KEY, (i + 1) * KEY));
    mapDeleteBatch(this.innerFd(gen, place), keys, indices.length, KEY);
  }

  lookupBinding(gen: Gen, place: PlaceId, list: BindingList, index: number): BindingValue | null {
    const v = mapLookup(this.innerFd(gen, place), list.key(index), VALUE);
    if (!v) return null;
    const value = { destId: v.readUInt32LE(0), len: v.readUInt32LE(4) };
    // A trie lookup finds the longest matching prefix: only an entry of exactly this key counts.
    return place === Place.hash || value.len === list.len(index) ? value : null;
  }

  readBindings(gen: Gen): BindingList {
    const parts: { keys: Buffer; values: Buffer; count: number }[] = [];
    const seen = new Set<number>();
    for (const place of [Place.hash, Place.exactTrie, Place.wildTrie] as const) {
      const id = this.slotId(gen, place);
      // After an upgrade from map ABI 1 both trie slots hold the same trie.
      if (id === 0 || seen.has(id)) continue;
      seen.add(id);
      parts.push(mapDump(this.innerFd(gen, place), KEY, VALUE, 16384));
    }
    const total = parts.reduce((n, p) => n + p.count, 0);
    // Keys are copied in bulk; a key that is not a manifold key (another
    // program wrote it) is left out, as pushKey would.
    const keys = Buffer.concat(parts.map((p) => p.keys.subarray(0, p.count * KEY)), total * KEY);
    const tags = new Uint32Array(total);
    let n = 0;
    for (const p of parts) n = valueTags(p.values, p.count, tags, n);
    const out = BindingList.from(keys, tags, total);
    if (firstInvalidKey(out.words, total) < 0) return out;
    const clean = new BindingList(total);
    for (let j = 0; j < total; j++) clean.pushKey(keys, j * KEY, tags[j] ?? 0);
    return clean;
  }

  destInfo(gen: Gen, ids = this.limits.maxIds): DestInfo[] {
    // A batch read of an array map costs the kernel per element (~0.4 µs): read only `ids`.
    const n = Math.max(0, Math.min(ids, this.limits.maxIds));
    const raw = mapLookupRange(this.fd('destInfo'), 0, 2 * n, Sizes.destInfo);
    const words = u32View(raw);
    const per = Sizes.destInfo / 4;
    const out: DestInfo[] = new Array<DestInfo>(this.limits.maxIds).fill(NO_DEST);
    let targets: Buffer | null = null;
    // Most ids are unused: share the frozen NO_DEST instead of decoding each.
    for (let id = 0; id < n; id++) {
      const at = destInfoIndex(id, gen) * per;
      if (allZero(words, at, per)) {
        out[id] = NO_DEST;
        continue;
      }
      const info = decodeDestInfo(raw, at * 4);
      if (info.kind === DestKind.target) {
        targets ??= mapLookupRange(this.fd('destTarget'), 0, 2 * n, Sizes.destTarget);
        info.target = decodeDestTarget(targets, destInfoIndex(id, gen) * Sizes.destTarget);
      }
      out[id] = info;
    }
    return out;
  }

  setDestInfo(gen: Gen, id: number, info: DestInfo): void {
    // The target first: dest_target is read only where dest_info says "target".
    if (info.kind === DestKind.target) mapUpdate(this.fd('destTarget'), u32(destInfoIndex(id, gen)), encodeDestTarget(info.target));
    mapUpdate(this.fd('destInfo'), u32(destInfoIndex(id, gen)), encodeDestInfo(info));
  }

  destinations(): DestRecord[] {
    const { keys, values, count } = mapDump(this.fd('destinations'), Sizes.destKey, Sizes.destValue, 1024);
    const out: DestRecord[] = [];
    for (let i = 0; i < count; i++) {
      const key = decodeDestKey(keys, i * Sizes.destKey);
      if (key) out.push({ ...key, ...decodeDestValue(values, i * Sizes.destValue) });
    }
    return out;
  }

  putDestination(rec: DestRecord, create: boolean): void {
    mapUpdate(this.fd('destinations'), encodeDestKey(rec), encodeDestValue(rec), create ? BPF_NOEXIST : 0n);
  }

  deleteDestination(key: DestKey): void {
    mapDelete(this.fd('destinations'), encodeDestKey(key));
  }

  socketCookie(slot: number): bigint | null {
    const v = mapLookup(this.fd('sockets'), u32(slot), 8);
    return v ? v.readBigUInt64LE(0) : null;
  }

  putSocket(slot: number, socket: SocketHandle): void {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(BigInt(socket.fd), 0);
    mapUpdate(this.fd('sockets'), u32(slot), v);
  }

  deleteSocket(slot: number): boolean {
    try {
      return mapDelete(this.fd('sockets'), u32(slot));
    } catch (err) {
      // A sockmap reports an empty slot as EINVAL (the socket closed meanwhile).
      if (err instanceof SysError && err.errno === 22) return false;
      throw err;
    }
  }

  memory(): MemoryUse {
    const byMap: Record<string, number> = {};
    const seen = new Set<number>();
    let total = 0;
    for (const name of this.dir.names()) {
      if (name === ObjectPins.link || name === ObjectPins.program) continue;
      // A map this state already has open is not opened again (and stays open until close()).
      const cached = this.fds.get(name);
      const fd = cached ?? this.dir.tryOpenMap(name);
      if (fd === null) continue;
      try {
        const id = mapInfo(fd).id;
        const bytes = objMemlock(fd);
        byMap[name] = bytes;
        if (!seen.has(id)) {
          seen.add(id);
          total += bytes;
        }
      } finally {
        if (cached === undefined) closeFd(fd);
      }
    }
    return { total, byMap };
  }

  counters(id: number): Counters {
    const v = mapLookup(this.fd('metrics'), u32(id), Sizes.metrics);
    const v2 = mapLookup(this.fd('metrics2'), u32(id), Sizes.metrics2);
    return v ? decodeCounters(v, 0, v2) : noCounters();
  }

  allCounters(ids = this.limits.maxIds): Counters[] {
    const n = Math.max(0, Math.min(ids, this.limits.maxIds));
    const raw = mapLookupRange(this.fd('metrics'), 0, n, Sizes.metrics);
    const raw2 = mapLookupRange(this.fd('metrics2'), 0, n, Sizes.metrics2);
    const words = u32View(raw);
    const words2 = u32View(raw2);
    const per = Sizes.metrics / 4;
    const per2 = Sizes.metrics2 / 4;
    const out: Counters[] = new Array<Counters>(this.limits.maxIds).fill(ZERO_COUNTERS);
    // Most ids are unused: share one frozen zero record instead of decoding each.
    for (let id = 0; id < n; id++) {
      out[id] = allZero(words, id * per, per) && allZero(words2, id * per2, per2) ? ZERO_COUNTERS : decodeCounters(raw, id * Sizes.metrics, raw2, id * Sizes.metrics2);
    }
    return out;
  }

  zeroCounters(id: number): void {
    mapUpdate(this.fd('metrics'), u32(id), encodeCounters(noCounters()));
    mapUpdate(this.fd('metrics2'), u32(id), encodeCounters2(noCounters()));
  }

  namespaceCounters(): NamespaceCounters {
    const v = mapLookup(this.fd('nsMetrics'), u32(0), Sizes.nsMetrics);
    return { deferred: v ? v.readBigUInt64LE(0) : 0n };
  }

  applyRecord(): ApplyRecord | null {
    const raw = mapLookup(this.fd('config'), u32(0), Sizes.config);
    return raw ? decodeApplyRecord(raw) : null;
  }

  setApplyRecord(record: ApplyRecord | null): void {
    const raw = mapLookup(this.fd('config'), u32(0), Sizes.config);
    if (!raw) return;
    mapUpdate(this.fd('config'), u32(0), withApplyRecord(raw, record));
  }
}

/** A DestInfo with nothing behind it (shared and frozen: copy before changing). */
export const NO_DEST: DestInfo = Object.freeze({ kind: DestKind.none, slot: 0 });

/** Counters of an id that never saw traffic (shared and frozen). */
const ZERO_COUNTERS: Counters = Object.freeze(noCounters());

/** The 32-bit words of a map read (a copy when the buffer is not 4-byte aligned). */
function u32View(raw: Buffer): Uint32Array {
  if (raw.byteOffset % 4 === 0) return new Uint32Array(raw.buffer, raw.byteOffset, raw.length >>> 2);
  const copy = new Uint32Array(raw.length >>> 2);
  new Uint8Array(copy.buffer).set(raw.subarray(0, copy.length * 4));
  return copy;
}

function allZero(words: Uint32Array, at: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (words[at + i] !== 0) return false;
  return true;
}
