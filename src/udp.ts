/**
 * UDP sockets that know each datagram's original destination, and reply
 * from it.
 *
 * With sk_lookup a datagram sent to 192.0.2.7:53 can be delivered to a
 * socket bound to 127.0.0.1:5353. Node's `dgram` cannot tell which address
 * the client used, nor send from it. {@link openOrigDstUdp} opens a socket
 * that reports the original destination of every datagram (from
 * IP_ORIGDSTADDR / IPV6_ORIGDSTADDR) and whose {@link OrigDstUdpSocket.reply}
 * answers from exactly that address and port, so that clients which
 * `connect()`ed their socket accept the answer.
 *
 * @example
 * const sock = await openOrigDstUdp({ address: '127.0.0.1', port: 9999 });
 * sock.on('message', (msg, info) => sock.reply(info, msg));
 * console.log(`register fd ${sock.fd} with manifold`);
 */
import { EventEmitter } from 'node:events';
import ipaddr from 'ipaddr.js';
import { ManifoldError } from './errors.js';
import * as sys from './sys/udp.js';

/** Address family of a UDP endpoint (the names Node's dgram uses). */
export type UdpFamily = 'IPv4' | 'IPv6';

/** An address and port. IPv6 link-local addresses carry a numeric zone: `fe80::1%2`. */
export interface UdpEndpoint {
  address: string;
  port: number;
  family: UdpFamily;
}

/** What is known about a received datagram. */
export interface DatagramInfo {
  /** The sender. */
  remote: UdpEndpoint;
  /** Where the sender sent it, before any sk_lookup steering. */
  original: UdpEndpoint;
  /** Payload length in bytes (after truncation, if any). */
  size: number;
  /** The datagram was longer than `maxDatagramSize` and was cut. */
  truncated: boolean;
}

/** Options of {@link openOrigDstUdp}. */
export interface OrigDstUdpOptions {
  /** Local address to bind: an IPv4 or IPv6 literal (`0.0.0.0` / `::` for any). IPv6 sockets are v6-only. */
  address: string;
  /** Local port; 0 picks a free one (see {@link OrigDstUdpSocket.address}). */
  port: number;
  /** Set SO_REUSEADDR on the main socket before binding. Default false. */
  reuseAddr?: boolean;
  /** Largest payload received whole; longer datagrams are truncated. Default 65536. */
  maxDatagramSize?: number;
  /** Most reply sockets kept open (least recently used are closed first). Default 64. */
  maxReplySockets?: number;
}

/**
 * How a datagram left:
 * - `main`: plainly from the main socket (the source was its own address).
 * - `pktinfo`: from the main socket with IP(V6)_PKTINFO choosing the source
 *   address; used when the port is the main socket's and it is bound to a
 *   wildcard address. Source address and port are both right.
 * - `reply-socket`: from a cached socket bound to the wanted source
 *   address and port (SO_REUSEADDR + IP(V6)_FREEBIND, never connected).
 * - `pktinfo-fallback`: the reply socket could not be bound (see
 *   `fallbackReason`); sent from the main socket with IP(V6)_PKTINFO, so the
 *   source ADDRESS is right but the source PORT is the main socket's. A
 *   client that connect()ed to the original destination drops it.
 */
export type SendPath = 'main' | 'pktinfo' | 'reply-socket' | 'pktinfo-fallback';

/** Result of {@link OrigDstUdpSocket.send} / {@link OrigDstUdpSocket.reply}. */
export interface SendResult {
  bytes: number;
  path: SendPath;
  /** The source address and port the datagram carries. */
  source: UdpEndpoint;
  /** For `pktinfo-fallback`: why no reply socket could be used. */
  fallbackReason?: string;
}

/** Events of {@link OrigDstUdpSocket}. */
export interface OrigDstUdpEvents {
  message: [msg: Buffer, info: DatagramInfo];
  error: [err: Error];
  close: [];
}

interface Endpoint extends sys.SockAddr {
  scopeId: number;
}

interface Receiver {
  fd: number;
  watch: sys.ReadableWatch;
}

type ReplyEntry = { ok: true; rx: Receiver } | { ok: false; reason: string; retryAt: number };

/** How long a failed reply-socket bind is remembered before it is tried again. */
const RETRY_BIND_MS = 1000;
/** Datagrams read per readiness callback, so that one busy socket cannot starve the loop. */
const READ_BATCH = 64;

/**
 * A bound UDP socket reporting original destinations. Create it with
 * {@link openOrigDstUdp}. Emits `message` (payload, {@link DatagramInfo}),
 * `error` and `close`.
 *
 * Reply sockets are polled too: without sk_lookup steering, a reply socket
 * bound to a more specific address than the main socket receives later
 * datagrams for that address; they are emitted as `message` like the rest.
 */
export class OrigDstUdpSocket extends EventEmitter<OrigDstUdpEvents> {
  /** The main socket's fd: put this one into manifold's sockmap. Owned by this object. */
  readonly fd: number;
  /** Address family of the socket. */
  readonly family: UdpFamily;
  private readonly local: Endpoint;
  private readonly main: Receiver;
  private readonly replies = new Map<string, ReplyEntry>();
  private readonly reader: sys.DatagramReader;
  private readonly maxReplySockets: number;
  private closed = false;
  private refed = true;

  /** @internal use {@link openOrigDstUdp}. */
  constructor(fd: number, maxSize: number, maxReplySockets: number) {
    super();
    this.fd = fd;
    this.reader = new sys.DatagramReader(maxSize);
    this.maxReplySockets = maxReplySockets;
    this.local = withScope(sys.socketAddress(fd));
    this.family = this.local.family;
    this.main = this.watch(fd);
  }

  /** The bound local address and port (the real port when 0 was asked for). */
  address(): UdpEndpoint {
    return toPublic(this.local);
  }

  /** Number of reply sockets currently open. */
  get replySocketCount(): number {
    let n = 0;
    for (const e of this.replies.values()) if (e.ok) n++;
    return n;
  }

  /**
   * Answer a received datagram: send `data` to `info.remote` from
   * `info.original` (address and port). See {@link SendPath} for how.
   */
  reply(info: DatagramInfo, data: Uint8Array | string): SendResult {
    return this.send(data, info.remote.address, info.remote.port, info.original.address, info.original.port);
  }

  /**
   * Send one datagram to `toAddress`:`toPort`. Without `fromAddress` it
   * leaves from the main socket's own address and port. With it, it leaves
   * from `fromAddress`:`fromPort` (default: the main socket's port) when at
   * all possible; check `path` in the result. Throws on invalid arguments,
   * after close(), and on send failures (SysError; EAGAIN when the socket
   * buffer is full).
   */
  send(data: Uint8Array | string, toAddress: string, toPort: number, fromAddress?: string, fromPort?: number): SendResult {
    if (this.closed) throw new ManifoldError('ERR_USAGE', 'the UDP socket is closed');
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    const to = parseEndpoint(toAddress, toPort, 'destination', false);
    this.checkFamily(to, 'destination');
    if (fromAddress === undefined) {
      if (fromPort !== undefined) throw new ManifoldError('ERR_USAGE', 'a source port needs a source address');
      return { bytes: sys.sendDatagram(this.fd, payload, to), path: 'main', source: toPublic(this.local) };
    }
    const from = parseEndpoint(fromAddress, fromPort ?? this.local.port, 'source', false);
    this.checkFamily(from, 'source');
    if (from.port === this.local.port) {
      if (sameAddress(from, this.local)) {
        return { bytes: sys.sendDatagram(this.fd, payload, to), path: 'main', source: toPublic(this.local) };
      }
      if (isWildcard(this.local)) {
        return { bytes: sys.sendDatagram(this.fd, payload, to, from), path: 'pktinfo', source: toPublic(from) };
      }
    }
    const entry = this.replySocket(from);
    if (entry.ok) {
      return { bytes: sys.sendDatagram(entry.rx.fd, payload, to), path: 'reply-socket', source: toPublic(from) };
    }
    const bytes = sys.sendDatagram(this.fd, payload, to, from);
    const source = toPublic({ ...from, port: this.local.port });
    return { bytes, path: 'pktinfo-fallback', source, fallbackReason: entry.reason };
  }

  /** Keep the Node process alive while the socket is open (the default). */
  ref(): this {
    this.refed = true;
    for (const rx of this.receivers()) rx.watch.ref();
    return this;
  }

  /** Let the Node process exit even though the socket is open. */
  unref(): this {
    this.refed = false;
    for (const rx of this.receivers()) rx.watch.unref();
    return this;
  }

  /** Stop polling and close the main socket and every reply socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const rx of this.receivers()) unwatch(rx);
    this.replies.clear();
    process.nextTick(() => this.emit('close'));
  }

  private *receivers(): Generator<Receiver> {
    yield this.main;
    for (const e of this.replies.values()) if (e.ok) yield e.rx;
  }

  private checkFamily(ep: Endpoint, what: string): void {
    if (ep.family !== this.family) {
      throw new ManifoldError('ERR_USAGE', `${what} ${ep.address} is ${ep.family} but the socket is ${this.family}`);
    }
  }

  /** The cached reply socket for `from`, opening it if needed. */
  private replySocket(from: Endpoint): ReplyEntry {
    const key = `${from.address}%${from.scopeId}|${from.port}`;
    const cached = this.replies.get(key);
    if (cached && (cached.ok || Date.now() < cached.retryAt)) {
      this.replies.delete(key); // re-insert: the Map's order is the LRU order
      this.replies.set(key, cached);
      return cached;
    }
    if (this.maxReplySockets === 0) return { ok: false, reason: 'reply sockets are disabled (maxReplySockets: 0)', retryAt: 0 };
    this.replies.delete(key);
    for (const [oldKey, old] of this.replies) {
      if (this.replies.size < this.maxReplySockets) break;
      if (old.ok) unwatch(old.rx);
      this.replies.delete(oldKey);
    }
    let entry: ReplyEntry;
    try {
      const fd = sys.openUdpSocket(from, { reuseAddr: true, freebindBeforeBind: true, freebindAfterBind: false });
      try {
        entry = { ok: true, rx: this.watch(fd) };
      } catch (err) {
        sys.closeSocket(fd);
        throw err;
      }
    } catch (err) {
      entry = { ok: false, reason: (err as Error).message, retryAt: Date.now() + RETRY_BIND_MS };
    }
    this.replies.set(key, entry);
    return entry;
  }

  private watch(fd: number): Receiver {
    const onError = (status: number): void => {
      this.emit('error', new Error(`polling UDP socket fd ${fd} failed (libuv status ${status})`));
    };
    const rx: Receiver = { fd, watch: sys.watchReadable(fd, () => this.drain(rx), onError) };
    if (!this.refed) rx.watch.unref();
    return rx;
  }

  private drain(rx: Receiver): void {
    for (let i = 0; i < READ_BATCH && !this.closed; i++) {
      let d: sys.ReceivedDatagram | null;
      try {
        d = this.reader.read(rx.fd);
      } catch (err) {
        this.emit('error', err as Error);
        return;
      }
      if (!d) return;
      const original = d.original ? withScope(d.original) : withScope(sys.socketAddress(rx.fd));
      const info: DatagramInfo = {
        remote: toPublic(withScope(d.remote)),
        original: toPublic(original),
        size: d.data.length,
        truncated: d.truncated,
      };
      this.emit('message', d.data, info);
    }
  }
}

/**
 * Open a UDP socket for manifold: non-blocking, close-on-exec, IPv6 sockets
 * v6-only, bound to `address`:`port`, reporting each datagram's original
 * destination. Rejects with ManifoldError (ERR_INVALID_PREFIX /
 * ERR_INVALID_PORT) for bad arguments and SysError (e.g. EADDRINUSE,
 * EADDRNOTAVAIL) when the kernel refuses.
 */
export async function openOrigDstUdp(options: OrigDstUdpOptions): Promise<OrigDstUdpSocket> {
  const local = parseEndpoint(options.address, options.port, 'bind address', true);
  const maxSize = options.maxDatagramSize ?? 65536;
  const maxReplySockets = options.maxReplySockets ?? 64;
  if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize > 65536) {
    throw new ManifoldError('ERR_USAGE', `invalid maxDatagramSize ${maxSize}: expected 1..65536`);
  }
  if (!Number.isInteger(maxReplySockets) || maxReplySockets < 0) {
    throw new ManifoldError('ERR_USAGE', `invalid maxReplySockets ${maxReplySockets}: expected an integer >= 0`);
  }
  const fd = sys.openUdpSocket(local, {
    reuseAddr: options.reuseAddr ?? false,
    freebindBeforeBind: false,
    freebindAfterBind: local.family === 'IPv6',
  });
  try {
    return new OrigDstUdpSocket(fd, maxSize, maxReplySockets);
  } catch (err) {
    sys.closeSocket(fd);
    throw err;
  }
}

function unwatch(rx: Receiver): void {
  rx.watch.close(); // unregisters the fd from epoll synchronously
  sys.closeSocket(rx.fd);
}

/** Validate and canonicalise an address literal and port. */
function parseEndpoint(address: unknown, port: unknown, what: string, allowPortZero: boolean): Endpoint {
  const text = typeof address === 'string' ? address : '';
  const bad = (why: string): ManifoldError =>
    new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${JSON.stringify(address)}: ${why}`);
  const minPort = allowPortZero ? 0 : 1;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < minPort || port > 65535) {
    throw new ManifoldError('ERR_INVALID_PORT', `invalid ${what} port ${JSON.stringify(port)}: expected an integer ${minPort}..65535`);
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 'IPv4', address: ipaddr.IPv4.parse(text).toString(), port, scopeId: 0 };
  }
  const [addr = '', zone, ...rest] = text.split('%');
  if (!text.includes(':') || !ipaddr.IPv6.isValid(addr) || rest.length > 0) {
    throw bad('expected an IPv4 address such as 127.0.0.1 or an IPv6 address such as ::1');
  }
  const v6 = ipaddr.IPv6.parse(addr);
  if (v6.isIPv4MappedAddress()) throw bad('IPv4-mapped IPv6 addresses are not supported (sockets are v6-only): use the IPv4 address');
  if (zone !== undefined && !/^\d{1,10}$/.test(zone)) throw bad('the IPv6 zone must be a numeric interface index');
  return { family: 'IPv6', address: v6.toRFC5952String(), port, scopeId: zone === undefined ? 0 : Number(zone) };
}

function withScope(sa: sys.SockAddr): Endpoint {
  return { ...sa, scopeId: sa.scopeId ?? 0 };
}

function toPublic(ep: Endpoint): UdpEndpoint {
  const address = ep.scopeId ? `${ep.address}%${ep.scopeId}` : ep.address;
  return { address, port: ep.port, family: ep.family };
}

function sameAddress(a: Endpoint, b: Endpoint): boolean {
  return a.family === b.family && a.address === b.address && a.scopeId === b.scopeId;
}

function isWildcard(ep: Endpoint): boolean {
  return ep.address === (ep.family === 'IPv4' ? '0.0.0.0' : '::');
}
