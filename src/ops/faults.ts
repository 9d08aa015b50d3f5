/**
 * Fault injection between the steps of every write (for the tests that kill
 * each command at every step; see test/integration/faults.test.ts).
 *
 * MANIFOLD_TEST_STEPS=1: print "manifold-step: NAME" on stderr at each step.
 * MANIFOLD_TEST_KILL_AT=NAME[:N]: SIGKILL this process at the N-th (default
 * 1st) arrival at step NAME.
 * MANIFOLD_TEST_PAUSE_AT=NAME:MS: sleep MS milliseconds (at most 60000) at
 * step NAME, so a test can change the world in between (e.g. swap an fd).
 * A process only ever kills or delays itself; nothing else changes. These
 * are test hooks, documented in docs/ARCHITECTURE.md.
 */

let arrivals: Map<string, number> | undefined;

/** Mark that a write reached a step. */
export function step(name: string): void {
  const trace = process.env.MANIFOLD_TEST_STEPS === '1';
  const kill = process.env.MANIFOLD_TEST_KILL_AT;
  const pause = process.env.MANIFOLD_TEST_PAUSE_AT;
  if (!trace && !kill && !pause) return;
  if (trace) process.stderr.write(`manifold-step: ${name}\n`);
  const p = pause ? /^([a-z0-9-]+):(\d{1,5})$/.exec(pause) : null;
  if (p && p[1] === name) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(60_000, Number(p[2])));
  if (!kill) return;
  const m = /^([a-z0-9-]+)(?::(\d{1,6}))?$/.exec(kill);
  if (!m || m[1] !== name) return;
  arrivals ??= new Map();
  const n = (arrivals.get(name) ?? 0) + 1;
  arrivals.set(name, n);
  if (n === Number(m[2] ?? '1')) process.kill(process.pid, 'SIGKILL');
}
