/**
 * UDP sockets that report the original destination of each datagram.
 *
 * Everything here is raw libc through koffi: socket options, bind,
 * recvmsg/sendmsg with `struct msghdr`/`iovec`/`cmsghdr` built in Buffers,
 * sockaddr_in/sockaddr_in6 encoding, and readiness polling on Node's event
 * loop (`koffi.node.poll`). The public API is src/udp.ts.
 *
 * Layouts are those of 64-bit little-endian Linux (x86_64, aarch64).
 */
import ipaddr from 'ipaddr.js';
import { koffi } from './ffi.js';
import { SysError } from './errno.js';
import { bindRaw, closeFd, getsockname, recvmsgRaw, sendmsgRaw, setsockoptInt, socket } from './libc.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_IP = 0;
const IP_PKTINFO = 8;
const IP_FREEBIND = 15;
const IP_RECVORIGDSTADDR = 20; // == IP_ORIGDSTADDR, the cmsg type
const SOL_IPV6 = 41;
const IPV6_V6ONLY = 26;
const IPV6_PKTINFO = 50;
const IPV6_RECVORIGDSTADDR = 74; // == IPV6_ORIGDSTADDR, the cmsg type
const IPV6_FREEBIND = 78;

const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x08;
const EAGAIN = 11;

/* struct msghdr (56 bytes), struct iovec (16), struct cmsghdr (16 + data). */
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const CMSG_HDR = 16;
const cmsgAlign = (n: number): number => (n + 7) & ~7;
const cmsgSpace = (n: number): number => CMSG_HDR + cmsgAlign(n);

/** An IP endpoint as the kernel saw it. */
export interface SockAddr {
  family: 'IPv4' | 'IPv6';
  /** Canonical text form (RFC 5952 for IPv6). */
  address: string;
  port: number;
  /** IPv6 scope (interface index); 0 when none. */
  scopeId?: number;
}

let layoutChecked = false;
function checkLayout(): void {
  if (layoutChecked) return;
  const k = koffi();
  if (k.sizeof('void *') !== 8 || k.sizeof('size_t') !== 8 || new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error('the UDP original-destination library supports 64-bit little-endian Linux only');
  }
  layoutChecked = true;
}

/** Encode a sockaddr_in / sockaddr_in6. The address must already be valid. */
export function encodeSockaddr(sa: SockAddr): Buffer {
  if (sa.family === 'IPv4') {
    const buf = Buffer.alloc(16);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(sa.port, 2);
    buf.set(ipaddr.IPv4.parse(sa.address).toByteArray(), 4);
    return buf;
  }
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(sa.port, 2);
  buf.set(ipaddr.IPv6.parse(sa.address).toByteArray(), 8);
  buf.writeUInt32LE(sa.scopeId ?? 0, 24);
  return buf;
}

/** Decode a sockaddr_in / sockaddr_in6 (null for any other family). */
export function decodeSockaddr(buf: Buffer): SockAddr | null {
  if (buf.length < 2) return null;
  const family = buf.readUInt16LE(0);
  if (family === AF_INET && buf.length >= 8) {
    const address = ipaddr.fromByteArray([...buf.subarray(4, 8)]).toString();
    return { family: 'IPv4', address, port: buf.readUInt16BE(2) };
  }
  if (family === AF_INET6 && buf.length >= 24) {
    const address = (ipaddr.fromByteArray([...buf.subarray(8, 24)]) as ipaddr.IPv6).toRFC5952String();
    const scopeId = buf.length >= 28 ? buf.readUInt32LE(24) : 0;
    return { family: 'IPv6', address, port: buf.readUInt16BE(2), scopeId };
  }
  return null;
}

/** Options for {@link openUdpSocket}. */
export interface UdpSocketOptions {
  /** SO_REUSEADDR before bind. */
  reuseAddr: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND before bind (bind to a non-local address). */
  freebindBeforeBind: boolean;
  /**
   * IP_FREEBIND / IPV6_FREEBIND after bind. For IPv6 this lets IPV6_PKTINFO
   * name a source address that is only routed locally (AnyIP), without
   * relaxing the bind check itself.
   */
  freebindAfterBind: boolean;
}

/**
 * A non-blocking, close-on-exec UDP socket bound to `local`, with
 * IP(V6)_RECVORIGDSTADDR on and (IPv6) IPV6_V6ONLY=1. Closes the socket and
 * throws SysError on any failure.
 */
export function openUdpSocket(local: SockAddr, opts: UdpSocketOptions): number {
  checkLayout();
  const v6 = local.family === 'IPv6';
  const where = `${v6 ? `[${local.address}]` : local.address}:${local.port}`;
  const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  try {
    const level = v6 ? SOL_IPV6 : SOL_IP;
    const freebind = v6 ? IPV6_FREEBIND : IP_FREEBIND;
    if (v6) setsockoptInt(fd, SOL_IPV6, IPV6_V6ONLY, 1);
    setsockoptInt(fd, level, v6 ? IPV6_RECVORIGDSTADDR : IP_RECVORIGDSTADDR, 1);
    if (opts.reuseAddr) setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (opts.freebindBeforeBind) setsockoptInt(fd, level, freebind, 1);
    try {
      bindRaw(fd, encodeSockaddr(local));
    } catch (err) {
      if (err instanceof SysError) throw new SysError('bind', err.errno, `cannot bind UDP socket to ${where}`);
      throw err;
    }
    if (opts.freebindAfterBind) setsockoptInt(fd, level, freebind, 1);
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/** The address a socket is bound to (getsockname). */
export function socketAddress(fd: number): SockAddr {
  const sa = decodeSockaddr(getsockname(fd));
  if (!sa) throw new Error(`fd ${fd} is not an IPv4/IPv6 socket`);
  return sa;
}

/** close(2). */
export function closeSocket(fd: number): void {
  closeFd(fd);
}

/** One datagram read by {@link DatagramReader.read}. */
export interface ReceivedDatagram {
  /** A fresh copy of the payload. */
  data: Buffer;
  remote: SockAddr;
  /** From the IP(V6)_ORIGDSTADDR control message (null if absent). */
  original: SockAddr | null;
  /** The payload was longer than the receive buffer and was cut. */
  truncated: boolean;
}

/**
 * Reads datagrams with recvmsg(MSG_DONTWAIT) through one preallocated
 * msghdr, from any number of sockets (one at a time: JS is single-threaded).
 * The Buffers it points into are fields of this object, so their addresses
 * stay valid as long as the reader is alive.
 */
export class DatagramReader {
  private readonly payload: Buffer;
  private readonly name = Buffer.alloc(128);
  private readonly control = Buffer.alloc(256);
  private readonly iov = Buffer.alloc(IOVEC_SIZE);
  private readonly msg = Buffer.alloc(MSGHDR_SIZE);

  constructor(maxSize: number) {
    checkLayout();
    const k = koffi();
    this.payload = Buffer.alloc(maxSize);
    this.iov.writeBigUInt64LE(k.address(this.payload), 0);
    this.iov.writeBigUInt64LE(BigInt(maxSize), 8);
    this.msg.writeBigUInt64LE(k.address(this.name), 0);
    this.msg.writeBigUInt64LE(k.address(this.iov), 16);
    this.msg.writeBigUInt64LE(1n, 24);
    this.msg.writeBigUInt64LE(k.address(this.control), 32);
  }

  /** Read one datagram from `fd`; null when none is queued (EAGAIN). */
  read(fd: number): ReceivedDatagram | null {
    // recvmsg rewrites msg_namelen, msg_controllen and msg_flags: reset them.
    this.msg.writeUInt32LE(this.name.length, 8);
    this.msg.writeBigUInt64LE(BigInt(this.control.length), 40);
    this.msg.writeInt32LE(0, 48);
    const n = recvmsgRaw(fd, this.msg, MSG_DONTWAIT);
    if (n === -EAGAIN) return null;
    const flags = this.msg.readInt32LE(48);
    const remote = decodeSockaddr(this.name.subarray(0, this.msg.readUInt32LE(8)));
    if (!remote) throw new Error(`recvmsg on fd ${fd} returned no IPv4/IPv6 source address`);
    const controlLen = Number(this.msg.readBigUInt64LE(40));
    return {
      data: Buffer.from(this.payload.subarray(0, Math.min(n, this.payload.length))),
      remote,
      original: (flags & MSG_CTRUNC) === 0 ? parseOrigDst(this.control.subarray(0, controlLen)) : null,
      truncated: (flags & MSG_TRUNC) !== 0,
    };
  }
}

/** Find IP_ORIGDSTADDR / IPV6_ORIGDSTADDR in a control buffer. */
function parseOrigDst(control: Buffer): SockAddr | null {
  let off = 0;
  while (off + CMSG_HDR <= control.length) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR || off + len > control.length) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if ((level === SOL_IP && type === IP_RECVORIGDSTADDR) || (level === SOL_IPV6 && type === IPV6_RECVORIGDSTADDR)) {
      return decodeSockaddr(control.subarray(off + CMSG_HDR, off + len));
    }
    off += cmsgAlign(len);
  }
  return null;
}

/**
 * sendmsg(2) one datagram to `dest` (the socket stays unconnected, like
 * sendto). With `source`, an IP_PKTINFO / IPV6_PKTINFO control message sets
 * the source address (the source port is always the socket's own).
 * Returns the number of bytes sent; throws SysError (EAGAIN when the send
 * buffer is full).
 */
export function sendDatagram(fd: number, data: Uint8Array, dest: SockAddr, source?: SockAddr): number {
  checkLayout();
  const k = koffi();
  const name = encodeSockaddr(dest);
  // Zero-length datagrams are legal; keep a valid pointer anyway.
  const payload = data.length > 0 ? data : Buffer.alloc(1);
  const iov = Buffer.alloc(IOVEC_SIZE);
  iov.writeBigUInt64LE(k.address(payload), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(k.address(name), 0);
  msg.writeUInt32LE(name.length, 8);
  msg.writeBigUInt64LE(k.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  let control: Buffer | null = null;
  if (source) {
    control = pktinfo(source);
    msg.writeBigUInt64LE(k.address(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  // Keep every Buffer the msghdr points into reachable during the call.
  inFlight = [payload, name, iov, control];
  try {
    return sendmsgRaw(fd, msg, 0);
  } finally {
    inFlight = null;
  }
}

/** Buffers referenced only by raw address from a msghdr being sent. */
let inFlight: unknown[] | null = null;

/** A cmsg buffer with in_pktinfo.ipi_spec_dst / in6_pktinfo.ipi6_addr = source. */
function pktinfo(source: SockAddr): Buffer {
  const v6 = source.family === 'IPv6';
  const dataLen = v6 ? 20 : 12;
  const buf = Buffer.alloc(cmsgSpace(dataLen));
  buf.writeBigUInt64LE(BigInt(CMSG_HDR + dataLen), 0);
  buf.writeInt32LE(v6 ? SOL_IPV6 : SOL_IP, 8);
  buf.writeInt32LE(v6 ? IPV6_PKTINFO : IP_PKTINFO, 12);
  if (v6) {
    // struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
    buf.set(ipaddr.IPv6.parse(source.address).toByteArray(), CMSG_HDR);
    buf.writeInt32LE(source.scopeId ?? 0, CMSG_HDR + 16);
  } else {
    // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
    buf.set(ipaddr.IPv4.parse(source.address).toByteArray(), CMSG_HDR + 4);
  }
  return buf;
}

/** A readiness watch on Node's event loop. */
export interface ReadableWatch {
  /** Stop watching (synchronously unregisters the fd; close the fd after). */
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * Call `onReadable` whenever `fd` is readable, through libuv (koffi's
 * `koffi.node.poll`, no busy loop). `onError` gets a negative libuv status.
 *
 * Traps: the callback really receives `(status, events)`, not what koffi's
 * index.d.ts declares; and the fd must not already be watched by libuv (a
 * Node-owned socket's fd aborts the process).
 */
export function watchReadable(fd: number, onReadable: () => void, onError: (status: number) => void): ReadableWatch {
  const node = (koffi() as unknown as { node: { poll: PollFn } }).node;
  const handle = node.poll(fd, { readable: true }, (status: number, events: { readable: boolean }) => {
    if (status < 0) onError(status);
    else if (events.readable) onReadable();
  });
  if (!handle) throw new Error(`cannot watch fd ${fd} on the event loop`);
  return handle;
}

type PollFn = (
  fd: number,
  opts: { readable: boolean },
  cb: (status: number, events: { readable: boolean }) => void,
) => ReadableWatch | null;
