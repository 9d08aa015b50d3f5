/**
 * The in-memory twin against the real maps: the same seeded random
 * sequences of bind, unbind, apply, register, close and unregister run on
 * both (test/helpers/diff-worker.ts, inside the test namespace), and after
 * every step everything the maps hold must be equal: both generations'
 * bindings (hash and tries), port words, lookup metadata, write state and
 * destination info, the destinations table, the socket slots and the apply
 * record (the sets applied include the previous one again).
 */
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;

test.before(async () => {
  ctx = await setup('diff', { load: false });
});
test.after(() => teardown(ctx));

async function run(seed: number, steps: number): Promise<{ ok: boolean; steps: number; mismatch?: string }> {
  ctx.env.ok(['load']);
  try {
    const worker = path.join(ROOT, 'build', 'test', 'helpers', 'diff-worker.js');
    const child = ctx.env.spawn(process.execPath, [worker, JSON.stringify({ bpffs: ctx.env.bpffs, seed, steps })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout! });
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`differential worker (seed ${seed}) did not answer within 240 s`));
      }, 240_000);
      rl.once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      if (child.exitCode !== null) reject(new Error(`worker exited ${child.exitCode}`));
      child.once('exit', (c) => setTimeout(() => reject(new Error(`worker exited ${c} without a result`)), 200));
    });
    return JSON.parse(line) as { ok: boolean; steps: number; mismatch?: string };
  } finally {
    ctx.env.ok(['unload']);
  }
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  test(`twin and kernel hold the same after every step (seed ${seed})`, async () => {
    const r = await run(seed * 7919, 120);
    assert.ok(r.ok, r.mismatch);
    assert.is(r.steps, 120);
  });
}

test.run();
