/**
 * discovery enable / status / disable on a test cgroup: idempotence, clear
 * errors that change nothing, repair of a broken state, the task_file
 * seeding fallback, and that disable leaves nothing attached, loaded or
 * pinned (checked with bpftool and /proc/self/mountinfo, not with manifold).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestEnv } from '../helpers/env.js';
import { QUICK_MS } from '../helpers/wait.js';
import type { Agent } from '../helpers/agent-client.js';
import { agentIn, compileFixture, target, TestCgroup, TestDispatcher } from '../helpers/discovery.js';
import { linkDetach, mapUpdate, objGet } from '../../src/sys/bpf.js';
import { closeFd } from '../../src/sys/libc.js';

let env: TestEnv;
let cg: TestCgroup;
let other: TestCgroup;
let srv: Agent;
let cli: Agent;
const ours: number[] = [];

interface StatusDoc {
  enabled: boolean;
  active: boolean;
  cgroup: { path: string; id: string } | null;
  links: { program: string; id: number | null; attached: boolean }[];
  maps: Record<string, { entries: number; max: number }> | null;
  counters: Record<string, number> | null;
  kernel: { name: string; ok: boolean }[];
  warnings: string[];
  seedMethod: string;
}

function status(): StatusDoc {
  const r = env.cli(['discovery', 'status', '--json']);
  assert.is(r.code, 0, r.stderr);
  return r.json as StatusDoc;
}

function bpftoolJson(args: string[]): unknown {
  const r = spawnSync('bpftool', ['-j', ...args], { encoding: 'utf8', timeout: QUICK_MS });
  if (r.status !== 0) return null;
  return r.stdout.trim() === '' ? [] : JSON.parse(r.stdout);
}

/** Our entries on the test's bpffs (a fresh bpffs also holds the kernel's maps.debug and progs.debug). */
function pins(): string[] {
  return fs.readdirSync(env.bpffs).filter((n) => n.startsWith('manifold'));
}

function cgroupPrograms(dir: string): string[] {
  const progs = (bpftoolJson(['cgroup', 'show', dir]) ?? []) as { name: string }[];
  return progs.map((p) => p.name).sort();
}

function mountsOf(): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ').slice(3, 5).join(' ')).filter(Boolean).sort();
}

async function who(host: string, port: number): Promise<string> {
  const r = await cli.connect('tcp', host, port, { timeoutMs: 1000 });
  return r.ok ? String(r.data) : `!${r.code}`;
}

async function setUp(): Promise<void> {
  env = TestEnv.create('disc-life');
  cg = TestCgroup.create('disc-life');
  other = TestCgroup.create('disc-lif2');
  process.once('exit', () => {
    env.destroy();
    cg.destroy(ours);
    other.destroy();
  });
  srv = await agentIn(env, cg);
  ours.push(srv.pid);
  cli = await agentIn(env, null);
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
  srv?.stop();
  cli?.stop();
  env.cli(['discovery', 'disable']);
  env.destroy();
  cg.destroy(ours);
  other.destroy();
});

test('status before enable: not enabled, kernel requirements checked, exit 0', () => {
  const d = status();
  assert.is(d.enabled, false);
  assert.equal(d.kernel.map((k) => k.name), ['kernel', 'btf', 'cgroup2', 'iterator-seeding', 'seeded-shutdown']);
  assert.ok(d.kernel.every((k) => k.ok), 'this machine (Linux 6.18) meets every requirement');
  const text = env.cli(['discovery', 'status']);
  assert.match(text.stdout, /listener discovery: not enabled/);
  assert.is(env.cli(['discovery', 'disable']).code, 3, 'disable when not enabled: ERR_NOT_LOADED');
});

test('bad input is refused with a stable code and changes nothing', () => {
  const cases: [string[], number, string][] = [
    [['discovery', 'enable', '--cgroup', '/nonexistent/mf-cgroup'], 1, 'ERR_NOT_FOUND'],
    [['discovery', 'enable', '--cgroup', '/tmp'], 2, 'ERR_USAGE'],
    [['discovery', 'enable', '--cgroup', ''], 2, 'ERR_USAGE'],
    [['discovery', 'bogus'], 2, 'ERR_USAGE'],
  ];
  for (const [args, code, err] of cases) {
    const r = env.cli([...args, '--json']);
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.is((r.json as { error: { code: string } }).error.code, err, args.join(' '));
    assert.not.match(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  }
  const notBpffs = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--bpffs', '/tmp', '--json'], { global: false });
  assert.is((notBpffs.json as { error: { code: string } }).error.code, 'ERR_USAGE', notBpffs.stderr);
  const badNetns = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--bpffs', env.bpffs, '--netns', '/nonexistent', '--json'], { global: false });
  assert.is((badNetns.json as { error: { code: string } }).error.code, 'ERR_NOT_FOUND', badNetns.stderr);
  assert.equal(pins(), [], 'nothing pinned');
  assert.equal(cgroupPrograms(cg.path), [], 'nothing attached');
});

let linkIds: number[] = [];
let progIds: number[] = [];
let mountsBefore: string[] = [];

/** Remember the ids of the links and programs of the current state (all must be gone after disable). */
function collectIds(): void {
  const links = bpftoolJson(['link', 'show']) as { id: number; prog_id: number }[];
  for (const id of status().links.map((l) => l.id!)) {
    if (!linkIds.includes(id)) linkIds.push(id);
    const pid = links.find((l) => l.id === id)?.prog_id;
    if (pid !== undefined && !progIds.includes(pid)) progIds.push(pid);
  }
  for (const p of ['prog_iter_tcp', 'prog_iter_udp', 'prog_iter_file']) {
    const info = bpftoolJson(['prog', 'show', 'pinned', path.join(env.bpffs, 'manifold_discovery', p)]) as { id: number };
    if (!progIds.includes(info.id)) progIds.push(info.id);
  }
}

test('enable attaches four programs to the cgroup (not its parent) and pins its state; enable again is a no-op re-seed', async () => {
  mountsBefore = mountsOf();
  await srv.listen('tcp', '127.0.0.9', 8301, 'E');
  const r = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(r.code, 0, r.stderr);
  const doc = r.json as { alreadyEnabled: boolean; cgroup: { path: string }; seed: { indexed: { tcp: number } } };
  assert.is(doc.alreadyEnabled, false);
  assert.is(doc.cgroup.path, cg.path);
  assert.is(doc.seed.indexed.tcp, 1);
  assert.equal(cgroupPrograms(cg.path), ['disc_bind4', 'disc_bind6', 'disc_release', 'disc_sockops']);
  assert.equal(cgroupPrograms(path.dirname(cg.path)), [], 'the parent cgroup (the root) has none of them');
  const d = status();
  assert.ok(d.enabled && d.active);
  assert.is(d.cgroup?.path, cg.path);
  assert.ok(d.links.every((l) => l.attached), JSON.stringify(d.links));
  assert.is(d.maps?.['sockets']?.entries, 1);
  linkIds = d.links.map((l) => l.id!);
  const links = bpftoolJson(['link', 'show']) as { id: number; prog_id: number }[];
  progIds = links.filter((l) => linkIds.includes(l.id)).map((l) => l.prog_id);
  assert.is(progIds.length, 4);
  const pinned = fs.readdirSync(path.join(env.bpffs, 'manifold_discovery'));
  for (const p of ['prog_iter_tcp', 'prog_iter_udp', 'prog_iter_file']) {
    assert.ok(pinned.includes(p), p);
    const info = bpftoolJson(['prog', 'show', 'pinned', path.join(env.bpffs, 'manifold_discovery', p)]) as { id: number };
    progIds.push(info.id);
  }
  const again = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(again.code, 0, again.stderr);
  assert.is((again.json as { alreadyEnabled: boolean; seed: { indexed: { tcp: number } } }).alreadyEnabled, true);
  assert.is((again.json as { seed: { indexed: { tcp: number } } }).seed.indexed.tcp, 0, 'nothing indexed twice');
  assert.equal(status().links.map((l) => l.id), linkIds, 'same links');
  assert.is(status().maps?.['sockets']?.entries, 1);
});

test('enable on another cgroup while enabled: ERR_ALREADY_LOADED, nothing changes', () => {
  const r = env.cli(['discovery', 'enable', '--cgroup', other.path, '--json']);
  assert.is(r.code, 1, r.stderr);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_ALREADY_LOADED');
  assert.equal(cgroupPrograms(other.path), []);
  assert.equal(status().links.map((l) => l.id), linkIds);
  const d = env.cli(['discovery', 'disable', '--cgroup', other.path, '--json']);
  assert.is((d.json as { error: { code: string } }).error.code, 'ERR_USAGE', 'disable names the wrong cgroup');
  assert.ok(status().enabled);
});

test('a broken state (a link detached behind our back) is reported and repaired by enable', () => {
  const fd = objGet(path.join(env.bpffs, 'manifold_discovery', 'link_bind4'));
  try {
    linkDetach(fd);
  } finally {
    closeFd(fd);
  }
  const d = status();
  assert.ok(d.warnings.some((w) => /disc_bind4 is not attached/.test(w)), JSON.stringify(d.warnings));
  const r = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.match(String((r.json as { replaced: string }).replaced), /disc_bind4/);
  assert.ok(status().links.every((l) => l.attached));
  assert.equal(cgroupPrograms(cg.path), ['disc_bind4', 'disc_bind6', 'disc_release', 'disc_sockops']);
  collectIds();
  // Foreign content in the marker: status says so (exit 0), enable replaces it.
  const meta = objGet(path.join(env.bpffs, 'manifold_discovery', 'disc_meta'));
  try {
    mapUpdate(meta, Buffer.alloc(4), Buffer.alloc(64, 0x41));
  } finally {
    closeFd(meta);
  }
  assert.ok(status().warnings.some((w) => /not manifold discovery state|not usable/.test(w)), JSON.stringify(status().warnings));
  const r2 = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json']);
  assert.is(r2.code, 0, r2.stderr);
  assert.match(String((r2.json as { replaced: string }).replaced), /not manifold discovery state/);
  assert.ok(status().active);
  collectIds();
});

test('disable leaves nothing attached, loaded or pinned', () => {
  const r = env.cli(['discovery', 'disable', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(cgroupPrograms(cg.path), [], 'bpftool cgroup show: nothing attached');
  for (const id of linkIds) assert.is(bpftoolJson(['link', 'show', 'id', String(id)]), null, `link ${id} is gone`);
  for (const id of progIds) assert.is(bpftoolJson(['prog', 'show', 'id', String(id)]), null, `program ${id} is unloaded`);
  assert.equal(pins(), [], 'no pins left on the bpffs');
  assert.equal(mountsOf(), mountsBefore, '/proc/self/mountinfo: no mount added or removed');
  assert.is(status().enabled, false);
  assert.is(env.cli(['discovery', 'disable']).code, 3);
});

test('task_file seeding (the fallback for kernels < 6.5) finds existing sockets; their shutdown() is not seen', async () => {
  await srv.listen('tcp', '127.0.0.5', 8301, 'T');
  const r = env.cli(['discovery', 'enable', '--cgroup', cg.path, '--json'], { env: { MANIFOLD_DISCOVERY_SEED: 'task_file' } });
  assert.is(r.code, 0, r.stderr);
  const seed = (r.json as { seed: { method: string; indexed: { tcp: number }; noStateCb: number; namespaces: number } }).seed;
  assert.is(seed.method, 'task_file');
  assert.is(seed.namespaces, 0, 'no setns needed');
  assert.is(seed.indexed.tcp, 2, 'E and T');
  assert.is(seed.noStateCb, 2);
  assert.is(status().counters?.no_statecb, 2);
  const disp = TestDispatcher.attach(env, env.bpffs, compileFixture('discovery-dispatch'));
  try {
    const registered = (() => {
      const prev = process.env.MANIFOLD_DISCOVERY_SEED;
      process.env.MANIFOLD_DISCOVERY_SEED = 'task_file';
      try {
        return target(env, env.bpffs, 'tcp', '127.0.0.5');
      } finally {
        if (prev === undefined) delete process.env.MANIFOLD_DISCOVERY_SEED;
        else process.env.MANIFOLD_DISCOVERY_SEED = prev;
      }
    })();
    assert.is(registered.targets, 1, 'the target registered by the task_file registrar');
    disp.map('tcp', 8301, '127.0.0.5');
    assert.is(await who('127.0.0.9', 8301), 'E');
    assert.is(await who('127.0.0.7', 8301), 'T');
  } finally {
    disp.close();
  }
  assert.is(env.cli(['discovery', 'disable']).code, 0);
  assert.equal(pins(), []);
});

test.run();
