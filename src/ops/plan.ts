/**
 * Plans: what a write changes, as data. Every write (bind, unbind, apply,
 * register, unregister, target, untarget, policy) is planned from a view of the live state by a pure
 * function and carried out by the executor (executor.ts), the only code
 * that writes the dispatcher's maps.
 */
import { BindingList } from '../core/binding-list.js';
import type { DestInfo, DestRecord, SocketHandle } from '../state/maps.js';

/** One planned write. */
export interface Plan {
  /** Destinations to create (refs 0) before anything refers to them; ids already chosen. */
  create: DestRecord[];
  /** Bindings to put (tags = destination ids). */
  puts: BindingList;
  /** Per put: 1 when its key is new in the live generation, 0 when it is relabelled. */
  putIsNew: number[];
  /** Bindings to delete (tags = the destination ids they had). */
  deletes: BindingList;
  /** Binding count change per destination id. */
  refDelta: Map<number, number>;
  /** New destination info per id (both generations end with it). */
  destInfo: Map<number, DestInfo>;
  /**
   * Config ownership to set per destination id (both generations end with
   * it, as with destInfo): true when its label is defined by the config
   * files (layout.destConfigBit). Ids not listed keep theirs.
   */
  configured: Map<number, boolean>;
  /** Sockets to put into free slots before the switch. */
  sockets: { slot: number; socket: SocketHandle }[];
  /** The namespace's new policy flags (gen_meta.flags, POLICY_*), or null to keep them. */
  policy: number | null;
  /**
   * The complete binding set after the write, when the planner knows it
   * (apply): lets the executor rebuild a generation instead of changing it.
   */
  target: BindingList | null;
  /**
   * Puts and deletes left out of `puts` and `deletes` because the change is
   * large enough for the executor to rebuild from `target` (see
   * {@link rebuildsFromTarget}): it never reads them then. Only with a target.
   */
  omitted: number;
}

/**
 * True when a write of `changes` puts and deletes is carried out by
 * rebuilding the generation from the complete set of `targetCount`
 * bindings rather than by changing it in place.
 */
export function rebuildsFromTarget(changes: number, targetCount: number): boolean {
  return changes * 4 > targetCount + 64;
}

/** A plan that changes nothing. */
export function emptyPlan(): Plan {
  return { create: [], puts: new BindingList(0), putIsNew: [], deletes: new BindingList(0), refDelta: new Map(), destInfo: new Map(), configured: new Map(), sockets: [], policy: null, target: null, omitted: 0 };
}

/** True when the plan changes nothing. */
export function isEmptyPlan(p: Plan): boolean {
  return p.create.length === 0 && p.puts.count === 0 && p.deletes.count === 0 && p.destInfo.size === 0 && p.configured.size === 0 && p.sockets.length === 0 && p.policy === null && p.omitted === 0;
}

/** Add `n` to a destination's binding count change. */
export function addRef(p: Plan, id: number, n: number): void {
  const v = (p.refDelta.get(id) ?? 0) + n;
  if (v === 0) p.refDelta.delete(id);
  else p.refDelta.set(id, v);
}
