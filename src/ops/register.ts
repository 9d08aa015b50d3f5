/**
 * Putting sockets into the sockmap under a destination, and taking them out.
 */
import { ManifoldError } from '../errors.js';
import { mapUpdate } from '../sys/bpf.js';
import { destName, u32, type DestKey } from '../core/codec.js';
import type { State } from '../state/state.js';
import { deleteSocket, DestinationTable, socketCookie } from './destinations.js';
import { validateSocket, type SocketInfo } from './socket-info.js';

/** Result of registering one socket. */
export interface Registration {
  destination: string;
  label: string;
  domain: DestKey['domain'];
  protocol: DestKey['protocol'];
  cookie: string;
  /** "created": the destination had no socket; "replaced": it had another socket; "unchanged": the same socket again. */
  action: 'created' | 'replaced' | 'unchanged';
  previousCookie: string | null;
  fd: number;
}

/** One socket to register under a label. */
export interface SocketRequest {
  label: string;
  socket: SocketInfo;
  what: string;
}

/**
 * Validate every request, then register them. Several sockets for one
 * destination are allowed only when they are the same socket or members of
 * one SO_REUSEPORT group (registered once; the kernel balances the group).
 */
export function registerSockets(state: State, requests: readonly SocketRequest[]): Registration[] {
  const byDest = new Map<string, SocketRequest>();
  for (const r of requests) {
    validateSocket(r.socket, r.what, state.target.netnsIno);
    const key: DestKey = { label: r.label, domain: r.socket.domain, protocol: r.socket.protocol };
    const name = destName(key);
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
  const gen = state.activeGen();
  const table = new DestinationTable(state);
  const out: Registration[] = [];
  for (const [name, r] of byDest) {
    const key: DestKey = { label: r.label, domain: r.socket.domain, protocol: r.socket.protocol };
    const existing = table.get(key);
    const dest = existing ?? table.ensure(key, gen);
    const prevCookie = existing ? socketCookie(state, dest.value.id) : null;
    const fdValue = Buffer.alloc(8);
    fdValue.writeBigUInt64LE(BigInt(r.socket.fd), 0);
    try {
      mapUpdate(state.fd('sockets'), u32(dest.value.id), fdValue);
    } catch (err) {
      if (!existing) table.remove(dest);
      throw new ManifoldError('ERR_BAD_SOCKET', `the kernel refused ${r.what} for ${name}: ${(err as Error).message}`);
    }
    const action: Registration['action'] = prevCookie === null ? 'created' : prevCookie === r.socket.cookie ? 'unchanged' : 'replaced';
    out.push({
      destination: name, label: r.label, domain: key.domain, protocol: key.protocol, cookie: r.socket.cookie.toString(),
      action, previousCookie: prevCookie === null ? null : prevCookie.toString(), fd: r.socket.fd,
    });
  }
  return out;
}

/** Remove a destination's socket; returns the cookie it had (or null). */
export function unregisterSocket(state: State, key: DestKey): { cookie: string | null; removedDestination: boolean } {
  const gen = state.activeGen();
  const table = new DestinationTable(state);
  const dest = table.get(key);
  if (!dest) throw new ManifoldError('ERR_NOT_FOUND', `no destination ${destName(key)}`);
  const cookie = socketCookie(state, dest.value.id);
  deleteSocket(state, dest.value.id);
  const garbage = table.isGarbage(dest, gen);
  if (garbage) table.remove(dest);
  return { cookie: cookie === null ? null : cookie.toString(), removedDestination: garbage };
}
