// Runs one test file for test/run.mjs: in its own process group and session
// (spawn detached), its output streamed as it comes, under a time limit. When
// the limit passes or the run is aborted, the whole group gets SIGTERM, then
// SIGKILL after a grace period; after the file's process ends, whatever is
// left of its group, and any process carrying its MANIFOLD_TEST_TOKEN (which
// escaped the group with setsid), is killed too.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

/** How much of a file's output is kept for the summary and the report. */
const TAIL_BYTES = 1024 * 1024;

/**
 * Send `sig` to a process group; false when it has no member left.
 * @param {number} pgid
 * @param {NodeJS.Signals | 0} sig
 */
function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pids of the processes (other than zombies) whose environment holds `NAME=token`.
 * @param {string} token
 */
export function pidsWithToken(token) {
  const needle = Buffer.from(`\0MANIFOLD_TEST_TOKEN=${token}\0`);
  const first = needle.subarray(1);
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${p}/environ`);
      if (env.indexOf(needle) >= 0 || env.subarray(0, first.length).equals(first)) out.push(Number(p));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

/**
 * Members of process group `pgid` that are not zombies yet.
 * @param {number} pgid
 */
function groupMembers(pgid) {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** @param {number} p */
function comm(p) {
  try {
    return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Signal the file's group and every process with its token.
 * @param {number} pgid
 * @param {string} token
 * @param {NodeJS.Signals} sig
 */
function signalAll(pgid, token, sig) {
  signalGroup(pgid, sig);
  const inGroup = new Set(groupMembers(pgid));
  for (const p of pidsWithToken(token).filter((x) => !inGroup.has(x))) {
    try {
      process.kill(p, sig);
    } catch {
      /* gone */
    }
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @typedef {object} FileResult
 * @property {number} pid pid of the file's process (also its process group)
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {'timeout' | 'abort' | null} killed why the runner killed it, if it did
 * @property {string | null} error spawn error
 * @property {string} tail the last output (up to 1 MiB)
 * @property {number[]} leftovers pids still alive after the final SIGKILL
 * @property {string[]} stragglers processes ("pid (name)") the runner had to kill after the file's process ended
 */

/**
 * Start a test file. `abort()` kills it as the limit would.
 * @param {{ cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, token: string, limitMs: number, graceMs: number, out: NodeJS.WritableStream }} o
 * @returns {{ pid: number, done: Promise<FileResult>, abort: () => void }}
 */
export function startFile(o) {
  const child = spawn(o.cmd, o.args, { cwd: o.cwd, env: { ...o.env, MANIFOLD_TEST_TOKEN: o.token }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid ?? 0;
  /** @type {Buffer[]} */
  let chunks = [];
  let size = 0;
  const keep = (/** @type {Buffer} */ d) => {
    o.out.write(d);
    chunks.push(d);
    size += d.length;
    if (size > 2 * TAIL_BYTES) {
      const all = Buffer.concat(chunks).subarray(-TAIL_BYTES);
      chunks = [all];
      size = all.length;
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  /** @type {'timeout' | 'abort' | null} */
  let killed = null;
  let graceTimer;
  const kill = (/** @type {'timeout' | 'abort'} */ why) => {
    if (killed) {
      // A second abort (a second Ctrl-C): no more grace.
      if (why === 'abort') signalAll(pid, o.token, 'SIGKILL');
      return;
    }
    killed = why;
    signalAll(pid, o.token, 'SIGTERM');
    graceTimer = setTimeout(() => signalAll(pid, o.token, 'SIGKILL'), o.graceMs);
  };
  const limitTimer = setTimeout(() => kill('timeout'), o.limitMs);

  const done = new Promise((resolve) => {
    let error = null;
    const finish = async (/** @type {number | null} */ code, /** @type {NodeJS.Signals | null} */ signal) => {
      clearTimeout(limitTimer);
      clearTimeout(graceTimer);
      // Processes still running once the file's own process ended (after a
      // moment for those it has just killed, or the rest of the grace period
      // when the runner stopped it) are leaks: SIGKILL.
      const alive = () => (pid ? [...new Set([...groupMembers(pid), ...pidsWithToken(o.token)])] : []);
      let leftovers = alive();
      const patience = killed ? Math.max(500, o.graceMs) : 500;
      for (let i = 0; i < patience / 50 && leftovers.length; i++) {
        await sleep(50);
        leftovers = alive();
      }
      const stragglers = killed ? [] : leftovers.map((p) => `${p} (${comm(p)})`);
      for (let i = 0; i < 100 && leftovers.length; i++) {
        signalAll(pid, o.token, 'SIGKILL');
        await sleep(50);
        leftovers = alive();
      }
      // Output still buffered in the pipes comes through; a pipe some escaped
      // process holds open cannot keep us waiting.
      await Promise.race([
        Promise.all([child.stdout, child.stderr].map((s) => (s && !s.closed ? new Promise((r) => s.once('close', r)) : null))),
        sleep(2000),
      ]);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({ pid, code, signal, killed, error, tail: Buffer.concat(chunks).toString('utf8'), leftovers, stragglers });
    };
    child.once('error', (err) => {
      error = err.message;
      if (!pid) void finish(null, null);
    });
    child.once('exit', (code, signal) => void finish(code, signal));
  });
  return { pid, done, abort: () => kill('abort') };
}
