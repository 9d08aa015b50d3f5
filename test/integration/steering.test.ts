/**
 * Real TCP/UDP traffic steered by the dispatcher in a test namespace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('steer');
});
test.after(() => teardown(ctx));

test('quickstart: 127.0.0.0/8:4321 reaches a listener on 127.0.0.1:9999', async () => {
  ctx.env.ok(['bind', 'foo', 'tcp', '127.0.0.0/8', '4321']);
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4321), '!ECONNREFUSED', 'no socket yet: refused');
  await serve(ctx, 'foo', 'tcp', '127.0.0.1', 9999);
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4321), 'foo');
  assert.is(await ctx.agent.who('tcp', '127.1.2.3', 4321), 'foo');
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4322), '!ECONNREFUSED', 'other port: normal lookup, nothing listens');
  const d = dest(status(ctx), 'foo');
  assert.ok(d, 'destination listed');
  assert.is(d!.lookups, 3, 'every lookup that matched the binding: 1 miss + 2 steered (as tubular counts)');
  assert.is(d!.misses, 1);
});

test('all-ports binding (port 0) steers every port of an address', async () => {
  ctx.env.ok(['bind', 'allp', 'tcp', '192.0.2.10', '0']);
  await serve(ctx, 'allp', 'tcp', '127.0.0.1', 9100);
  for (const port of [1, 80, 443, 8080, 65535]) assert.is(await ctx.agent.who('tcp', '192.0.2.10', port), 'allp', `port ${port}`);
  assert.is(await ctx.agent.who('tcp', '192.0.2.11', 80), '!ECONNREFUSED', 'neighbour address not bound');
});

test('subnet binding steers the whole prefix and leaves other ports alone', async () => {
  ctx.env.ok(['bind', 'sub', 'tcp', '198.51.100.77/24', '80']);
  await serve(ctx, 'sub', 'tcp', '127.0.0.1', 9101);
  await ctx.agent.listen('tcp', '198.51.100.1', 81, 'plain');
  assert.is(await ctx.agent.who('tcp', '198.51.100.1', 80), 'sub');
  assert.is(await ctx.agent.who('tcp', '198.51.100.254', 80), 'sub');
  assert.is(await ctx.agent.who('tcp', '198.51.100.1', 81), 'plain', 'unbound port: normal socket lookup');
  const listed = ctx.env.ok(['bindings', '--label', 'sub', '--json']).json as { prefix: string }[];
  assert.equal(listed.map((b) => b.prefix), ['198.51.100.0/24'], 'host bits masked');
});

test('precedence: longer prefix first, then exact port over port 0', async () => {
  await serve(ctx, 'p24', 'tcp', '127.0.0.1', 9201);
  await serve(ctx, 'p32any', 'tcp', '127.0.0.1', 9202);
  await serve(ctx, 'p32exact', 'tcp', '127.0.0.1', 9203);
  await serve(ctx, 'p16any', 'tcp', '127.0.0.1', 9204);
  ctx.env.ok(['bind', 'p24', 'tcp', '192.0.2.0/24', '80']);
  ctx.env.ok(['bind', 'p32any', 'tcp', '192.0.2.50/32', '0']);
  ctx.env.ok(['bind', 'p16any', 'tcp', '192.0.0.0/16', '0']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.50', 80), 'p32any', '/32 port 0 beats /24 port 80');
  assert.is(await ctx.agent.who('tcp', '192.0.2.51', 80), 'p24', '/24 port 80 beats /16 port 0');
  assert.is(await ctx.agent.who('tcp', '192.0.2.51', 81), 'p16any', 'only /16 port 0 matches');
  ctx.env.ok(['bind', 'p32exact', 'tcp', '192.0.2.50/32', '80']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.50', 80), 'p32exact', 'equal prefix: exact port beats port 0');
  assert.is(await ctx.agent.who('tcp', '192.0.2.50', 81), 'p32any');
  const order = (ctx.env.ok(['bindings', '--json']).json as { prefix: string; port: number }[]).map((b) => `${b.prefix} ${b.port}`);
  assert.ok(order.indexOf('192.0.2.50/32 80') < order.indexOf('192.0.2.50/32 0'), 'listing: exact before port 0');
  assert.ok(order.indexOf('192.0.2.50/32 0') < order.indexOf('192.0.2.0/24 80'), 'listing: longer prefix first');
});

test('IPv6 precedence and steering', async () => {
  await serve(ctx, 'v6wide', 'tcp', '2001:db8::1', 9301);
  await serve(ctx, 'v6narrow', 'tcp', '2001:db8::1', 9302);
  ctx.env.ok(['bind', 'v6wide', 'tcp', '2001:db8:1::/48', '0']);
  ctx.env.ok(['bind', 'v6narrow', 'tcp', '2001:db8:1:2::/64', '443']);
  assert.is(await ctx.agent.who('tcp', '2001:db8:1:2::5', 443), 'v6narrow');
  assert.is(await ctx.agent.who('tcp', '2001:db8:1:2::5', 444), 'v6wide');
  assert.is(await ctx.agent.who('tcp', '2001:db8:1:3::5', 443), 'v6wide');
});

test('UDP steering', async () => {
  ctx.env.ok(['bind', 'dns', 'udp', '192.0.2.53', '53']);
  await serve(ctx, 'dns', 'udp', '127.0.0.1', 5353);
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  const d = dest(status(ctx), 'dns', 'ipv4', 'udp');
  assert.is(d?.lookups, 1);
});

test('unbind and relabel', async () => {
  await serve(ctx, 'rel-a', 'tcp', '127.0.0.1', 9401);
  await serve(ctx, 'rel-b', 'tcp', '127.0.0.1', 9402);
  ctx.env.ok(['bind', 'rel-a', 'tcp', '198.51.100.200', '7000-7002']);
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 7001), 'rel-a');
  const r = ctx.env.ok(['bind', 'rel-b', 'tcp', '198.51.100.200', '7001', '--json']).json as { relabelled: { from: string }[] };
  assert.is(r.relabelled[0]?.from, 'rel-a');
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 7001), 'rel-b');
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 7002), 'rel-a');
  const wrong = ctx.env.cli(['unbind', 'rel-a', 'tcp', '198.51.100.200', '7001', '--json']);
  assert.is(wrong.code, 1, 'unbinding another label\'s binding fails');
  assert.is((wrong.json as { error: { code: string } }).error.code, 'ERR_NOT_FOUND');
  ctx.env.ok(['unbind', 'rel-a', 'tcp', '198.51.100.200', '7002']);
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 7002), '!ECONNREFUSED');
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 7000), 'rel-a');
});

test('unload returns traffic to normal socket lookup immediately', async () => {
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4321), 'foo');
  ctx.env.ok(['unload']);
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4321), '!ECONNREFUSED');
  assert.is(await ctx.agent.who('tcp', '127.0.0.1', 9999), 'foo', 'the listener itself still works');
  const r = ctx.env.cli(['status', '--json']);
  assert.is(r.code, 3, 'not loaded exit code');
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NOT_LOADED');
  ctx.env.ok(['load']);
  assert.is((ctx.env.ok(['bindings', '--json']).json as unknown[]).length, 0, 'fresh load has no bindings');
});

test.run();
