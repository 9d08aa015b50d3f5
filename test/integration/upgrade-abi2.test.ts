/**
 * Upgrade from the previous commit's state: map ABI 2 (the commit PREVIOUS
 * below, the core of issue 11 with listener discovery's phase 1, built from
 * this repository's history) loads and fills a state — bindings, a
 * registered TCP and UDP socket, counters — and the current `manifold
 * upgrade` migrates it to ABI 3 in place (src/state/migrate.ts: the maps of
 * address targets and their counters are created, everything else is
 * reused): every binding, socket and counter is kept, no connection fails
 * meanwhile, and the state then takes the new commands (target, policy).
 * The migration is also killed at each of its steps; the next upgrade
 * finishes it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MANIFOLD_ABI } from '../../src/core/layout.js';
import { compiledTreeOf } from '../helpers/history.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState, invariantProblems, liveBindings } from '../helpers/inspect.js';

/** The last commit with map ABI 2 (before address targets). */
const PREVIOUS = '74c2e07c3ccb008b94513d36742fcbcbb69ee8cc';

let ctx: Ctx;
let oldTree: string;

function buildPrevious(): string {
  return compiledTreeOf(PREVIOUS, "the previous commit", 'mf-abi2-');
}

function old(args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(oldTree, 'bin', 'manifold'), ...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_BPF_OBJECT: path.join(oldTree, 'bpf', 'manifold.bpf.o') },
  });
  assert.is(r.status, 0, `old manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Dest { label: string; domain: string; protocol: string; socket: string | null; lookups: number; misses: number; bindings: number; servedBy: string }

/** A filled ABI 2 state: bindings, a TCP and a UDP socket, traffic counted. */
async function fillOldState(): Promise<{ tcpCookie: string; udpCookie: string }> {
  old(['load']);
  old(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  old(['bind', 'web', 'tcp', '198.51.100.9', '8000-8003']);
  old(['bind', 'dns', 'udp', '192.0.2.53', '53']);
  old(['bind', 'web6', 'tcp', '2001:db8:1::/64', '0', '--force']);
  const tcp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9301', '--json'])) as { cookie: string };
  const udp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'dns', 'udp', '127.0.0.1', '9353', '--json'])) as { cookie: string };
  for (let i = 0; i < 3; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  return { tcpCookie: tcp.cookie, udpCookie: udp.cookie };
}

test.before(async () => {
  ctx = await setup('abi2', { load: false });
  oldTree = buildPrevious();
  await ctx.agent.listen('tcp', '127.0.0.1', 9301, 'web');
  await ctx.agent.listen('udp', '127.0.0.1', 9353, 'dns');
});
test.after(() => {
  teardown(ctx);
  if (oldTree) fs.rmSync(oldTree, { recursive: true, force: true });
});

test('upgrade migrates an ABI 2 state to ABI 3 in place: bindings, sockets and counters kept, no failed connection', async () => {
  const { tcpCookie, udpCookie } = await fillOldState();
  const before = JSON.parse(old(['bindings', '--json'])) as unknown[];
  const readers = ctx.env.cli(['status', '--json']);
  assert.is((readers.json as { error: { code: string } }).error.code, 'ERR_INCOMPATIBLE', 'the new manifold reads an ABI 2 state only after the upgrade');
  const loop = ctx.agent.call('loop', { host: '192.0.2.10', port: 80, durationMs: 4000, expect: 'web' });
  await new Promise((r) => setTimeout(r, 500));
  const up = ctx.env.ok(['upgrade', '--json']).json as { previousAbi: number; abi: number };
  const traffic = (await loop) as { ok: number; failed: number; errors: Record<string, number> };
  assert.equal([up.previousAbi, up.abi], [2, MANIFOLD_ABI]);
  assert.is(MANIFOLD_ABI, 3);
  assert.is(traffic.failed, 0, `failed connections during the upgrade: ${JSON.stringify(traffic.errors)}`);
  assert.ok(traffic.ok > 0);
  assert.equal(ctx.env.ok(['bindings', '--json']).json, before, 'every binding kept');
  const st = ctx.env.ok(['status', '--json']).json as { destinations: Dest[]; namespace: { explicitFirst: boolean } };
  const web = st.destinations.find((d) => d.label === 'web' && d.protocol === 'tcp')!;
  const dns = st.destinations.find((d) => d.label === 'dns')!;
  assert.is(web.socket, tcpCookie, 'the TCP socket is still registered');
  assert.is(dns.socket, udpCookie, 'the UDP socket is still registered');
  assert.is(web.servedBy, 'socket');
  assert.ok(web.lookups >= 3 + traffic.ok, `counters kept: ${web.lookups} >= ${3 + traffic.ok}`);
  assert.is(dns.lookups, 1);
  assert.is(st.namespace.explicitFirst, false, 'the policy starts off');
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 8002), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  // The new maps are pinned, and the new commands work on the migrated state.
  const dir = fs.readdirSync(ctx.env.bpffs).find((n) => n.endsWith('_manifold'))!;
  const pins = fs.readdirSync(path.join(ctx.env.bpffs, dir));
  for (const p of ['dest_target', 'dest_metrics2', 'ns_metrics']) assert.ok(pins.includes(p), `${p} pinned`);
  for (const p of pins) assert.is(fs.statSync(path.join(ctx.env.bpffs, dir, p)).mode & 0o777, 0o640, `${p} is 0640`);
  ctx.env.ok(['target', 'web', '127.0.0.5', '--protocol', 'tcp']);
  ctx.env.ok(['policy', 'explicit-first', 'on']);
  const st2 = ctx.env.ok(['status', '--json']).json as { destinations: Dest[]; namespace: { explicitFirst: boolean } };
  assert.is(st2.destinations.find((d) => d.label === 'web' && d.protocol === 'tcp')!.servedBy, 'target');
  assert.is(st2.namespace.explicitFirst, true);
  ctx.env.ok(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9301']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web', 'a socket serves it again');
  assert.equal(invariantProblems(inspectTestState(ctx.env)), []);
  const again = ctx.env.ok(['upgrade', '--json']).json as { previousAbi: number; abi: number };
  assert.equal([again.previousAbi, again.abi], [MANIFOLD_ABI, MANIFOLD_ABI], 'a second upgrade migrates nothing');
  assert.is(st2.destinations.find((d) => d.label === 'web' && d.protocol === 'tcp')!.lookups >= web.lookups, true);
  ctx.env.ok(['unload']);
});

test('a migration from ABI 2 killed at any step is finished by the next upgrade, nothing lost', async () => {
  const steps = ['migrate3-prepared:1', 'migrate3-switched:1', 'migrate-done:1', 'upgrade-marked:1'];
  for (const spec of steps) {
    const { tcpCookie } = await fillOldState();
    const before = JSON.parse(old(['bindings', '--json'])) as unknown[];
    const r = ctx.env.cli(['upgrade'], { env: { MANIFOLD_TEST_KILL_AT: spec } });
    assert.is(r.failure, 'was killed by SIGKILL', `killed at ${spec}: ${r.stderr}`);
    assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web', `killed at ${spec}: traffic still steered`);
    ctx.env.ok(['upgrade']);
    assert.equal(ctx.env.ok(['bindings', '--json']).json, before, `killed at ${spec}: every binding kept`);
    const st = ctx.env.ok(['status', '--json']).json as { destinations: Dest[] };
    assert.is(st.destinations.find((d) => d.label === 'web' && d.protocol === 'tcp')!.socket, tcpCookie, `killed at ${spec}: socket kept`);
    assert.is(await ctx.agent.who('tcp', '198.51.100.9', 8001), 'web');
    assert.equal(invariantProblems(inspectTestState(ctx.env)), [], `killed at ${spec}`);
    assert.ok(liveBindings(inspectTestState(ctx.env)).length === before.length);
    ctx.env.ok(['unload']);
  }
});

test.run();
