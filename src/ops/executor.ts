/**
 * The executor: the only code that writes the dispatcher's maps, and where
 * the all-or-nothing guarantee lives (docs/ARCHITECTURE.md, "One write
 * path").
 *
 * Two generations hold the bindings and destination info; the data plane
 * reads the one named by active_gen. A write:
 *
 *  1. marks the staging generation DIRTY (from here on an interruption is
 *     visible to the next write);
 *  2. creates new destinations and puts new sockets into free slots
 *     (nothing refers to them yet);
 *  3. brings the staging generation to the new state: changes applied to a
 *     copy that is in sync with the live one (incremental), or rebuilt from
 *     scratch (rebuild) — resyncing it first when an earlier write left it
 *     out of date;
 *  4. marks it clean with the next content version and flips active_gen to
 *     it — the commit point, one 4-byte write;
 *  5. brings the old generation to the same state (incremental), or marks
 *     it STALE so the next write rebuilds it;
 *  6. collects garbage (destinations nobody refers to, socket slots nobody
 *     refers to) and marks the old generation clean.
 *
 * With listener discovery enabled (DispatcherMaps.targetRegistry), a write
 * that changes what serves destinations also keeps discovery's target
 * addresses equal to the targets the generations use: addresses a target
 * of the new state needs are registered before the switch (their sockets
 * can then be assigned from the first lookup on), addresses no generation
 * uses any more are released after it. Both are idempotent: a write killed
 * in between leaves a generation DIRTY or STALE, and the next write repeats
 * them.
 *
 * Killed before step 4 the old state stays live; after it the new one is
 * live and complete. The next write finds the leftover (a DIRTY or STALE
 * generation), rebuilds it from the live one and scans every socket slot.
 */
import { BindingList, KeyIndex } from '../core/binding-list.js';
import { DestKind, destConfigBit, GEN_DIRTY, GEN_STALE } from '../core/layout.js';
import { hasTrieMode, IncrementalPlacer, layoutGeneration, Place, placeOf, SMALL_GENERATION, type PlaceId } from '../core/placement.js';
import { ManifoldError } from '../errors.js';
import { checkDestinationCapacity } from './dest-capacity.js';
import { idsInUse, sameInfo, type DestInfo, type DestRecord, type DispatcherMaps, type Gen, type GenState, type TargetRegistry } from '../state/maps.js';
import { syncTargets } from './targets-sync.js';
import { step } from './faults.js';
import { isEmptyPlan, rebuildsFromTarget, type Plan } from './plan.js';

/** How a write was carried out. */
export interface ExecResult {
  strategy: 'none' | 'incremental' | 'rebuild';
  /** An earlier interrupted write was repaired first. */
  repaired: boolean;
}

/** Up to this many puts, port words are looked up one by one (IncrementalPlacer caches each). */
const FEW_PUTS = 64;

const NONE: DestInfo = { kind: DestKind.none, slot: 0 };

function other(g: Gen): Gen {
  return (g ^ 1) as Gen;
}

/** True when `s` is clean and holds the same content version as `live`. */
export function inSync(s: GenState, live: GenState): boolean {
  return s.flags === 0 && s.seq === live.seq;
}

/** Hash capacity for `n` entries: room to grow before a rebuild. */
export function exactCapacityFor(n: number): number {
  return Math.max(64, Math.ceil(n * 1.25) + 16);
}

/** Apply the plan's changes to generation g in place; false (nothing written) when it cannot. */
function applyDelta(maps: DispatcherMaps, g: Gen, plan: Plan, state: GenState): GenState | null {
  const meta = maps.genMeta(g);
  // A generation in trie mode stays small (src/core/placement.ts): one that could outgrow it is laid out again.
  const trieMode = hasTrieMode(meta);
  // One read of the destinations serves the size check and the reference counts below (a write of bindings does not change them).
  const dests = maps.destinations();
  const small = (trieMode || plan.puts.count <= SMALL_GENERATION) && generationSize(dests, g) + plan.puts.count <= SMALL_GENERATION;
  if (trieMode && !small) return null;
  // A small write looks up the few words it touches; a large one reads them all at once.
  let words: BigUint64Array | null = null;
  const few = plan.puts.count <= FEW_PUTS;
  const placer = new IncrementalPlacer(
    meta,
    (w) => {
      if (few) return maps.portWord(g, w);
      words ??= maps.portWords(g);
      return words[w] ?? 0n;
    },
    small,
  );
  const putPlaces: PlaceId[] = [];
  let added = 0;
  for (let i = 0; i < plan.puts.count; i++) {
    const place = placer.place(plan.puts, i);
    if (place === null) return null;
    putPlaces.push(place);
    if (place === Place.hash && plan.putIsNew[i]) added++;
  }
  const delPlaces: PlaceId[] = [];
  let removed = 0;
  for (let i = 0; i < plan.deletes.count; i++) {
    const place = placeOf(meta, plan.deletes.slot(i), plan.deletes.len(i), plan.deletes.port(i));
    delPlaces.push(place);
    if (place === Place.hash) removed++;
  }
  const exactCount = state.exactCount + added - removed;
  if (state.exactCount + added > state.exactCapacity) return null;

  for (const place of [Place.hash, Place.exactTrie, Place.wildTrie] as const) {
    const dels: number[] = [];
    delPlaces.forEach((p, i) => p === place && dels.push(i));
    maps.deleteBindings(g, place, plan.deletes, dels);
  }
  for (const place of [Place.hash, Place.exactTrie, Place.wildTrie] as const) {
    const puts: number[] = [];
    putPlaces.forEach((p, i) => p === place && puts.push(i));
    if (puts.length > 0) maps.putBindings(g, place, plan.puts, puts);
  }
  if (plan.policy !== null && placer.meta.flags !== plan.policy) {
    placer.meta.flags = plan.policy;
    placer.metaChanged = true;
  }
  if (placer.changed.size > 0) maps.setPortWords(g, placer.changed);
  if (placer.metaChanged) maps.setGenMeta(g, placer.meta);
  for (const [id, info] of plan.destInfo) maps.setDestInfo(g, id, info);
  adjustDestinations(maps, dests, g, plan.refDelta, plan.configured);
  return { ...state, exactCount };
}

/** How many bindings generation g holds (the sum of its destinations' reference counts). */
function generationSize(dests: readonly DestRecord[], g: Gen): number {
  let n = 0;
  for (const d of dests) n += d.refs[g];
  return n;
}

/** `flags` with generation g's config bit set to `on`. */
function withConfig(flags: number, g: Gen, on: boolean): number {
  return on ? (flags | destConfigBit(g)) >>> 0 : (flags & ~destConfigBit(g)) >>> 0;
}

/** Generation g's config bit of a destination. */
function configIn(d: DestRecord, g: Gen): boolean {
  return (d.flags & destConfigBit(g)) !== 0;
}

/** Change generation g's reference counts and config bits of the destinations the plan names. */
function adjustDestinations(maps: DispatcherMaps, dests: readonly DestRecord[], g: Gen, delta: ReadonlyMap<number, number>, configured: ReadonlyMap<number, boolean>): void {
  if (delta.size === 0 && configured.size === 0) return;
  for (const d of dests) {
    const n = delta.get(d.id);
    const c = configured.get(d.id);
    if (n === undefined && c === undefined) continue;
    const refs: [number, number] = [d.refs[0], d.refs[1]];
    if (n !== undefined) refs[g] = Math.max(0, refs[g] + n);
    const flags = c === undefined ? d.flags : withConfig(d.flags, g, c);
    if (refs[g] === d.refs[g] && flags === d.flags) continue;
    maps.putDestination({ ...d, refs, flags }, false);
  }
}

/**
 * Rebuild generation g from scratch with `content` (tags = destination ids),
 * `info` for every id, each destination's config bit from `configured` and
 * the policy `flags`.
 */
function rebuild(maps: DispatcherMaps, g: Gen, content: BindingList, info: readonly DestInfo[], state: GenState, configured: (d: DestRecord) => boolean, flags: number): GenState {
  if (content.count > maps.limits.maxBindings) {
    throw new ManifoldError('ERR_NO_SPACE', `${content.count} bindings are more than the ${maps.limits.maxBindings} this state was loaded for (manifold load --max-bindings)`);
  }
  const layout = layoutGeneration(content);
  const capacity = exactCapacityFor(layout.hashCount);
  maps.resetGeneration(g, capacity);
  for (const place of [Place.hash, Place.exactTrie, Place.wildTrie] as const) {
    const idx: number[] = [];
    layout.places.forEach((p, i) => p === place && idx.push(i));
    if (idx.length === content.count) maps.putBindings(g, place, content);
    else if (idx.length > 0) maps.putBindings(g, place, content, idx);
  }
  maps.setPortWords(g, layout.words);
  maps.setGenMeta(g, { ...layout.meta, flags });
  const dests = maps.destinations();
  const current = maps.destInfo(g, idsInUse(dests));
  info.forEach((want, id) => {
    const have = current[id];
    if (!have || !sameInfo(have, want)) maps.setDestInfo(g, id, want);
  });
  const counts = new Map<number, number>();
  for (let i = 0; i < content.count; i++) counts.set(content.tag(i), (counts.get(content.tag(i)) ?? 0) + 1);
  for (const d of dests) {
    const n = counts.get(d.id) ?? 0;
    const flags = withConfig(d.flags, g, configured(d));
    if (d.refs[g] === n && flags === d.flags) continue;
    const refs: [number, number] = [d.refs[0], d.refs[1]];
    refs[g] = n;
    maps.putDestination({ ...d, refs, flags }, false);
  }
  return { ...state, exactCapacity: capacity, exactCount: layout.hashCount };
}

/** The live content with the plan's changes applied (for a rebuild without a target). */
function merged(live: BindingList, plan: Plan): BindingList {
  const dels = KeyIndex.of(plan.deletes);
  const puts = KeyIndex.of(plan.puts);
  const out = new BindingList(live.count + plan.puts.count);
  for (let i = 0; i < live.count; i++) {
    if (dels.find(live, i) >= 0 || puts.find(live, i) >= 0) continue;
    out.pushFrom(live, i, live.tag(i));
  }
  for (let i = 0; i < plan.puts.count; i++) out.pushFrom(plan.puts, i, plan.puts.tag(i));
  return out;
}

/** Destination info of every id after the plan. */
function infoAfter(base: readonly DestInfo[], plan: Plan): DestInfo[] {
  const out = base.map((d) => ({ ...d }));
  for (const d of plan.create) out[d.id] = { ...NONE };
  for (const [id, info] of plan.destInfo) out[id] = { ...info };
  return out;
}

/**
 * Remove garbage: destinations with no bindings in a valid generation, no
 * live socket and no target, and socket slots no valid generation refers to. With
 * `scanAll`, every slot is checked (after an interrupted write), else only
 * `candidates`.
 */
export function collectGarbage(maps: DispatcherMaps, valid: readonly Gen[], candidates: Iterable<number>, scanAll: boolean): void {
  const dests = maps.destinations();
  const infos = new Map<Gen, DestInfo[]>();
  // After an interrupted write every id is read, in case something broke the invariant the bound relies on.
  const ids = scanAll ? maps.limits.maxIds : idsInUse(dests);
  for (const g of valid) infos.set(g, maps.destInfo(g, ids));
  const served = (id: number): boolean => {
    for (const info of infos.values()) {
      const d = info[id];
      if (d && d.kind === DestKind.socket && maps.socketCookie(d.slot) !== null) return true;
      // A target lasts until it is removed (its daemon may be restarting).
      if (d && d.kind === DestKind.target) return true;
    }
    return false;
  };
  const release = new Set<number>(candidates);
  for (const d of dests) {
    if (valid.some((g) => d.refs[g] !== 0) || served(d.id)) continue;
    for (const [g, info] of infos) {
      const cur = info[d.id];
      if (cur && cur.kind === DestKind.socket) release.add(cur.slot);
    }
    for (const g of [0, 1] as const) maps.setDestInfo(g, d.id, NONE);
    for (const info of infos.values()) info[d.id] = { ...NONE };
    maps.deleteDestination(d);
  }
  const referenced = new Set<number>();
  for (const info of infos.values()) for (const d of info) if (d.kind === DestKind.socket) referenced.add(d.slot);
  const slots = scanAll ? Array.from({ length: maps.limits.sockSlots }, (_, i) => i) : [...release];
  for (const slot of slots) {
    if (!referenced.has(slot) && (!scanAll || maps.socketCookie(slot) !== null)) maps.deleteSocket(slot);
  }
}

/** Carry out a plan. */
export function execute(maps: DispatcherMaps, plan: Plan): ExecResult {
  const live = maps.activeGen();
  const staging = other(live);
  const sLive = maps.genState(live);
  let sStaging = maps.genState(staging);
  const repaired = !inSync(sStaging, sLive);
  // Nothing to write: done, unless an interrupted write left something to repair. A generation
  // marked STALE by a completed rebuild is not a leftover: it is rebuilt by the next real write,
  // so a no-op (e.g. the same apply again) rebuilds nothing.
  const staleByDesign = sStaging.flags === GEN_STALE && sLive.flags === 0;
  if (isEmptyPlan(plan) && (!repaired || staleByDesign)) return { strategy: 'none', repaired: false };
  const txid = (sLive.txid > sStaging.txid ? sLive.txid : sStaging.txid) + 1n;
  const dests = maps.destinations();
  const liveInfo = maps.destInfo(live, idsInUse(dests));
  checkDestinationCapacity(maps, dests, live, liveInfo, plan);
  const liveFlags = maps.genMeta(live).flags;
  const flags = plan.policy ?? liveFlags;
  // Discovery's target addresses follow what serves destinations: only writes that change it (or repair) touch them.
  const registry: TargetRegistry | null = plan.destInfo.size > 0 || repaired ? maps.targetRegistry() : null;

  step('begin');
  sStaging = { ...sStaging, flags: sStaging.flags | GEN_DIRTY, txid };
  maps.setGenState(staging, sStaging);
  step('staging-dirty');

  // Config bits of new destinations are set with the staging generation's content below.
  for (const d of plan.create) {
    maps.zeroCounters(d.id);
    maps.setDestInfo(staging, d.id, NONE);
    maps.putDestination({ ...d, flags: withConfig(withConfig(d.flags, 0, false), 1, false) }, true);
  }
  step('destinations-created');
  for (const s of plan.sockets) maps.putSocket(s.slot, s.socket);
  step('sockets-put');
  if (registry) {
    syncTargets(maps, registry, [liveInfo, infoAfter(liveInfo, plan)], plan.create, 'raise');
    step('targets-registered');
  }

  const changes = plan.puts.count + plan.deletes.count + plan.omitted;
  const bigChange = plan.target !== null && rebuildsFromTarget(changes, plan.target.count);
  // A planner leaves puts and deletes out only for a write rebuilt from its target.
  if (plan.omitted > 0 && !bigChange) throw new Error('internal error: a plan left out its changes but is not rebuilt from its target');
  let strategy: 'incremental' | 'rebuild' = 'incremental';
  let next: GenState | null = null;
  // Config bits after the plan: the plan's, else the live generation's.
  const configuredAfter = (d: DestRecord): boolean => plan.configured.get(d.id) ?? configIn(d, live);
  if (bigChange) {
    next = rebuild(maps, staging, plan.target as BindingList, infoAfter(liveInfo, plan), sStaging, configuredAfter, flags);
    strategy = 'rebuild';
  } else {
    if (repaired) {
      sStaging = rebuild(maps, staging, maps.readBindings(live), infoAfter(liveInfo, { ...plan, create: [], destInfo: new Map() }), sStaging, (d) => configIn(d, live), liveFlags);
      step('staging-resynced');
    }
    next = applyDelta(maps, staging, plan, sStaging);
    if (next === null) {
      const content = plan.target ?? merged(maps.readBindings(live), plan);
      next = rebuild(maps, staging, content, infoAfter(liveInfo, plan), sStaging, configuredAfter, flags);
      strategy = 'rebuild';
    }
  }
  step('staging-filled');
  maps.setGenState(staging, { ...next, seq: sLive.seq + 1n, flags: 0, txid });
  step('staging-ready');

  maps.setActiveGen(staging);
  step('committed');

  const released = new Set<number>();
  for (const [id] of plan.destInfo) {
    const old = liveInfo[id];
    if (old && old.kind === DestKind.socket) released.add(old.slot);
  }
  let oldState: GenState = { ...sLive, flags: GEN_STALE, txid };
  if (strategy === 'incremental') {
    maps.setGenState(live, { ...sLive, flags: GEN_DIRTY, txid });
    step('old-dirty');
    const synced = applyDelta(maps, live, plan, sLive);
    if (synced) oldState = { ...synced, seq: sLive.seq + 1n, flags: 0, txid };
    else maps.setGenState(live, oldState);
  } else {
    maps.setGenState(live, oldState);
  }
  step('old-synced');
  const valid: Gen[] = oldState.flags === 0 ? [staging, live] : [staging];
  collectGarbage(maps, valid, released, repaired);
  step('collected');
  if (registry) {
    syncTargets(maps, registry, valid.map((g) => maps.destInfo(g)), [], 'exact');
    step('targets-released');
  }
  if (oldState.flags === 0) maps.setGenState(live, oldState);
  step('done');
  return { strategy, repaired };
}
