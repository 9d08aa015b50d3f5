/**
 * Socket registration: register (socket activation fds), register-pid,
 * unregister, socket validation, SO_REUSEPORT, re-registration under load.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { launchRegister } from '../helpers/launch.js';
import { ROOT } from '../helpers/env.js';
import { nextLine } from '../helpers/wait.js';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('reg');
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.80', '80']);
  ctx.env.ok(['bind', 'alpha', 'tcp', '192.0.2.1', '0']);
  ctx.env.ok(['bind', 'beta', 'udp', '192.0.2.2', '53']);
  ctx.env.ok(['bind', 'gamma', 'tcp', '2001:db8:1::3', '0']);
});
test.after(() => teardown(ctx));

const errCode = (r: { json: unknown }): string | undefined => (r.json as { error?: { code?: string } } | null)?.error?.code;

test('register: one fd under a label argument', async () => {
  const l = await launchRegister(ctx.env, { fds: [{ kind: 'tcp', name: 'ignored' }], args: ['register', 'web'] });
  try {
    assert.is(l.code, 0, l.stderr);
    assert.match(l.stdout, /^ipv4:tcp:web socket=\d+ created$/m);
    assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'ignored');
  } finally {
    l.stop();
  }
});

test('register: several fds labelled by LISTEN_FDNAMES, in any order', async () => {
  const fds = [
    { kind: 'tcp' as const, name: 'alpha' },
    { kind: 'udp' as const, name: 'beta' },
    { kind: 'tcp6' as const, name: 'gamma' },
  ];
  for (const order of [fds, [...fds].reverse()]) {
    const l = await launchRegister(ctx.env, { fds: order, args: ['register', '--json'] });
    try {
      assert.is(l.code, 0, l.stderr);
      const regs = l.json as { destination: string; action: string }[];
      assert.equal(regs.map((r) => r.destination).sort(), ['ipv4:tcp:alpha', 'ipv4:udp:beta', 'ipv6:tcp:gamma']);
      assert.is(await ctx.agent.who('tcp', '192.0.2.1', 1234), 'alpha');
      assert.is(await ctx.agent.who('udp', '192.0.2.2', 53), 'beta');
      assert.is(await ctx.agent.who('tcp', '2001:db8:1::3', 443), 'gamma');
    } finally {
      l.stop();
    }
  }
});

test('register: environment errors', async () => {
  const cases: { spec: Parameters<typeof launchRegister>[1]; code: string; exit: number; text: RegExp }[] = [
    { spec: { fds: [{ kind: 'tcp', name: 'x' }], args: ['register', '--json'], listenPid: '1' }, code: 'ERR_INVALID_ENV', exit: 2, text: /ExecStart= must exec manifold directly/ },
    { spec: { fds: [{ kind: 'tcp', name: 'x' }], args: ['register', '--json'], listenPid: null, listenFds: null }, code: 'ERR_NO_FDS', exit: 1, text: /LISTEN_FDS is not set/ },
    { spec: { fds: [{ kind: 'tcp', name: 'x' }], args: ['register', '--json'], listenFds: null }, code: 'ERR_NO_FDS', exit: 1, text: /LISTEN_FDS is not set/ },
    { spec: { fds: [{ kind: 'tcp', name: 'x' }], args: ['register', '--json'], listenFds: '0' }, code: 'ERR_NO_FDS', exit: 1, text: /LISTEN_FDS=0/ },
    { spec: { fds: [{ kind: 'tcp', name: 'x' }], args: ['register', '--json'], listenFds: 'three' }, code: 'ERR_INVALID_ENV', exit: 2, text: /LISTEN_FDS/ },
    { spec: { fds: [{ kind: 'tcp', name: 'bad name' }], args: ['register', '--json'] }, code: 'ERR_INVALID_LABEL', exit: 2, text: /not a valid label/ },
    { spec: { fds: [{ kind: 'tcp' }], args: ['register', '--json'] }, code: 'ERR_INVALID_ENV', exit: 2, text: /no name/ },
  ];
  for (const c of cases) {
    const before = JSON.stringify(status(ctx).destinations);
    const l = await launchRegister(ctx.env, c.spec);
    l.stop();
    assert.is(errCode(l), c.code, `${JSON.stringify(c.spec)}: ${l.stderr}`);
    assert.is(l.code, c.exit);
    assert.match(l.stderr, c.text);
    assert.is(JSON.stringify(status(ctx).destinations), before, 'nothing changed');
  }
});

test('register without LISTEN_PID takes LISTEN_FDS as tubectl does (a harness passing fds by hand); a LISTEN_PID of another process is still refused', async () => {
  const l = await launchRegister(ctx.env, { fds: [{ kind: 'tcp', name: 'nopid' }], args: ['register'], listenPid: null });
  try {
    assert.is(l.code, 0, l.stderr);
    assert.match(l.stdout, /^ipv4:tcp:nopid socket=\d+ created$/m);
    assert.ok(status(ctx).destinations.some((d) => d.label === 'nopid' && d.socket !== null), 'registered');
  } finally {
    l.stop();
  }
  const other = await launchRegister(ctx.env, { fds: [{ kind: 'tcp', name: 'nopid' }], args: ['register', '--json'], listenPid: '1' });
  other.stop();
  assert.is(errCode(other), 'ERR_INVALID_ENV', other.stderr);
});

test('register: every unsuitable socket is rejected and creates no destination', async () => {
  const kinds = ['file', 'closed', 'unix', 'dual6', 'connected-tcp', 'unlistened-tcp', 'connected-udp'] as const;
  for (const kind of kinds) {
    const before = status(ctx).destinations.map((d) => `${d.domain}:${d.protocol}:${d.label}`).sort();
    const fds = kind === 'closed' ? [{ kind: 'tcp' as const, name: 'rej' }, { kind: 'closed' as const, name: 'rej2' }] : [{ kind, name: 'rej' }];
    const l = await launchRegister(ctx.env, { fds, args: ['register', '--json'] });
    l.stop();
    assert.is(l.code, 1, `${kind}: ${l.stderr}`);
    assert.is(errCode(l), 'ERR_BAD_SOCKET', `${kind}: ${l.stderr}`);
    if (kind === 'unix') assert.match(l.stderr, /fd 3 \(rej\) is a unix socket, not an IPv4 or IPv6 socket: only those are steered \(a socket unit whose sockets manifold registers must listen on IP addresses only/);
    const after = status(ctx).destinations.map((d) => `${d.domain}:${d.protocol}:${d.label}`).sort();
    assert.equal(after, before, `${kind}: no destination created`);
  }
});

test('register-pid: high fd after a large gap, dup\'ed socket, pid file', async () => {
  const high = await ctx.agent.call('raw-listen-high', { host: '127.0.0.1', port: 9911, min: 3000 });
  assert.ok(Number(high.fd) >= 3000);
  ctx.env.ok(['bind', 'hi', 'tcp', '192.0.2.90', '80']);
  const r = ctx.env.ok(['register-pid', String(ctx.agent.pid), 'hi', 'tcp', '127.0.0.1', '9911', '--json']);
  assert.is((r.json as { action: string }).action, 'created');
  assert.is((r.json as { fd: number }).fd, Number(high.fd), "the process's fd, not manifold's copy of it");
  assert.equal(await ctx.agent.connect('tcp', '192.0.2.90', 80, { connectOnly: true }), { ok: true, data: 'connected' });

  const s = await ctx.agent.listen('tcp', '127.0.0.1', 9912, 'dupd');
  await ctx.agent.call('dup', { handle: s.handle, min: 500 });
  await ctx.agent.call('dup', { handle: s.handle, min: 700 });
  const pidFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mf-reg-')), 'agent.pid');
  fs.writeFileSync(pidFile, `${ctx.agent.pid}\n \n`);
  const r2 = ctx.env.ok(['register-pid', pidFile, 'web', 'tcp', '127.0.0.1', '9912', '--json']);
  const reg = r2.json as { destination: string; action: string };
  assert.is(reg.destination, 'ipv4:tcp:web');
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'dupd');
  fs.rmSync(path.dirname(pidFile), { recursive: true, force: true });
});

test('SO_REUSEPORT group registers once and the kernel spreads connections', async () => {
  ctx.env.ok(['bind', 'rp', 'tcp', '192.0.2.70', '80']);
  await ctx.agent.listen('tcp', '127.0.0.1', 9920, 'rp-a', { reusePort: true });
  await ctx.agent.listen('tcp', '127.0.0.1', 9920, 'rp-b', { reusePort: true });
  const r = ctx.env.ok(['register-pid', String(ctx.agent.pid), 'rp', 'tcp', '127.0.0.1', '9920', '--json']);
  assert.is((r.json as { destination: string }).destination, 'ipv4:tcp:rp');
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const who = await ctx.agent.who('tcp', '192.0.2.70', 80);
    seen.set(who, (seen.get(who) ?? 0) + 1);
  }
  assert.equal([...seen.keys()].sort(), ['rp-a', 'rp-b'], `spread: ${JSON.stringify([...seen])}`);
});

test('unregister refuses traffic until a socket is registered again', async () => {
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'dupd');
  const r = ctx.env.ok(['unregister', 'web', 'ipv4', 'tcp', '--json']);
  assert.ok((r.json as { cookie: string | null }).cookie);
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), '!ECONNREFUSED');
  assert.is(dest(status(ctx), 'web')?.socket, null);
  ctx.env.ok(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9912']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'dupd');
});

test('re-registration replaces the socket with no refused connection', async () => {
  const a = await ctx.agent.listen('tcp', '127.0.0.1', 9931, 'web');
  const b = await ctx.agent.listen('tcp', '127.0.0.1', 9932, 'web');
  ctx.env.ok(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', String(b.port)]);
  const loop = ctx.agent.call('loop', { host: '192.0.2.80', port: 80, durationMs: 60_000, expect: 'web' });
  let last = '';
  for (let i = 0; i < 6; i++) {
    const port = i % 2 ? b.port : a.port;
    const r = ctx.env.ok(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', String(port), '--json']);
    last = (r.json as { action: string }).action;
  }
  await ctx.agent.call('stop');
  const res = (await loop) as { ok: number; failed: number; errors: Record<string, number> };
  assert.is(last, 'replaced');
  assert.is(res.failed, 0, JSON.stringify(res.errors));
  assert.ok(res.ok > 5);
});

test('IPv6 TCP and UDP through register-pid', async () => {
  ctx.env.ok(['bind', 'six', 'tcp', '2001:db8:1::/64', '8443']);
  ctx.env.ok(['bind', 'six', 'udp', '2001:db8:1::/64', '8443']);
  await serve(ctx, 'six', 'tcp', '2001:db8::1', 9941);
  await serve(ctx, 'six', 'udp', '2001:db8::1', 9942);
  assert.is(await ctx.agent.who('tcp', '2001:db8:1::77', 8443), 'six');
  assert.is(await ctx.agent.who('udp', '2001:db8:1::77', 8443), 'six');
});

test('UDP round trip: a connected client gets the reply from the steered address', async () => {
  ctx.env.ok(['bind', 'echo', 'udp', '127.0.0.0/8', '5353']);
  const child = ctx.env.spawn(process.execPath, [path.join(ROOT, 'build', 'examples', 'echo-server.js'), '127.0.0.1', '9953'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await nextLine(readline.createInterface({ input: child.stdout! }), 30_000, 'the ready line of examples/echo-server.js', child);
    assert.match(line, /^ready /);
    ctx.env.ok(['register-pid', String(child.pid), 'echo', 'udp', '127.0.0.1', '9953']);
    const r = await ctx.agent.connect('udp', '127.0.0.23', 5353, { connected: true });
    assert.ok(r.ok, `reply received by a connected socket: ${JSON.stringify(r)}`);
    assert.is(r.data, 'ping');
    assert.is(r.from, '127.0.0.23:5353');
  } finally {
    child.kill('SIGKILL');
  }
});

test('register-pid of a thread id is refused with the process id to give; nothing changes', () => {
  const before = ctx.env.ok(['status', '--json']).stdout;
  const tid = fs.readdirSync(`/proc/${ctx.agent.pid}/task`).map(Number).find((t) => t !== ctx.agent.pid);
  assert.ok(tid, 'the agent (node) has threads');
  const r = ctx.env.cli(['register-pid', String(tid), 'web', 'tcp', '127.0.0.1', '9912', '--json']);
  assert.is(r.code, 2, r.stderr);
  assert.is(errCode(r), 'ERR_INVALID_PID');
  assert.match(r.stderr, `${tid} is a thread of process ${ctx.agent.pid}, not a process: give the process id (${ctx.agent.pid})`);
  assert.is(ctx.env.ok(['status', '--json']).stdout, before);
});

test.run();
