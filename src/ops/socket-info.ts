/**
 * Sockets as destinations: what we know about a socket fd, and whether it
 * can serve a destination. Used by register, register-pid and status.
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { escapeControls } from '../core/escape.js';
import { inspectInetSocket, socketFamily, SocketType, type RawSocketInfo } from '../sys/socket.js';
import { domainName, formatAddr, formatEndpoint, protocolName, type Domain, type Protocol } from '../core/net.js';

/** What we know about a socket fd: the kernel's facts (RawSocketInfo) with names instead of numbers. */
export interface SocketInfo extends Pick<RawSocketInfo, 'cookie' | 'listening' | 'connected' | 'v6only' | 'reusePort' | 'inode' | 'netnsIno'> {
  fd: number;
  domain: Domain;
  protocol: Protocol;
  local: { address: string; port: number };
}

const familyNames: Record<number, string> = { 1: 'a unix socket', 16: 'a netlink socket', 17: 'a packet socket' };

/** What an fd of this process refers to (its /proc link: a path, "pipe:[N]", "anon_inode:[eventpoll]"), escaped; null when unknown. */
function fdTarget(fd: number): string | null {
  try {
    const t = fs.readlinkSync(`/proc/self/fd/${fd}`);
    return escapeControls(t.length > 200 ? `${t.slice(0, 200)}…` : t);
  } catch {
    return null;
  }
}

/**
 * Inspect fd `fd`. `what` names it in errors (e.g. "fd 3"). Throws
 * ERR_BAD_SOCKET when it is not an inet TCP/UDP socket.
 */
export function inspectSocket(fd: number, what: string): SocketInfo {
  const family = socketFamily(fd);
  if (family === 'not-socket') {
    const it = fdTarget(fd);
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} is not a socket${it === null ? '' : ` (it is ${it})`}`);
  }
  if (family === 'not-open') throw new ManifoldError('ERR_BAD_SOCKET', `${what} is not an open file descriptor`);
  const domain = domainName(family);
  if (!domain) {
    throw new ManifoldError(
      'ERR_BAD_SOCKET',
      `${what} is ${familyNames[family] ?? `a socket of family ${family}`}, not an IPv4 or IPv6 socket: only those are steered (a socket unit whose sockets manifold registers must listen on IP addresses only; give the others a unit of their own)`,
    );
  }
  const raw = inspectInetSocket(fd, family);
  const protocol = protocolName(raw.protocol);
  if (!protocol || (protocol === 'tcp' && raw.type !== SocketType.stream) || (protocol === 'udp' && raw.type !== SocketType.dgram)) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} is neither a TCP nor a UDP socket (type ${raw.type}, protocol ${raw.protocol})`);
  }
  return {
    fd, domain, protocol, cookie: raw.cookie, local: { address: formatAddr(raw.local.addr), port: raw.local.port }, listening: raw.listening,
    connected: raw.connected, v6only: raw.v6only, reusePort: raw.reusePort, inode: raw.inode, netnsIno: raw.netnsIno,
  };
}

/** "tcp 127.0.0.1:80". */
export function socketText(s: SocketInfo): string {
  return `${s.protocol} ${formatEndpoint(s.domain, s.local.address, s.local.port)}`;
}

/**
 * Check that a socket can serve as a destination's socket in namespace
 * `netnsIno`; throws ERR_BAD_SOCKET / ERR_WRONG_NETNS with the reason.
 */
export function validateSocket(s: SocketInfo, what: string, netnsIno: number): void {
  const where = socketText(s).slice(4);
  if (s.protocol === 'tcp' && !s.listening) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a TCP socket that is not listening${s.connected ? ' (it is a connected socket)' : ''}: call listen() first`);
  }
  if (s.protocol === 'udp' && s.connected) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a connected UDP socket: only unconnected UDP sockets can receive steered datagrams`);
  }
  if (s.domain === 'ipv6' && !s.v6only) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a dual-stack IPv6 socket: set IPV6_V6ONLY so that it only serves IPv6 (in a socket unit: BindIPv6Only=ipv6-only; in Node: ipv6Only: true)`);
  }
  if (s.netnsIno !== netnsIno) {
    throw new ManifoldError('ERR_WRONG_NETNS', `${what} (${where}) lives in network namespace ${s.netnsIno}, not in the target namespace ${netnsIno}`);
  }
}
