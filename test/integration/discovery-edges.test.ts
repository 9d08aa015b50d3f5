/**
 * Listener discovery edge cases with real traffic: reuseport groups,
 * sockets of another network namespace, shutdown() without close(), the
 * first UDP datagram after a bind, and the cgroup a socket is created in.
 */
import type { ChildProcess } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestEnv } from '../helpers/env.js';
import type { Agent } from '../helpers/agent-client.js';
import { agentIn, compileFixture, eventually, startWatcher, target, TestCgroup, TestDispatcher } from '../helpers/discovery.js';
import { netnsCookie } from '../../src/sys/netns.js';

let envA: TestEnv;
let envB: TestEnv;
let cg: TestCgroup;
let cg2: TestCgroup;
let srv: Agent;
let cli: Agent;
let srvB: Agent;
let disp: TestDispatcher;
let watcher: ChildProcess | null = null;
const ours: number[] = [];
let seededRaw: { handle: number } | null = null;

async function who(proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = proto === 'udp' ? 600 : 1000): Promise<string> {
  const r = await cli.connect(proto, host, port, { timeoutMs });
  return r.ok ? String(r.data) : `!${r.code}`;
}

interface TargetDoc { netns: string; protocol: string; address: string; sockets: { port: number; cookie: string; registered: boolean }[] }
function targets(): TargetDoc[] {
  return (envA.ok(['discovery', 'status', '--json']).json as { targets: TargetDoc[] }).targets;
}

async function setUp(): Promise<void> {
  envA = TestEnv.create('disc-edge');
  envB = TestEnv.create('disc-edgb');
  cg = TestCgroup.create('disc-edge');
  cg2 = TestCgroup.create('disc-edg2');
  process.once('exit', () => {
    envA.destroy();
    envB.destroy();
    cg.destroy(ours);
    cg2.destroy(ours);
  });
  srv = await agentIn(envA, cg);
  srvB = await agentIn(envB, cg);
  ours.push(srv.pid, srvB.pid);
  cli = await agentIn(envA, null);
  // A listener that exists before enable, to be shut down later.
  seededRaw = (await srv.call('raw-listen', { host: '127.0.0.9', port: 7903 })) as { handle: number };
  const r = envA.cli(['discovery', 'enable', '--cgroup', cg.path]);
  assert.is(r.code, 0, r.stderr);
  disp = TestDispatcher.attach(envA, envA.bpffs, compileFixture('discovery-dispatch'));
  for (const env of [envA, envB]) for (const proto of ['tcp', 'udp'] as const) target(env, envA.bpffs, proto, '127.0.0.5');
  watcher = await startWatcher(envA);
}

test.before(async () => {
  try {
    await setUp();
  } catch (err) {
    console.error('set-up failed:', err);
    throw err;
  }
});

test.after(() => {
  watcher?.kill('SIGTERM');
  disp?.close();
  for (const a of [srv, cli, srvB]) a?.stop();
  envA.cli(['discovery', 'disable']);
  envA.destroy();
  envB.destroy();
  cg.destroy(ours);
  cg2.destroy(ours);
});

test('reuseport target group: traffic spreads over the members, and closing the one in slot 0 keeps the group reachable', async () => {
  disp.map('tcp', 7701, '127.0.0.5');
  const r1 = await srv.listen('tcp', '127.0.0.5', 7701, 'R1', { reusePort: true });
  const r2 = await srv.listen('tcp', '127.0.0.5', 7701, 'R2', { reusePort: true });
  const t = targets().find((x) => x.address === '127.0.0.5' && x.protocol === 'tcp' && x.netns === String(netnsCookie(envA.netnsPath)));
  assert.is(t?.sockets.filter((s) => s.port === 7701 && s.registered).length, 2, 'both members are in the SOCKHASH (one slot each)');
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add(await who('tcp', '127.0.0.7', 7701));
  assert.equal([...seen].sort(), ['R1', 'R2'], 'the kernel balances the group after bpf_sk_assign');
  await srv.call('close', { handle: r1.handle });
  for (let i = 0; i < 20; i++) assert.is(await who('tcp', '127.0.0.7', 7701), 'R2', `connection ${i} after R1 closed`);
  await srv.call('close', { handle: r2.handle });
  assert.is(await who('tcp', '127.0.0.7', 7701), '!ECONNREFUSED');
});

test('reuseport group on an explicit address: closing the first member keeps the address explicit', async () => {
  disp.map('tcp', 7702, '127.0.0.5');
  const t = await srv.listen('tcp', '127.0.0.5', 7702, 'T');
  const e1 = await srv.listen('tcp', '127.0.0.9', 7702, 'E1', { reusePort: true });
  const e2 = await srv.listen('tcp', '127.0.0.9', 7702, 'E2', { reusePort: true });
  await srv.call('close', { handle: e1.handle });
  for (let i = 0; i < 10; i++) assert.is(await who('tcp', '127.0.0.9', 7702), 'E2', 'never redirected while a member listens');
  await srv.call('close', { handle: e2.handle });
  assert.is(await who('tcp', '127.0.0.9', 7702), 'T');
  await srv.call('close', { handle: t.handle });
});

function counters(): { overflow: number; target_full: number } {
  return (envA.ok(['discovery', 'status', '--json']).json as { counters: { overflow: number; target_full: number } }).counters;
}

test('more sockets on one address and port than index slots: the overflow keeps them explicit, never silently', async () => {
  disp.map('tcp', 8201, '127.0.0.5');
  const t = await srv.listen('tcp', '127.0.0.5', 8201, 'T');
  const before = counters();
  const members: { handle: number }[] = [];
  for (let i = 0; i < 18; i++) members.push((await srv.call('raw-listen', { host: '127.0.0.9', port: 8201, reusePort: true })) as { handle: number });
  assert.is(counters().overflow - before.overflow, 2, '16 slots, 2 in disc_overflow');
  for (const m of members.slice(0, 16)) await srv.call('close', { handle: m.handle });
  assert.is(await who('tcp', '127.0.0.9', 8201, 500), '!TIMEOUT', 'the two overflow members still make the address explicit');
  for (const m of members.slice(16)) await srv.call('close', { handle: m.handle });
  assert.is(await who('tcp', '127.0.0.9', 8201), 'T', 'all closed: redirected');
  await srv.call('close', { handle: t.handle });
});

test('a target reuseport group larger than its 8 slots: the rest is counted (target_full)', async () => {
  disp.map('tcp', 8202, '127.0.0.5');
  const before = counters();
  const members: { handle: number }[] = [];
  for (let i = 0; i < 10; i++) members.push((await srv.call('raw-listen', { host: '127.0.0.5', port: 8202, reusePort: true })) as { handle: number });
  assert.is(counters().target_full - before.target_full, 2);
  const t = targets().find((x) => x.address === '127.0.0.5' && x.protocol === 'tcp' && x.netns === String(netnsCookie(envA.netnsPath)));
  const socks = t?.sockets.filter((s) => s.port === 8202) ?? [];
  assert.is(socks.length, 10, 'all ten indexed');
  assert.is(socks.filter((s) => s.registered).length, 8, 'eight in the SOCKHASH');
  assert.is(await who('tcp', '127.0.0.7', 8202, 500), '!TIMEOUT', 'redirected into the group');
  for (const m of members) await srv.call('close', { handle: m.handle });
});

test('a socket of another network namespace is never used (TCP and UDP, targets and explicit listeners)', async () => {
  disp.map('tcp', 7801, '127.0.0.5');
  disp.map('udp', 7801, '127.0.0.5');
  await srvB.listen('tcp', '127.0.0.5', 7801, 'B-T');
  await srvB.listen('udp', '127.0.0.5', 7801, 'B-U');
  const cookieB = String(netnsCookie(envB.netnsPath));
  assert.ok(await eventually(() => targets().some((x) => x.netns === cookieB && x.protocol === 'udp' && x.sockets.some((s) => s.port === 7801 && s.registered))),
    "namespace B's UDP target is registered");
  assert.ok(targets().some((x) => x.netns === cookieB && x.protocol === 'tcp' && x.sockets.some((s) => s.port === 7801 && s.registered)),
    "namespace B's TCP target is in the SOCKHASH, under B's cookie");
  assert.is(await who('tcp', '127.0.0.7', 7801), '!ECONNREFUSED', "A's dispatcher does not assign B's listener");
  assert.is(await who('udp', '127.0.0.7', 7801), '!TIMEOUT', "nor B's UDP socket");
  // An explicit listener of B does not count as explicit in A.
  disp.map('tcp', 7802, '127.0.0.5');
  const ta = await srv.listen('tcp', '127.0.0.5', 7802, 'A-T');
  await srvB.listen('tcp', '127.0.0.9', 7802, 'B-E');
  assert.is(await who('tcp', '127.0.0.9', 7802), 'A-T');
  await srv.call('close', { handle: ta.handle });
});

test('shutdown() without close(): an explicit listener stops counting at once', async () => {
  disp.map('tcp', 7901, '127.0.0.5');
  const t = await srv.listen('tcp', '127.0.0.5', 7901, 'T');
  const e = (await srv.call('raw-listen', { host: '127.0.0.9', port: 7901 })) as { handle: number };
  assert.is(await who('tcp', '127.0.0.9', 7901, 500), '!TIMEOUT', 'the raw listener accepts and never answers');
  await srv.call('shutdown', { handle: e.handle });
  assert.is(await who('tcp', '127.0.0.9', 7901), 'T', 'shut down (still open): the address goes to the target');
  await srv.call('close', { handle: e.handle });
  await srv.call('close', { handle: t.handle });
});

test('shutdown() without close(): a target that was shut down is not assigned; its successor is', async () => {
  disp.map('tcp', 7902, '127.0.0.5');
  const t = (await srv.call('raw-listen', { host: '127.0.0.5', port: 7902 })) as { handle: number };
  assert.is(await who('tcp', '127.0.0.7', 7902, 500), '!TIMEOUT', 'redirected to the raw target');
  await srv.call('shutdown', { handle: t.handle });
  assert.is(await who('tcp', '127.0.0.7', 7902), '!ECONNREFUSED', 'refused, not assigned to a closed socket');
  const t2 = await srv.listen('tcp', '127.0.0.5', 7902, 'T2');
  assert.is(await who('tcp', '127.0.0.7', 7902), 'T2');
  await srv.call('close', { handle: t2.handle });
  await srv.call('close', { handle: t.handle });
});

test('shutdown() of a listener that existed before enable (seeding enabled its STATE_CB, Linux >= 6.10)', async () => {
  disp.map('tcp', 7903, '127.0.0.5');
  const t = await srv.listen('tcp', '127.0.0.5', 7903, 'T');
  assert.is(await who('tcp', '127.0.0.9', 7903, 500), '!TIMEOUT', 'the seeded raw listener keeps its address');
  await srv.call('shutdown', { handle: seededRaw!.handle });
  assert.is(await who('tcp', '127.0.0.9', 7903), 'T');
  await srv.call('close', { handle: t.handle });
});

test('the first UDP datagram after a bind reaches the new socket (20 of 20)', async () => {
  disp.map('udp', 8001, '127.0.0.5');
  const t = await srv.listen('udp', '127.0.0.5', 8001, 'TU');
  assert.ok(await eventually(async () => (await who('udp', '127.0.0.7', 8001, 200)) === 'TU'));
  let got = 0;
  for (let i = 0; i < 20; i++) {
    const e = await srv.listen('udp', '127.0.0.9', 8001, `E${i}`);
    if ((await who('udp', '127.0.0.9', 8001)) === `E${i}`) got++;
    await srv.call('close', { handle: e.handle });
  }
  assert.is(got, 20, 'the index is updated before bind() returns');
  await srv.call('close', { handle: t.handle });
});

test('a restarted UDP target is registered by the watcher, with no command', async () => {
  disp.map('udp', 8002, '127.0.0.5');
  for (let i = 0; i < 5; i++) {
    const t = await srv.listen('udp', '127.0.0.5', 8002, `U${i}`);
    assert.ok(await eventually(async () => (await who('udp', '127.0.0.7', 8002, 100)) === `U${i}`, 3000), `generation ${i} reached`);
    await srv.call('close', { handle: t.handle });
  }
});

test('the cgroup where a socket is created counts, not where its process is now', async () => {
  disp.map('tcp', 8101, '127.0.0.5');
  const t = await srv.listen('tcp', '127.0.0.5', 8101, 'T');
  const mover = await agentIn(envA, cg);
  ours.push(mover.pid);
  try {
    await mover.listen('tcp', '127.0.0.9', 8101, 'M-in');
    cg2.add(mover.pid);
    await mover.listen('tcp', '127.0.0.8', 8101, 'M-out');
    assert.is(await who('tcp', '127.0.0.9', 8101), 'M-in', 'created inside the cgroup: indexed, still explicit after the move');
    assert.is(await who('tcp', '127.0.0.8', 8101), 'T', 'created after moving out: invisible, so its address is redirected (attach at the root cgroup)');
  } finally {
    mover.stop();
    await srv.call('close', { handle: t.handle });
  }
});

test.run();
