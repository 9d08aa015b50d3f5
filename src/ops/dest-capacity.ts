/**
 * The destination limit a state was loaded for (`load --max-destinations`).
 * The id space is twice that (an apply can replace a full set: its new
 * destinations exist beside the old ones until the switch), so running out
 * of ids is not the limit: the destinations left once a write is done are.
 * The executor checks it before it writes anything.
 */
import { DestKind } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import type { DestInfo, DestRecord, DispatcherMaps, Gen } from '../state/maps.js';
import type { Plan } from './plan.js';

/** Destinations the state was loaded for. */
export function maxDestinations(maps: DispatcherMaps): number {
  return Math.floor(maps.limits.maxIds / 2);
}

/** Bindings per destination id after the plan. */
function refsAfter(dests: readonly DestRecord[], live: Gen, plan: Plan): Map<number, number> {
  const refs = new Map<number, number>();
  if (plan.target) {
    // The complete set after the write: its tags are the destination ids.
    for (let i = 0; i < plan.target.count; i++) {
      const id = plan.target.tag(i);
      refs.set(id, (refs.get(id) ?? 0) + 1);
    }
    return refs;
  }
  for (const d of dests) refs.set(d.id, d.refs[live]);
  for (const [id, n] of plan.refDelta) refs.set(id, (refs.get(id) ?? 0) + n);
  return refs;
}

/**
 * Throw ERR_NO_SPACE, before anything is written, when the plan would leave
 * more destinations than the state was loaded for. Only a write that creates
 * destinations can; one that leaves no more than there were is let through
 * (a state loaded before the limit was enforced must stay writable).
 */
export function checkDestinationCapacity(maps: DispatcherMaps, dests: readonly DestRecord[], live: Gen, liveInfo: readonly DestInfo[], plan: Plan): void {
  if (plan.create.length === 0) return;
  const max = maxDestinations(maps);
  if (dests.length + plan.create.length <= max) return;
  const refs = refsAfter(dests, live, plan);
  const newSlots = new Set(plan.sockets.map((s) => s.slot));
  // What garbage collection keeps: bindings, a live socket or an address target.
  const kept = (id: number): boolean => {
    if ((refs.get(id) ?? 0) > 0) return true;
    const info = plan.destInfo.get(id) ?? liveInfo[id];
    if (!info) return false;
    if (info.kind === DestKind.target) return true;
    return info.kind === DestKind.socket && (newSlots.has(info.slot) || maps.socketCookie(info.slot) !== null);
  };
  let after = 0;
  for (const d of dests) if (kept(d.id)) after++;
  for (const d of plan.create) if (kept(d.id)) after++;
  if (after > max && after > dests.length) {
    throw new ManifoldError(
      'ERR_NO_SPACE',
      `${after} destinations would be more than the ${max} this state was loaded for (manifold load --max-destinations); nothing was changed`,
    );
  }
}
