/**
 * Kill a write command at every step it goes through (MANIFOLD_TEST_STEPS,
 * MANIFOLD_TEST_KILL_AT; src/ops/faults.ts) and check what each kill
 * leaves: shared by the fault-injection test files.
 */
import * as assert from 'uvu/assert';
import type { TestEnv } from './env.js';
import { inspectTestState, invariantProblems } from './inspect.js';

/** The steps a command goes through, as NAME:N (N-th arrival at NAME). */
export function stepsOf(env: TestEnv, args: string[]): string[] {
  const r = env.cli(args, { env: { MANIFOLD_TEST_STEPS: '1' } });
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  const seen = new Map<string, number>();
  const out: string[] = [];
  for (const m of r.stderr.matchAll(/^manifold-step: ([a-z0-9-]+)$/gm)) {
    const n = (seen.get(m[1]!) ?? 0) + 1;
    seen.set(m[1]!, n);
    out.push(`${m[1]}:${n}`);
  }
  return out;
}

/** Run `args` and have it killed (SIGKILL) at step `spec`. */
export function killedAt(env: TestEnv, args: string[], spec: string): void {
  const r = env.cli(args, { env: { MANIFOLD_TEST_KILL_AT: spec } });
  assert.is(r.failure, 'was killed by SIGKILL', `${args.join(' ')} killed at ${spec}: ${r.failure ?? `exit ${r.code}`} ${r.stderr}`);
}

/** The state's invariants hold (test/helpers/inspect.ts). */
export function assertRepaired(env: TestEnv, what: string): void {
  const problems = invariantProblems(inspectTestState(env));
  assert.equal(problems, [], `${what}: ${problems.join('; ')}`);
}

/**
 * Kill `args` at each of its steps; before each run `reset` sets the old
 * state; after the kill, `observe` (traffic, …) must show the old or the new
 * state, then the next write (`reset` again) must work and leave the state
 * repaired, and finally the command itself must reach the new state.
 * Returns the number of steps.
 */
export async function everyStep(
  env: TestEnv, name: string, args: string[], reset: () => void, observe: () => Promise<string>, oldObs: string, newObs: string, minSteps = 8,
): Promise<number> {
  reset();
  const steps = stepsOf(env, args);
  assert.ok(steps.length >= minSteps, `${name}: steps ${steps.join(' ')}`);
  assert.is(await observe(), newObs, `${name}: the command reaches the new state`);
  for (const spec of steps) {
    reset();
    assert.is(await observe(), oldObs, `${name}: reset to the old state before ${spec}`);
    killedAt(env, args, spec);
    const seen = await observe();
    assert.ok(seen === oldObs || seen === newObs, `${name} killed at ${spec}: traffic sees ${seen}, neither old (${oldObs}) nor new (${newObs})`);
    // The next write repairs what the kill left.
    reset();
    assertRepaired(env, `${name} killed at ${spec}, then the next write`);
    assert.is(await observe(), oldObs, `${name} killed at ${spec}: the next write's state is live`);
    env.ok(args);
    assert.is(await observe(), newObs, `${name} killed at ${spec}: running it again reaches the new state`);
    assertRepaired(env, `${name} killed at ${spec}, then run again`);
  }
  return steps.length;
}
