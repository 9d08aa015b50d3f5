/**
 * Hardening of the state and the write path (issue 10): pins keep the
 * read-only group's access on every path, names planted on a shared bpffs
 * cannot block or fool manifold, register-pid refuses an fd swapped under
 * it, sets are counted before they are expanded, ambiguous JSON is refused,
 * and one command cannot cut off a whole address family by accident.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState, invariantProblems, liveBindings } from '../helpers/inspect.js';

let ctx: Ctx;
let dir: string;
const OTHER_UID = 23456;

test.before(async () => {
  ctx = await setup('hard');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-hard-'));
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function stateDir(): string {
  return (status(ctx) as unknown as { stateDir: string }).stateDir;
}

function assertModes(gid: number, what: string): void {
  const d = stateDir();
  const st = fs.statSync(d);
  assert.is(st.mode & 0o777, 0o750, `${what}: state directory 0750`);
  assert.is(st.gid, gid, `${what}: state directory group`);
  for (const name of fs.readdirSync(d)) {
    const p = fs.statSync(path.join(d, name));
    assert.is(p.mode & 0o777, 0o640, `${what}: ${name} is 0640`);
    assert.is(p.gid, gid, `${what}: ${name} belongs to group ${gid}`);
  }
}

test('every pin keeps the state group and 0640 after load, apply, rebuilds and upgrade', () => {
  ctx.env.ok(['unload']);
  ctx.env.ok(['load', '--group', '4242']);
  assertModes(4242, 'load');
  const many = Array.from({ length: 300 }, (_, i) => ({ label: 'a', prefix: `10.9.${i >> 8}.${i & 255}`, port: 80 + (i % 3), protocol: 'tcp' }));
  ctx.env.ok(['apply', write('many.json', JSON.stringify({ bindings: many }))]);
  assertModes(4242, 'apply (fresh maps of a generation)');
  ctx.env.ok(['bind', 'a', 'tcp', '10.10.0.0/16', '80']);
  assertModes(4242, 'bind after a rebuild');
  ctx.env.ok(['upgrade']);
  assertModes(4242, 'upgrade');
  ctx.env.ok(['unload']);
  ctx.env.ok(['load']);
});

test('a state directory planted by another user is replaced by load, with a message, and never read', () => {
  ctx.env.ok(['unload']);
  const ino = fs.statSync(ctx.env.netnsPath).ino;
  const planted = path.join(ctx.env.bpffs, `${ino}_manifold`);
  fs.mkdirSync(planted);
  fs.chownSync(planted, OTHER_UID, OTHER_UID);
  const st = ctx.env.cli(['status', '--json']);
  assert.is(st.code, 1, `a planted directory is not a state: ${st.stderr}`);
  assert.is((st.json as { error: { code: string } }).error.code, 'ERR_STALE_STATE');
  const r = ctx.env.cli(['load']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /replaced a state directory that was not a healthy manifold state/);
  assert.is(fs.statSync(planted).uid, 0);
});

test('a writers\' lock directory planted by another user is replaced; writes go on', () => {
  const ino = fs.statSync(ctx.env.netnsPath).ino;
  const lock = path.join(ctx.env.bpffs, `${ino}_manifold_lock`);
  fs.rmSync(lock, { recursive: true, force: true });
  fs.mkdirSync(lock, { mode: 0o777 });
  fs.chmodSync(lock, 0o777);
  fs.chownSync(lock, OTHER_UID, OTHER_UID);
  const r = ctx.env.cli(['bind', 'x', 'tcp', '192.0.2.200', '80']);
  assert.is(r.code, 0, r.stderr);
  const st = fs.statSync(lock);
  assert.is(st.uid, 0, 'the lock is root\'s again');
  assert.is(st.mode & 0o777, 0o700);
  ctx.env.ok(['unbind', 'x', 'tcp', '192.0.2.200', '80']);
});

test('register-pid refuses a socket whose fd was swapped while it was registering, and changes nothing', async () => {
  const a = await ctx.agent.listen('tcp', '127.0.0.1', 9301, 'A');
  const b = await ctx.agent.listen('tcp', '127.0.0.1', 9302, 'B');
  // The child stops at the step after it found the socket (it says so on stderr) until the fd is swapped.
  let reached: () => void = () => undefined;
  const found = new Promise<void>((r) => (reached = r));
  const child = ctx.env.cliAsync(['register-pid', String(ctx.agent.pid), 'swap', 'tcp', '127.0.0.1', '9301', '--json'], { MANIFOLD_TEST_STEPS: '1', MANIFOLD_TEST_PAUSE_AT: 'register-pid-found:3000' }, (err) => {
    if (err.includes('manifold-step: register-pid-found')) reached();
  });
  await Promise.race([found, child]);
  await ctx.agent.call('dup2', { from: b.handle, to: a.fd });
  const r = await child;
  assert.is(r.code, 1, r.stderr);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NO_MATCHING_SOCKET');
  assert.match(r.stderr, /changed while it was being registered/);
  assert.is(status(ctx).destinations.find((d) => d.label === 'swap'), undefined, 'nothing was registered');
});

test('sets are counted before they are expanded: a small file asking for millions of bindings is refused fast', () => {
  const entries = Array.from({ length: 300 }, (_, i) => `{"label":"big","prefix":"${10 + (i >> 8)}.${i & 255}.0.0/16","port":"1-4096"}`);
  const file = write('huge.json', `{"bindings":[${entries.join(',')}]}`);
  assert.ok(fs.statSync(file).size < 20_000);
  const before = liveBindings(inspectTestState(ctx.env));
  for (const extra of [['--dry-run'], []]) {
    const t0 = Date.now();
    const r = ctx.env.cli(['apply', file, ...extra, '--json']);
    assert.is(r.code, 1, r.stderr);
    assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NO_SPACE', r.stderr);
    assert.match(r.stderr, /more than the 2097152 bindings allowed/);
    assert.ok(Date.now() - t0 < 20_000, `refused in bounded time (${Date.now() - t0} ms)`);
  }
  assert.equal(liveBindings(inspectTestState(ctx.env)), before, 'nothing changed');
});

test('ambiguous JSON is refused: a repeated "bindings" key, a repeated entry key, port -0', () => {
  ctx.env.ok(['bind', 'keep', 'tcp', '192.0.2.201', '80']);
  const before = liveBindings(inspectTestState(ctx.env));
  const cases: [string, string, RegExp][] = [
    ['dup-top.json', '{"bindings":[{"label":"a","prefix":"10.0.0.1","port":80}],"bindings":[]}', /"bindings" is given twice/],
    ['dup-entry.json', '{"bindings":[{"label":"a","label":"b","prefix":"10.0.0.1","port":80}]}', /key "label" is given twice/],
    ['minus-zero.json', '{"bindings":[{"label":"a","prefix":"10.0.0.1","port":-0}]}', /port -0 is not a port/],
    ['fraction.json', '{"bindings":[{"label":"a","prefix":"10.0.0.1","port":80.5}]}', /invalid port 80\.5/],
  ];
  for (const [name, text, why] of cases) {
    const r = ctx.env.cli(['apply', write(name, text)]);
    assert.ok(r.code === 1 || r.code === 2, `${name}: exit ${r.code}`);
    assert.match(r.stderr, why, name);
  }
  assert.equal(liveBindings(inspectTestState(ctx.env)), before, 'nothing changed');
  ctx.env.ok(['unbind', 'keep', 'tcp', '192.0.2.201', '80']);
});

test('an invalid apply file reports every bad entry with its line and column', () => {
  const text = '{"bindings":[\n {"label":"ok","prefix":"10.0.0.1","port":80},\n {"label":"","prefix":"10.0.0.2","port":80},\n {"label":"x","prefix":"10.0.0.300","port":80},\n {"label":"y","prefix":"10.0.0.4","port":70000}\n]}';
  const r = ctx.env.cli(['apply', write('multi.json', text)]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /3 problems/);
  assert.match(r.stderr, /multi\.json:3:2: bindings\[1\]: invalid label/);
  assert.match(r.stderr, /multi\.json:4:2: bindings\[2\]: invalid prefix/);
  assert.match(r.stderr, /multi\.json:5:2: bindings\[3\]: invalid port/);
});

test('one command cannot cut off a whole address family: bind/apply of a /0 to a label without a socket needs --force', async () => {
  await serve(ctx, 'live', 'tcp', '127.0.0.1', 9310);
  const before = liveBindings(inspectTestState(ctx.env));
  const r = ctx.env.cli(['bind', 'all', 'tcp', '0.0.0.0/0', '0', '--json']);
  assert.is(r.code, 1, r.stderr);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NO_SOCKET');
  assert.match(r.stderr, /refusing to steer every IPv4 tcp address/);
  assert.equal(liveBindings(inspectTestState(ctx.env)), before, 'nothing changed');
  assert.is(await ctx.agent.who('tcp', '127.0.0.1', 9310), 'live', 'the live server is still reachable');
  const f = ctx.env.cli(['apply', write('all.json', '{"bindings":[{"label":"all","prefix":"::/0","port":0,"protocol":"tcp"}]}')]);
  assert.is(f.code, 1, f.stderr);
  assert.match(f.stderr, /refusing to steer every IPv6 tcp address/);
  // A binding to a label without a socket is allowed but reported.
  const w = ctx.env.cli(['bind', 'nosock', 'tcp', '198.51.100.0/24', '80']);
  assert.is(w.code, 0);
  assert.match(w.stderr, /has no socket: tcp traffic to 198\.51\.100\.0\/24 port 80 is refused until a socket is registered/);
  ctx.env.ok(['unbind', 'nosock', 'tcp', '198.51.100.0/24', '80']);
  // --force does it, with the warning.
  const forced = ctx.env.cli(['bind', 'all', 'tcp', '0.0.0.0/0', '0', '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.is(await ctx.agent.who('tcp', '127.0.0.1', 9310), '!ECONNREFUSED', 'as warned: everything is refused now');
  ctx.env.ok(['unbind', 'all', 'tcp', '0.0.0.0/0', '0']);
  assert.is(await ctx.agent.who('tcp', '127.0.0.1', 9310), 'live');
  assert.equal(invariantProblems(inspectTestState(ctx.env)), []);
});

test.run();
