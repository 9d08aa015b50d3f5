/**
 * `unload` is idempotent: the first one detaches and removes the state (one
 * journal entry), every further one says there is nothing to do, exits 0,
 * writes no journal entry and leaves the bpffs empty; --json tells the two
 * apart (wasLoaded). Also when the dispatcher was never loaded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;

/** manifold's entries in the bpffs (the kernel's preloaded maps.debug/progs.debug are not). */
function ours(): string[] {
  return fs.readdirSync(ctx.env.bpffs).filter((n) => n.includes('manifold'));
}

/** Unload with stderr as journald's stream: returns exit status, stdout and the `<N>` journal lines. */
function unload(json: boolean): { code: number | null; stdout: string; journal: string[] } {
  const file = path.join(dir, 'stderr');
  const fd = fs.openSync(file, 'w');
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    const r = spawnSync(BIN, ['unload', ...(json ? ['--json'] : []), '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], {
      encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', fd], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}`, MANIFOLD_JOURNAL: '' },
    });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, journal: fs.readFileSync(file, 'utf8').split('\n').filter((l) => /^<\d>/.test(l)) };
  } finally {
    fs.closeSync(fd);
  }
}

test.before(async () => {
  ctx = await setup('unl', { load: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-unl-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
});

test.after(() => teardown(ctx));

test('never loaded: nothing to do, exit 0, no journal entry', () => {
  const r = unload(true);
  assert.is(r.code, 0);
  assert.is((JSON.parse(r.stdout) as { wasLoaded: boolean }).wasLoaded, false);
  assert.equal(r.journal, []);
  assert.equal(ours(), []);
});

test('loaded: the first unload removes the state (one entry), the next ones do nothing', () => {
  ctx.env.ok(['load']);
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  const first = unload(true);
  assert.is(first.code, 0);
  const doc = JSON.parse(first.stdout) as { unloaded: boolean; wasLoaded: boolean };
  assert.is(doc.unloaded, true);
  assert.is(doc.wasLoaded, true);
  assert.is(first.journal.length, 1, first.journal.join('\n'));
  assert.match(first.journal[0] ?? '', /^<5>unloaded /);
  assert.equal(ours(), [], 'state and lock directory gone');
  for (const json of [false, true]) {
    const again = unload(json);
    assert.is(again.code, 0);
    assert.equal(again.journal, [], 'no journal entry for a no-op');
    if (json) assert.is((JSON.parse(again.stdout) as { wasLoaded: boolean }).wasLoaded, false);
  }
  const text = ctx.env.cli(['unload']);
  assert.is(text.code, 0);
  assert.match(text.stderr, /not loaded \(.*_manifold\); nothing to do/);
  assert.equal(ours(), []);
});

test.run();
