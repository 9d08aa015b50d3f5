/**
 * Fault injection for the address-target commands (target, untarget,
 * policy, and register over a target), with listener discovery enabled on
 * a cgroup the test creates. Same method as faults.test.ts: every write command is killed (SIGKILL) at EVERY step it
 * goes through (MANIFOLD_TEST_KILL_AT, src/ops/faults.ts), one step at a
 * time. After each kill:
 *  - real traffic sees the old state or the new one, never a mix;
 *  - the next command works, repairs what the kill left (both generations
 *    in sync, reference counts exact, no garbage) and loses nothing
 *    committed;
 *  - running the command again reaches the new state;
 *  - the target addresses registered in discovery are exactly those the
 *    live generation uses (test/helpers/inspect.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import type { Agent } from '../helpers/agent-client.js';
import { inspectTestState, invariantProblems } from '../helpers/inspect.js';
import { agentIn, TestCgroup } from '../helpers/discovery.js';

let ctx: Ctx;
let dir: string;
let cg: TestCgroup;
let srv: Agent;

test.before(async () => {
  ctx = await setup('faultst');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-faultst-'));
  cg = TestCgroup.create('faultst');
  process.once('exit', () => cg.destroy());
  srv = await agentIn(ctx.env, cg);
  ctx.env.ok(['discovery', 'enable', '--cgroup', cg.path]);
  await serve(ctx, 'a', 'tcp', '127.0.0.1', 9101);
  await srv.listen('tcp', '127.0.0.5', 9180, 'T1');
  await srv.listen('tcp', '127.0.0.6', 9180, 'T2');
  await srv.listen('tcp', '127.0.0.9', 9180, 'E');
  ctx.env.ok(['target', 't', '127.0.0.5', '--protocol', 'tcp']);
  ctx.env.ok(['apply', applyFile('t.json', [
    { label: 'a', prefix: '198.51.100.60', port: 80, protocol: 'tcp' },
    { label: 't', prefix: '127.0.0.0/8', port: 9180, protocol: 'tcp' },
  ])]);
});
test.after(() => {
  ctx.env.cli(['discovery', 'disable']);
  srv?.stop();
  cg.destroy(srv ? [srv.pid] : []);
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The steps a command goes through, as NAME:N (N-th arrival at NAME). */
function stepsOf(args: string[]): string[] {
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

function killedAt(args: string[], spec: string): void {
  const r = ctx.env.cli(args, { env: { MANIFOLD_TEST_KILL_AT: spec } });
  assert.is(r.failure, 'was killed by SIGKILL', `${args.join(' ')} killed at ${spec}: ${r.failure ?? `exit ${r.code}`} ${r.stderr}`);
}

function applyFile(name: string, bindings: { label: string; prefix: string; port: number | string; protocol: string }[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify({ bindings }));
  return p;
}

function assertRepaired(what: string): void {
  const problems = invariantProblems(inspectTestState(ctx.env));
  assert.equal(problems, [], `${what}: ${problems.join('; ')}`);
}

/**
 * Kill `args` at each of its steps; before each run `reset` sets the old
 * state; after the kill, `check` inspects traffic (old or new), then the
 * next write (`reset` again) must work and leave the state repaired, and
 * finally the command itself must reach the new state.
 */
async function everyStep(name: string, args: string[], reset: () => void, observe: () => Promise<string>, oldObs: string, newObs: string, minSteps = 8): Promise<number> {
  reset();
  const steps = stepsOf(args);
  assert.ok(steps.length >= minSteps, `${name}: steps ${steps.join(' ')}`);
  assert.is(await observe(), newObs, `${name}: the command reaches the new state`);
  for (const spec of steps) {
    reset();
    assert.is(await observe(), oldObs, `${name}: reset to the old state before ${spec}`);
    killedAt(args, spec);
    const seen = await observe();
    assert.ok(seen === oldObs || seen === newObs, `${name} killed at ${spec}: traffic sees ${seen}, neither old (${oldObs}) nor new (${newObs})`);
    // The next write repairs what the kill left.
    reset();
    assertRepaired(`${name} killed at ${spec}, then the next write`);
    assert.is(await observe(), oldObs, `${name} killed at ${spec}: the next write's state is live`);
    ctx.env.ok(args);
    assert.is(await observe(), newObs, `${name} killed at ${spec}: running it again reaches the new state`);
    assertRepaired(`${name} killed at ${spec}, then run again`);
  }
  return steps.length;
}

const other = async (): Promise<string> => ctx.agent.who('tcp', '127.0.0.7', 9180);
const explicit = async (): Promise<string> => ctx.agent.who('tcp', '127.0.0.9', 9180);
const targetT1 = (): void => void ctx.env.ok(['target', 't', '127.0.0.5', '--protocol', 'tcp']);

test('target: killed at every step, the old target or the new one', async () => {
  await everyStep('target', ['target', 't', '127.0.0.6', '--protocol', 'tcp'], targetT1, other, 'T1', 'T2');
});

test('untarget: killed at every step, the target or refused', async () => {
  await everyStep('untarget', ['untarget', 't'], targetT1, other, 'T1', '!ECONNREFUSED');
});

test('policy: killed at every step, the binding or the explicit listener', async () => {
  targetT1();
  await everyStep('policy', ['policy', 'explicit-first', 'on'], () => void ctx.env.ok(['policy', 'explicit-first', 'off']), explicit, 'T1', 'E', 6);
  ctx.env.ok(['policy', 'explicit-first', 'off']);
});

test('a socket replacing a target and a target replacing a socket: killed at every step', async () => {
  const s = await ctx.agent.listen('tcp', '127.0.0.1', 9181, 'S');
  const toSocket = ['register-pid', String(ctx.agent.pid), 't', 'tcp', '127.0.0.1', String(s.port)];
  await everyStep('register over a target', toSocket, targetT1, other, 'T1', 'S');
  await everyStep('target over a socket', ['target', 't', '127.0.0.6', '--protocol', 'tcp'], () => void ctx.env.ok(toSocket), other, 'S', 'T2');
  await ctx.agent.call('close', { handle: s.handle });
});

test.run();
