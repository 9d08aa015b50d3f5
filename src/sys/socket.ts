/**
 * Socket inspection through getsockopt/getsockname/getpeername/ioctl: the
 * raw facts about a socket fd, and the socket constants (only here).
 */
import fs from 'node:fs';
import { SysError } from './errno.js';
import { closeFd, getpeername, getsockname, getsockoptInt, getsockoptRaw, socketNetnsFd } from './libc.js';

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_REUSEPORT = 15;
const SO_ACCEPTCONN = 30;
const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;
const SO_COOKIE = 57;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/** SOCK_STREAM and SOCK_DGRAM. */
export const SocketType = { stream: 1, dgram: 2 } as const;

/** A sockaddr_in / sockaddr_in6, decoded. */
export interface RawSockaddr {
  family: number;
  /** 4 or 16 address bytes. */
  addr: Uint8Array;
  port: number;
}

/** Decode a sockaddr_in / sockaddr_in6. */
export function decodeSockaddr(b: Buffer): RawSockaddr {
  const family = b.length >= 2 ? b.readUInt16LE(0) : 0;
  const port = b.length >= 4 ? b.readUInt16BE(2) : 0;
  if (family === 2) return { family, addr: Uint8Array.from(b.subarray(4, 8)), port };
  if (family === 10) return { family, addr: Uint8Array.from(b.subarray(8, 24)), port };
  return { family, addr: new Uint8Array(0), port: 0 };
}

/** What the kernel says about a socket fd. */
export interface RawSocketInfo {
  family: number;
  type: number;
  protocol: number;
  cookie: bigint;
  local: RawSockaddr;
  listening: boolean;
  connected: boolean;
  v6only: boolean;
  reusePort: boolean;
  /** Inode of the socket (st_ino of the fd). */
  inode: number;
  /** Inode of the network namespace the socket lives in. */
  netnsIno: number;
}

/** Why an fd is not a socket: "not-socket", "not-open", or null when it is one. */
export function socketFamily(fd: number): number | 'not-socket' | 'not-open' {
  try {
    return getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN);
  } catch (err) {
    if (err instanceof SysError && err.errno === 88) return 'not-socket';
    if (err instanceof SysError && err.errno === 9) return 'not-open';
    throw err;
  }
}

/** Inspect a socket fd of family AF_INET or AF_INET6 (check socketFamily first). */
export function inspectInetSocket(fd: number, family: number): RawSocketInfo {
  const type = getsockoptInt(fd, SOL_SOCKET, SO_TYPE);
  const protocol = getsockoptInt(fd, SOL_SOCKET, SO_PROTOCOL);
  const cookie = getsockoptRaw(fd, SOL_SOCKET, SO_COOKIE, 8).readBigUInt64LE(0);
  const local = decodeSockaddr(getsockname(fd));
  const listening = type === SocketType.stream && getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
  const connected = getpeername(fd) !== null;
  const v6only = family === 10 ? getsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY) === 1 : false;
  const reusePort = getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT) === 1;
  const inode = Number(fs.fstatSync(fd).ino);
  const nsFd = socketNetnsFd(fd);
  let netnsIno: number;
  try {
    netnsIno = Number(fs.fstatSync(nsFd).ino);
  } finally {
    closeFd(nsFd);
  }
  return { family, type, protocol, cookie, local, listening, connected, v6only, reusePort, inode, netnsIno };
}

/** True when fd is a listening stream socket (TCP or unix). */
export function isListeningStream(fd: number): boolean {
  return getsockoptInt(fd, SOL_SOCKET, SO_TYPE) === SocketType.stream && getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
}
