/**
 * Kill-at-every-step helpers for the fault-injection tests of the
 * address-target commands (test/integration/faults-targets*.test.ts; the
 * same method as test/integration/faults.test.ts), and their shared set-up:
 * listener discovery enabled on a test cgroup, target daemons on 127.0.0.5
 * and 127.0.0.6 and an explicit listener on 127.0.0.9, port 9180.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import type { Agent } from './agent-client.js';
import { agentIn, TestCgroup } from './discovery.js';
import { inspectTestState, invariantProblems } from './inspect.js';
import { serve, setup, teardown, type Ctx } from './suite.js';

/** The steps a command goes through, as NAME:N (N-th arrival at NAME). */
export function stepsOf(ctx: Ctx, args: string[]): string[] {
  const r = ctx.env.cli(args, { env: { MANIFOLD_TEST_STEPS: '1' } });
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

/** Run a command killed (SIGKILL) at step `spec`. */
export function killedAt(ctx: Ctx, args: string[], spec: string): void {
  const r = ctx.env.cli(args, { env: { MANIFOLD_TEST_KILL_AT: spec } });
  assert.is(r.failure, 'was killed by SIGKILL', `${args.join(' ')} killed at ${spec}: ${r.failure ?? `exit ${r.code}`} ${r.stderr}`);
}

/** Write an apply file into `dir`. */
export function applyFile(dir: string, name: string, bindings: { label: string; prefix: string; port: number | string; protocol: string }[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify({ bindings }));
  return p;
}

/** The state keeps the executor's invariants (test/helpers/inspect.ts). */
export function assertRepaired(ctx: Ctx, what: string): void {
  const problems = invariantProblems(inspectTestState(ctx.env));
  assert.equal(problems, [], `${what}: ${problems.join('; ')}`);
}

/**
 * Kill `args` at each of its steps; before each run `reset` sets the old
 * state; after the kill, `check` inspects traffic (old or new), then the
 * next write (`reset` again) must work and leave the state repaired, and
 * finally the command itself must reach the new state.
 */
export async function everyStep(ctx: Ctx, name: string, args: string[], reset: () => void, observe: () => Promise<string>, oldObs: string, newObs: string, minSteps = 8): Promise<number> {
  reset();
  const steps = stepsOf(ctx, args);
  assert.ok(steps.length >= minSteps, `${name}: steps ${steps.join(' ')}`);
  assert.is(await observe(), newObs, `${name}: the command reaches the new state`);
  for (const spec of steps) {
    reset();
    assert.is(await observe(), oldObs, `${name}: reset to the old state before ${spec}`);
    killedAt(ctx, args, spec);
    const seen = await observe();
    assert.ok(seen === oldObs || seen === newObs, `${name} killed at ${spec}: traffic sees ${seen}, neither old (${oldObs}) nor new (${newObs})`);
    // The next write repairs what the kill left.
    reset();
    assertRepaired(ctx, `${name} killed at ${spec}, then the next write`);
    assert.is(await observe(), oldObs, `${name} killed at ${spec}: the next write's state is live`);
    ctx.env.ok(args);
    assert.is(await observe(), newObs, `${name} killed at ${spec}: running it again reaches the new state`);
    assertRepaired(ctx, `${name} killed at ${spec}, then run again`);
  }
  return steps.length;
}

/** The shared set-up of the target fault tests. */
export interface TargetFaultCtx extends Ctx {
  dir: string;
  cg: TestCgroup;
  srv: Agent;
}

/** Namespace, cgroup, discovery, daemons, and label t (127.0.0.0/8 port 9180) targeting 127.0.0.5. */
export async function setupTargetFaults(prefix: string): Promise<TargetFaultCtx> {
  const ctx = await setup(prefix);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mf-${prefix}-`));
  const cg = TestCgroup.create(prefix);
  process.once('exit', () => cg.destroy());
  const srv = await agentIn(ctx.env, cg);
  const t: TargetFaultCtx = { ...ctx, dir, cg, srv };
  ctx.env.ok(['discovery', 'enable', '--cgroup', cg.path]);
  await serve(ctx, 'a', 'tcp', '127.0.0.1', 9101);
  await srv.listen('tcp', '127.0.0.5', 9180, 'T1');
  await srv.listen('tcp', '127.0.0.6', 9180, 'T2');
  await srv.listen('tcp', '127.0.0.9', 9180, 'E');
  ctx.env.ok(['target', 't', '127.0.0.5', '--protocol', 'tcp']);
  ctx.env.ok(['apply', applyFile(dir, 't.json', [
    { label: 'a', prefix: '198.51.100.60', port: 80, protocol: 'tcp' },
    { label: 't', prefix: '127.0.0.0/8', port: 9180, protocol: 'tcp' },
  ])]);
  return t;
}

/** Undo setupTargetFaults. */
export function teardownTargetFaults(t: TargetFaultCtx | undefined): void {
  if (!t) return;
  t.env.cli(['discovery', 'disable']);
  t.srv.stop();
  t.cg.destroy([t.srv.pid]);
  teardown(t);
  fs.rmSync(t.dir, { recursive: true, force: true });
}

/** Who answers on 127.0.0.7:9180 (the target) and on 127.0.0.9:9180 (the explicit listener's address). */
export function targetObservers(t: TargetFaultCtx): { other: () => Promise<string>; explicit: () => Promise<string>; targetT1: () => void } {
  return {
    other: async () => t.agent.who('tcp', '127.0.0.7', 9180),
    explicit: async () => t.agent.who('tcp', '127.0.0.9', 9180),
    targetT1: () => void t.env.ok(['target', 't', '127.0.0.5', '--protocol', 'tcp']),
  };
}
