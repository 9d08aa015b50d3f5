#!/usr/bin/env node
// Test runner: runs every compiled test file in its own process, unit tests
// first, then (as root) integration and real-systemd tests inside a private
// mount namespace, and prints the total as "N passed, N failed".
//
//   node test/run.mjs [REGEX] [--timeout SECONDS] [--grace SECONDS] [--dir DIR] [--jobs N]
//
// Each file runs in its own process group with a private TMPDIR, its output
// streamed as it comes, under a time limit (--timeout or MANIFOLD_TEST_TIMEOUT,
// default 300 s). A file over its limit gets SIGTERM on its whole process
// group, SIGKILL after --grace (MANIFOLD_TEST_KILL_GRACE, default 10 s), and
// counts as failed. After each file, what it left behind is removed
// (test/runner/cleanup.mjs); SIGINT/SIGTERM stop the running file the same way
// and clean up before the runner exits. --dir (MANIFOLD_TEST_DIR) is the
// directory holding unit/, integration/ and systemd/ (default build/test).
// --jobs N (MANIFOLD_TEST_JOBS, default 1) runs up to N unit or integration
// files at once (each in its own namespaces, so they cannot see each other),
// printing each file's output in one piece when it ends; real-systemd files
// always run one at a time.
//
// Root tests run the checkout's CLI as unprivileged users too, which fails
// when the checkout lives where others cannot enter (a clone under /root or
// in `mktemp -d`). So in each root test's private mount namespace the
// checkout is bind-mounted onto an empty directory
// /run/manifold-checkout-XXXXXX (mode 0755; on the host it stays empty and is
// removed at the end) and the test runs from there; nothing of the user's
// directories changes. The checkout directory itself and its files must be
// readable by others (git's default). Not under /tmp: systemd >= 254 runs
// generators with a private /tmp, so a test systemd could not run the
// checkout's generator from there.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupFile, sweepDeadNetns } from './runner/cleanup.mjs';
import { startFile } from './runner/run-file.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const isRoot = process.getuid?.() === 0;

function fail(msg) {
  process.stderr.write(`test/run.mjs: ${msg}\n`);
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    allowPositionals: true,
    options: { timeout: { type: 'string' }, grace: { type: 'string' }, dir: { type: 'string' }, jobs: { type: 'string' } },
  });
} catch (err) {
  fail(err.message);
}
function seconds(name, cli, env, dflt) {
  const raw = cli ?? process.env[env];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number of seconds, got ${JSON.stringify(raw)}`);
  return n;
}
const limitS = seconds('--timeout / MANIFOLD_TEST_TIMEOUT', opts.values.timeout, 'MANIFOLD_TEST_TIMEOUT', 300);
const jobsRaw = opts.values.jobs ?? process.env.MANIFOLD_TEST_JOBS ?? '1';
if (!/^[1-8]$/.test(jobsRaw)) fail(`--jobs / MANIFOLD_TEST_JOBS must be a whole number from 1 to 8, got ${JSON.stringify(jobsRaw)}`);
const jobs = Number(jobsRaw);
const graceS = seconds('--grace / MANIFOLD_TEST_KILL_GRACE', opts.values.grace, 'MANIFOLD_TEST_KILL_GRACE', 10);
const build = path.resolve(opts.values.dir ?? process.env.MANIFOLD_TEST_DIR ?? path.join(root, 'build', 'test'));
if (opts.positionals.length > 1) fail(`one filter at most, got ${opts.positionals.join(' ')}`);
const filter = opts.positionals[0] ? new RegExp(opts.positionals[0]) : null;
const suites = [
  { dir: 'unit', root: false },
  { dir: 'integration', root: true },
  { dir: 'systemd', root: true },
];
// If the runner dies outright, its running file dies too (pdeathsig survives the execs).
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

function files(dir) {
  const full = path.join(build, dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full)
    .filter((f) => f.endsWith('.test.js'))
    .sort()
    .map((f) => path.join(full, f))
    .filter((f) => !filter || filter.test(f));
}

function report(rel, what, r) {
  for (const x of r.removed) process.stdout.write(`# ${rel}: ${what} removed ${x}\n`);
  for (const x of r.problems) process.stdout.write(`# ${rel}: ${what} could not clean up: ${x}\n`);
}

function lastMatch(re, text) {
  let m = null;
  for (const x of text.matchAll(re)) m = x;
  return m;
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
/** @type {Set<{ abort: () => void }>} */
const running = new Set();
/** @type {NodeJS.Signals | null} */
let interrupted = null;

for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, () => {
    if (!interrupted) process.stdout.write(`\n# ${sig}: stopping the running test file and cleaning up\n`);
    interrupted ??= sig;
    for (const r of running) r.abort();
  });
}

/** The world-traversable mount point the root tests see the checkout at (see the top of the file). */
function checkoutMountPoint() {
  const dir = fs.mkdtempSync('/run/manifold-checkout-');
  fs.chmodSync(dir, 0o755);
  process.once('exit', () => {
    try {
      fs.rmdirSync(dir);
    } catch {
      /* still mounted somewhere, or gone */
    }
  });
  return dir;
}

// Runs a root test file in its private mount namespace, with the checkout ($1) at $2.
const IN_NAMESPACE = 'mount --bind -- "$1" "$2" && cd -- "$2" && shift 2 && exec "$@"';
/** @type {string | null} */
let mnt = null;

/**
 * The command running a test file: as it is, or for a root suite in a private
 * mount namespace from the checkout's bind mount.
 * @param {string} file
 * @param {boolean} asRoot
 */
function testCommand(file, asRoot) {
  if (!asRoot) return [process.execPath, file];
  mnt ??= checkoutMountPoint();
  const rel = path.relative(root, file);
  const inCheckout = !rel.startsWith('..') && !path.isAbsolute(rel);
  return ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', IN_NAMESPACE, 'mf-test', root, mnt, process.execPath, inCheckout ? path.join(mnt, rel) : file];
}

report('test/run.mjs', 'start', sweepDeadNetns());
const tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
let index = 0;

/**
 * Run one test file and count its results. With several jobs its output is
 * collected and printed in one piece when it ends (files never interleave).
 * @param {{ dir: string, root: boolean }} suite
 * @param {string} file
 * @param {boolean} buffered
 */
async function runOne(suite, file, buffered) {
  const rel = path.relative(root, file);
  if (suite.root && !isRoot) {
    console.log(`# ${rel}: needs root, not run`);
    failed++;
    failures.push(`${rel} (needs root)`);
    return;
  }
  const chunks = [];
  const sink = buffered ? { write: (d) => void chunks.push(String(d)) } : process.stdout;
  const argv = [...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []), ...testCommand(file, suite.root)];
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `mf-run-${tag}-${index++}-`));
  fs.chmodSync(tmpDir, 0o1777);
  sink.write(`# ${rel}\n`);
  const started = Date.now();
  const run = startFile({
    cmd: argv[0],
    args: argv.slice(1),
    cwd: root,
    env: { ...process.env, FORCE_COLOR: '0', TMPDIR: tmpDir },
    token: `${tag}-${index}`,
    limitMs: limitS * 1000,
    graceMs: graceS * 1000,
    out: sink,
  });
  running.add(run);
  const r = await run.done;
  running.delete(run);
  const ended = Date.now();
  const output = r.tail;
  const total = lastMatch(/Total:\s+(\d+)/g, output);
  const ok = lastMatch(/Passed:\s+(\d+)/g, output);
  const skip = lastMatch(/Skipped:\s+(\d+)/g, output);
  if (r.killed) {
    const why = r.killed === 'timeout'
      ? `ran longer than its limit of ${limitS} s (--timeout / MANIFOLD_TEST_TIMEOUT)`
      : `was stopped by ${interrupted}`;
    const last = output.replace(/\s+$/, '').split('\n').slice(-30);
    sink.write(`\n# FAILED: ${rel} ${why}; its process group was killed (${r.signal ?? `exit ${r.code}`}). Last lines of its output:\n`);
    for (const l of last) sink.write(`#   ${l}\n`);
    failed++;
    failures.push(`${rel} (${r.killed === 'timeout' ? `timed out after ${limitS} s` : `interrupted by ${interrupted}`})`);
  } else {
    if (total && ok) {
      const t = Number(total[1]);
      const p = Number(ok[1]);
      const s = skip ? Number(skip[1]) : 0;
      passed += p;
      skipped += s;
      failed += t - p - s;
      if (t - p - s > 0) failures.push(rel);
    }
    if (!total || r.code !== 0) {
      if (!total || (ok && Number(total[1]) === Number(ok[1]))) {
        failed++;
        failures.push(`${rel} (exited with ${r.code ?? r.signal}${r.error ? `: ${r.error}` : ''})`);
      }
    }
  }
  if (r.stragglers.length) sink.write(`# ${rel}: killed processes it left running: ${r.stragglers.join(', ')}\n`);
  if (r.leftovers.length) sink.write(`# ${rel}: processes that would not die: ${r.leftovers.join(', ')}\n`);
  const cleaned = cleanupFile({ pid: r.pid, tmpDir, startedMs: started, endedMs: ended });
  for (const x of cleaned.removed) sink.write(`# ${rel}: cleanup removed ${x}\n`);
  for (const x of cleaned.problems) sink.write(`# ${rel}: cleanup could not clean up: ${x}\n`);
  sink.write(`# ${rel}: ${((ended - started) / 1000).toFixed(1)} s\n`);
  if (buffered) process.stdout.write(chunks.join(''));
}

for (const suite of suites) {
  // Real-systemd tests boot whole containers: one at a time. The others in `jobs` parallel lanes.
  const lanes = suite.dir === 'systemd' ? 1 : jobs;
  const queue = files(suite.dir);
  await Promise.all(Array.from({ length: Math.min(lanes, queue.length) }, async () => {
    for (let file = queue.shift(); file !== undefined && !interrupted; file = queue.shift()) await runOne(suite, file, lanes > 1);
  }));
  if (interrupted) break;
}
report('test/run.mjs', 'end', sweepDeadNetns());
if (interrupted) failures.push(`(run interrupted by ${interrupted}: later files not run)`);
if (failures.length) console.log(`\nfailed:\n  ${failures.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(interrupted ? 128 + os.constants.signals[interrupted] : failed > 0 ? 1 : 0);
