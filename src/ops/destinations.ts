/**
 * Destinations: (label, family, protocol) -> id, with binding reference
 * counts per generation. Ids are allocated lowest-free-first; an id is only
 * ever freed when no binding of the live generation references it and no
 * socket is registered under it, and on (re)allocation its sockmap slot and
 * counters are cleared, so ids never alias.
 */
import { ManifoldError } from '../errors.js';
import { mapDelete, mapDump, mapLookup, mapUpdate, BPF_NOEXIST } from '../sys/bpf.js';
import {
  decodeDestKey, decodeDestValue, DEST_KEY_SIZE, DEST_VALUE_SIZE, destName, encodeDestKey, encodeDestValue,
  MAX_DESTINATIONS, METRICS_SIZE, u32, type DestKey, type DestValue,
} from '../core/codec.js';
import { possibleCpus } from '../sys/cpus.js';
import { SysError } from '../sys/errno.js';
import type { State } from '../state/state.js';

/** A destination as stored. */
export interface Destination extends DestKey {
  value: DestValue;
}

/** Identity string used as a Map key. */
export function destKeyText(d: DestKey): string {
  return `${d.domain}:${d.protocol}:${d.label}`;
}

/** Every destination in the state. */
export function listDestinations(state: State): Destination[] {
  const { keys, values, count } = mapDump(state.fd('destinations'), DEST_KEY_SIZE, DEST_VALUE_SIZE, 1024);
  const out: Destination[] = [];
  for (let i = 0; i < count; i++) {
    const key = decodeDestKey(keys, i * DEST_KEY_SIZE);
    if (!key) continue;
    out.push({ ...key, value: decodeDestValue(values, i * DEST_VALUE_SIZE) });
  }
  return out;
}

/** Socket cookie registered for an id, or null. */
export function socketCookie(state: State, id: number): bigint | null {
  const v = mapLookup(state.fd('sockets'), u32(id), 8);
  return v ? v.readBigUInt64LE(0) : null;
}

/** Remove the socket registered under an id; false when there was none. */
export function deleteSocket(state: State, id: number): boolean {
  if (socketCookie(state, id) === null) return false;
  try {
    return mapDelete(state.fd('sockets'), u32(id));
  } catch (err) {
    // A sockmap reports an empty slot as EINVAL (the socket closed meanwhile).
    if (err instanceof SysError && err.errno === 22) return false;
    throw err;
  }
}

/** Write a destination's value. */
export function writeDestination(state: State, key: DestKey, value: DestValue): void {
  mapUpdate(state.fd('destinations'), encodeDestKey(key), encodeDestValue(value));
}

/**
 * Destinations table with an allocator. Load once per command, mutate,
 * changes are written through immediately.
 */
export class DestinationTable {
  private readonly state: State;
  private readonly byKey = new Map<string, Destination>();
  private readonly usedIds = new Set<number>();
  private cursor = 0;

  constructor(state: State) {
    this.state = state;
    for (const d of listDestinations(state)) {
      this.byKey.set(destKeyText(d), d);
      this.usedIds.add(d.value.id);
    }
  }

  /** All destinations. */
  all(): Destination[] {
    return [...this.byKey.values()];
  }

  /** Look a destination up. */
  get(key: DestKey): Destination | undefined {
    return this.byKey.get(destKeyText(key));
  }

  /** Destination by id. */
  byId(id: number): Destination | undefined {
    for (const d of this.byKey.values()) if (d.value.id === id) return d;
    return undefined;
  }

  /**
   * Whether a destination is garbage: no references from the live
   * generation (nor from `stagingGen` while an apply prepares it) and no
   * registered socket.
   */
  isGarbage(d: Destination, liveGen: number, stagingGen?: number): boolean {
    if ((d.value.refs[liveGen & 1] ?? 0) !== 0) return false;
    if (stagingGen !== undefined && (d.value.refs[stagingGen & 1] ?? 0) !== 0) return false;
    return socketCookie(this.state, d.value.id) === null;
  }

  /** Remove one destination (caller checked it is garbage). */
  remove(d: Destination): void {
    mapDelete(this.state.fd('destinations'), encodeDestKey(d));
    this.byKey.delete(destKeyText(d));
    this.usedIds.delete(d.value.id);
    this.cursor = Math.min(this.cursor, d.value.id);
  }

  /** Remove every garbage destination; returns how many. */
  collect(liveGen: number, stagingGen?: number): number {
    let n = 0;
    for (const d of [...this.byKey.values()]) {
      if (this.isGarbage(d, liveGen, stagingGen)) {
        this.remove(d);
        n++;
      }
    }
    return n;
  }

  /**
   * Find or create a destination. A new one gets the lowest free id; its
   * sockmap slot and counters are cleared before it becomes visible.
   */
  ensure(key: DestKey, liveGen: number, stagingGen?: number): Destination {
    const existing = this.get(key);
    if (existing) return existing;
    let id = this.freeId();
    if (id < 0) {
      this.collect(liveGen, stagingGen);
      this.cursor = 0;
      id = this.freeId();
    }
    if (id < 0) {
      throw new ManifoldError('ERR_NO_SPACE', `cannot create destination ${destName(key)}: all ${MAX_DESTINATIONS} destination ids are in use`);
    }
    deleteSocket(this.state, id);
    mapUpdate(this.state.fd('metrics'), u32(id), Buffer.alloc(METRICS_SIZE * possibleCpus()));
    const d: Destination = { ...key, value: { id, refs: [0, 0], flags: 0 } };
    mapUpdate(this.state.fd('destinations'), encodeDestKey(key), encodeDestValue(d.value), BPF_NOEXIST);
    this.byKey.set(destKeyText(d), d);
    this.usedIds.add(id);
    return d;
  }

  /** Change a destination's reference count for a generation. */
  addRefs(d: Destination, gen: number, delta: number): void {
    const refs: [number, number] = [d.value.refs[0], d.value.refs[1]];
    refs[gen & 1] = Math.max(0, (refs[gen & 1] ?? 0) + delta);
    d.value = { ...d.value, refs };
    writeDestination(this.state, d, d.value);
  }

  /** Set a destination's reference count for a generation. */
  setRefs(d: Destination, gen: number, count: number): void {
    const refs: [number, number] = [d.value.refs[0], d.value.refs[1]];
    refs[gen & 1] = count;
    d.value = { ...d.value, refs };
    writeDestination(this.state, d, d.value);
  }

  private freeId(): number {
    for (let id = this.cursor; id < MAX_DESTINATIONS; id++) {
      if (!this.usedIds.has(id)) {
        this.cursor = id;
        return id;
      }
    }
    this.cursor = MAX_DESTINATIONS;
    return -1;
  }
}
