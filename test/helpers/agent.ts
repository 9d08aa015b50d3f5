/**
 * Traffic agent: runs inside a test network namespace and obeys JSON-line
 * commands on stdin (listen, connect, send, loop, close), answering on
 * stdout. Servers answer with their tag so tests can see where traffic went.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';
import { bindRaw, closeFd, dup2Fd, dupFdAtLeast, listen as sysListen, setsockoptInt, shutdownFd, socket as sysSocket } from '../../src/sys/libc.js';

interface Command {
  id: number;
  op: string;
  [k: string]: unknown;
}

type Handle = { kind: 'tcp'; server: net.Server; fd: number } | { kind: 'udp'; socket: dgram.Socket; fd: number } | { kind: 'raw'; fd: number };
const handles = new Map<number, Handle>();
let nextHandle = 1;

function reply(id: number, body: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ id, ...body })}\n`);
}

function sockaddr(host: string, port: number): Buffer {
  if (net.isIPv6(host)) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(10, 0);
    b.writeUInt16BE(port, 2);
    const parts = expand6(host);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(parts[i] ?? 0, 8 + i * 2);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0);
  b.writeUInt16BE(port, 2);
  host.split('.').forEach((o, i) => b.writeUInt8(Number(o), 4 + i));
  return b;
}

function expand6(host: string): number[] {
  const [head, tail] = host.split('::');
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':').map((x) => parseInt(x, 16)) : [];
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

async function listenTcp(c: Command): Promise<Record<string, unknown>> {
  const host = String(c.host);
  const tag = String(c.tag ?? 'server');
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end(`${tag}\n`);
  });
  if (c.reusePort) {
    // Node 20 cannot set SO_REUSEPORT: make the socket by hand.
    const fd = sysSocket(net.isIPv6(host) ? 10 : 2, 1 | 0o4000, 0);
    setsockoptInt(fd, 1, 2, 1);
    setsockoptInt(fd, 1, 15, 1);
    if (net.isIPv6(host)) setsockoptInt(fd, 41, 26, 1);
    bindRaw(fd, sockaddr(host, Number(c.port)));
    sysListen(fd, 511);
    await new Promise<void>((res, rej) => server.once('error', rej).listen({ fd }, () => res()));
  } else {
    const ipv6Only = c.v6only === undefined ? net.isIPv6(host) : Boolean(c.v6only);
    await new Promise<void>((res, rej) => server.once('error', rej).listen({ host, port: Number(c.port), ipv6Only }, () => res()));
  }
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const handle = nextHandle++;
  handles.set(handle, { kind: 'tcp', server, fd });
  return { handle, fd, port: (server.address() as net.AddressInfo).port };
}

async function listenUdp(c: Command): Promise<Record<string, unknown>> {
  const host = String(c.host);
  const tag = String(c.tag ?? 'server');
  const v6 = net.isIPv6(host);
  const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: c.v6only === undefined ? v6 : Boolean(c.v6only), reuseAddr: Boolean(c.reusePort) });
  socket.on('message', (_msg, rinfo) => socket.send(`${tag}\n`, rinfo.port, rinfo.address));
  socket.on('error', () => undefined);
  await new Promise<void>((res, rej) => socket.once('error', rej).bind({ address: host, port: Number(c.port) }, () => res()));
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  const handle = nextHandle++;
  handles.set(handle, { kind: 'udp', socket, fd });
  return { handle, fd, port: socket.address().port };
}

function connectTcp(host: string, port: number, timeoutMs: number, connectOnly = false): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let data = '';
    let done = false;
    const s = net.connect({ host, port });
    if (connectOnly) s.on('connect', () => finish({ ok: true, data: 'connected' }));
    const finish = (r: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, code: 'TIMEOUT' }), timeoutMs);
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => finish({ ok: true, data: data.trim() }));
    s.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code ?? e.message }));
  });
}

function sendUdp(host: string, port: number, timeoutMs: number, connect: boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (r: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, code: 'TIMEOUT' }), timeoutMs);
    s.on('message', (msg, rinfo) => finish({ ok: true, data: msg.toString().trim(), from: `${rinfo.address}:${rinfo.port}` }));
    s.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code ?? e.message }));
    if (connect) s.connect(port, host, () => s.send('ping'));
    else s.send('ping', port, host);
  });
}

let looping: { stop: boolean } | null = null;

async function loop(c: Command): Promise<Record<string, unknown>> {
  const state = { stop: false };
  looping = state;
  const deadline = Date.now() + Number(c.durationMs ?? 1000);
  const counts: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  while (!state.stop && Date.now() < deadline && (c.count === undefined || ok + failed < Number(c.count))) {
    const r = await connectTcp(String(c.host), Number(c.port), 2000);
    if (r.ok && (c.expect === undefined || r.data === c.expect)) ok++;
    else {
      failed++;
      const k = String(r.ok ? `wrong:${String(r.data)}` : r.code);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    if (c.intervalMs) await new Promise((res) => setTimeout(res, Number(c.intervalMs)));
  }
  return { ok: ok, failed, errors: counts };
}

async function handle(c: Command): Promise<Record<string, unknown>> {
  switch (c.op) {
    case 'listen':
      return c.proto === 'udp' ? listenUdp(c) : listenTcp(c);
    case 'connect':
      return c.proto === 'udp'
        ? sendUdp(String(c.host), Number(c.port), Number(c.timeoutMs ?? 1000), Boolean(c.connected))
        : connectTcp(String(c.host), Number(c.port), Number(c.timeoutMs ?? 2000), Boolean(c.connectOnly));
    case 'raw-listen-high': {
      // A listening socket that exists only at a high fd, after a gap.
      const fd = sysSocket(2, 1, 0);
      setsockoptInt(fd, 1, 2, 1);
      bindRaw(fd, sockaddr(String(c.host), Number(c.port)));
      sysListen(fd, 128);
      const high = dupFdAtLeast(fd, Number(c.min));
      closeFd(fd);
      return { fd: high };
    }
    case 'dup': {
      const h = handles.get(Number(c.handle));
      if (!h) throw new Error('no such handle');
      return { fd: dupFdAtLeast(h.fd, Number(c.min ?? 0)) };
    }
    case 'dup2': {
      // Make fd `to` a copy of handle `from`'s socket (an fd swapped under a running register-pid).
      const h = handles.get(Number(c.from));
      if (!h) throw new Error('no such handle');
      return { fd: dup2Fd(h.fd, Number(c.to)) };
    }
    case 'loop':
      return loop(c);
    case 'stop':
      if (looping) looping.stop = true;
      return {};
    case 'udp-connect': {
      const h = handles.get(Number(c.handle));
      if (!h || h.kind !== 'udp') throw new Error('no such udp handle');
      await new Promise<void>((res) => h.socket.connect(Number(c.port), String(c.host), () => res()));
      return {};
    }
    case 'close': {
      const h = handles.get(Number(c.handle));
      if (!h) throw new Error('no such handle');
      handles.delete(Number(c.handle));
      if (h.kind === 'tcp') await new Promise<void>((res) => h.server.close(() => res()));
      else if (h.kind === 'udp') await new Promise<void>((res) => h.socket.close(() => res()));
      else closeFd(h.fd);
      return {};
    }
    case 'raw-listen': {
      // A TCP listener Node does not watch: connections complete in the
      // kernel and are never answered (clients time out), and shutdown()
      // cannot make Node's accept loop spin.
      const v6 = net.isIPv6(String(c.host));
      const fd = sysSocket(v6 ? 10 : 2, 1 | 0o2000000, 0);
      setsockoptInt(fd, 1, 2, 1);
      if (c.reusePort) setsockoptInt(fd, 1, 15, 1);
      if (v6) setsockoptInt(fd, 41, 26, c.v6only === false ? 0 : 1);
      bindRaw(fd, sockaddr(String(c.host), Number(c.port)));
      sysListen(fd, 128);
      const handle = nextHandle++;
      handles.set(handle, { kind: 'raw', fd });
      return { handle, fd };
    }
    case 'shutdown': {
      // shutdown(2) without close(): the socket stays open, unhashed.
      const h = handles.get(Number(c.handle));
      if (!h) throw new Error('no such handle');
      shutdownFd(h.fd, 2);
      return {};
    }
    case 'pid':
      return { pid: process.pid };
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c: Command;
  try {
    c = JSON.parse(line) as Command;
  } catch {
    return;
  }
  handle(c).then(
    (r) => reply(c.id, { result: r }),
    (e: Error) => reply(c.id, { error: e.message }),
  );
});
rl.on('close', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: process.pid })}\n`);
