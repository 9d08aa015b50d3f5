/**
 * What a rebuild (a large apply) does to the staging generation's inner maps
 * (src/state/kernel-maps.ts, resetGeneration): a new exact-port hash sized for
 * the set, every time; its two tries are kept when they are already empty (a
 * generation after load), since every write to an outer map waits for an RCU
 * grace period, and replaced when they hold a stale set. Real traffic follows
 * each set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeFd } from '../../src/sys/libc.js';
import { mapInfo, objGet } from '../../src/sys/bpf.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;
test.before(async () => {
  ctx = await setup('rebuild-maps');
  ctx.env.ip('route', 'add', 'local', '10.0.0.0/8', 'dev', 'lo');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-rebuild-maps-'));
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Map ids of generation g's inner maps, read from their pins. */
function innerIds(g: 0 | 1): { exact: number; trie: number; wild: number } {
  const state = fs.readdirSync(ctx.env.bpffs).find((n) => n.endsWith('_manifold'));
  assert.ok(state, 'a state directory');
  const id = (name: string): number => {
    const fd = objGet(path.join(ctx.env.bpffs, state, `gen${g}_${name}`));
    try {
      return mapInfo(fd).id;
    } finally {
      closeFd(fd);
    }
  };
  return { exact: id('exact'), trie: id('trie'), wild: id('wild') };
}

/** A set of 300 bindings in 10.N.0.0/16 for label "web" at 10.N.0.1:80: exact-port /32s and port-0 /24s (both tries used). */
function writeSet(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 280; i++) parts.push(`{"label":"web","prefix":"10.${n}.${1 + (i >> 8)}.${i & 255}/32","port":${1000 + i},"protocol":"tcp"}`);
  for (let i = 0; i < 19; i++) parts.push(`{"label":"other","prefix":"10.${n}.${100 + i}.0/24","port":0,"protocol":"tcp"}`);
  parts.push(`{"label":"web","prefix":"10.${n}.0.0/24","port":80,"protocol":"tcp"}`);
  const file = path.join(dir, `set${n}.json`);
  fs.writeFileSync(file, `{"bindings":[${parts.join(',')}]}`);
  return file;
}

test('a rebuild keeps the empty tries of a generation after load, replaces stale ones, and always makes a new hash', async () => {
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9880);
  const loaded = [innerIds(0), innerIds(1)] as const;

  // 1: into the generation that is not live (empty after load).
  ctx.env.ok(['apply', writeSet(1)]);
  assert.is(await ctx.agent.who('tcp', '10.1.0.1', 80), 'web');
  const after1 = [innerIds(0), innerIds(1)] as const;
  const a = after1[0].exact !== loaded[0].exact ? 0 : 1;
  const b = (1 - a) as 0 | 1;
  assert.is.not(after1[a].exact, loaded[a].exact, 'a new hash for the rebuilt generation');
  assert.is(after1[a].trie, loaded[a].trie, 'its empty exact trie is kept');
  assert.is(after1[a].wild, loaded[a].wild, 'its empty wildcard trie is kept');
  assert.equal(after1[b], loaded[b], 'the other generation is untouched by the rebuild');

  // 2: into the other generation, also empty since load.
  ctx.env.ok(['apply', writeSet(2)]);
  assert.is(await ctx.agent.who('tcp', '10.2.0.1', 80), 'web');
  assert.is(await ctx.agent.who('tcp', '10.1.0.1', 80), '!ECONNREFUSED', 'the first set is gone');
  const after2 = innerIds(b);
  assert.is.not(after2.exact, loaded[b].exact);
  assert.is(after2.trie, loaded[b].trie);
  assert.is(after2.wild, loaded[b].wild);

  // 3: back into the first generation, whose tries hold the first set (stale): replaced.
  ctx.env.ok(['apply', writeSet(3)]);
  assert.is(await ctx.agent.who('tcp', '10.3.0.1', 80), 'web');
  assert.is(await ctx.agent.who('tcp', '10.2.0.1', 80), '!ECONNREFUSED', 'the second set is gone');
  const after3 = innerIds(a);
  assert.is.not(after3.exact, after1[a].exact);
  assert.is.not(after3.trie, after1[a].trie, 'a stale exact trie is replaced');
  assert.is.not(after3.wild, after1[a].wild, 'a stale wildcard trie is replaced');
  const st = ctx.env.ok(['status', '--json']).json as { bindings: unknown[] };
  assert.is(st.bindings.length, 300);
});

test.run();
