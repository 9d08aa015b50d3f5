/**
 * Address targets and the namespace's policy: planned from the live state
 * and carried out by the executor like every other write.
 *
 * A destination is served either by a registered socket or by an address
 * target ("whatever listens on ADDRESS", at the connection's own port or a
 * fixed one), never both: setting a target replaces the socket, and
 * registering a socket replaces the target. With listener discovery
 * enabled, the executor registers the target address in discovery before
 * the switch, so its sockets are assignable from the first lookup on.
 */
import { DestKind, POLICY_EXPLICIT_FIRST } from '../core/layout.js';
import { formatAddr, formatEndpoint, nonUnicastProblem, type Domain, type Protocol } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import { sameTarget, type DestKey, type DispatcherMaps, type TargetSpec } from '../state/maps.js';
import { execute, type ExecResult } from './executor.js';
import { emptyPlan, type Plan } from './plan.js';
import { destName, View } from './view.js';

/** A destination to be served by a target. */
export interface TargetAssignment {
  key: DestKey;
  target: TargetSpec;
}

/** What a target write did to one destination. */
export interface TargetChange {
  destination: string;
  label: string;
  domain: Domain;
  protocol: Protocol;
  /** The target address, and its fixed port (null: the connection's own port). */
  address: string;
  port: number | null;
  /** created: the destination had nothing; replaced: it had a socket or another target; unchanged; removed (untarget). */
  action: 'created' | 'replaced' | 'unchanged' | 'removed';
  /** What served it before: "socket COOKIE", "target ADDRESS[:PORT]", or null. */
  previous: string | null;
}

/** "127.0.0.5" or "127.0.0.5:8080" / "[fd00::5]:8080". */
export function targetText(t: TargetSpec): string {
  const a = formatAddr(t.addr);
  return t.port === 0 ? a : formatEndpoint(t.domain, a, t.port);
}

/** Check a target: a specific address of the destination's family (not a wildcard), a port 0-65535. */
export function checkTarget(key: DestKey, t: TargetSpec): void {
  if (t.domain !== key.domain) throw new ManifoldError('ERR_INVALID_PREFIX', `the target ${targetText(t)} is not an ${key.domain === 'ipv4' ? 'IPv4' : 'IPv6'} address (destination ${destName(key)})`);
  if (t.addr.length !== (t.domain === 'ipv4' ? 4 : 16)) throw new ManifoldError('ERR_INVALID_PREFIX', 'a target address has 4 (IPv4) or 16 (IPv6) bytes');
  const why = nonUnicastProblem(t.addr);
  if (why) throw new ManifoldError('ERR_INVALID_PREFIX', `the target ${formatAddr(t.addr)} is ${why}: a target is the specific address a daemon listens on`);
  if (!Number.isInteger(t.port) || t.port < 0 || t.port > 65535) throw new ManifoldError('ERR_INVALID_PORT', `invalid target port ${t.port}: expected 1 to 65535, or 0 for the connection's own port`);
}

function previousOf(view: View, id: number | undefined): string | null {
  if (id === undefined) return null;
  const t = view.targetOf(id);
  if (t) return `target ${targetText(t)}`;
  const c = view.socketOf(id);
  return c === null ? null : `socket ${c}`;
}

function change(key: DestKey, t: TargetSpec, action: TargetChange['action'], previous: string | null): TargetChange {
  return { destination: destName(key), label: key.label, domain: key.domain, protocol: key.protocol, address: formatAddr(t.addr), port: t.port === 0 ? null : t.port, action, previous };
}

/**
 * Add to `plan` what makes each assignment's destination served by its
 * target (destinations that do not exist yet are created, or taken from
 * `plan.create` when the plan creates them already).
 */
export function planTargetChanges(view: View, plan: Plan, assignments: readonly TargetAssignment[]): TargetChange[] {
  const out: TargetChange[] = [];
  const seen = new Set<string>();
  for (const a of assignments) {
    checkTarget(a.key, a.target);
    const name = destName(a.key);
    if (seen.has(name)) throw new ManifoldError('ERR_USAGE', `two targets for destination ${name}: a destination has one target`);
    seen.add(name);
    const existing = view.dest(a.key);
    const planned = plan.create.find((d) => destName(d) === name);
    let id = existing?.id ?? planned?.id;
    const previous = previousOf(view, existing?.id);
    if (id === undefined) {
      id = view.allocateId(a.key);
      plan.create.push({ ...a.key, id, refs: [0, 0], flags: 0 });
    }
    const cur = existing ? view.targetOf(existing.id) : null;
    if (cur && sameTarget(cur, a.target)) {
      out.push(change(a.key, a.target, 'unchanged', previous));
      continue;
    }
    plan.destInfo.set(id, { kind: DestKind.target, slot: 0, target: { domain: a.target.domain, addr: Uint8Array.from(a.target.addr), port: a.target.port } });
    out.push(change(a.key, a.target, previous === null ? 'created' : 'replaced', previous));
  }
  return out;
}

/** The targets and policy of the configuration (apply --config). */
export interface ConfigTargets {
  assignments: TargetAssignment[];
  explicitFirst: boolean;
}

/**
 * Add to `plan` what makes the targets exactly `assignments` (targets of
 * other destinations are removed when `drop` says so for their label;
 * registered sockets are left alone unless an assignment replaces one) and
 * the policy `policy`.
 */
export function planExactTargets(
  view: View, plan: Plan, assignments: readonly TargetAssignment[], policy: Policy, drop: (label: string) => boolean = () => true,
): { changes: TargetChange[]; policy: Policy | null } {
  const changes = planTargetChanges(view, plan, assignments);
  const wanted = new Set(assignments.map((a) => destName(a.key)));
  for (const d of view.destinations()) {
    const t = view.targetOf(d.id);
    if (!t || wanted.has(destName(d)) || !drop(d.label)) continue;
    plan.destInfo.set(d.id, { kind: DestKind.none, slot: 0 });
    changes.push(change(d, t, 'removed', `target ${targetText(t)}`));
  }
  planPolicy(view, plan, policy);
  return { changes, policy: plan.policy === null ? null : policyOf(plan.policy) };
}

/** Which target-served destinations an untarget names. */
export interface UntargetRequest {
  label: string;
  domain?: Domain | undefined;
  protocol?: Protocol | undefined;
  /** Only targets on this address (4 or 16 bytes). */
  addr?: Uint8Array | undefined;
}

/** Add to `plan` the removal of the targets `r` names; ERR_NOT_FOUND when none matches. */
export function planUntarget(view: View, plan: Plan, r: UntargetRequest): TargetChange[] {
  const out: TargetChange[] = [];
  for (const d of view.destinations()) {
    if (d.label !== r.label || (r.domain && d.domain !== r.domain) || (r.protocol && d.protocol !== r.protocol)) continue;
    const t = view.targetOf(d.id);
    if (!t || (r.addr && !Buffer.from(t.addr).equals(Buffer.from(r.addr)))) continue;
    plan.destInfo.set(d.id, { kind: DestKind.none, slot: 0 });
    out.push(change(d, t, 'removed', `target ${targetText(t)}`));
  }
  if (out.length === 0) {
    const what = [r.domain, r.protocol, r.addr ? formatAddr(r.addr) : undefined].filter(Boolean).join(' ');
    throw new ManifoldError('ERR_NOT_FOUND', `label ${r.label} has no address target${what ? ` matching ${what}` : ''}`);
  }
  return out.sort((a, b) => (a.destination < b.destination ? -1 : 1));
}

/** Result of target / untarget. */
export interface TargetResult {
  changes: TargetChange[];
  /** Listener discovery is enabled (the target addresses are registered). */
  discovery: boolean;
  exec: ExecResult;
}

/** Serve destinations by address targets, all or nothing. */
export function setTargets(maps: DispatcherMaps, assignments: readonly TargetAssignment[]): TargetResult {
  const view = new View(maps);
  const plan = emptyPlan();
  const changes = planTargetChanges(view, plan, assignments);
  return { changes, discovery: maps.targetRegistry() !== null, exec: execute(maps, plan) };
}

/** Remove address targets (their destinations then refuse traffic until served again). */
export function removeTargets(maps: DispatcherMaps, r: UntargetRequest): TargetResult {
  const view = new View(maps);
  const plan = emptyPlan();
  const changes = planUntarget(view, plan, r);
  return { changes, discovery: maps.targetRegistry() !== null, exec: execute(maps, plan) };
}

/** The namespace's policy. */
export interface Policy {
  /** Explicit listeners first: a socket bound to a connection's exact address and port (or a covering wildcard) gets it. */
  explicitFirst: boolean;
}

/** Policy flags (gen_meta.flags) of a policy. */
export function policyFlags(p: Policy): number {
  return p.explicitFirst ? POLICY_EXPLICIT_FIRST : 0;
}

/** A policy from flags. */
export function policyOf(flags: number): Policy {
  return { explicitFirst: (flags & POLICY_EXPLICIT_FIRST) !== 0 };
}

/** Add a policy change to `plan` (nothing when it is the live one). */
export function planPolicy(view: View, plan: Plan, p: Policy): void {
  const flags = policyFlags(p);
  if (flags !== view.liveFlags()) plan.policy = flags;
}

/** Set the namespace's policy (switched with the generation, like bindings). */
export function setPolicy(maps: DispatcherMaps, p: Policy): { previous: Policy; policy: Policy; changed: boolean; discovery: boolean; exec: ExecResult } {
  const view = new View(maps);
  const plan = emptyPlan();
  const previous = policyOf(view.liveFlags());
  planPolicy(view, plan, p);
  return { previous, policy: p, changed: plan.policy !== null, discovery: maps.targetRegistry() !== null, exec: execute(maps, plan) };
}

/** The live policy. */
export function readPolicy(maps: DispatcherMaps): Policy {
  return policyOf(maps.genMeta(maps.activeGen()).flags);
}
