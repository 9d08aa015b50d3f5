/**
 * The start-up snapshot's warm-up of the write path (src/entry/warmup-ops.ts)
 * runs while the snapshot is built, so it must print nothing and keep
 * nothing: a buffer it left reachable would be copied into every start. The
 * snapshot build cannot collect garbage to check that (src/entry/sea.ts), so
 * a Node with a collector at hand does it here.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const MODULE = fileURLToPath(new URL('../../src/entry/warmup-ops.js', import.meta.url));

/** Bytes of buffers the warm-up may leave reachable (src/entry/sea.ts allows the whole warm-up 64 KiB). */
const LIMIT = 16 * 1024;

test('the write-path warm-up prints nothing and keeps no buffers', () => {
  const script = `
    import v8 from 'node:v8';
    const { warmUpOps } = await import(${JSON.stringify(MODULE)});
    // Array buffers are freed by a sweeper after the collection: give it a moment each time.
    const settle = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); } };
    warmUpOps(); // first use: module state, once
    await settle();
    const before = v8.getHeapStatistics().external_memory;
    let n = 0;
    for (let i = 0; i < 3; i++) n += warmUpOps();
    await settle();
    // Measured before process.stdout exists (creating it allocates buffers of its own).
    const held = v8.getHeapStatistics().external_memory - before;
    process.stdout.write(JSON.stringify({ n, held }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  const { n, held } = JSON.parse(r.stdout) as { n: number; held: number };
  assert.ok(n > 0, 'the warm-up ran its operations');
  assert.ok(held <= LIMIT, `three warm-ups left ${held} bytes of buffers reachable (at most ${LIMIT})`);
});

test.run();
