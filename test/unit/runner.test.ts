/**
 * test/run.mjs itself, on the fixture tree test/fixtures/runner (a test file
 * that hangs, ignoring SIGTERM, with a child in its process group and one in a
 * session of its own; a passing file; a passing file that leaves a process
 * running): the hung file is reported as failed within its limit, every process
 * it started is gone afterwards, its TMPDIR is removed, the passing files still
 * count, the leaked process is killed and named, and the summary line is right;
 * and SIGINT to the runner stops the running file the same way. No root needed.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../helpers/env.js';
import { sleep, withTimeout } from '../helpers/wait.js';

const RUNNER = path.join(ROOT, 'test', 'run.mjs');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'runner');
const HUNG = 'test/fixtures/runner/unit/a-hang.test.js';
const LEAK = 'test/fixtures/runner/unit/c-leak.test.js';
const LIMIT_S = 3;
const GRACE_S = 1;

interface Pids {
  self: number;
  inGroup: number;
  escaped: number;
  tmp: string;
}

let work: string;
test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-runnertest-'));
});
test.after(() => fs.rmSync(work, { recursive: true, force: true }));

/** The runner's environment: ours, minus settings of the outer run. */
function env(pidsFile: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, MF_RUNNER_FIXTURE_PIDS: pidsFile };
  delete e.MANIFOLD_TEST_TIMEOUT;
  delete e.MANIFOLD_TEST_KILL_GRACE;
  delete e.MANIFOLD_TEST_DIR;
  return e;
}

/** Alive = exists and is not a zombie (orphans may stay unreaped where PID 1 does not reap). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Live members of a process group. */
function groupMembers(pgid: number): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[2]) === pgid && f[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

function assertAllGone(p: Pids): void {
  for (const [what, pid] of [['the hung file', p.self], ['its child in its group', p.inGroup], ['its child in its own session', p.escaped]] as const) {
    assert.not.ok(alive(pid), `${what} (pid ${pid}) is gone`);
  }
  assert.equal(groupMembers(p.self), [], `nothing left in process group ${p.self}`);
  assert.not.ok(fs.existsSync(p.tmp), `its TMPDIR ${p.tmp} is removed`);
}

test('a hung file is killed at its limit and counted as failed; the others still count', () => {
  const pidsFile = path.join(work, 'timeout.json');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [RUNNER, '--dir', FIXTURES, '--timeout', String(LIMIT_S), '--grace', String(GRACE_S)], {
    cwd: ROOT,
    encoding: 'utf8',
    env: env(pidsFile),
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  const wallS = (Date.now() - t0) / 1000;
  const out = `${r.stdout}${r.stderr}`;
  assert.is(r.status, 1, out);
  // Bounded: the limit, the grace, and a wide margin for the passing file and a busy machine.
  assert.ok(wallS < LIMIT_S + GRACE_S + 30, `the run took ${wallS} s with a ${LIMIT_S} s limit`);
  assert.ok(wallS >= LIMIT_S, `the hung file ran its ${LIMIT_S} s before it was killed (${wallS} s)`);
  assert.match(out, `# FAILED: ${HUNG} ran longer than its limit of ${LIMIT_S} s`);
  assert.match(out, /Last lines of its output:\n#   fixture: hanging now\n/);
  assert.match(out, `failed:\n  ${HUNG} (timed out after ${LIMIT_S} s)\n`);
  assert.match(out, /Total:\s+2\n\s+Passed:\s+2/, 'the passing file ran after the hung one');
  assert.is(r.stdout.trimEnd().split('\n').pop(), '3 passed, 1 failed');
  assertAllGone(JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as Pids);
  // A file that passes but leaves a process running: it counts, the process is killed and named.
  const leak = Number(fs.readFileSync(`${pidsFile}.leak`, 'utf8'));
  assert.match(out, `# ${LEAK}: killed processes it left running: ${leak} (node)`);
  assert.not.ok(alive(leak), `the leaked process ${leak} is gone`);
});

test('SIGINT stops the running file, kills its processes, and the runner reports and exits', async () => {
  const pidsFile = path.join(work, 'sigint.json');
  const runner = spawn(process.execPath, [RUNNER, '--dir', FIXTURES, '--timeout', '120', '--grace', String(GRACE_S)], {
    cwd: ROOT,
    env: env(pidsFile),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  runner.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  runner.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  // 'close' (exit and end of output) is listened for from the start: it cannot be missed.
  const closed = new Promise<number | null>((resolve) => runner.once('close', (code) => resolve(code)));
  try {
    for (let i = 0; i < 300 && !fs.existsSync(pidsFile); i++) await sleep(100);
    assert.ok(fs.existsSync(pidsFile), `the hung fixture started: ${out}`);
    runner.kill('SIGINT');
    const code = await withTimeout(closed, 60_000, 'test/run.mjs to exit after SIGINT');
    assert.is(code, 130, out);
  } finally {
    runner.kill('SIGKILL');
  }
  assert.match(out, `# FAILED: ${HUNG} was stopped by SIGINT`);
  assert.not.match(out, 'b-pass.test.js\n', 'no file starts after the interrupt');
  assert.is(out.trimEnd().split('\n').pop(), '0 passed, 1 failed');
  assertAllGone(JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as Pids);
});

test.run();
