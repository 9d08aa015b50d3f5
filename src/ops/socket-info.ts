/**
 * Inspecting a socket fd: family, type, protocol, state, addresses, cookie,
 * network namespace. Used to validate sockets before registration.
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { closeFd, getpeername, getsockname, getsockoptInt, getsockoptRaw, socketNetnsFd } from '../sys/libc.js';
import { AF_INET, AF_INET6, domainName, formatAddr, IPPROTO_TCP, IPPROTO_UDP, protocolName, type Domain, type Protocol } from '../core/net.js';

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_REUSEPORT = 15;
const SO_ACCEPTCONN = 30;
const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;
const SO_COOKIE = 57;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

/** What we know about a socket fd. */
export interface SocketInfo {
  fd: number;
  domain: Domain;
  protocol: Protocol;
  cookie: bigint;
  local: { address: string; port: number };
  listening: boolean;
  connected: boolean;
  v6only: boolean;
  reusePort: boolean;
  netnsIno: number;
}

/** Decode a sockaddr_in / sockaddr_in6. */
export function decodeSockaddr(b: Buffer): { family: number; address: string; port: number } {
  const family = b.readUInt16LE(0);
  const port = b.length >= 4 ? b.readUInt16BE(2) : 0;
  if (family === AF_INET) return { family, address: formatAddr(Uint8Array.from(b.subarray(4, 8))), port };
  if (family === AF_INET6) return { family, address: formatAddr(Uint8Array.from(b.subarray(8, 24))), port };
  return { family, address: '', port: 0 };
}

const familyNames: Record<number, string> = { 1: 'a unix socket', 16: 'a netlink socket', 17: 'a packet socket' };

/**
 * Inspect fd `fd`. `what` names it in errors (e.g. "fd 3"). Throws
 * ERR_BAD_SOCKET when it is not an inet TCP/UDP socket.
 */
export function inspectSocket(fd: number, what: string): SocketInfo {
  let domainNum: number;
  try {
    domainNum = getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN);
  } catch (err) {
    if (err instanceof SysError && err.errno === 88) throw new ManifoldError('ERR_BAD_SOCKET', `${what} is not a socket`);
    if (err instanceof SysError && err.errno === 9) throw new ManifoldError('ERR_BAD_SOCKET', `${what} is not an open file descriptor`);
    throw err;
  }
  const domain = domainName(domainNum);
  if (!domain) throw new ManifoldError('ERR_BAD_SOCKET', `${what} is ${familyNames[domainNum] ?? `a socket of family ${domainNum}`}, not an IPv4 or IPv6 socket`);
  const type = getsockoptInt(fd, SOL_SOCKET, SO_TYPE);
  const protoNum = getsockoptInt(fd, SOL_SOCKET, SO_PROTOCOL);
  const protocol = protocolName(protoNum);
  if (!protocol || (protocol === 'tcp' && type !== SOCK_STREAM) || (protocol === 'udp' && type !== SOCK_DGRAM)) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} is neither a TCP nor a UDP socket (type ${type}, protocol ${protoNum})`);
  }
  const cookie = getsockoptRaw(fd, SOL_SOCKET, SO_COOKIE, 8).readBigUInt64LE(0);
  const local = decodeSockaddr(getsockname(fd));
  const listening = protocol === 'tcp' && getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
  const connected = getpeername(fd) !== null;
  const v6only = domain === 'ipv6' ? getsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY) === 1 : false;
  const reusePort = getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT) === 1;
  const nsFd = socketNetnsFd(fd);
  let netnsIno: number;
  try {
    netnsIno = Number(fs.fstatSync(nsFd).ino);
  } finally {
    closeFd(nsFd);
  }
  return { fd, domain, protocol, cookie, local: { address: local.address, port: local.port }, listening, connected, v6only, reusePort, netnsIno };
}

/**
 * Check that a socket can serve as a destination's socket in namespace
 * `netnsIno`; throws ERR_BAD_SOCKET / ERR_WRONG_NETNS with the reason.
 */
export function validateSocket(s: SocketInfo, what: string, netnsIno: number): void {
  const where = `${s.protocol} ${s.domain === 'ipv6' ? `[${s.local.address}]` : s.local.address}:${s.local.port}`;
  if (s.protocol === 'tcp' && !s.listening) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a TCP socket that is not listening${s.connected ? ' (it is a connected socket)' : ''}: call listen() first`);
  }
  if (s.protocol === 'udp' && s.connected) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a connected UDP socket: only unconnected UDP sockets can receive steered datagrams`);
  }
  if (s.domain === 'ipv6' && !s.v6only) {
    throw new ManifoldError('ERR_BAD_SOCKET', `${what} (${where}) is a dual-stack IPv6 socket: set IPV6_V6ONLY (e.g. ipv6Only: true in Node) so that it only serves IPv6`);
  }
  if (s.netnsIno !== netnsIno) {
    throw new ManifoldError('ERR_WRONG_NETNS', `${what} (${where}) lives in network namespace ${s.netnsIno}, not in the target namespace ${netnsIno}`);
  }
}
