/**
 * Reading a test namespace's state in-process (as root) through the map
 * layer, to check what the CLI cannot show: both generations, their write
 * state, destination info, and the invariants the executor keeps.
 */
import { DestKind, destConfigBit } from '../../src/core/layout.js';
import { formatPrefix } from '../../src/core/net.js';
import { targetAddressKey, type DispatcherMaps, type Gen } from '../../src/state/maps.js';
import { withState } from '../../src/state/state.js';
import { wantedTargets } from '../../src/ops/targets-sync.js';
import { discoveryDir } from '../../src/discovery/paths.js';
import { DiscoveryState } from '../../src/discovery/state.js';
import { targetsOf } from '../../src/discovery/targets.js';
import { protocolName } from '../../src/core/net.js';
import fs from 'node:fs';
import type { TestEnv } from './env.js';

/** One generation, as text. */
export interface GenReport {
  seq: bigint;
  flags: number;
  /** "label proto prefix port", sorted. */
  bindings: string[];
  /** "label:slot" of destinations with a socket kind and "label:target:HEX:PORT" of target-served ones, sorted. */
  sockets: string[];
  /** Labels whose destinations carry this generation's config bit (apply --config), sorted, each once. */
  configured: string[];
  /** gen_meta.flags (the policy). */
  policy: number;
  /** Ids with destination info that no destination has (must be none). */
  orphans: number[];
}

/** The whole state, as text. */
export interface StateReport {
  active: Gen;
  gens: [GenReport, GenReport];
  /** "domain:protocol:label id refs0 refs1", sorted. */
  destinations: string[];
  /** Destinations served by a live socket or an address target. */
  live: string[];
  /** Listener discovery's target addresses of the namespace ("tcp HEX refs", sorted), null when discovery is not enabled. */
  registered: string[] | null;
  /** What the live generation's targets need registered, in the same form. */
  wanted: string[];
}

function genReport(maps: DispatcherMaps, g: Gen, labels: Map<number, string>): GenReport {
  const st = maps.genState(g);
  const l = maps.readBindings(g);
  const bindings: string[] = [];
  for (let i = 0; i < l.count; i++) bindings.push(`${labels.get(l.tag(i)) ?? `#${l.tag(i)}`} ${l.protocol(i)} ${formatPrefix(l.prefix(i))} ${l.port(i)}`);
  const sockets: string[] = [];
  const orphans: number[] = [];
  maps.destInfo(g).forEach((d, id) => {
    if (d.kind !== DestKind.none && !labels.has(id)) orphans.push(id);
    if (d.kind === DestKind.socket && labels.has(id)) sockets.push(`${labels.get(id)}:${d.slot}`);
    if (d.kind === DestKind.target && labels.has(id)) sockets.push(`${labels.get(id)}:target:${Buffer.from(d.target?.addr ?? []).toString('hex')}:${d.target?.port}`);
  });
  const configured = [...new Set(maps.destinations().filter((d) => (d.flags & destConfigBit(g)) !== 0).map((d) => d.label))].sort();
  return { seq: st.seq, flags: st.flags, bindings: bindings.sort(), sockets: sockets.sort(), configured, policy: maps.genMeta(g).flags, orphans };
}

function registeredTargets(bpffs: string, netns: bigint): string[] | null {
  if (!fs.existsSync(discoveryDir(bpffs))) return null;
  const st = DiscoveryState.open(bpffs, false);
  try {
    return targetsOf(st, netns).map((t) => `${protocolName(t.proto)} ${Buffer.from(t.addr).toString('hex')} ${t.refs}`).sort();
  } finally {
    st.close();
  }
}

/** Read the state of a test namespace (null when not loaded). */
export function inspectTestState(env: TestEnv): StateReport {
  return withState({ netns: env.netnsPath, bpffs: env.bpffs, write: false, lockTimeoutMs: 5000 }, (s) => {
    const maps = s.maps;
    const dests = maps.destinations();
    const labels = new Map(dests.map((d) => [d.id, d.label]));
    const active = maps.activeGen();
    const info = maps.destInfo(active);
    const live = dests.filter((d) => {
      const i = info[d.id];
      return i && ((i.kind === DestKind.socket && maps.socketCookie(i.slot) !== null) || i.kind === DestKind.target);
    });
    const wanted = [...wantedTargets([info], new Map(dests.map((d) => [d.id, d.protocol]))).values()].map((w) => `${targetAddressKey(w.address)} ${w.refs}`).sort();
    return {
      active,
      gens: [genReport(maps, 0, labels), genReport(maps, 1, labels)],
      destinations: dests.map((d) => `${d.domain}:${d.protocol}:${d.label} ${d.id} ${d.refs[0]} ${d.refs[1]}`).sort(),
      live: live.map((d) => `${d.domain}:${d.protocol}:${d.label}`).sort(),
      registered: registeredTargets(env.bpffs, s.netnsCookie),
      wanted,
    };
  });
}

/**
 * Problems with the invariants a completed write leaves: the live
 * generation clean; the other one either clean, in sync and equal (also
 * in the labels it marks as configured and the policy), or marked STALE
 * (rebuilt before its next use, by design after a rebuild); reference
 * counts equal to the live bindings; no destination without bindings and
 * without a live socket or a target; listener discovery's target addresses
 * of the namespace equal to what the live targets use.
 */
export function invariantProblems(r: StateReport): string[] {
  const out: string[] = [];
  const live = r.gens[r.active];
  const other = r.gens[r.active ^ 1]!;
  if (live.flags !== 0) out.push(`the live generation has flags ${live.flags}`);
  if (other.flags !== 2) {
    if (other.flags !== 0) out.push(`the other generation has flags ${other.flags} (expected clean, or stale)`);
    if (other.seq !== live.seq) out.push(`generation seqs ${live.seq}/${other.seq} differ`);
    if (other.bindings.join('\n') !== live.bindings.join('\n')) out.push('the two generations hold different bindings');
    if (other.sockets.join('\n') !== live.sockets.join('\n')) out.push('the two generations hold different destination info');
    if (other.configured.join('\n') !== live.configured.join('\n')) out.push(`the two generations mark different labels as configured: ${live.configured.join(',')} / ${other.configured.join(',')}`);
    if (other.policy !== live.policy) out.push(`the two generations hold different policies (${live.policy}/${other.policy})`);
  }
  // destInfo(gen, idsInUse(...)) reads only the ids of destinations: the others must be NONE.
  for (const [g, gr] of r.gens.entries()) if (gr.orphans.length > 0) out.push(`generation ${g} has destination info for ids no destination has: ${gr.orphans.join(', ')}`);
  if (r.registered !== null && r.registered.join('\n') !== r.wanted.join('\n')) {
    out.push(`discovery's target addresses [${r.registered.join(', ')}] are not the live targets' [${r.wanted.join(', ')}]`);
  }
  const liveLines = live.bindings;
  for (const d of r.destinations) {
    const [name, , r0, r1] = d.split(' ');
    const label = name!.split(':')[2]!;
    const proto = name!.split(':')[1]!;
    const count = liveLines.filter((x) => x.startsWith(`${label} ${proto} `) && (name!.startsWith('ipv6') ? x.includes(':') : !x.split(' ')[2]!.includes(':'))).length;
    const refs = r.active === 0 ? Number(r0) : Number(r1);
    if (refs !== count) out.push(`${name}: reference count ${refs}, live bindings ${count}`);
    if (count === 0 && !r.live.includes(name!)) out.push(`${name}: garbage (no bindings, no socket)`);
  }
  return out;
}

/** The live bindings as text lines. */
export function liveBindings(r: StateReport): string[] {
  return r.gens[r.active].bindings;
}
