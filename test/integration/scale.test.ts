/**
 * Scale: 16,384 destinations and 1,000,000 bindings in one namespace, with
 * real traffic still steered correctly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;
test.before(async () => {
  ctx = await setup('scale', { load: false });
  ctx.env.ok(['load', '--max-destinations', '16384']);
  ctx.env.ip('route', 'add', 'local', '10.0.0.0/8', 'dev', 'lo');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-scale-'));
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('1,000,000 bindings over 16,384 destinations', async () => {
  const parts: string[] = [];
  const N = 1_000_000;
  let v4 = 0;
  let v6 = 0;
  let udp = 0;
  for (let i = 0; i < N; i++) {
    // 16,000 IPv4/TCP labels + 192 IPv6/TCP + 192 IPv4/UDP = 16,384 destinations.
    const a = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
    if (i % 10 === 9) parts.push(`{"label":"v6-${v6++ % 192}","prefix":"fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}","port":443,"protocol":"tcp"}`);
    else if (i % 10 === 8) parts.push(`{"label":"u-${udp++ % 192}","prefix":"${a}","port":53,"protocol":"udp"}`);
    else parts.push(`{"label":"d${v4++ % 16000}","prefix":"${a}","port":${80 + (i % 3)},"protocol":"tcp"}`);
  }
  const file = path.join(dir, 'big.json');
  fs.writeFileSync(file, `{"bindings":[${parts.join(',')}]}`);
  const r = ctx.env.cli(['apply', file, '--json'], { timeoutMs: 600_000 });
  assert.is(r.code, 0, r.stderr);
  assert.is((r.json as { added: unknown[] }).added.length, N);
  const st = ctx.env.ok(['status', '--json']).json as { bindings: unknown[]; destinations: { label: string }[] };
  assert.is(st.bindings.length, N);
  assert.is(st.destinations.length, 16384);
  // Every listing of a million bindings works (no call with a million arguments: stack overflow).
  for (const args of [['status'], ['bindings'], ['status', '--summary']]) {
    const x = ctx.env.cli(args, { timeoutMs: 120_000 });
    assert.is(x.code, 0, `${args.join(' ')}: ${x.stderr.slice(0, 300)}`);
  }
  // i = 1 is d1 tcp 10.0.0.1:81; i = 2 is d2 tcp 10.0.0.2:82; d1 again at the 16,002nd IPv4/TCP binding, i = 20001: 10.0.78.33:80.
  await serve(ctx, 'd1', 'tcp', '127.0.0.1', 9801);
  await serve(ctx, 'd2', 'tcp', '127.0.0.1', 9802);
  assert.is(await ctx.agent.who('tcp', '10.0.0.1', 81), 'd1');
  assert.is(await ctx.agent.who('tcp', '10.0.78.33', 80), 'd1');
  assert.is(await ctx.agent.who('tcp', '10.0.0.2', 82), 'd2');
  assert.is(await ctx.agent.who('tcp', '10.0.0.1', 80), '!ECONNREFUSED', 'no binding: normal lookup, nothing listens');
  // A bind on top of a million bindings still works and wins by precedence.
  ctx.env.ok(['bind', 'd2', 'tcp', '10.0.0.1', '0']);
  assert.is(await ctx.agent.who('tcp', '10.0.0.1', 81), 'd1', '/32 exact port beats /32 port 0');
  assert.is(await ctx.agent.who('tcp', '10.0.0.1', 9), 'd2');
});

test.run();
