/**
 * What the planners see of the live state, read through the map layer:
 * destinations, the live generation's destination info and bindings, and
 * the allocation of destination ids and socket slots.
 */
import type { BindingList } from '../core/binding-list.js';
import { DestKind, destConfigBit } from '../core/layout.js';
import { placeOf, type GenMeta } from '../core/placement.js';
import { ManifoldError } from '../errors.js';
import { idsInUse, type BindingValue, type DestInfo, type DestKey, type DestRecord, type DispatcherMaps, type Gen, type TargetSpec } from '../state/maps.js';
import { inSync } from './executor.js';
import { maxDestinations } from './dest-capacity.js';

/** "ipv4:tcp:web": a destination's name in listings and messages. */
export function destName(d: DestKey): string {
  return `${d.domain}:${d.protocol}:${d.label}`;
}

/** A read view of the live state for planning. */
export class View {
  readonly maps: DispatcherMaps;
  readonly live: Gen;
  private dests: DestRecord[] | undefined;
  private byName: Map<string, DestRecord> | undefined;
  private byId: Map<number, DestRecord> | undefined;
  private info: DestInfo[] | undefined;
  private meta: GenMeta | undefined;
  private usedIds: Set<number> | undefined;
  private idCursor = 0;
  private takenSlots: Set<number> | undefined;

  constructor(maps: DispatcherMaps) {
    this.maps = maps;
    this.live = maps.activeGen();
  }

  /** Every destination. */
  destinations(): DestRecord[] {
    this.dests ??= this.maps.destinations();
    return this.dests;
  }

  /** A destination by identity. */
  dest(key: DestKey): DestRecord | undefined {
    this.byName ??= new Map(this.destinations().map((d) => [destName(d), d]));
    return this.byName.get(destName(key));
  }

  /** A destination by id. */
  destById(id: number): DestRecord | undefined {
    this.byId ??= new Map(this.destinations().map((d) => [d.id, d]));
    return this.byId.get(id);
  }

  /** The label of a destination id (for messages). */
  labelOf(id: number): string {
    return this.destById(id)?.label ?? `#${id}`;
  }

  /** True when the live generation marks destination `d`'s label as defined by the config files. */
  isConfigured(d: DestRecord): boolean {
    return (d.flags & destConfigBit(this.live)) !== 0;
  }

  /** Labels the live generation marks as defined by the config files (any destination of the label). */
  configuredLabels(): Set<string> {
    const out = new Set<string>();
    for (const d of this.destinations()) if (this.isConfigured(d)) out.add(d.label);
    return out;
  }

  /** Destination info of the live generation. */
  liveInfo(): DestInfo[] {
    this.info ??= this.maps.destInfo(this.live, idsInUse(this.destinations()));
    return this.info;
  }

  /** The socket cookie serving destination id in the live generation, or null. */
  socketOf(id: number): bigint | null {
    const info = this.liveInfo()[id];
    if (!info || info.kind !== DestKind.socket) return null;
    return this.maps.socketCookie(info.slot);
  }

  /** The address target serving destination id in the live generation, or null. */
  targetOf(id: number): TargetSpec | null {
    const info = this.liveInfo()[id];
    return info && info.kind === DestKind.target && info.target ? info.target : null;
  }

  /** True when a socket or an address target serves destination id. */
  served(id: number): boolean {
    return this.targetOf(id) !== null || this.socketOf(id) !== null;
  }

  /** The live generation's policy flags (gen_meta.flags). */
  liveFlags(): number {
    this.meta ??= this.maps.genMeta(this.live);
    return this.meta.flags;
  }

  /** The value stored in the live generation at exactly entry i's key, or null. */
  findLive(list: BindingList, i: number): BindingValue | null {
    this.meta ??= this.maps.genMeta(this.live);
    return this.maps.lookupBinding(this.live, placeOf(this.meta, list.slot(i), list.len(i), list.port(i)), list, i);
  }

  /** Bindings in the live generation. */
  liveBindings(): number {
    let n = 0;
    for (const d of this.destinations()) n += d.refs[this.live];
    return n;
  }

  /** Throw ERR_NO_SPACE unless `more` bindings fit. */
  checkCapacity(more: number): void {
    const max = this.maps.limits.maxBindings;
    const have = this.liveBindings();
    if (have + more > max) {
      throw new ManifoldError('ERR_NO_SPACE', `${have + more} bindings would be more than the ${max} this state was loaded for (manifold load --max-bindings); nothing was changed`);
    }
  }

  /** The lowest free destination id (not given out before by this view). */
  allocateId(forWhat: DestKey): number {
    this.usedIds ??= new Set(this.destinations().map((d) => d.id));
    for (let id = this.idCursor; id < this.maps.limits.maxIds; id++) {
      if (!this.usedIds.has(id)) {
        this.usedIds.add(id);
        this.idCursor = id + 1;
        return id;
      }
    }
    throw new ManifoldError(
      'ERR_NO_SPACE',
      `cannot create destination ${destName(forWhat)}: all ${this.maps.limits.maxIds} destination ids are in use: this state was loaded for ${maxDestinations(this.maps)} destinations (manifold load --max-destinations); nothing was changed`,
    );
  }

  /** A socket slot no generation refers to. */
  allocateSlot(): number {
    if (!this.takenSlots) {
      this.takenSlots = new Set();
      const staging = (this.live ^ 1) as Gen;
      const gens: Gen[] = inSync(this.maps.genState(staging), this.maps.genState(this.live)) ? [this.live, staging] : [this.live];
      for (const g of gens) {
        for (const d of g === this.live ? this.liveInfo() : this.maps.destInfo(g, idsInUse(this.destinations()))) if (d.kind === DestKind.socket) this.takenSlots.add(d.slot);
      }
    }
    for (let slot = 0; slot < this.maps.limits.sockSlots; slot++) {
      if (!this.takenSlots.has(slot)) {
        this.takenSlots.add(slot);
        return slot;
      }
    }
    throw new ManifoldError('ERR_NO_SPACE', `all ${this.maps.limits.sockSlots} socket slots are in use`);
  }
}
