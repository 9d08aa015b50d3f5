/**
 * Keeping listener discovery's target addresses of a namespace equal to the
 * targets its dispatcher's generations use. Called by the executor only
 * (before the switch to register what the new state needs, after it to
 * release what nothing uses), and by discovery enable for every dispatcher.
 *
 * An address's reference count is the number of destinations whose target
 * names it (several labels may share a daemon's address); the registry
 * registers the sockets already bound on an address when it first appears
 * and releases them when it goes.
 */
import { DestKind } from '../core/layout.js';
import type { Protocol } from '../core/net.js';
import { targetAddressKey as targetKey, type DestInfo, type DestRecord, type DispatcherMaps, type TargetAddress, type TargetRegistry } from '../state/maps.js';

/**
 * The target addresses `infos` (destination info of one or more
 * generations, indexed by id) use, with the number of destinations using
 * each. `protocols` gives each destination's protocol.
 */
export function wantedTargets(infos: readonly (readonly DestInfo[])[], protocols: ReadonlyMap<number, Protocol>): Map<string, { address: TargetAddress; refs: number }> {
  const users = new Map<string, { address: TargetAddress; ids: Set<number> }>();
  for (const info of infos) {
    info.forEach((d, id) => {
      if (d.kind !== DestKind.target || !d.target) return;
      const protocol = protocols.get(id);
      if (!protocol) return;
      const address: TargetAddress = { protocol, domain: d.target.domain, addr: d.target.addr };
      const k = targetKey(address);
      const u = users.get(k) ?? { address, ids: new Set<number>() };
      u.ids.add(id);
      users.set(k, u);
    });
  }
  return new Map([...users].map(([k, u]) => [k, { address: u.address, refs: u.ids.size }]));
}

/**
 * Bring the registry to the targets of `infos`: 'raise' only adds
 * addresses and raises counts (before a switch: the live generation still
 * needs its addresses), 'exact' also lowers and removes (after it).
 */
export function syncTargets(maps: DispatcherMaps, registry: TargetRegistry, infos: readonly (readonly DestInfo[])[], created: readonly DestRecord[], mode: 'raise' | 'exact'): void {
  const protocols = new Map<number, Protocol>();
  for (const d of maps.destinations()) protocols.set(d.id, d.protocol);
  for (const d of created) protocols.set(d.id, d.protocol);
  const want = wantedTargets(infos, protocols);
  const have = new Map(registry.registered().map((e) => [targetKey(e.address), e]));
  for (const [k, w] of want) {
    const refs = have.get(k)?.refs ?? 0;
    if (mode === 'raise' ? refs < w.refs : refs !== w.refs) registry.setRefs(w.address, w.refs);
  }
  if (mode === 'exact') {
    for (const [k, h] of have) if (!want.has(k)) registry.setRefs(h.address, 0);
  }
}
