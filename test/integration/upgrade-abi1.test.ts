/**
 * Upgrade from the previous release's state: manifold 0.1 (map ABI 1, the
 * commit PREVIOUS below, built from this repository's history) loads and
 * fills a state — bindings, a registered TCP and UDP socket, counters —
 * and the current `manifold upgrade` migrates it in place: every binding,
 * socket and counter is kept, no connection fails meanwhile, and the state
 * is then a normal state of the current ABI (1 -> 2 -> 3: the ABI 3 maps are created too). The migration is also killed at each of its
 * steps; the next upgrade finishes it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compiledTreeOf } from '../helpers/history.js';
import { MANIFOLD_ABI } from '../../src/core/layout.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState, invariantProblems, liveBindings } from '../helpers/inspect.js';

/** The last commit with map ABI 1 (manifold 0.1, before the map layer of issue 11). */
const PREVIOUS = '92ebc5a063f88e9eb32f5b0562528c905fa5fb91';

let ctx: Ctx;
let oldTree: string;

function buildPrevious(): string {
  return compiledTreeOf(PREVIOUS, "the previous release's commit", 'mf-abi1-');
}

function old(args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(oldTree, 'bin', 'manifold'), ...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_BPF_OBJECT: path.join(oldTree, 'bpf', 'manifold.bpf.o') },
  });
  assert.is(r.status, 0, `old manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Dest { label: string; domain: string; protocol: string; socket: string | null; lookups: number; misses: number; bindings: number }

/** A filled ABI 1 state: bindings, a TCP and a UDP socket, traffic counted. */
async function fillOldState(): Promise<{ tcpCookie: string; udpCookie: string }> {
  old(['load']);
  old(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  old(['bind', 'web', 'tcp', '198.51.100.9', '8000-8003']);
  old(['bind', 'dns', 'udp', '192.0.2.53', '53']);
  old(['bind', 'web6', 'tcp', '2001:db8:1::/64', '0']);
  const tcp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'web', 'tcp', '127.0.0.1', '9201', '--json'])) as { cookie: string };
  const udp = JSON.parse(old(['register-pid', String(ctx.agent.pid), 'dns', 'udp', '127.0.0.1', '9253', '--json'])) as { cookie: string };
  for (let i = 0; i < 3; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  return { tcpCookie: tcp.cookie, udpCookie: udp.cookie };
}

test.before(async () => {
  ctx = await setup('abi1', { load: false });
  oldTree = buildPrevious();
  await ctx.agent.listen('tcp', '127.0.0.1', 9201, 'web');
  await ctx.agent.listen('udp', '127.0.0.1', 9253, 'dns');
});
test.after(() => {
  teardown(ctx);
  if (oldTree) fs.rmSync(oldTree, { recursive: true, force: true });
});

test('upgrade migrates an ABI 1 state in place: bindings, sockets and counters kept, no failed connection', async () => {
  const { tcpCookie, udpCookie } = await fillOldState();
  const before = JSON.parse(old(['bindings', '--json'])) as unknown[];
  const loop = ctx.agent.call('loop', { host: '192.0.2.10', port: 80, durationMs: 4000, expect: 'web' });
  await new Promise((r) => setTimeout(r, 500));
  const up = ctx.env.ok(['upgrade', '--json']).json as { previousAbi: number; abi: number };
  const traffic = (await loop) as { ok: number; failed: number; errors: Record<string, number> };
  assert.equal([up.previousAbi, up.abi], [1, MANIFOLD_ABI]);
  assert.is(traffic.failed, 0, `failed connections during the upgrade: ${JSON.stringify(traffic.errors)}`);
  assert.ok(traffic.ok > 0);
  const after = ctx.env.ok(['bindings', '--json']).json as unknown[];
  assert.equal(after, before, 'every binding kept');
  const st = ctx.env.ok(['status', '--json']).json as { destinations: Dest[] };
  const web = st.destinations.find((d) => d.label === 'web' && d.protocol === 'tcp')!;
  const dns = st.destinations.find((d) => d.label === 'dns')!;
  assert.is(web.socket, tcpCookie, 'the TCP socket is still registered');
  assert.is(dns.socket, udpCookie, 'the UDP socket is still registered');
  assert.ok(web.lookups >= 3 + traffic.ok, `counters kept: ${web.lookups} >= ${3 + traffic.ok}`);
  assert.is(dns.lookups, 1);
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 8002), 'web');
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  // A normal current-ABI state now: writes work, both generations in sync, old pins gone.
  ctx.env.ok(['bind', 'web', 'tcp', '198.51.100.20', '81']);
  assert.is(await ctx.agent.who('tcp', '198.51.100.20', 81), 'web');
  assert.equal(invariantProblems(inspectTestState(ctx.env)), []);
  const dir = fs.readdirSync(ctx.env.bpffs).find((n) => n.endsWith('_manifold'))!;
  const pins = fs.readdirSync(path.join(ctx.env.bpffs, dir));
  for (const gone of ['bindings', 'port_bits', 'bindings-0', 'bindings-1', 'abi2']) assert.not.ok(pins.includes(gone), `${gone} removed`);
  for (const p of pins) assert.is(fs.statSync(path.join(ctx.env.bpffs, dir, p)).mode & 0o777, 0o640, `${p} is 0640`);
  ctx.env.ok(['unload']);
});

test('a migration killed at any step is finished by the next upgrade, nothing lost', async () => {
  const steps = ['migrate-prepared:1', 'migrate-switched:1', 'migrate-moved:1', 'migrate-moved:5', 'migrate-done:1', 'upgrade-marked:1'];
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
