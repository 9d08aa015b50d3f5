/**
 * `status` tells the truth about sockets: alive or not, which process
 * holds them, whether they can take traffic, and warnings (text and JSON)
 * for destinations whose traffic is refused or dropped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

interface Owner {
  pid: number;
  comm: string;
}
interface Dest {
  label: string;
  domain: string;
  protocol: string;
  socket: string | null;
  id: number;
  bindings: number;
  lookups: number;
  misses: number;
  errors: number;
  errorsByReason: Record<string, number>;
  alive: boolean;
  usable: boolean | null;
  owner: Owner | null;
  owners: Owner[];
}
interface Warning {
  kind: string;
  label: string;
  domain: string;
  protocol: string;
  message: string;
}
interface Doc {
  bindings: unknown[];
  destinations: Dest[];
  warnings: Warning[];
}

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('truth');
});
test.after(() => teardown(ctx));

function doc(): Doc {
  return ctx.env.ok(['status', '--json']).json as Doc;
}

function find(d: Doc, label: string, protocol = 'tcp'): Dest {
  const x = d.destinations.find((y) => y.label === label && y.protocol === protocol);
  if (!x) throw new Error(`no destination ${label}/${protocol}`);
  return x;
}

test('a binding without a socket: alive false, no owner, a no_socket warning in JSON and text', () => {
  ctx.env.ok(['bind', 'lonely', 'tcp', '192.0.2.1', '80']);
  const d = doc();
  const x = find(d, 'lonely');
  assert.is(x.alive, false);
  assert.is(x.socket, null);
  assert.is(x.owner, null);
  assert.equal(x.owners, []);
  assert.is(x.usable, null);
  const w = d.warnings.filter((y) => y.label === 'lonely');
  assert.is(w.length, 1);
  assert.is(w[0]?.kind, 'no_socket');
  assert.match(w[0]?.message ?? '', 'traffic to them is refused');
  const text = ctx.env.ok(['status']);
  assert.match(text.stderr, 'warning: ipv4:tcp:lonely has 1 binding(s) but no socket: traffic to them is refused');
  assert.match(text.stdout, /ipv4:tcp:lonely {2}socket=none {2}bindings=1/);
});

test('existing JSON fields stay', () => {
  const x = find(doc(), 'lonely');
  for (const k of ['label', 'domain', 'protocol', 'socket', 'lookups', 'misses', 'errors', 'id', 'bindings', 'errorsByReason']) assert.ok(k in x, k);
  assert.equal(Object.keys(x.errorsByReason).sort(), ['bad_socket', 'other', 'wrong_family', 'wrong_protocol']);
});

test('a registered listener: alive, usable, owned by the agent process (found via its cookie)', async () => {
  const s = await serve(ctx, 'lonely', 'tcp', '127.0.0.1', 9500);
  // Unrelated sockets of the same kind must not confuse the search.
  await ctx.agent.listen('tcp', '127.0.0.1', 9501, 'decoy');
  await serve(ctx, 'other', 'tcp', '127.0.0.1', 9502);
  const d = doc();
  const x = find(d, 'lonely');
  assert.is(x.alive, true);
  assert.is(x.socket, s.cookie);
  assert.is(x.usable, true);
  assert.equal(x.owner, { pid: ctx.agent.pid, comm: 'node' });
  assert.equal(x.owners.map((o) => o.pid), [ctx.agent.pid]);
  assert.is(d.warnings.filter((w) => w.label === 'lonely').length, 0, 'no warning once a socket is registered');
  assert.not.equal(find(d, 'other').socket, x.socket);
  assert.is(find(d, 'other').owner?.pid, ctx.agent.pid);
  assert.match(ctx.env.ok(['status']).stdout, `owner=${ctx.agent.pid}(node)`);
});

test('closing the socket: status shows it dead and warns again', async () => {
  const s = await serve(ctx, 'closing', 'tcp', '127.0.0.1', 9503);
  ctx.env.ok(['bind', 'closing', 'tcp', '192.0.2.2', '80']);
  assert.is(find(doc(), 'closing').alive, true);
  await ctx.agent.call('close', { handle: s.handle });
  const d = doc();
  const x = find(d, 'closing');
  assert.is(x.alive, false);
  assert.is(x.socket, null);
  assert.is(x.owner, null);
  assert.is(d.warnings.find((w) => w.label === 'closing')?.kind, 'no_socket');
});

test('a UDP socket connect()ed after registration: alive but unusable, with an unusable_socket warning', async () => {
  const s = await serve(ctx, 'dgram', 'udp', '127.0.0.1', 9504);
  ctx.env.ok(['bind', 'dgram', 'udp', '192.0.2.3', '53']);
  let x = find(doc(), 'dgram', 'udp');
  assert.is(x.usable, true);
  await ctx.agent.call('udp-connect', { handle: s.handle, host: '127.0.0.1', port: 9 });
  assert.is((await ctx.agent.connect('udp', '192.0.2.3', 53, { timeoutMs: 300 })).code, 'TIMEOUT');
  const d = doc();
  x = find(d, 'dgram', 'udp');
  assert.is(x.alive, true);
  assert.is(x.usable, false);
  assert.is(x.owner?.pid, ctx.agent.pid);
  assert.is(x.errorsByReason.bad_socket, 1);
  const w = d.warnings.find((y) => y.label === 'dgram');
  assert.is(w?.kind, 'unusable_socket');
  assert.match(w?.message ?? '', 'connected UDP socket');
  const text = ctx.env.ok(['status']);
  assert.match(text.stderr, /warning: ipv4:udp:dgram's socket \d+ is a connected UDP socket/);
  assert.match(text.stdout, /ipv4:udp:dgram .*UNUSABLE.*errors=1 \(bad_socket=1\)/);
});

test('a TCP listener shut down after registration: unusable in status, doctor and lookup (the sockmap keeps it; the kernel refuses it)', async () => {
  const { handle } = (await ctx.agent.call('raw-listen', { host: '127.0.0.1', port: 9505 })) as { handle: number };
  ctx.env.ok(['register-pid', String(ctx.agent.pid), 'halted', 'tcp', '127.0.0.1', '9505']);
  ctx.env.ok(['bind', 'halted', 'tcp', '192.0.2.4', '80']);
  assert.is(find(doc(), 'halted').usable, true);
  await ctx.agent.call('shutdown', { handle });
  assert.is((await ctx.agent.connect('tcp', '192.0.2.4', 80, { timeoutMs: 1000 })).code, 'ECONNREFUSED');
  const d = doc();
  const x = find(d, 'halted');
  assert.is(x.alive, true, 'still in the sockmap');
  assert.is(x.usable, false);
  assert.is(x.errorsByReason.bad_socket, 1);
  const w = d.warnings.find((y) => y.label === 'halted');
  assert.is(w?.kind, 'unusable_socket');
  assert.match(w?.message ?? '', 'a TCP socket that is not listening');
  assert.match(ctx.env.ok(['status']).stdout, /ipv4:tcp:halted .*UNUSABLE.*errors=1 \(bad_socket=1\)/);
  const lookup = ctx.env.cli(['lookup', 'tcp', '192.0.2.4', '80', '--json']);
  assert.is(lookup.code, 0, lookup.stderr);
  const l = lookup.json as { agrees: boolean; outcome: string; kernel: { verdict: string } };
  assert.is(l.kernel.verdict, 'drop');
  assert.is(l.agrees, true, l.outcome);
  assert.match(l.outcome, /^dropped: the registered socket is a TCP socket that is not listening/);
  const doctor = ctx.env.cli(['doctor', '--json']);
  assert.match(doctor.stdout, /halted/, 'doctor names it');
  ctx.env.ok(['unbind', 'halted', 'tcp', '192.0.2.4', '80']);
  ctx.env.ok(['unregister', 'halted', 'ipv4', 'tcp']);
  await ctx.agent.call('close', { handle });
});

test('status for one label carries only that label\'s warnings', () => {
  const d = ctx.env.ok(['status', 'closing', '--json']).json as Doc;
  assert.equal(d.destinations.map((x) => x.label), ['closing']);
  assert.equal(d.warnings.map((w) => w.label), ['closing']);
});

test("kernel memory: what bpftool says each pinned map locks, every map counted once", () => {
  const stateDir = ctx.env.ok(['status', '--json']).json as { stateDir: string; kernelMemory: { total: number; byMap: Record<string, number> } };
  const pins = fs.readdirSync(stateDir.stateDir).filter((n) => n !== 'link' && n !== 'program' && n !== 'dispatcher_link' && n !== 'dispatcher');
  const byId = new Map<number, number>();
  const byMap: Record<string, number> = {};
  for (const name of pins) {
    const r = spawnSync('bpftool', ['-j', 'map', 'show', 'pinned', path.join(stateDir.stateDir, name)], { encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) continue; // not a map (the program, the link)
    const m = JSON.parse(r.stdout) as { id: number; bytes_memlock: number };
    byMap[name] = m.bytes_memlock;
    byId.set(m.id, m.bytes_memlock);
  }
  assert.ok(Object.keys(byMap).length >= 15, `maps found: ${Object.keys(byMap).join(' ')}`);
  assert.equal(stateDir.kernelMemory.byMap, byMap);
  assert.is(stateDir.kernelMemory.total, [...byId.values()].reduce((a, b) => a + b, 0));
  // The text says the same total.
  assert.match(ctx.env.ok(['status']).stdout, `kernel memory: ${Math.round(stateDir.kernelMemory.total / 1024)} KiB`);
});

test.run();
