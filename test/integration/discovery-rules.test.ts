/**
 * Listener discovery with real TCP and UDP traffic, IPv4 and IPv6: the three
 * rules of the bpf-inet-lookup-manager seed implemented by the test
 * dispatcher (test/fixtures/bpf/discovery-dispatch.bpf.c) on top of
 * bpf/discovery.h, in a test namespace, with discovery attached to a test
 * cgroup whose processes create every server socket.
 *
 *   1. a socket listens exactly on the destination (or a covering wildcard) -> it gets it
 *   2. else the port's target address: the socket listening there gets it
 *   3. else refused, except traffic addressed to the target itself
 */
import type { ChildProcess } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestEnv } from '../helpers/env.js';
import type { Agent } from '../helpers/agent-client.js';
import { agentIn, compileFixture, eventually, startWatcher, target, TestCgroup, TestDispatcher } from '../helpers/discovery.js';

let env: TestEnv;
let cg: TestCgroup;
let srv: Agent;
let cli: Agent;
let disp: TestDispatcher;
let watcher: ChildProcess | null = null;
const inCgroup: number[] = [];

async function who(proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = proto === 'udp' ? 600 : 2000): Promise<string> {
  const r = await cli.connect(proto, host, port, { timeoutMs });
  return r.ok ? String(r.data) : `!${r.code}`;
}

test.before(async () => {
  try {
    await setUp();
  } catch (err) {
    // uvu does not report a failing hook: say why before every test fails.
    console.error('set-up failed:', err);
    throw err;
  }
});

async function setUp(): Promise<void> {
  env = TestEnv.create('disc-rules');
  cg = TestCgroup.create('disc-rules');
  // IPv6 sockets bind only to configured addresses (fd00::/8 is routed locally).
  for (const a of ['fd00::5', 'fd00::9']) env.ip('-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad');
  process.once('exit', () => {
    env.destroy();
    cg.destroy(inCgroup);
  });
  srv = await agentIn(env, cg);
  inCgroup.push(srv.pid);
  cli = await agentIn(env, null);
  // Sockets that exist before discovery is enabled.
  await srv.listen('tcp', '127.0.0.9', 7101, 'E-pre');
  await srv.listen('tcp', '127.0.0.5', 7101, 'T-pre');
  await srv.listen('udp', '127.0.0.9', 7102, 'EU-pre');
  await srv.listen('udp', '127.0.0.5', 7102, 'TU-pre');
  await srv.listen('tcp', 'fd00::9', 7103, 'E6-pre');
  await srv.listen('tcp', 'fd00::5', 7103, 'T6-pre');
  const r = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(r.code, 0, r.stderr);
  const seed = (r.json as { seed: { indexed: { tcp: number; udp: number }; method: string } }).seed;
  assert.is(seed.method, 'iterators');
  assert.is(seed.indexed.tcp, 4, 'the four listeners created in the cgroup before enable are seeded');
  assert.is(seed.indexed.udp, 2, 'the two UDP sockets are seeded');
  disp = TestDispatcher.attach(env, env.bpffs, compileFixture('discovery-dispatch'));
  for (const proto of ['tcp', 'udp'] as const) {
    target(env, env.bpffs, proto, '127.0.0.5');
    target(env, env.bpffs, proto, 'fd00::5');
  }
  watcher = await startWatcher(env);
}

test.after(() => {
  watcher?.kill('SIGTERM');
  disp?.close();
  srv?.stop();
  cli?.stop();
  env.cli(['discovery', 'disable']);
  env.destroy();
  cg.destroy(inCgroup);
});

test('sockets that existed before enable: exact listener first, then the target, TCP v4', async () => {
  disp.map('tcp', 7101, '127.0.0.5');
  assert.is(await who('tcp', '127.0.0.9', 7101), 'E-pre', 'rule 1: the exact listener keeps its traffic');
  assert.is(await who('tcp', '127.0.0.7', 7101), 'T-pre', 'rule 2: nobody on 127.0.0.7 -> the target');
  assert.is(await who('tcp', '127.0.0.5', 7101), 'T-pre', 'the target address itself');
});

test('sockets that existed before enable: UDP v4 and TCP v6', async () => {
  disp.map('udp', 7102, '127.0.0.5');
  assert.is(await who('udp', '127.0.0.9', 7102), 'EU-pre');
  assert.is(await who('udp', '127.0.0.7', 7102), 'TU-pre');
  disp.map('tcp', 7103, 'fd00::5');
  assert.is(await who('tcp', 'fd00::9', 7103), 'E6-pre');
  assert.is(await who('tcp', 'fd00::7', 7103), 'T6-pre');
});

for (const [proto, fam, tgt, exact, other] of [
  ['tcp', 'ipv4', '127.0.0.5', '127.0.0.9', '127.0.0.7'],
  ['udp', 'ipv4', '127.0.0.5', '127.0.0.9', '127.0.0.7'],
  ['tcp', 'ipv6', 'fd00::5', 'fd00::9', 'fd00::7'],
  ['udp', 'ipv6', 'fd00::5', 'fd00::9', 'fd00::7'],
] as const) {
  test(`the three rules with sockets opened after enable: ${proto} ${fam}`, async () => {
    const port = 7200 + (proto === 'udp' ? 10 : 0) + (fam === 'ipv6' ? 1 : 0);
    const refused = proto === 'tcp' ? '!ECONNREFUSED' : '!TIMEOUT';
    disp.map(proto, port, tgt);
    assert.is(await who(proto, other, port), refused, 'rule 3: no target socket yet -> refused');
    const t = await srv.listen(proto, tgt, port, 'T');
    if (proto === 'udp') assert.ok(await eventually(async () => (await who(proto, other, port, 200)) === 'T'), 'the watcher registers the new UDP target');
    assert.is(await who(proto, other, port), 'T', 'rule 2: redirected to the target');
    assert.is(await who(proto, tgt, port), 'T', 'the target address itself');
    const e = await srv.listen(proto, exact, port, 'E');
    assert.is(await who(proto, exact, port), 'E', 'rule 1: an explicit listener wins at once');
    assert.is(await who(proto, other, port), 'T', 'other addresses still go to the target');
    await srv.call('close', { handle: e.handle });
    assert.is(await who(proto, exact, port), 'T', 'the explicit listener closed: its address goes to the target');
    await srv.call('close', { handle: t.handle });
    assert.is(await who(proto, other, port), refused, 'target closed: refused');
    assert.is(await who(proto, tgt, port), refused, 'target address: the kernel finds nothing');
    const t2 = await srv.listen(proto, tgt, port, 'T2');
    if (proto === 'udp') assert.ok(await eventually(async () => (await who(proto, other, port, 200)) === 'T2'), 'restarted UDP target registered by the watcher');
    assert.is(await who(proto, other, port), 'T2', 'a restarted target is reached with no command');
    await srv.call('close', { handle: t2.handle });
  });
}

// Linux refuses a wildcard listener and a specific one on the same port
// (EADDRINUSE), so these targets listen on a fixed port of their own.
test('wildcard listeners: 0.0.0.0 covers IPv4 only, v6only [::] covers IPv6 only, dual-stack [::] both', async () => {
  disp.map('tcp', 7401, '127.0.0.5', 7411);
  disp.map('tcp', 7401, 'fd00::5', 7411);
  const t4 = await srv.listen('tcp', '127.0.0.5', 7411, 'T4');
  const t6 = await srv.listen('tcp', 'fd00::5', 7411, 'T6');
  assert.is(await who('tcp', '127.0.0.7', 7401), 'T4');
  assert.is(await who('tcp', 'fd00::7', 7401), 'T6');
  const w = await srv.listen('tcp', '0.0.0.0', 7401, 'W4');
  assert.is(await who('tcp', '127.0.0.7', 7401), 'W4', '0.0.0.0 listens on 127.0.0.7: rule 1');
  assert.is(await who('tcp', 'fd00::7', 7401), 'T6', '0.0.0.0 does not cover IPv6');
  await srv.call('close', { handle: w.handle });
  const n6 = await srv.listen('tcp', '::', 7401, 'N6', { v6only: true });
  assert.is(await who('tcp', '127.0.0.7', 7401), 'T4', 'a v6only [::] listener does not hide IPv4 traffic');
  assert.is(await who('tcp', 'fd00::7', 7401), 'N6', 'it covers IPv6');
  await srv.call('close', { handle: n6.handle });
  const d = await srv.listen('tcp', '::', 7401, 'D', { v6only: false });
  assert.is(await who('tcp', '127.0.0.7', 7401), 'D', 'a dual-stack [::] listener covers IPv4');
  assert.is(await who('tcp', 'fd00::7', 7401), 'D', 'and IPv6');
  await srv.call('close', { handle: d.handle });
  assert.is(await who('tcp', '127.0.0.7', 7401), 'T4');
  assert.is(await who('tcp', 'fd00::7', 7401), 'T6');
  for (const h of [t4, t6]) await srv.call('close', { handle: h.handle });
});

test('UDP wildcards: 0.0.0.0, v6only and dual-stack [::]', async () => {
  disp.map('udp', 7402, '127.0.0.5', 7412);
  disp.map('udp', 7402, 'fd00::5', 7412);
  const t4 = await srv.listen('udp', '127.0.0.5', 7412, 'U4');
  const t6 = await srv.listen('udp', 'fd00::5', 7412, 'U6');
  assert.ok(await eventually(async () => (await who('udp', '127.0.0.7', 7402, 200)) === 'U4'));
  assert.ok(await eventually(async () => (await who('udp', 'fd00::7', 7402, 200)) === 'U6'));
  const n6 = await srv.listen('udp', '::', 7402, 'N6', { v6only: true });
  assert.is(await who('udp', '127.0.0.7', 7402), 'U4', 'v6only [::] does not cover IPv4');
  assert.is(await who('udp', 'fd00::7', 7402), 'N6');
  await srv.call('close', { handle: n6.handle });
  const w = await srv.listen('udp', '0.0.0.0', 7402, 'W4');
  assert.is(await who('udp', '127.0.0.7', 7402), 'W4', '0.0.0.0 covers IPv4');
  assert.is(await who('udp', 'fd00::7', 7402), 'U6');
  await srv.call('close', { handle: w.handle });
  const d = await srv.listen('udp', '::', 7402, 'D', { v6only: false });
  assert.is(await who('udp', '127.0.0.7', 7402), 'D', 'dual-stack [::] covers IPv4');
  assert.is(await who('udp', 'fd00::7', 7402), 'D');
  for (const h of [d, t4, t6]) await srv.call('close', { handle: h.handle });
});

test('a fixed target port: every connection to the mapped port reaches the target at its own port', async () => {
  disp.map('tcp', 7501, '127.0.0.5', 7502);
  const t = await srv.listen('tcp', '127.0.0.5', 7502, 'F');
  assert.is(await who('tcp', '127.0.0.7', 7501), 'F');
  assert.is(await who('tcp', '127.0.0.9', 7501), 'F');
  assert.is(await who('tcp', '127.0.0.5', 7501), 'F', 'the target address at another port is not the target itself');
  await srv.call('close', { handle: t.handle });
  assert.is(await who('tcp', '127.0.0.5', 7501), '!ECONNREFUSED');
});

test('unmapped ports are not managed; counters of the test dispatcher add up', async () => {
  await srv.listen('tcp', '127.0.0.9', 7601, 'plain');
  assert.is(await who('tcp', '127.0.0.9', 7601), 'plain');
  assert.is(await who('tcp', '127.0.0.7', 7601), '!ECONNREFUSED');
  const s = disp.stats();
  assert.ok(s.unmanaged >= 2, 'unmapped lookups pass untouched');
  assert.ok(s.exact > 0 && s.redirect > 0 && s.drop > 0 && s.own > 0, JSON.stringify(s));
  assert.is(s.inactive, 0);
  assert.is(s.assignErr, 0);
});

test.run();
