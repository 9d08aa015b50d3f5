/**
 * Upgrade from the state of the last release that landed (the commit LANDED
 * below, map ABI 3 like this one, built from this repository's history into
 * its own single executable): the old manifold loads and fills a state —
 * bindings of both protocols, a registered TCP and UDP socket, an address
 * target, the explicit-first policy, counters — then this manifold works on
 * it as it is (same ABI: no upgrade needed to read or write it), `upgrade`
 * swaps in the new program under a client connecting in a loop with no
 * failed connection, and everything is kept: bindings, sockets, target,
 * policy, counters (still counting). The new writes afterwards keep the
 * state's invariants.
 *
 * When a release changes the map ABI, test/integration/upgrade-abi2.test.ts
 * is the pattern (migration in place, killed at each step).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MANIFOLD_ABI } from '../../src/core/layout.js';
import { treeOf } from '../helpers/history.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState, invariantProblems } from '../helpers/inspect.js';

/** The last commit CI accepted onto main (stop 20): update it when a release lands. */
const LANDED = '1be458c';

let ctx: Ctx;
let oldTree: string;
let oldExe: string;

/** The landed commit's tree, with its single executable built (as `make build` there would). */
function buildLanded(): string {
  const dir = treeOf(LANDED, 'the landed commit', { prefix: 'mf-landed-' });
  execFileSync(process.execPath, [path.join(dir, 'scripts', 'build-sea.mjs')], { cwd: dir, timeout: 300_000, stdio: 'pipe' });
  return dir;
}

function old(args: string[]): string {
  const r = spawnSync(oldExe, [...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  assert.is(r.status, 0, `landed manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Dest {
  label: string; domain: string; protocol: string; socket: string | null; lookups: number; misses: number; bindings: number; servedBy: string;
  target: { address: string; port: number | null } | null;
}
interface Status { destinations: Dest[]; namespace: { explicitFirst: boolean } }

function find(st: Status, label: string, protocol: string): Dest {
  const d = st.destinations.find((x) => x.label === label && x.protocol === protocol && x.domain === 'ipv4');
  assert.ok(d, `destination ipv4:${protocol}:${label}`);
  return d!;
}

test.before(async () => {
  ctx = await setup('landed', { load: false });
  oldTree = buildLanded();
  oldExe = path.join(oldTree, 'build', 'sea', 'manifold');
  await ctx.agent.listen('tcp', '127.0.0.1', 9401, 'web');
  await ctx.agent.listen('udp', '127.0.0.1', 9453, 'dns');
  await ctx.agent.listen('tcp', '127.0.0.1', 9402, 'web-2');
});
test.after(() => {
  teardown(ctx);
  if (oldTree) fs.rmSync(oldTree, { recursive: true, force: true });
});

test('the landed release\'s state: read and written as it is, then upgraded under traffic with nothing lost', async () => {
  // The landed release fills a state.
  assert.match(old(['version']), /\(BPF ABI 3\)/);
  assert.is(MANIFOLD_ABI, 3, 'this test is for a same-ABI upgrade (see upgrade-abi2.test.ts for a migration)');
  old(['load']);
  old(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  old(['bind', 'web', 'tcp', '198.51.100.9', '8000-8003']);
  old(['bind', 'dns', 'udp', '192.0.2.53', '53']);
  old(['bind', 'api', 'tcp', '203.0.113.0/24', '443']);
  old(['bind', 'web6', 'tcp', '2001:db8:1::/64', '0', '--force']);
  const tcp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9401', '--json'])) as { cookie: string };
  const udp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'dns', 'udp', '127.0.0.1', '9453', '--json'])) as { cookie: string };
  old(['target', 'api', '127.0.0.7', '8443', '--protocol', 'tcp']);
  old(['policy', 'explicit-first', 'on']);
  for (let i = 0; i < 3; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  const oldBindings = JSON.parse(old(['bindings', '--json'])) as unknown[];

  // This manifold reads it as it is: the same bindings, sockets, target and policy.
  assert.equal(ctx.env.ok(['bindings', '--json']).json, oldBindings);
  const st0 = ctx.env.ok(['status', '--json']).json as Status;
  assert.is(find(st0, 'web', 'tcp').socket, tcp.cookie);
  assert.is(find(st0, 'dns', 'udp').socket, udp.cookie);
  assert.equal(find(st0, 'api', 'tcp').target && { address: find(st0, 'api', 'tcp').target!.address, port: find(st0, 'api', 'tcp').target!.port }, { address: '127.0.0.7', port: 8443 });
  assert.is(st0.namespace.explicitFirst, true);
  assert.equal(invariantProblems(inspectTestState(ctx.env)), [], 'the landed release\'s state keeps this release\'s invariants');

  // And writes it before any upgrade: the old program serves the new entries.
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '81']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 81), 'web', 'a binding this manifold wrote, served by the landed program');
  ctx.env.ok(['unbind', 'web', 'tcp', '192.0.2.0/24', '81']);
  assert.equal(ctx.env.ok(['bindings', '--json']).json, oldBindings);

  // upgrade under a connecting client.
  const before = ctx.env.ok(['status', '--json']).json as Status;
  const loop = ctx.agent.call('loop', { host: '192.0.2.10', port: 80, durationMs: 4000, expect: 'web' });
  await new Promise((r) => setTimeout(r, 500));
  const up = ctx.env.ok(['upgrade', '--json']).json as { previousAbi: number; abi: number };
  const traffic = (await loop) as { ok: number; failed: number; errors: Record<string, number> };
  assert.equal([up.previousAbi, up.abi], [3, 3]);
  assert.is(traffic.failed, 0, `failed connections during the upgrade: ${JSON.stringify(traffic.errors)}`);
  assert.ok(traffic.ok > 0, 'the client connected during the upgrade');

  // Everything kept, counters still counting.
  assert.equal(ctx.env.ok(['bindings', '--json']).json, oldBindings, 'every binding kept');
  const after = ctx.env.ok(['status', '--json']).json as Status;
  const web = find(after, 'web', 'tcp');
  assert.is(web.socket, tcp.cookie, 'the TCP socket is still registered');
  assert.is(find(after, 'dns', 'udp').socket, udp.cookie, 'the UDP socket is still registered');
  assert.ok(web.lookups >= find(before, 'web', 'tcp').lookups + traffic.ok, `counters kept: ${web.lookups}`);
  assert.equal(find(after, 'api', 'tcp').target?.address, '127.0.0.7', 'the target kept');
  assert.is(find(after, 'api', 'tcp').servedBy, 'target');
  assert.is(after.namespace.explicitFirst, true, 'the policy kept');
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 8002), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  assert.ok(find(ctx.env.ok(['status', '--json']).json as Status, 'web', 'tcp').lookups > web.lookups, 'the counters count on');

  // The new program takes new writes: a second socket, a new binding, the target and policy changed.
  ctx.env.ok(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9402']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web-2', 'the newly registered socket serves');
  ctx.env.ok(['bind', 'dns', 'udp', '192.0.2.54', '53']);
  assert.is(await ctx.agent.who('udp', '192.0.2.54', 53), 'dns');
  ctx.env.ok(['untarget', 'api', 'ipv4', '--protocol', 'tcp']);
  ctx.env.ok(['policy', 'explicit-first', 'off']);
  const last = ctx.env.ok(['status', '--json']).json as Status;
  assert.is(find(last, 'api', 'tcp').target, null);
  assert.is(last.namespace.explicitFirst, false);
  assert.equal(invariantProblems(inspectTestState(ctx.env)), []);
  const again = ctx.env.ok(['upgrade', '--json']).json as { previousAbi: number; abi: number };
  assert.equal([again.previousAbi, again.abi], [3, 3]);
  ctx.env.ok(['unload']);
});

test.run();
