/**
 * Address targets and "explicit listeners first" through manifold's REAL
 * dispatcher, with real TCP and UDP traffic, IPv4 and IPv6, in a test
 * namespace; listener discovery is attached to a cgroup the test creates,
 * whose processes create every server socket. The seed's three rules:
 *
 *   1. a socket bound exactly to the destination (or a covering wildcard)
 *      gets it (policy explicit-first on);
 *   2. else the binding's label's target: the socket bound to its address
 *      gets it, at the connection's port or a fixed one;
 *   3. else refused, except traffic addressed to the target itself.
 *
 * The dispatcher is loaded before discovery is enabled (enable upgrades it
 * to discovery's maps); a second namespace loads after.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestEnv } from '../helpers/env.js';
import type { Agent } from '../helpers/agent-client.js';
import { agentIn, eventually, startWatcher, TestCgroup } from '../helpers/discovery.js';

let env: TestEnv;
let cg: TestCgroup;
let srv: Agent;
let cli: Agent;
let watcher: ChildProcess | null = null;
const inCgroup: number[] = [];

async function who(proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = proto === 'udp' ? 600 : 2000): Promise<string> {
  const r = await cli.connect(proto, host, port, { timeoutMs });
  return r.ok ? String(r.data) : `!${r.code}`;
}

interface Dest {
  label: string; domain: string; protocol: string; servedBy: string; socket: string | null;
  target: { address: string; port: number | null; present: boolean | null; sockets: { port: number; registered: boolean }[] | null } | null;
  bindings: number; lookups: number; misses: number; deferred: number; redirected: number; noTarget: number; targetOwn: number;
}
interface Status { destinations: Dest[]; namespace: { explicitFirst: boolean; deferred: number; discovery: { enabled: boolean; active: boolean } | null }; warnings: { kind: string; message: string }[] }

function status(e: TestEnv = env): Status {
  return e.ok(['status', '--json']).json as Status;
}

function dest(label: string, protocol: string, domain = 'ipv4', e: TestEnv = env): Dest {
  const d = status(e).destinations.find((x) => x.label === label && x.protocol === protocol && x.domain === domain);
  assert.ok(d, `destination ${domain}:${protocol}:${label}`);
  return d!;
}

async function setUp(): Promise<void> {
  env = TestEnv.create('targets');
  cg = TestCgroup.create('targets');
  for (const a of ['fd00::5', 'fd00::6', 'fd00::9']) env.ip('-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad');
  process.once('exit', () => {
    env.destroy();
    cg.destroy(inCgroup);
  });
  srv = await agentIn(env, cg);
  inCgroup.push(srv.pid);
  cli = await agentIn(env, null);
  // Sockets that exist before discovery is enabled and before the target is set.
  await srv.listen('tcp', '127.0.0.9', 7101, 'E-pre');
  await srv.listen('tcp', '127.0.0.5', 7101, 'T-pre');
  await srv.listen('udp', '127.0.0.9', 7102, 'EU-pre');
  await srv.listen('udp', '127.0.0.5', 7102, 'TU-pre');
  env.ok(['load']);
  const r = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(r.code, 0, r.stderr);
  const doc = r.json as { dispatchers: { netnsIno: number; discovery: boolean; error: string | null }[] };
  assert.is(doc.dispatchers.length, 1, 'enable found the loaded dispatcher');
  assert.is(doc.dispatchers[0]!.discovery, true, `enable moved it to discovery's maps: ${doc.dispatchers[0]!.error}`);
  watcher = await startWatcher(env);
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
  srv?.stop();
  cli?.stop();
  env.cli(['discovery', 'disable']);
  env.cli(['unload']);
  env.destroy();
  cg.destroy(inCgroup);
});

test('target and policy commands: output, JSON, status', () => {
  const r = env.ok(['target', 'web', '127.0.0.5', '--json']).json as { changes: { destination: string; action: string; address: string; port: number | null }[]; discovery: boolean };
  assert.is(r.discovery, true);
  assert.equal(r.changes.map((c) => `${c.destination} ${c.action} ${c.address} ${c.port}`), ['ipv4:tcp:web created 127.0.0.5 null', 'ipv4:udp:web created 127.0.0.5 null']);
  assert.equal((env.ok(['target', 'web', '127.0.0.5', '--json']).json as { changes: { action: string }[] }).changes.map((c) => c.action), ['unchanged', 'unchanged']);
  assert.is(env.ok(['policy']).stdout.trim(), 'explicit-first off');
  assert.is(env.ok(['policy', 'explicit-first', 'on']).stdout.trim(), 'explicit-first on');
  assert.equal(env.ok(['policy', '--json']).json, { explicitFirst: true });
  const st = status();
  assert.is(st.namespace.explicitFirst, true);
  assert.equal(st.namespace.discovery, { enabled: true, active: true });
  const web = dest('web', 'tcp');
  assert.is(web.servedBy, 'target');
  assert.is(web.socket, null);
  assert.is(web.target?.address, '127.0.0.5');
  assert.is(web.target?.port, null);
  assert.is(web.target?.present, true, 'the listener that existed before the target was registered');
  // Bad input changes nothing.
  for (const [args, code] of [
    [['target', 'web', '0.0.0.0'], 'ERR_INVALID_PREFIX'],
    [['target', 'web', '::ffff:127.0.0.5'], 'ERR_INVALID_PREFIX'],
    [['target', 'web', '127.0.0.5', '0'], 'ERR_INVALID_PORT'],
    [['target', 'web', '127.0.0.5', '70000'], 'ERR_INVALID_PORT'],
    [['target', 'web', '127.0.0.5', '--protocol', 'sctp'], 'ERR_INVALID_PROTOCOL'],
    [['target', 'bad\u001blabel', '127.0.0.5'], 'ERR_INVALID_LABEL'],
    [['untarget', 'nobody'], 'ERR_NOT_FOUND'],
    [['policy', 'explicit-first', 'maybe'], 'ERR_USAGE'],
    [['policy', 'everything', 'on'], 'ERR_USAGE'],
  ] as const) {
    const x = env.cli([...args, '--json']);
    assert.is.not(x.code, 0, args.join(' '));
    assert.is((x.json as { error: { code: string } }).error.code, code, `${args.join(' ')}: ${x.stderr}`);
  }
  assert.equal(status().destinations.filter((d) => d.label === 'web').map((d) => `${d.protocol} ${d.target?.address}`), ['tcp 127.0.0.5', 'udp 127.0.0.5']);
});

test('sockets that existed before enable and before the target: the three rules, TCP and UDP', async () => {
  env.ok(['bind', 'web', 'tcp', '127.0.0.0/8', '7101']);
  env.ok(['bind', 'web', 'udp', '127.0.0.0/8', '7102']);
  assert.is(await who('tcp', '127.0.0.9', 7101), 'E-pre', 'rule 1: the explicit listener keeps its traffic');
  assert.is(await who('tcp', '127.0.0.7', 7101), 'T-pre', 'rule 2: nobody on 127.0.0.7 -> the target');
  assert.is(await who('tcp', '127.0.0.5', 7101), 'T-pre', 'the target address itself (its own explicit listener: deferred)');
  assert.is(await who('udp', '127.0.0.9', 7102), 'EU-pre');
  assert.is(await who('udp', '127.0.0.7', 7102), 'TU-pre');
  const web = dest('web', 'tcp');
  assert.equal([web.deferred, web.redirected, web.noTarget, web.lookups, web.misses], [2, 1, 0, 3, 0], JSON.stringify(web));
  const webU = dest('web', 'udp');
  assert.equal([webU.deferred, webU.redirected], [1, 1], JSON.stringify(webU));
  assert.ok(status().namespace.deferred >= 2, 'the namespace counts every deferral');
  // lookup answers as the kernel does, for each rule, and counts nothing.
  const before = JSON.stringify(dest('web', 'tcp'));
  type Look = { outcome: string; agrees: boolean; explicitFirst: boolean; kernel: { socket: string | null }; destination: { target: string | null } | null };
  const look = (addr: string): Look => env.ok(['lookup', 'tcp', addr, '7101', '--json']).json as Look;
  const explicit = look('127.0.0.9');
  assert.ok(explicit.agrees && explicit.explicitFirst, JSON.stringify(explicit));
  assert.match(explicit.outcome, /explicit-first/);
  const redirected = look('127.0.0.7');
  assert.ok(redirected.agrees, JSON.stringify(redirected));
  assert.match(redirected.outcome, /redirected to the socket listening on the target 127\.0\.0\.5/);
  assert.ok(redirected.kernel.socket !== null);
  assert.is(redirected.destination?.target, '127.0.0.5');
  assert.is(JSON.stringify(dest('web', 'tcp')), before, 'lookup moved no counter');
});

for (const [proto, fam, tgt, exact, other, prefix] of [
  ['tcp', 'ipv4', '127.0.0.6', '127.0.0.9', '127.0.0.7', '127.0.0.0/8'],
  ['udp', 'ipv4', '127.0.0.6', '127.0.0.9', '127.0.0.7', '127.0.0.0/8'],
  ['tcp', 'ipv6', 'fd00::6', 'fd00::9', 'fd00::7', 'fd00::/16'],
  ['udp', 'ipv6', 'fd00::6', 'fd00::9', 'fd00::7', 'fd00::/16'],
] as const) {
  test(`the three rules with sockets opened after the target: ${proto} ${fam}; a restarted target needs no command`, async () => {
    const port = 7200 + (proto === 'udp' ? 10 : 0) + (fam === 'ipv6' ? 1 : 0);
    const label = `r-${proto}-${fam}`;
    const refused = proto === 'tcp' ? '!ECONNREFUSED' : '!TIMEOUT';
    env.ok(['target', label, tgt, '--protocol', proto]);
    env.ok(['bind', label, proto, prefix, String(port)]);
    assert.is(await who(proto, other, port), refused, 'rule 3: no target socket yet -> refused');
    const before = dest(label, proto, fam);
    assert.ok(before.noTarget >= 1, 'counted as no-target');
    assert.is(before.target?.present, false);
    assert.ok(status().warnings.some((w) => w.kind === 'no_target_socket' && w.message.includes(label)), 'status warns');
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
    const t2 = await srv.listen(proto, tgt, port, 'T2');
    if (proto === 'udp') assert.ok(await eventually(async () => (await who(proto, other, port, 200)) === 'T2'), 'restarted UDP target registered by the watcher');
    assert.is(await who(proto, other, port), 'T2', 'a restarted target is reached with no command');
    const d = dest(label, proto, fam);
    assert.ok(d.deferred >= 1 && d.redirected >= 3 && d.noTarget >= 2, JSON.stringify(d));
    assert.is(d.target?.present, true);
    await srv.call('close', { handle: t2.handle });
  });
}

test('a fixed target port; the target address at another port is not the target itself', async () => {
  env.ok(['target', 'fixed', '127.0.0.5', '7502', '--protocol', 'tcp']);
  env.ok(['bind', 'fixed', 'tcp', '127.0.0.0/8', '7501']);
  const t = await srv.listen('tcp', '127.0.0.5', 7502, 'F');
  assert.is(await who('tcp', '127.0.0.7', 7501), 'F');
  assert.is(await who('tcp', '127.0.0.5', 7501), 'F');
  assert.is(dest('fixed', 'tcp').target?.port, 7502);
  await srv.call('close', { handle: t.handle });
  assert.is(await who('tcp', '127.0.0.5', 7501), '!ECONNREFUSED');
});

test('explicit listeners win over a 0.0.0.0/0 all-ports binding only with the policy on', async () => {
  const sshd = await srv.listen('tcp', '127.0.0.1', 7622, 'sshd');
  env.ok(['target', 'all', '127.0.0.6', '7600', '--protocol', 'tcp']);
  const t = await srv.listen('tcp', '127.0.0.6', 7600, 'ALL');
  env.ok(['bind', 'all', 'tcp', '0.0.0.0/0', '0']);
  try {
    assert.is(await who('tcp', '127.0.0.1', 7622), 'sshd', 'the explicit listener keeps its port');
    assert.is(await who('tcp', '127.0.0.3', 7622), 'ALL', 'another address of its port goes to the target');
    assert.is(await who('tcp', '127.0.0.1', 7999), 'ALL', 'any other port goes to the target');
    assert.is(await who('tcp', '127.0.0.9', 7101), 'E-pre', 'the more specific binding still wins, and its explicit listener too');
    env.ok(['policy', 'explicit-first', 'off']);
    assert.is(await who('tcp', '127.0.0.1', 7622), 'ALL', 'policy off: the binding takes everything, as manifold did before');
    env.ok(['policy', 'explicit-first', 'on']);
    assert.is(await who('tcp', '127.0.0.1', 7622), 'sshd');
  } finally {
    env.ok(['unbind', 'all', 'tcp', '0.0.0.0/0', '0']);
    await srv.call('close', { handle: t.handle });
    await srv.call('close', { handle: sshd.handle });
  }
});

test('wildcards and v6only through the dispatcher: only sockets the kernel would give the connection to win', async () => {
  env.ok(['target', 'ws', '127.0.0.6', '7650', '--protocol', 'tcp']);
  env.ok(['target', 'ws', 'fd00::6', '7650', '--protocol', 'tcp']);
  env.ok(['bind', 'ws', 'tcp', '127.0.0.0/8', '7651-7653']);
  env.ok(['bind', 'ws', 'tcp', 'fd00::/16', '7651-7653']);
  const held = [
    await srv.listen('tcp', '127.0.0.6', 7650, 'W'),
    await srv.listen('tcp', 'fd00::6', 7650, 'W6'),
    await srv.listen('tcp', '::', 7651, 'V6ONLY', { v6only: true }),
    await srv.listen('tcp', '::', 7652, 'DUAL', { v6only: false }),
    await srv.listen('tcp', '0.0.0.0', 7653, 'ANY4'),
  ];
  try {
    assert.is(await who('tcp', '127.0.0.7', 7651), 'W', 'a v6only [::] listener does not take IPv4: the target does');
    assert.is(await who('tcp', 'fd00::7', 7651), 'V6ONLY', 'it takes IPv6');
    assert.is(await who('tcp', '127.0.0.7', 7652), 'DUAL', 'a dual-stack [::] listener covers IPv4');
    assert.is(await who('tcp', 'fd00::7', 7652), 'DUAL');
    assert.is(await who('tcp', '127.0.0.7', 7653), 'ANY4', 'a 0.0.0.0 listener covers IPv4');
    assert.is(await who('tcp', 'fd00::7', 7653), 'W6', 'but not IPv6');
  } finally {
    for (const h of held) await srv.call('close', { handle: h.handle });
  }
});

test('reuseport group as a target: every member serves, closing one keeps the group reachable', async () => {
  env.ok(['target', 'rp', '127.0.0.5', '--protocol', 'tcp']);
  env.ok(['bind', 'rp', 'tcp', '127.0.0.0/8', '7701']);
  const a = await srv.listen('tcp', '127.0.0.5', 7701, 'A', { reusePort: true });
  const b = await srv.listen('tcp', '127.0.0.5', 7701, 'B', { reusePort: true });
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(await who('tcp', '127.0.0.7', 7701));
  assert.equal([...seen].sort(), ['A', 'B'], 'the kernel balances the group after the assignment');
  await srv.call('close', { handle: a.handle });
  for (let i = 0; i < 5; i++) assert.is(await who('tcp', '127.0.0.7', 7701), 'B');
  await srv.call('close', { handle: b.handle });
});

test('shutdown() without close(): a shut-down explicit listener stops winning, a shut-down target is not assigned', async () => {
  env.ok(['target', 'sd', '127.0.0.5', '--protocol', 'tcp']);
  env.ok(['bind', 'sd', 'tcp', '127.0.0.0/8', '7801-7802']);
  const t = await srv.listen('tcp', '127.0.0.5', 7801, 'T');
  const e = (await srv.call('raw-listen', { host: '127.0.0.9', port: 7801 })) as { handle: number };
  assert.is(await who('tcp', '127.0.0.9', 7801, 500), '!TIMEOUT', 'the raw explicit listener keeps its address (it never answers)');
  await srv.call('shutdown', { handle: e.handle });
  assert.is(await who('tcp', '127.0.0.9', 7801), 'T', 'shut down (still open): the address goes to the target');
  const rt = (await srv.call('raw-listen', { host: '127.0.0.5', port: 7802 })) as { handle: number };
  assert.is(await who('tcp', '127.0.0.7', 7802, 500), '!TIMEOUT', 'redirected to the raw target');
  await srv.call('shutdown', { handle: rt.handle });
  assert.is(await who('tcp', '127.0.0.7', 7802), '!ECONNREFUSED', 'refused, not assigned to a shut-down socket');
  const t2 = await srv.listen('tcp', '127.0.0.5', 7802, 'T2');
  assert.is(await who('tcp', '127.0.0.7', 7802), 'T2', 'its successor is');
  for (const h of [t, e, rt, t2]) await srv.call('close', { handle: h.handle });
});

test('the first UDP datagram after a bind: to a new explicit listener, and to the target itself (20 of 20 each)', async () => {
  env.ok(['target', 'first', '127.0.0.5', '--protocol', 'udp']);
  env.ok(['bind', 'first', 'udp', '127.0.0.0/8', '7900-7920']);
  const t = await srv.listen('udp', '127.0.0.5', 7920, 'TU');
  assert.ok(await eventually(async () => (await who('udp', '127.0.0.7', 7920, 200)) === 'TU'));
  for (let i = 0; i < 20; i++) {
    const e = await srv.listen('udp', '127.0.0.9', 7920, `E${i}`);
    assert.is(await who('udp', '127.0.0.9', 7920), `E${i}`, `datagram ${i} to a new explicit listener (the index is updated inside bind())`);
    await srv.call('close', { handle: e.handle });
  }
  for (let i = 0; i < 20; i++) {
    const s = await srv.listen('udp', '127.0.0.5', 7900 + i, `U${i}`);
    assert.is(await who('udp', '127.0.0.5', 7900 + i), `U${i}`, `datagram ${i} to the target itself, right after its bind`);
    await srv.call('close', { handle: s.handle });
  }
  await srv.call('close', { handle: t.handle });
  const d = dest('first', 'udp');
  assert.ok(d.deferred >= 40, `with the policy on, traffic to a bound address is deferred: ${JSON.stringify(d)}`);
});

test('without the policy, traffic to the target itself passes (counted) before and after the watcher registered it', async () => {
  env.ok(['policy', 'explicit-first', 'off']);
  try {
    env.ok(['target', 'own', '127.0.0.5', '--protocol', 'udp']);
    env.ok(['bind', 'own', 'udp', '127.0.0.0/8', '7950-7959']);
    for (let i = 0; i < 10; i++) {
      const s = await srv.listen('udp', '127.0.0.5', 7950 + i, `O${i}`);
      assert.is(await who('udp', '127.0.0.5', 7950 + i), `O${i}`, `datagram ${i} to the target itself, right after its bind`);
      await srv.call('close', { handle: s.handle });
    }
    const d = dest('own', 'udp');
    assert.is(d.deferred, 0);
    assert.is(d.targetOwn + d.redirected, 10, JSON.stringify(d));
  } finally {
    env.ok(['policy', 'explicit-first', 'on']);
  }
});

test('registering a socket replaces a target and a target replaces a socket', async () => {
  env.ok(['target', 'swap', '127.0.0.5', '--protocol', 'tcp']);
  env.ok(['bind', 'swap', 'tcp', '198.51.100.0/24', '80']);
  const t = await srv.listen('tcp', '127.0.0.5', 80, 'TGT');
  const s = await cli.listen('tcp', '127.0.0.1', 7980, 'SOCK');
  assert.is(await who('tcp', '198.51.100.7', 80), 'TGT');
  const reg = env.ok(['register-pid', String(cli.pid), 'swap', 'tcp', '127.0.0.1', '7980', '--json']).json as { action: string; previousTarget: string };
  assert.equal([reg.action, reg.previousTarget], ['replaced', '127.0.0.5']);
  assert.is(await who('tcp', '198.51.100.7', 80), 'SOCK');
  assert.is(dest('swap', 'tcp').servedBy, 'socket');
  const back = env.ok(['target', 'swap', '127.0.0.5', '--protocol', 'tcp', '--json']).json as { changes: { action: string; previous: string }[] };
  assert.is(back.changes[0]!.action, 'replaced');
  assert.match(back.changes[0]!.previous, /^socket \d+$/);
  assert.is(await who('tcp', '198.51.100.7', 80), 'TGT');
  env.ok(['untarget', 'swap', '127.0.0.5']);
  assert.is(await who('tcp', '198.51.100.7', 80), '!ECONNREFUSED', 'untargeted: the binding refuses, like a destination without a socket');
  env.ok(['unbind', 'swap', 'tcp', '198.51.100.0/24', '80']);
  assert.not.ok(status().destinations.some((d) => d.label === 'swap'), 'no bindings and nothing serving it: collected');
  await srv.call('close', { handle: t.handle });
  await cli.call('close', { handle: s.handle });
});

test('a socket of another namespace on the target address is never used; a dispatcher loaded after enable uses discovery', async () => {
  const other = TestEnv.create('targetb');
  const srvB = await agentIn(other, cg);
  const cliB = await agentIn(other, null);
  inCgroup.push(srvB.pid);
  // Namespace B's dispatcher on the same bpffs as A's (where discovery is enabled).
  const inB = (args: string[]): void => {
    const r = env.cli([...args, '--netns', other.netnsPath, '--bpffs', env.bpffs], { global: false });
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  };
  try {
    inB(['load']);
    inB(['policy', 'explicit-first', 'on']);
    inB(['target', 'web', '127.0.0.5', '--protocol', 'tcp']);
    inB(['bind', 'web', 'tcp', '127.0.0.0/8', '7101']);
    const r = await cliB.connect('tcp', '127.0.0.7', 7101, { timeoutMs: 2000 });
    assert.is(r.ok ? String(r.data) : `!${r.code}`, '!ECONNREFUSED', "namespace A's T-pre on 127.0.0.5 is not namespace B's target");
    await srvB.listen('tcp', '127.0.0.5', 7101, 'B-T');
    const r2 = await cliB.connect('tcp', '127.0.0.7', 7101, { timeoutMs: 2000 });
    assert.is(r2.ok ? String(r2.data) : `!${r2.code}`, 'B-T', "B's own target");
    assert.is(await who('tcp', '127.0.0.7', 7101), 'T-pre', 'A still reaches its own');
    inB(['unload']);
  } finally {
    srvB.stop();
    cliB.stop();
    other.destroy();
  }
});

function programMaps(e: TestEnv): number[] {
  const dir = execFileSync('ls', [e.bpffs], { encoding: 'utf8' }).split('\n').find((n) => /^\d+_manifold$/.test(n));
  const info = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'pinned', `${e.bpffs}/${dir}/program`, '--json'], { encoding: 'utf8' })) as { map_ids: number[] };
  return info.map_ids;
}

function discoveryMapIds(e: TestEnv): number[] {
  const out: number[] = [];
  for (const name of ['disc_index', 'disc_filter', 'disc_overflow', 'disc_target_socks', 'disc_meta']) {
    out.push((JSON.parse(execFileSync('bpftool', ['map', 'show', 'pinned', `${e.bpffs}/manifold_discovery/${name}`, '--json'], { encoding: 'utf8' })) as { id: number }).id);
  }
  return out;
}

test('disable moves the dispatcher back to private maps and leaves nothing behind; enable again restores targets', async () => {
  const shared = discoveryMapIds(env);
  for (const id of shared) assert.ok(programMaps(env).includes(id), `the dispatcher uses discovery's map ${id}`);
  const d = env.ok(['discovery', 'disable', '--json']).json as { dispatchers: { discovery: boolean; error: string | null }[] };
  assert.equal(d.dispatchers.map((x) => [x.discovery, x.error]), [[false, null]]);
  const maps = programMaps(env);
  for (const id of shared) {
    assert.not.ok(maps.includes(id), `map ${id} no longer used`);
    // Freed once the last reference goes (the watcher exits on its own; the kernel frees programs after an RCU grace period).
    const gone = (): boolean => spawnSync('bpftool', ['map', 'show', 'id', String(id)], { stdio: 'ignore' }).status !== 0;
    assert.ok(await eventually(gone, 5000, 50), `map ${id} is gone`);
  }
  const st = status();
  assert.equal(st.namespace.discovery, { enabled: false, active: false });
  assert.ok(st.warnings.some((w) => w.kind === 'no_discovery'), 'status says targets need discovery');
  assert.is(await who('tcp', '127.0.0.7', 7101), '!ECONNREFUSED', 'without discovery a target-served binding refuses (no target)');
  assert.is(await who('tcp', '127.0.0.9', 7101), '!ECONNREFUSED', 'and the policy has no effect: the binding applies');
  assert.is(await who('tcp', '127.0.0.5', 7101), 'T-pre', 'traffic to the target itself still passes');
  const e = env.ok(['discovery', 'enable', '--cgroup', cg.path, '--json']).json as { dispatchers: { discovery: boolean; targets: number }[] };
  assert.is(e.dispatchers[0]!.discovery, true);
  assert.ok(e.dispatchers[0]!.targets >= 2, 'the target addresses are registered again');
  assert.is(await who('tcp', '127.0.0.7', 7101), 'T-pre', 'targets work again with no other command');
  assert.is(await who('tcp', '127.0.0.9', 7101), 'E-pre');
});

test('the seed scenario from config files: Target= lines, apply --config, explicit listener wins, restart needs no command', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-targets-conf-'));
  const cfg = { MANIFOLD_CONFIG_DIRS: dir };
  // The UDP registrar left with the disable above; as manifold-discovery.service, it runs again.
  watcher?.kill('SIGTERM');
  watcher = await startWatcher(env);
  try {
    fs.writeFileSync(path.join(dir, 'five.conf'), '[Label]\nBind=tcp 127.0.0.0/8 7401\nBind=udp 127.0.0.0/8 7402\nTarget=127.0.0.5\n');
    fs.writeFileSync(path.join(dir, 'six.conf'), '[Label]\nBind=tcp 0.0.0.0/0 7403\nTarget=127.0.0.6\n');
    const t5 = await srv.listen('tcp', '127.0.0.5', 7401, 'T5');
    const u5 = await srv.listen('udp', '127.0.0.5', 7402, 'U5');
    let t6 = await srv.listen('tcp', '127.0.0.6', 7403, 'T6');
    const ex = await srv.listen('tcp', '127.0.0.9', 7403, 'EX');
    assert.is(env.ok(['verify'], { env: cfg }).code, 0);
    env.ok(['policy', 'explicit-first', 'off']);
    const dry = env.ok(['apply', '--config', '--dry-run', '--json'], { env: cfg }).json as { targets: { destination: string; action: string }[]; policy: { explicitFirst: boolean } | null };
    assert.equal(dry.targets.filter((c) => c.action !== 'removed').map((c) => `${c.destination} ${c.action}`), ['ipv4:tcp:five created', 'ipv4:udp:five created', 'ipv4:tcp:six created']);
    assert.equal(dry.policy, { explicitFirst: true });
    assert.is(status().namespace.explicitFirst, false, 'a dry run changes nothing');
    const r = env.ok(['apply', '--config', '--json'], { env: cfg }).json as { targets: { destination: string; label: string; action: string }[] };
    assert.not.ok(r.targets.some((c) => c.label === 'web'), 'a target made by hand (label web: no file defines it) is kept, like its bindings');
    assert.is(dest('web', 'tcp').servedBy, 'target');
    assert.is(status().namespace.explicitFirst, true, 'a configuration with targets turns explicit-first on');
    assert.is(await who('tcp', '127.0.0.7', 7401), 'T5');
    assert.ok(await eventually(async () => (await who('udp', '127.0.0.7', 7402, 200)) === 'U5'), 'a UDP target (registered by the watcher)');
    assert.is(await who('tcp', '127.0.0.3', 7403), 'T6');
    assert.is(await who('tcp', '127.0.0.9', 7403), 'EX', 'the explicit listener wins over 0.0.0.0/0');
    await srv.call('close', { handle: t6.handle });
    assert.is(await who('tcp', '127.0.0.3', 7403), '!ECONNREFUSED');
    t6 = await srv.listen('tcp', '127.0.0.6', 7403, 'T6b');
    assert.is(await who('tcp', '127.0.0.3', 7403), 'T6b', 'the restarted daemon, no command');
    fs.writeFileSync(path.join(dir, 'bad.conf'), '[Label]\nBind=tcp 127.0.0.0/8 7404\nTarget=0.0.0.0\n');
    const v = env.cli(['verify', '--json'], { env: cfg });
    assert.is((v.json as { error: { code: string } }).error.code, 'ERR_INVALID_CONFIG');
    fs.rmSync(path.join(dir, 'bad.conf'));
    fs.rmSync(path.join(dir, 'six.conf'));
    env.ok(['apply', '--config'], { env: cfg });
    assert.not.ok(status().destinations.some((d) => d.label === 'six'), 'a removed file: its bindings and target are gone');
    assert.is(await who('tcp', '127.0.0.3', 7403), '!ECONNREFUSED', 'nothing steers 7403 any more: the kernel finds no socket on 127.0.0.3');
    const pruned = env.ok(['apply', '--config', '--prune', '--json'], { env: cfg }).json as { targets: { destination: string; action: string }[] };
    assert.ok(pruned.targets.some((c) => c.destination === 'ipv4:tcp:web' && c.action === 'removed'), '--prune removes targets made by hand too');
    for (const h of [t5, u5, t6, ex]) await srv.call('close', { handle: h.handle });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
