/**
 * An IPv6 binding, however short its prefix, never matches IPv4 traffic,
 * and no IPv4-mapped form gets in through any input path.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('v6v4');
});
test.after(() => teardown(ctx));

test('::/0, ::/64 and ::/80 on all ports never steer IPv4 traffic', async () => {
  await serve(ctx, 'six', 'tcp', '2001:db8::1', 9601);
  await serve(ctx, 'six', 'udp', '2001:db8::1', 9602);
  await ctx.agent.listen('tcp', '127.0.0.1', 7001, 'plain4');
  await ctx.agent.listen('udp', '127.0.0.1', 7002, 'plain4u');
  for (const prefix of ['::/0', '::/64', '::/80']) {
    ctx.env.ok(['bind', 'six', 'tcp', prefix, '0']);
    ctx.env.ok(['bind', 'six', 'udp', prefix, '0']);
    assert.is(await ctx.agent.who('tcp', '127.0.0.1', 7001), 'plain4', `${prefix}: IPv4 TCP untouched`);
    assert.is(await ctx.agent.who('udp', '127.0.0.1', 7002), 'plain4u', `${prefix}: IPv4 UDP untouched`);
    assert.is(await ctx.agent.who('tcp', '127.0.0.1', 7003), '!ECONNREFUSED', `${prefix}: IPv4 to nothing is plainly refused`);
    assert.is(await ctx.agent.who('tcp', '::1', 7001), 'six', `${prefix}: IPv6 is steered`);
    ctx.env.ok(['unbind', 'six', 'tcp', prefix, '0']);
    ctx.env.ok(['unbind', 'six', 'udp', prefix, '0']);
  }
  const st = ctx.env.ok(['status', '--json']).json as { destinations: { label: string; domain: string; lookups: number; misses: number }[] };
  for (const d of st.destinations) assert.is(d.domain, 'ipv6', 'no IPv4 destination appeared');
});

test('a dual-stack listener keeps its IPv4 traffic and cannot be registered', async () => {
  ctx.env.ok(['bind', 'six', 'tcp', '::/0', '0']);
  const dual = await ctx.agent.listen('tcp', '::', 7100, 'dual', { v6only: false });
  assert.is(await ctx.agent.who('tcp', '127.0.0.1', 7100), 'dual', 'IPv4 reaches the dual-stack socket by normal lookup');
  const r = ctx.env.cli(['register-pid', String(ctx.agent.pid), 'dual', 'tcp', '::', String(dual.port), '--json']);
  assert.is(r.code, 1);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_BAD_SOCKET');
  assert.match(r.stderr, new RegExp(`fd \\d+ of process ${ctx.agent.pid} \\(\\[::\\]:${dual.port}\\) is a dual-stack IPv6 socket`));
  assert.is(r.stderr.split(`[::]:${dual.port}`).length, 2, 'the endpoint is named once');
  ctx.env.ok(['unbind', 'six', 'tcp', '::/0', '0']);
});

test('IPv4-mapped forms are refused by bind, unbind, apply, bindings and register-pid', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-v6v4-'));
  try {
    const file = path.join(dir, 'm.json');
    fs.writeFileSync(file, JSON.stringify({ bindings: [{ label: 'm', prefix: '::ffff:0.0.0.0/96', port: 0 }] }));
    const cases: string[][] = [
      ['bind', 'm', 'tcp', '::ffff:127.0.0.1', '80'],
      ['bind', 'm', 'tcp', '::ffff:0:0/96', '0'],
      ['bind', 'm', 'tcp', '::ffff:7f00:1/128', '0'],
      ['bind', 'm', 'tcp', '::127.0.0.1', '0'],
      ['unbind', 'm', 'tcp', '::ffff:127.0.0.1', '80'],
      ['apply', file],
      ['bindings', '--prefix', '::ffff:127.0.0.1'],
      ['register-pid', String(ctx.agent.pid), 'm', 'tcp', '::ffff:127.0.0.1', '9601'],
    ];
    for (const args of cases) {
      const r = ctx.env.cli([...args, '--json']);
      assert.is((r.json as { error: { code: string } }).error.code, 'ERR_INVALID_PREFIX', args.join(' '));
      assert.is(r.code, 2, args.join(' '));
    }
    assert.is((ctx.env.ok(['bindings', '--json']).json as unknown[]).length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
