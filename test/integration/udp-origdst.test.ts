/**
 * Integration tests of the UDP original-destination library (src/udp.ts)
 * with real traffic, without the sk_lookup dispatcher. Needs root.
 *
 * The tests create a network namespace (`mf-udplib-…`) and run each
 * scenario in a child process entered into it with nsenter; the child is
 * this very file with MF_UDPLIB_SCENARIO set. It runs the library and
 * dgram clients, and prints what it observed as one JSON line; the parent
 * asserts on that.
 */
import { execFile, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, fstatSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ownedName } from '../helpers/env.js';
import { QUICK_MS } from '../helpers/wait.js';
import { openOrigDstUdp, type DatagramInfo, type SendResult, type UdpEndpoint } from '../../src/udp.js';

/* ------------------------------------------------------------------ child side */

interface Received {
  data: string;
  info: DatagramInfo;
}
interface Got {
  data: string;
  address: string;
  port: number;
}
interface Client {
  sock: dgram.Socket;
  local: { address: string; port: number };
  got: Got[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(10);
}

/** A dgram client, optionally connect()ed (then it drops datagrams from any other source). */
async function client(v6: boolean, connectTo?: { address: string; port: number }): Promise<Client> {
  const sock = dgram.createSocket(v6 ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  if (connectTo) await new Promise<void>((resolve) => sock.connect(connectTo.port, connectTo.address, () => resolve()));
  const got: Got[] = [];
  sock.on('message', (m, r) => got.push({ data: m.toString(), address: r.address, port: r.port }));
  const a = sock.address();
  return { sock, local: { address: a.address, port: a.port }, got };
}

const randomPort = (): number => 20000 + Math.floor(Math.random() * 20000);

function catchError(f: () => unknown): { name: string; code: unknown; message: string } | null {
  try {
    f();
    return null;
  } catch (err) {
    const e = err as Error & { code?: unknown; errnoName?: unknown };
    return { name: e.name, code: e.code ?? e.errnoName, message: e.message };
  }
}

async function catchAsync(f: () => Promise<unknown>): Promise<{ name: string; code: unknown; message: string } | null> {
  try {
    const v = await f();
    (v as { close?: () => void }).close?.();
    return null;
  } catch (err) {
    const e = err as Error & { code?: unknown; errnoName?: unknown };
    return { name: e.name, code: e.code ?? e.errnoName, message: e.message };
  }
}

/** Server on `bind`, client connect()ed to `target`:(server port): two echoes. */
async function echo(bind: string, target: string): Promise<object> {
  const s = await openOrigDstUdp({ address: bind, port: 0 });
  const port = s.address().port;
  const received: Received[] = [];
  const sent: SendResult[] = [];
  s.on('message', (m, info) => {
    received.push({ data: m.toString(), info });
    sent.push(s.reply(info, `echo:${m.toString()}`));
  });
  const c = await client(target.includes(':'), { address: target, port });
  for (const word of ['one', 'two']) {
    c.sock.send(word);
    await waitFor(() => c.got.some((g) => g.data === `echo:${word}`));
  }
  c.sock.close();
  s.close();
  return { port, family: s.family, fd: s.fd, client: c.local, received, sent, clientGot: c.got };
}

/**
 * Server on `bind`; a client connect()ed to `steered`:Q, where nothing
 * listens. The server pushes a datagram from `steered`:Q (reply socket),
 * then the client sends to `steered`:Q: the reply socket catches it (no
 * sk_lookup here) and the answer must again come from `steered`:Q.
 */
async function replySocket(bind: string, steered: string): Promise<object> {
  const s = await openOrigDstUdp({ address: bind, port: 0 });
  const q = randomPort();
  const received: Received[] = [];
  const sent: SendResult[] = [];
  s.on('message', (m, info) => {
    received.push({ data: m.toString(), info });
    sent.push(s.reply(info, `echo:${m.toString()}`));
  });
  const c = await client(steered.includes(':'), { address: steered, port: q });
  const pushed = s.send('push', c.local.address, c.local.port, steered, q);
  await waitFor(() => c.got.length >= 1);
  c.sock.send('ping');
  await waitFor(() => c.got.length >= 2);
  const replySockets = s.replySocketCount;
  c.sock.close();
  s.close();
  return { serverPort: s.address().port, q, client: c.local, pushed, received, sent, clientGot: c.got, replySockets };
}

/** The reply socket cannot be bound (port taken): source address right, port wrong. */
async function fallback(): Promise<object> {
  const s = await openOrigDstUdp({ address: '127.0.0.1', port: 0 });
  const q = randomPort();
  const occupier = dgram.createSocket('udp4'); // no SO_REUSEADDR
  await new Promise<void>((resolve) => occupier.bind(q, '127.0.0.23', resolve));
  const connected = await client(false, { address: '127.0.0.23', port: q });
  const loose = await client(false);
  const toConnected = s.send('to-connected', connected.local.address, connected.local.port, '127.0.0.23', q);
  const toLoose = s.send('to-loose', loose.local.address, loose.local.port, '127.0.0.23', q);
  await waitFor(() => loose.got.length >= 1);
  await sleep(200); // give the connected client a fair chance to (wrongly) receive
  for (const sock of [occupier, connected.sock, loose.sock]) sock.close();
  s.close();
  return { serverPort: s.address().port, q, toConnected, toLoose, connectedGot: connected.got, looseGot: loose.got };
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;

/** close() closes every socket, stops polling (the process can exit) and frees the ports. */
async function closeAll(): Promise<object> {
  const fdsBefore = fdCount();
  const s = await openOrigDstUdp({ address: '127.0.0.1', port: 0 });
  const port = s.address().port;
  const q = randomPort();
  const pushed = s.send('x', '127.0.0.1', 9, '127.0.0.23', q);
  const fdsOpen = fdCount();
  let closeEvents = 0;
  s.on('close', () => closeEvents++);
  const fd = s.fd;
  s.close();
  s.close();
  const mainFdOpen = catchError(() => fstatSync(fd))?.code !== 'EBADF';
  const fdsAfter = fdCount();
  await sleep(20);
  const sendAfterClose = catchError(() => s.send('y', '127.0.0.1', 9));
  const rebind = async (address: string, p: number): Promise<string> => {
    const sock = dgram.createSocket('udp4');
    const r = await new Promise<string>((resolve) => {
      sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      sock.bind(p, address, () => resolve('ok'));
    });
    sock.close();
    return r;
  };
  return {
    fdsBefore, fdsOpen, fdsAfter, mainFdOpen, closeEvents, pushed, sendAfterClose,
    rebindMain: await rebind('127.0.0.1', port),
    rebindReply: await rebind('127.0.0.23', q),
  };
}

/** Kernel refusals, v6-only, family checks and truncation. */
async function misc(): Promise<object> {
  const notLocal = await catchAsync(() => openOrigDstUdp({ address: '192.0.2.1', port: 5000 }));
  const a = await openOrigDstUdp({ address: '127.0.0.1', port: 0 });
  const port = a.address().port;
  const inUse = await catchAsync(() => openOrigDstUdp({ address: '127.0.0.1', port }));
  const r1 = await openOrigDstUdp({ address: '127.0.0.1', port: 0, reuseAddr: true });
  const sharedWithReuse = await catchAsync(() => openOrigDstUdp({ address: '127.0.0.1', port: r1.address().port, reuseAddr: true }));
  r1.close();
  const v6 = await openOrigDstUdp({ address: '::', port: 0 });
  // IPV6_V6ONLY: the IPv4 wildcard on the same port is still free.
  const v4SamePort = await catchAsync(() => openOrigDstUdp({ address: '0.0.0.0', port: v6.address().port }));
  const familyMismatch = catchError(() => v6.send('x', '127.0.0.1', 9));
  const badFrom = catchError(() => v6.send('x', '::1', 9, 'nope'));
  v6.close();
  const small = await openOrigDstUdp({ address: '127.0.0.1', port: 0, maxDatagramSize: 8 });
  const infos: DatagramInfo[] = [];
  const data: string[] = [];
  small.on('message', (m, info) => {
    data.push(m.toString());
    infos.push(info);
  });
  const c = await client(false);
  c.sock.send('0123456789abcdefghij', small.address().port, '127.0.0.1');
  c.sock.send('', small.address().port, '127.0.0.1');
  await waitFor(() => infos.length >= 2);
  c.sock.close();
  small.close();
  a.close();
  return { notLocal, inUse, sharedWithReuse, v4SamePort, familyMismatch, badFrom, truncated: { data, infos } };
}

const scenarios: Record<string, () => Promise<object>> = {
  'v4-self': () => echo('127.0.0.1', '127.0.0.1'),
  'v4-wildcard': () => echo('0.0.0.0', '127.0.0.23'),
  'v6-wildcard': () => echo('::', '2001:db8::1'),
  'v6-anyip': () => echo('::', '2001:db8:1::7'),
  'v4-reply-socket': () => replySocket('127.0.0.1', '127.0.0.23'),
  'v6-reply-socket': () => replySocket('::1', '2001:db8:1::7'),
  fallback,
  close: closeAll,
  misc,
};

/* ----------------------------------------------------------------- parent side */

const scenarioName = process.env['MF_UDPLIB_SCENARIO'];
if (scenarioName !== undefined) {
  // Child: run one scenario, print the result, then let the event loop
  // drain. If a socket or poll handle leaked, the watchdog exits with 3.
  setTimeout(() => process.exit(3), 10_000).unref();
  const run = scenarios[scenarioName];
  if (!run) throw new Error(`unknown scenario ${scenarioName}`);
  run().then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  const ns = ownedName('udplib', (n) => existsSync(`/run/netns/${n}`));
  let nsCreated = false;
  const self = fileURLToPath(import.meta.url);
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: QUICK_MS });
  };
  const deleteNs = (): void => {
    if (!nsCreated) return;
    nsCreated = false;
    try {
      ip('netns', 'del', ns);
    } catch {
      /* already gone */
    }
  };
  process.on('exit', deleteNs);

  /** Run a scenario in the namespace; resolves with its JSON result. */
  const runChild = <T>(name: string): Promise<T> =>
    new Promise((resolve, reject) => {
      execFile(
        'nsenter',
        [`--net=/run/netns/${ns}`, process.execPath, self],
        { env: { ...process.env, MF_UDPLIB_SCENARIO: name }, timeout: 20_000, killSignal: 'SIGKILL' },
        (err, stdout, stderr) => {
          if (err) return reject(new Error(`scenario ${name} failed: ${err.message}\n${stderr}`));
          const line = stdout.trim().split('\n').pop() ?? '';
          try {
            resolve(JSON.parse(line) as T);
          } catch {
            reject(new Error(`scenario ${name} printed no result: ${stdout}\n${stderr}`));
          }
        },
      );
    });

  test.before(() => {
    ip('netns', 'add', ns);
    nsCreated = true;
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', '2001:db8::1/64', 'dev', 'lo', 'nodad');
    // "AnyIP": a whole prefix routed locally, no address configured.
    ip('-n', ns, '-6', 'route', 'add', 'local', '2001:db8:1::/64', 'dev', 'lo');
  });
  test.after(deleteNs);

  interface EchoResult {
    port: number;
    family: string;
    fd: number;
    client: { address: string; port: number };
    received: Received[];
    sent: SendResult[];
    clientGot: Got[];
  }

  const checkEcho = (r: EchoResult, target: string, family: string, path: string): void => {
    const original: UdpEndpoint = { address: target, port: r.port, family: family as UdpEndpoint['family'] };
    assert.is(r.family, family);
    assert.ok(r.fd > 2, 'fd is exposed');
    assert.equal(r.received.map((m) => m.data), ['one', 'two']);
    for (const m of r.received) {
      assert.equal(m.info.original, original, 'original destination');
      assert.equal(m.info.remote, { ...r.client, family }, 'remote endpoint');
      assert.is(m.info.size, 3);
      assert.is(m.info.truncated, false);
    }
    assert.equal(r.sent.map((s) => [s.path, s.source]), [[path, original], [path, original]]);
    // The client is connect()ed to target:port: it only sees replies from there.
    assert.equal(r.clientGot, [
      { data: 'echo:one', address: target, port: r.port },
      { data: 'echo:two', address: target, port: r.port },
    ]);
  };

  test('IPv4: receive on 127.0.0.1 and reply to a connected client', async () => {
    checkEcho(await runChild<EchoResult>('v4-self'), '127.0.0.1', 'IPv4', 'main');
  });

  test('IPv4: bound to 0.0.0.0, sent to 127.0.0.23 — original destination and reply source are 127.0.0.23:port', async () => {
    checkEcho(await runChild<EchoResult>('v4-wildcard'), '127.0.0.23', 'IPv4', 'pktinfo');
  });

  test('IPv6: bound to :: (v6-only), sent to 2001:db8::1', async () => {
    checkEcho(await runChild<EchoResult>('v6-wildcard'), '2001:db8::1', 'IPv6', 'pktinfo');
  });

  test('IPv6: AnyIP prefix (no address configured) 2001:db8:1::7', async () => {
    checkEcho(await runChild<EchoResult>('v6-anyip'), '2001:db8:1::7', 'IPv6', 'pktinfo');
  });

  interface ReplySocketResult {
    serverPort: number;
    q: number;
    client: { address: string; port: number };
    pushed: SendResult;
    received: Received[];
    sent: SendResult[];
    clientGot: Got[];
    replySockets: number;
  }

  const checkReplySocket = (r: ReplySocketResult, steered: string, family: string): void => {
    const from: UdpEndpoint = { address: steered, port: r.q, family: family as UdpEndpoint['family'] };
    assert.is.not(r.q, r.serverPort);
    assert.is(r.pushed.path, 'reply-socket');
    assert.equal(r.pushed.source, from);
    assert.is(r.replySockets, 1);
    assert.equal(r.received.map((m) => m.data), ['ping']);
    assert.equal(r.received[0]?.info.original, from, 'original destination of the datagram the reply socket caught');
    assert.equal(r.received[0]?.info.remote, { ...r.client, family });
    assert.equal(r.sent.map((s) => [s.path, s.source]), [['reply-socket', from]]);
    assert.equal(r.clientGot, [
      { data: 'push', address: steered, port: r.q },
      { data: 'echo:ping', address: steered, port: r.q },
    ]);
  };

  test('IPv4: a different source port goes through a reply socket (SO_REUSEADDR + IP_FREEBIND)', async () => {
    checkReplySocket(await runChild<ReplySocketResult>('v4-reply-socket'), '127.0.0.23', 'IPv4');
  });

  test('IPv6: a reply socket on an AnyIP address (needs IPV6_FREEBIND)', async () => {
    checkReplySocket(await runChild<ReplySocketResult>('v6-reply-socket'), '2001:db8:1::7', 'IPv6');
  });

  test('fallback when the reply socket cannot bind: IP_PKTINFO fixes the address only', async () => {
    const r = await runChild<{
      serverPort: number; q: number; toConnected: SendResult; toLoose: SendResult; connectedGot: Got[]; looseGot: Got[];
    }>('fallback');
    for (const s of [r.toConnected, r.toLoose]) {
      assert.is(s.path, 'pktinfo-fallback');
      assert.match(s.fallbackReason ?? '', /EADDRINUSE/);
      assert.equal(s.source, { address: '127.0.0.23', port: r.serverPort, family: 'IPv4' });
    }
    assert.equal(r.looseGot, [{ data: 'to-loose', address: '127.0.0.23', port: r.serverPort }]);
    assert.equal(r.connectedGot, [], 'a client connected to 127.0.0.23:q drops a reply from another port');
  });

  test('close() closes every socket, stops polling and frees the ports', async () => {
    const r = await runChild<{
      fdsBefore: number; fdsOpen: number; fdsAfter: number; mainFdOpen: boolean; closeEvents: number;
      pushed: SendResult; sendAfterClose: { message: string } | null; rebindMain: string; rebindReply: string;
    }>('close');
    assert.is(r.pushed.path, 'reply-socket');
    assert.is(r.fdsOpen, r.fdsBefore + 2, 'main socket + one reply socket');
    assert.is(r.fdsAfter, r.fdsBefore);
    assert.is(r.mainFdOpen, false);
    assert.is(r.closeEvents, 1);
    assert.match(r.sendAfterClose?.message ?? '', /closed/);
    assert.is(r.rebindMain, 'ok');
    assert.is(r.rebindReply, 'ok');
    // runChild resolving at all means the child exited by itself: no poll handle kept it alive.
  });

  test('kernel errors, v6-only, family checks and truncation', async () => {
    type Err = { name: string; code: unknown; message: string } | null;
    const r = await runChild<{
      notLocal: Err; inUse: Err; sharedWithReuse: Err; v4SamePort: Err; familyMismatch: Err; badFrom: Err;
      truncated: { data: string[]; infos: DatagramInfo[] };
    }>('misc');
    assert.is(r.notLocal?.code, 'EADDRNOTAVAIL');
    assert.match(r.notLocal?.message ?? '', /cannot bind UDP socket to 192\.0\.2\.1:5000/);
    assert.is(r.inUse?.code, 'EADDRINUSE');
    assert.is(r.sharedWithReuse, null, 'two sockets with reuseAddr share a port');
    assert.is(r.v4SamePort, null, 'the IPv6 socket is v6-only');
    assert.is(r.familyMismatch?.code, 'ERR_USAGE');
    assert.match(r.familyMismatch?.message ?? '', /IPv4 but the socket is IPv6/);
    assert.is(r.badFrom?.code, 'ERR_INVALID_PREFIX');
    assert.equal(r.truncated.data, ['01234567', '']);
    assert.equal(r.truncated.infos.map((i) => [i.size, i.truncated]), [[8, true], [0, false]]);
  });

  test('invalid arguments are rejected before any system call', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['not-an-ip', 53, 'ERR_INVALID_PREFIX'],
      ['127.0.0.256', 53, 'ERR_INVALID_PREFIX'],
      ['127.1', 53, 'ERR_INVALID_PREFIX'],
      ['', 53, 'ERR_INVALID_PREFIX'],
      ['::ffff:127.0.0.1', 53, 'ERR_INVALID_PREFIX'],
      ['fe80::1%eth0', 53, 'ERR_INVALID_PREFIX'],
      ['127.0.0.1', -1, 'ERR_INVALID_PORT'],
      ['127.0.0.1', 65536, 'ERR_INVALID_PORT'],
      ['127.0.0.1', 1.5, 'ERR_INVALID_PORT'],
      ['127.0.0.1', '53', 'ERR_INVALID_PORT'],
    ];
    for (const [address, port, code] of cases) {
      const err = await catchAsync(() => openOrigDstUdp({ address, port: port as number }));
      assert.is(err?.code, code, `${address} ${String(port)}`);
      assert.match(err?.message ?? '', /invalid bind address/);
    }
    const big = await catchAsync(() => openOrigDstUdp({ address: '127.0.0.1', port: 0, maxDatagramSize: 70000 }));
    assert.is(big?.code, 'ERR_USAGE');
  });

  test.run();
}
