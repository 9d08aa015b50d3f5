/**
 * Fault injection between the steps of every write (for the tests that kill
 * each command at every step; see test/integration/faults.test.ts).
 *
 * MANIFOLD_TEST_STEPS=1: print "manifold-step: NAME" on stderr at each step.
 * MANIFOLD_TEST_KILL_AT=NAME[:N]: SIGKILL this process at the N-th (default
 * 1st) arrival at step NAME. A process only ever kills itself; nothing else
 * changes. Both are test hooks, documented in docs/ARCHITECTURE.md.
 */

let arrivals: Map<string, number> | undefined;

/** Mark that a write reached a step. */
export function step(name: string): void {
  const trace = process.env.MANIFOLD_TEST_STEPS === '1';
  const kill = process.env.MANIFOLD_TEST_KILL_AT;
  if (!trace && !kill) return;
  if (trace) process.stderr.write(`manifold-step: ${name}\n`);
  if (!kill) return;
  const m = /^([a-z0-9-]+)(?::(\d{1,6}))?$/.exec(kill);
  if (!m || m[1] !== name) return;
  arrivals ??= new Map();
  const n = (arrivals.get(name) ?? 0) + 1;
  arrivals.set(name, n);
  if (n === Number(m[2] ?? '1')) process.kill(process.pid, 'SIGKILL');
}
