/**
 * manifold lookup: the answer comes from the loaded program (a copy run
 * with BPF_PROG_TEST_RUN on the state's maps), agrees with real traffic,
 * explains the precedence, and changes nothing (no counter moves).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let web = '';
let api = '';
test.before(async () => {
  ctx = await setup('look');
  ctx.env.ok(['bind', 'wide', 'tcp', '198.51.0.0/16', '0']);
  ctx.env.ok(['bind', 'api', 'tcp', '198.51.100.0/24', '0']);
  ctx.env.ok(['bind', 'web', 'tcp', '198.51.100.0/24', '443']);
  ctx.env.ok(['bind', 'dns', 'udp', '2001:db8:1:9::/64', '53']);
  ctx.env.ok(['bind', 'nosock', 'tcp', '198.51.2.7', '80']);
  web = (await serve(ctx, 'web', 'tcp', '127.0.0.1', 0)).cookie;
  api = (await serve(ctx, 'api', 'tcp', '127.0.0.1', 0)).cookie;
  await serve(ctx, 'dns', 'udp', '::1', 0, { v6only: true });
});
test.after(() => teardown(ctx));

interface LookupDoc {
  binding: { label: string; prefix: string; port: number } | null;
  beaten: { label: string; prefix: string; port: number }[];
  reason: string;
  destination: { name: string; socket: string | null; owner: { pid: number } | null } | null;
  kernel: { verdict: string; socket: string | null; reuseportGroup: boolean };
  agrees: boolean;
}

function lookup(...args: string[]): LookupDoc {
  return ctx.env.ok(['lookup', ...args, '--json']).json as LookupDoc;
}

test('an exact port beats all ports at the same prefix length; the kernel assigns that socket', async () => {
  const r = lookup('tcp', '198.51.100.5', '443');
  assert.is(r.binding?.label, 'web');
  assert.match(r.reason, /an exact port beats all ports/);
  assert.equal(r.beaten.map((b) => b.label), ['api', 'wide']);
  assert.is(r.kernel.socket, web);
  assert.is(r.destination?.socket, web);
  assert.is(r.destination?.owner?.pid, ctx.agent.pid, 'the owner is the process holding the socket');
  assert.ok(r.agrees);
  assert.is(await ctx.agent.who('tcp', '198.51.100.5', 443), 'web', 'real traffic goes where lookup says');
});

test('a longer prefix beats a shorter one', async () => {
  const r = lookup('tcp', '198.51.100.5', '80');
  assert.is(r.binding?.label, 'api');
  assert.match(r.reason, /prefix \/24 is longer than the next match's \/16/);
  assert.is(r.kernel.socket, api);
  assert.is(await ctx.agent.who('tcp', '198.51.100.5', 80), 'api');
});

test('IPv6 UDP, a destination without a socket, and no binding at all', async () => {
  const v6 = lookup('udp', '2001:db8:1:9::1', '53');
  assert.is(v6.binding?.label, 'dns');
  assert.ok(v6.kernel.socket !== null && v6.agrees);
  assert.is(await ctx.agent.who('udp', '2001:db8:1:9::1', 53), 'dns');
  const refused = lookup('tcp', '198.51.2.7', '80');
  assert.is(refused.kernel.verdict, 'drop');
  assert.is(refused.destination?.socket, null);
  assert.ok(refused.agrees);
  const none = lookup('tcp', '192.0.2.1', '80');
  assert.is(none.binding, null);
  assert.is(none.kernel.verdict, 'pass');
  assert.is(none.kernel.socket, null);
  assert.ok(none.agrees);
  const text = ctx.env.ok(['lookup', 'tcp', '198.51.100.5', '443']).stdout;
  assert.match(text, /binding: +tcp 198\.51\.100\.0\/24 443 -> web/);
  assert.match(text, /kernel: +the program assigned socket \d+ \(SK_PASS\)/);
});

test('a socket of an SO_REUSEPORT group: the kernel picks the member, lookup says so', async () => {
  ctx.env.ok(['bind', 'rp', 'tcp', '198.51.100.9', '8080']);
  await serve(ctx, 'rp', 'tcp', '127.0.0.1', 0, { reusePort: true });
  const r = lookup('tcp', '198.51.100.9', '8080');
  assert.is(r.binding?.label, 'rp');
  assert.ok(r.kernel.reuseportGroup || r.kernel.socket === r.destination?.socket, JSON.stringify(r.kernel));
  assert.ok(r.agrees);
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 8080), 'rp');
});

test('lookup changes nothing: counters do not move', () => {
  const before = status(ctx);
  for (let i = 0; i < 5; i++) lookup('tcp', '198.51.100.5', '443');
  const after = status(ctx);
  assert.equal(dest(after, 'web'), dest(before, 'web'));
  assert.equal(after.bindings, before.bindings);
});

test('bad input: usage errors, changes nothing', () => {
  const bad = (args: string[], code: string): void => {
    const r = ctx.env.cli(['lookup', ...args, '--json']);
    assert.is.not(r.code, 0, args.join(' '));
    assert.is((r.json as { error: { code: string } }).error.code, code, `${args.join(' ')}: ${r.stderr}`);
  };
  bad(['tcp', '198.51.100.0/24', '443'], 'ERR_INVALID_PREFIX');
  bad(['tcp', '198.51.100.5', '0'], 'ERR_INVALID_PORT');
  bad(['sctp', '198.51.100.5', '80'], 'ERR_INVALID_PROTOCOL');
  bad(['tcp', '198.51.100.5', '70000'], 'ERR_INVALID_PORT');
  bad(['tcp', '198.51.100.5', '80', '--source', '2001:db8::1'], 'ERR_USAGE');
});

test.run();
