/**
 * upgrade replaces the program in place: bindings, sockets and counters
 * survive and a client connecting in a loop sees no failure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('upgr');
});
test.after(() => teardown(ctx));

test('upgrade under a connecting client: 0 failures, state preserved', async () => {
  ctx.env.ok(['bind', 'web', 'tcp', '127.0.0.0/8', '4321']);
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9999);
  assert.is(await ctx.agent.who('tcp', '127.0.0.23', 4321), 'web');
  const before = dest(status(ctx), 'web');
  const loop = ctx.agent.call('loop', { host: '127.0.0.23', port: 4321, durationMs: 60_000, expect: 'web' });
  for (let i = 0; i < 4; i++) ctx.env.ok(['upgrade']);
  await ctx.agent.call('stop');
  const r = (await loop) as { ok: number; failed: number; errors: Record<string, number> };
  assert.is(r.failed, 0, `failures: ${JSON.stringify(r.errors)}`);
  assert.ok(r.ok > 10, `the client made ${r.ok} connections`);
  const after = dest(status(ctx), 'web');
  assert.is(after?.socket, before?.socket, 'socket kept');
  assert.ok((after?.lookups ?? 0) >= (before?.lookups ?? 0) + r.ok, 'counters kept and counting');
  assert.equal((ctx.env.ok(['bindings', '--json']).json as unknown[]).length, 1, 'bindings kept');
});

test('upgrade when not loaded fails with ERR_NOT_LOADED', () => {
  ctx.env.ok(['unload']);
  const r = ctx.env.cli(['upgrade', '--json']);
  assert.is(r.code, 3);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NOT_LOADED');
});

test.run();
