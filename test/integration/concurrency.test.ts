/**
 * Concurrent writers serialise on the state lock and leave consistent
 * state; a held lock times out with a clear error.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN } from '../helpers/env.js';
import { setup, status, teardown, type Ctx } from '../helpers/suite.js';
import { QUICK_MS, waitExit } from '../helpers/wait.js';

let ctx: Ctx;
let dir: string;
test.before(async () => {
  ctx = await setup('conc');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-conc-'));
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Run the CLI asynchronously (it waits up to 60 s for the lock; killed after 120 s). */
async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = spawn(BIN, [...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs, '--lock-timeout', '60'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = waitExit(child, 120_000, `manifold ${args.join(' ')}`);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const r = await exited.catch((e: Error) => {
    child.kill('SIGKILL');
    throw e;
  });
  return { code: r.code ?? -1, stderr };
}

test('8 concurrent writers: every change lands, reference counts match', async () => {
  const jobs: Promise<{ code: number; stderr: string }>[] = [];
  for (let w = 0; w < 8; w++) {
    jobs.push(
      (async () => {
        for (let i = 0; i < 3; i++) {
          const r = await run(['bind', `w${w}`, 'tcp', `192.0.2.${w}`, `${1000 + i * 10}-${1000 + i * 10 + 4}`]);
          if (r.code !== 0) return r;
        }
        // Everyone fights over one shared binding too.
        return run(['bind', `w${w}`, 'udp', '198.51.100.1', '53']);
      })(),
    );
  }
  jobs.push(run(['apply', writeFile('extra.json', { bindings: [] })]).then(() => ({ code: 0, stderr: '' })));
  const results = await Promise.all(jobs);
  for (const r of results) assert.is(r.code, 0, r.stderr);
  const st = status(ctx);
  for (let w = 0; w < 8; w++) {
    const mine = st.bindings.filter((b) => b.label === `w${w}` && b.protocol === 'tcp');
    // Bindings made before the concurrent empty apply may be gone, but each
    // writer's later binds landed in full, in 5-port blocks.
    assert.is(mine.length % 5, 0, `w${w}: whole ranges only`);
  }
  const shared = st.bindings.filter((b) => b.prefix === '198.51.100.1/32');
  assert.is(shared.length, 1, 'the shared binding has exactly one owner');
  for (const d of st.destinations) {
    const n = st.bindings.filter((b) => b.label === d.label && b.protocol === d.protocol && (b.prefix.includes(':') ? 'ipv6' : 'ipv4') === d.domain).length;
    assert.is(d.bindings, n, `${d.label}/${d.protocol}: reference count equals its bindings`);
    assert.ok(n > 0 || d.socket !== null, `${d.label}: no garbage destination`);
  }
});

test('a held writers\' lock makes writers wait, then time out with ERR_LOCK_TIMEOUT; readers do not wait', () => {
  const st = status(ctx) as unknown as { stateDir: string };
  const lockDir = st.stateDir.replace(/_manifold$/, '_manifold_lock');
  assert.ok(fs.statSync(lockDir).isDirectory(), 'the writers\' lock directory exists');
  assert.is(fs.statSync(lockDir).mode & 0o777, 0o700, 'only its owner can open (and so lock) it');
  const holder = spawn('flock', ['-x', lockDir, 'sleep', '30'], { stdio: 'ignore', detached: true });
  try {
    spawnSync('sleep', ['0.3'], { timeout: QUICK_MS });
    const r = ctx.env.cli(['bind', 'late', 'tcp', '192.0.2.99', '80', '--lock-timeout', '1', '--json']);
    assert.is(r.code, 5);
    assert.is((r.json as { error: { code: string } }).error.code, 'ERR_LOCK_TIMEOUT');
    assert.match(r.stderr, /timed out after 1\.0 s/);
    const read = ctx.env.cli(['status', '--lock-timeout', '1', '--json']);
    assert.is(read.code, 0, 'readers take no lock: a writer (or anyone) holding it cannot block them');
  } finally {
    process.kill(-holder.pid!, 'SIGKILL');
  }
  const ok = ctx.env.cli(['bind', 'late', 'tcp', '192.0.2.99', '80', '--force']);
  assert.is(ok.code, 0, 'the lock is free again');
});

test('a lock held on the state directory or the bpffs root (e.g. by a group member) blocks nobody', () => {
  const st = status(ctx) as unknown as { stateDir: string };
  const holders = [st.stateDir, ctx.env.bpffs].map((p) => spawn('flock', ['-x', p, 'sleep', '30'], { stdio: 'ignore', detached: true }));
  try {
    spawnSync('sleep', ['0.3'], { timeout: QUICK_MS });
    const w = ctx.env.cli(['bind', 'late2', 'tcp', '192.0.2.98', '80', '--lock-timeout', '1', '--force']);
    assert.is(w.code, 0, `a writer is not blocked: ${w.stderr}`);
    assert.is(ctx.env.cli(['status', '--lock-timeout', '1']).code, 0, 'nor a reader');
  } finally {
    for (const h of holders) process.kill(-h.pid!, 'SIGKILL');
  }
});

function writeFile(name: string, doc: unknown): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify(doc));
  return p;
}

test.run();
