/**
 * Destination ids never alias: a closed socket's id is not handed to
 * another destination while bindings reference it, traffic for an old
 * label never reaches a new label's socket, listings never mix labels and
 * sockets, and stale entries never exhaust the id space.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('alias');
});
test.after(() => teardown(ctx));

test('closed socket: bindings keep the id, the new label gets another', async () => {
  ctx.env.ok(['bind', 'old', 'tcp', '192.0.2.10', '80']);
  const s = await serve(ctx, 'old', 'tcp', '127.0.0.1', 9701);
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'old');
  const oldId = dest(status(ctx), 'old')!.id;
  await ctx.agent.call('close', { handle: s.handle });
  const st = status(ctx);
  assert.is(dest(st, 'old')?.socket, null, 'closed socket disappears from the sockmap');
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), '!ECONNREFUSED', 'refused, counted as a miss');
  await serve(ctx, 'new', 'tcp', '127.0.0.1', 9702);
  const st2 = status(ctx);
  assert.is.not(dest(st2, 'new')!.id, oldId, 'id of a referenced destination is not reused');
  assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), '!ECONNREFUSED', 'old label traffic never reaches the new socket');
  assert.is(dest(st2, 'old')?.socket, null, 'listing does not show the new socket under the old label');
  assert.ok(dest(st2, 'old')!.misses >= 1);
});

test('a reused id starts clean: no socket, zero counters', async () => {
  const oldId = dest(status(ctx), 'old')!.id;
  ctx.env.ok(['unbind', 'old', 'tcp', '192.0.2.10', '80']);
  assert.is(dest(status(ctx), 'old'), undefined, 'unreferenced destination without socket is collected');
  ctx.env.ok(['bind', 'third', 'tcp', '192.0.2.11', '80']);
  const third = dest(status(ctx), 'third')!;
  assert.is(third.id, oldId, 'the freed id is reused');
  assert.is(third.socket, null);
  assert.is(third.lookups + third.misses + third.errors, 0, 'counters zeroed');
  assert.is(await ctx.agent.who('tcp', '192.0.2.11', 80), '!ECONNREFUSED');
  await serve(ctx, 'third', 'tcp', '127.0.0.1', 9703);
  assert.is(await ctx.agent.who('tcp', '192.0.2.11', 80), 'third');
  const st = status(ctx);
  const sockets = st.destinations.map((d) => d.socket).filter((x) => x !== null);
  assert.is(new Set(sockets).size, sockets.length, 'no socket listed twice');
});

test('stale destinations are collected and never exhaust the id space (at the 16,384-destination maximum)', async () => {
  ctx.env.ok(['unload']);
  ctx.env.ok(['load', '--max-destinations', '16384']);
  const ghost = await serve(ctx, 'ghost', 'udp', '127.0.0.1', 9704);
  await ctx.agent.call('close', { handle: ghost.handle });
  ctx.env.ok(['bind', 'third', 'tcp', '192.0.2.12', '80']);
  assert.is(dest(status(ctx), 'ghost', 'ipv4', 'udp'), undefined, 'socket-only destination whose socket closed is collected');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-alias-'));
  try {
    for (let round = 0; round < 3; round++) {
      const bindings = [];
      for (let i = 0; i < 16380; i++) bindings.push({ label: `r${round}-${i}`, prefix: `10.${round}.${i >> 8}.${i & 255}`, port: 80, protocol: 'tcp' });
      const file = path.join(dir, `r${round}.json`);
      fs.writeFileSync(file, JSON.stringify({ bindings }));
      ctx.env.ok(['apply', file, '--force']);
      const st = status(ctx);
      assert.is(st.destinations.filter((d) => d.label.startsWith(`r${round}-`)).length, 16380, `round ${round}: 16380 destinations`);
      assert.is(st.destinations.filter((d) => /^r\d-/.test(d.label) && !d.label.startsWith(`r${round}-`)).length, 0, `round ${round}: earlier ones collected`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--max-destinations limits destinations, not ids: a write that would leave more is refused and changes nothing; a full set can still be replaced', () => {
  ctx.env.ok(['unload']);
  ctx.env.ok(['load', '--max-destinations', '2']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-alias-'));
  try {
    ctx.env.ok(['bind', 'a', 'tcp', '192.0.2.21', '80']);
    ctx.env.ok(['bind', 'b', 'tcp', '192.0.2.22', '80']);
    const before = ctx.env.ok(['bindings', '--json']).stdout;
    const over = /3 destinations would be more than the 2 this state was loaded for \(manifold load --max-destinations\); nothing was changed/;
    const refused = (args: string[], what: string, message = over): void => {
      const r = ctx.env.cli([...args, '--json']);
      assert.is(r.code, 1, `${what}: ${r.stderr}`);
      assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NO_SPACE', what);
      assert.match(r.stderr, message, what);
      assert.is(ctx.env.ok(['bindings', '--json']).stdout, before, `${what}: nothing changed`);
      assert.is(status(ctx).destinations.length, 2, `${what}: two destinations`);
    };
    refused(['bind', 'c', 'tcp', '192.0.2.23', '80'], 'a third label');
    refused(['bind', 'a', 'udp', '192.0.2.21', '53'], 'a second protocol of a label (another destination)');
    const file = (name: string, labels: string[]): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify({ bindings: labels.map((label, i) => ({ label, protocol: 'tcp', prefix: `198.51.100.${i + 1}`, port: 80 })) }));
      return f;
    };
    // Beside the two live ones, three new destinations do not even get ids (2 x 2).
    refused(['apply', file('three.json', ['c', 'd', 'e'])], 'an apply of three labels', /all 4 destination ids are in use: this state was loaded for 2 destinations \(manifold load --max-destinations\)/);
    ctx.env.ok(['apply', file('two.json', ['c', 'd'])]);
    assert.equal(status(ctx).destinations.map((d) => d.label).sort(), ['c', 'd'], 'the full set replaced');
    ctx.env.ok(['unbind', 'd', 'tcp', '198.51.100.2', '80']);
    ctx.env.ok(['bind', 'e', 'tcp', '192.0.2.25', '80']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.env.ok(['unload']);
    ctx.env.ok(['load']);
  }
});

test.run();
