/**
 * `ip netns exec NS manifold …`: iproute2 remounts /sys privately, so the
 * default --bpffs /sys/fs/bpf there is not the host's and would vanish with
 * the command. manifold refuses it (usage error, exit 2) naming the fix
 * `--netns /run/netns/NS`, before changing anything; with a --bpffs outside
 * /sys the same `ip netns exec` works and the state is visible from
 * outside; doctor reports the situation as an error finding.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { BIN, type CliResult } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;

/** Run the CLI under `ip netns exec` of the test namespace (no --netns: the default is the current one). */
function inExec(args: string[]): CliResult {
  const r = spawnSync('ip', ['netns', 'exec', ctx.env.name, BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = null;
  }
  assert.not.ok(r.error, r.error?.message);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

test.before(async () => {
  ctx = await setup('nsx', { load: false });
});

test.after(() => teardown(ctx));

test('load (and every other command) under ip netns exec with the default --bpffs is refused with the fix', () => {
  for (const args of [['load'], ['bind', 'web', 'tcp', '192.0.2.0/24', '80'], ['status'], ['unload']]) {
    const r = inExec(args);
    assert.is(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, `running inside "ip netns exec ${ctx.env.name}"`);
    assert.match(r.stderr, `manifold --netns /run/netns/${ctx.env.name}`);
    assert.match(r.stderr, /or give --bpffs PATH of a bpffs mounted outside \/sys/);
  }
  const j = inExec(['load', '--json']);
  assert.is((j.json as { error: { code: string } }).error.code, 'ERR_USAGE');
  // Nothing happened: not loaded in the namespace.
  const st = ctx.env.cli(['status', '--json']);
  assert.is(st.code, 3, st.stdout);
});

test('doctor under ip netns exec reports it as an error finding with the fix', () => {
  const r = inExec(['doctor', '--json']);
  assert.is(r.code, 1, r.stderr);
  const f = (r.json as { findings: { id: string; severity: string; hint?: string }[] }).findings.find((x) => x.id === 'host.ip_netns_exec');
  assert.ok(f, r.stdout);
  assert.is(f?.severity, 'error');
  assert.match(f?.hint ?? '', `manifold --netns /run/netns/${ctx.env.name}`);
});

test('with a bpffs outside /sys, ip netns exec works and the state is the namespace\'s', () => {
  const r = inExec(['load', '--bpffs', ctx.env.bpffs]);
  assert.is(r.code, 0, r.stderr);
  const b = inExec(['bind', 'web', 'tcp', '192.0.2.0/24', '80', '--bpffs', ctx.env.bpffs]);
  assert.is(b.code, 0, b.stderr);
  const st = ctx.env.ok(['bindings', '--json']);
  assert.equal((st.json as { label: string; prefix: string }[]).map((x) => [x.label, x.prefix]), [['web', '192.0.2.0/24']]);
  assert.is(inExec(['unload', '--bpffs', ctx.env.bpffs]).code, 0);
});

test.run();
