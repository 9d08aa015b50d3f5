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
import { everyStep as everyStepIn } from './every-step.js';
import { serve, setup, teardown, type Ctx } from './suite.js';

/** Write an apply file into `dir`. */
export function applyFile(dir: string, name: string, bindings: { label: string; prefix: string; port: number | string; protocol: string }[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify({ bindings }));
  return p;
}

/** Kill `args` at each of its steps and check each kill's leftovers: test/helpers/every-step.ts on the context's namespace. */
export function everyStep(ctx: Ctx, name: string, args: string[], reset: () => void, observe: () => Promise<string>, oldObs: string, newObs: string, minSteps = 8): Promise<number> {
  return everyStepIn(ctx.env, name, args, reset, observe, oldObs, newObs, minSteps);
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
