/**
 * bind and unbind: change the bindings of one label for a prefix and a port
 * or port range, all or nothing (one transaction through the executor).
 */
import { BindingList } from '../core/binding-list.js';
import type { Binding } from '../core/binding.js';
import { formatPorts, formatPrefix, type PortRange, type Prefix, type Protocol } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import type { DestKey, DispatcherMaps } from '../state/maps.js';
import { execute, type ExecResult } from './executor.js';
import { addRef, emptyPlan, type Plan } from './plan.js';
import { destName, View } from './view.js';
import { refuseWholeFamily } from './safety.js';

/** A change of bindings. */
export interface BindRequest {
  label: string;
  protocol: Protocol;
  prefix: Prefix;
  ports: PortRange;
  /** Bind a whole address family (prefix /0) even though the destination has no socket. */
  force?: boolean;
}

/** Result of bind/unbind: which bindings changed. */
export interface BindResult {
  added: Binding[];
  relabelled: { binding: Binding; from: string }[];
  unchanged: Binding[];
  removed: Binding[];
  /** The destination's name and whether a socket or an address target serves it. */
  destination: string;
  hasSocket: boolean;
  exec: ExecResult;
}

function keyOf(r: BindRequest): DestKey {
  return { label: r.label, domain: r.prefix.domain, protocol: r.protocol };
}

/** The bindings of a request, tagged 0. */
function requestList(r: BindRequest): BindingList {
  const list = new BindingList(r.ports.last - r.ports.first + 1);
  for (let port = r.ports.first; port <= r.ports.last; port++) list.pushPrefix(r.protocol, r.prefix, port, 0);
  return list;
}

/** Plan a bind (pure apart from reading the view). */
export function planBind(view: View, r: BindRequest): { plan: Plan; result: Omit<BindResult, 'exec'> } {
  const plan = emptyPlan();
  const key = keyOf(r);
  let dest = view.dest(key);
  let id: number;
  if (dest) id = dest.id;
  else {
    id = view.allocateId(key);
    plan.create.push({ ...key, id, refs: [0, 0], flags: 0 });
  }
  const wanted = requestList(r);
  const result: Omit<BindResult, 'exec'> = { added: [], relabelled: [], unchanged: [], removed: [], destination: destName(key), hasSocket: view.served(id) };
  plan.puts = new BindingList(wanted.count);
  for (let i = 0; i < wanted.count; i++) {
    const cur = view.findLive(wanted, i);
    const b = wanted.binding(i, r.label);
    if (cur && cur.destId === id) {
      result.unchanged.push(b);
      continue;
    }
    plan.puts.pushFrom(wanted, i, id);
    plan.putIsNew.push(cur ? 0 : 1);
    addRef(plan, id, 1);
    if (cur) {
      addRef(plan, cur.destId, -1);
      result.relabelled.push({ binding: b, from: view.labelOf(cur.destId) });
    } else result.added.push(b);
  }
  if (plan.puts.count === 0) plan.create = [];
  view.checkCapacity(result.added.length);
  return { plan, result };
}

/** Plan an unbind: every binding must exist and belong to the label. */
export function planUnbind(view: View, r: BindRequest): { plan: Plan; result: Omit<BindResult, 'exec'> } {
  const plan = emptyPlan();
  const key = keyOf(r);
  const dest = view.dest(key);
  const wanted = requestList(r);
  const result: Omit<BindResult, 'exec'> = { added: [], relabelled: [], unchanged: [], removed: [], destination: destName(key), hasSocket: dest ? view.served(dest.id) : false };
  plan.deletes = new BindingList(wanted.count);
  for (let i = 0; i < wanted.count; i++) {
    const cur = view.findLive(wanted, i);
    const text = `${r.protocol} ${formatPrefix(r.prefix)} ${wanted.port(i)}`;
    if (!cur) throw new ManifoldError('ERR_NOT_FOUND', `no binding ${text}${r.ports.first !== r.ports.last ? ` (in ${formatPorts(r.ports.first, r.ports.last)}; nothing was removed)` : ''}`);
    if (!dest || cur.destId !== dest.id) {
      throw new ManifoldError('ERR_NOT_FOUND', `binding ${text} belongs to label ${view.labelOf(cur.destId)}, not ${r.label}${r.ports.first !== r.ports.last ? ' (nothing was removed)' : ''}`);
    }
    plan.deletes.pushFrom(wanted, i, cur.destId);
    addRef(plan, cur.destId, -1);
    result.removed.push(wanted.binding(i, r.label));
  }
  return { plan, result };
}

/** Bind a label; all ports of the range or none. */
export function bind(maps: DispatcherMaps, r: BindRequest): BindResult {
  const { plan, result } = planBind(new View(maps), r);
  if (!result.hasSocket && result.added.length + result.relabelled.length > 0) {
    refuseWholeFamily({ destination: result.destination, protocol: r.protocol, prefix: r.prefix, first: r.ports.first, last: r.ports.last }, r.force ?? false);
  }
  return { ...result, exec: execute(maps, plan) };
}

/** Unbind a label; all ports of the range or none. */
export function unbind(maps: DispatcherMaps, r: BindRequest): BindResult {
  const { plan, result } = planUnbind(new View(maps), r);
  return { ...result, exec: execute(maps, plan) };
}
