/**
 * Registering sockets under destinations, and removing them: planned from
 * the live state and carried out by the executor, so registering several
 * sockets is all or nothing and a replaced socket keeps serving until the
 * switch.
 */
import { DestKind } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import type { DestKey, DispatcherMaps } from '../state/maps.js';
import { execute, type ExecResult } from './executor.js';
import { emptyPlan, type Plan } from './plan.js';
import { validateSocket, type SocketInfo } from './socket-info.js';
import { destName, View } from './view.js';
import { targetText } from './target.js';

/** Result of registering one socket. */
export interface Registration {
  destination: string;
  label: string;
  domain: DestKey['domain'];
  protocol: DestKey['protocol'];
  cookie: string;
  /** "created": the destination had no socket; "replaced": it had another socket or an address target; "unchanged": the same socket again. */
  action: 'created' | 'replaced' | 'unchanged';
  previousCookie: string | null;
  /** The address target the socket replaces ("127.0.0.5", "127.0.0.5:8080"), or null. */
  previousTarget: string | null;
  fd: number;
}

/** One socket to register under a label. */
export interface SocketRequest {
  label: string;
  socket: SocketInfo;
  what: string;
}

/**
 * Plan the registration of sockets. Every socket is validated first.
 * Several sockets for one destination are allowed only when they are the
 * same socket or members of one SO_REUSEPORT group (registered once; the
 * kernel balances the group).
 */
export function planRegister(view: View, netnsIno: number, requests: readonly SocketRequest[]): { plan: Plan; regs: Registration[] } {
  const byDest = new Map<string, SocketRequest>();
  for (const r of requests) {
    validateSocket(r.socket, r.what, netnsIno);
    const name = destName({ label: r.label, domain: r.socket.domain, protocol: r.socket.protocol });
    const prev = byDest.get(name);
    if (!prev) {
      byDest.set(name, r);
      continue;
    }
    const same = prev.socket.cookie === r.socket.cookie;
    const group = prev.socket.reusePort && r.socket.reusePort && prev.socket.local.address === r.socket.local.address && prev.socket.local.port === r.socket.local.port;
    if (!same && !group) {
      throw new ManifoldError('ERR_BAD_SOCKET', `${prev.what} and ${r.what} both map to destination ${name}, which holds one socket (use SO_REUSEPORT on both to share it)`);
    }
  }
  const plan = emptyPlan();
  const regs: Registration[] = [];
  for (const [name, r] of byDest) {
    const key: DestKey = { label: r.label, domain: r.socket.domain, protocol: r.socket.protocol };
    const existing = view.dest(key);
    let id: number;
    if (existing) id = existing.id;
    else {
      id = view.allocateId(key);
      plan.create.push({ ...key, id, refs: [0, 0], flags: 0 });
    }
    const prev = existing ? view.socketOf(id) : null;
    const prevTarget = existing ? view.targetOf(id) : null;
    const action: Registration['action'] = prev === null ? (prevTarget ? 'replaced' : 'created') : prev === r.socket.cookie ? 'unchanged' : 'replaced';
    if (action !== 'unchanged') {
      const slot = view.allocateSlot();
      plan.sockets.push({ slot, socket: { fd: r.socket.fd, cookie: r.socket.cookie } });
      plan.destInfo.set(id, { kind: DestKind.socket, slot });
    }
    regs.push({
      destination: name, label: r.label, domain: key.domain, protocol: key.protocol, cookie: r.socket.cookie.toString(),
      action, previousCookie: prev === null ? null : prev.toString(), previousTarget: prevTarget ? targetText(prevTarget) : null, fd: r.socket.fd,
    });
  }
  return { plan, regs };
}

/** Register sockets, all or nothing. */
export function registerSockets(maps: DispatcherMaps, netnsIno: number, requests: readonly SocketRequest[]): Registration[] & { exec?: ExecResult } {
  const { plan, regs } = planRegister(new View(maps), netnsIno, requests);
  execute(maps, plan);
  return regs;
}

/** Result of unregister. */
export interface Unregistration {
  destination: string;
  /** The socket removed (decimal cookie). */
  cookie: string;
  /** The destination had no bindings and is gone. */
  removedDestination: boolean;
}

/**
 * Plan the removal of a destination's socket. A destination without one is
 * ERR_NOT_FOUND, as with tubectl (its socket "doesn't exist"); the plan
 * still clears a socket entry the kernel emptied (the socket closed), so the
 * error leaves the state consistent.
 */
export function planUnregister(view: View, key: DestKey): { plan: Plan; result: Unregistration | null } {
  const dest = view.dest(key);
  if (!dest) throw new ManifoldError('ERR_NOT_FOUND', `no destination ${destName(key)}`);
  const target = view.targetOf(dest.id);
  // An address target is untarget's to remove: unregister reporting "no socket" would hide that it removed one.
  if (target) throw new ManifoldError('ERR_NOT_FOUND', `${destName(key)} has no registered socket: the address target ${targetText(target)} serves it ("manifold untarget ${key.label}" removes that)`);
  const plan = emptyPlan();
  const info = view.liveInfo()[dest.id];
  const cookie = view.socketOf(dest.id);
  if (info && info.kind !== DestKind.none) plan.destInfo.set(dest.id, { kind: DestKind.none, slot: 0 });
  const removedDestination = dest.refs[view.live] === 0;
  return { plan, result: cookie === null ? null : { destination: destName(key), cookie: cookie.toString(), removedDestination } };
}

/** Remove a destination's socket; its bindings then refuse traffic. Throws ERR_NOT_FOUND when it has none. */
export function unregisterSocket(maps: DispatcherMaps, key: DestKey): Unregistration {
  const { plan, result } = planUnregister(new View(maps), key);
  execute(maps, plan);
  if (!result) throw new ManifoldError('ERR_NOT_FOUND', `${destName(key)} has no socket registered: nothing to unregister`);
  return result;
}
