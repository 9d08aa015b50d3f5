/**
 * Fault injection: every write command is killed (SIGKILL) at EVERY step it
 * goes through (MANIFOLD_TEST_KILL_AT, src/ops/faults.ts), one step at a
 * time. After each kill:
 *  - real traffic sees the old state or the new one, never a mix;
 *  - the next command works, repairs what the kill left (both generations
 *    in sync, reference counts exact, no garbage) and loses nothing
 *    committed;
 *  - running the command again reaches the new state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState, liveBindings } from '../helpers/inspect.js';
import { everyStep as everyStepIn, killedAt as killedAtIn, stepsOf as stepsOfIn } from '../helpers/every-step.js';

let ctx: Ctx;
let dir: string;

test.before(async () => {
  ctx = await setup('faults');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-faults-'));
  await serve(ctx, 'a', 'tcp', '127.0.0.1', 9101);
  await serve(ctx, 'b', 'tcp', '127.0.0.1', 9102);
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

function applyFile(name: string, bindings: { label: string; prefix: string; port: number | string; protocol: string }[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify({ bindings }));
  return p;
}

async function who(ports: number[], addr = '198.51.100.7'): Promise<string[]> {
  const out: string[] = [];
  for (const p of ports) out.push(await ctx.agent.who('tcp', addr, p));
  return out;
}

const stepsOf = (args: string[]): string[] => stepsOfIn(ctx.env, args);
const killedAt = (args: string[], spec: string): void => killedAtIn(ctx.env, args, spec);
const everyStep = (name: string, args: string[], reset: () => void, observe: () => Promise<string>, oldObs: string, newObs: string, minSteps?: number): Promise<number> =>
  everyStepIn(ctx.env, name, args, reset, observe, oldObs, newObs, minSteps);

const RANGE = [8000, 8001, 8002, 8003];
const OLD = applyFileLater('old.json', [{ label: 'a', prefix: '192.0.2.0/24', port: 80, protocol: 'tcp' }]);

function applyFileLater(name: string, b: Parameters<typeof applyFile>[1]): () => string {
  let p: string | null = null;
  return () => (p ??= applyFile(name, b));
}

test('bind of a port range: killed at every step, all ports or none', async () => {
  const args = ['bind', 'b', 'tcp', '198.51.100.0/24', '8000-8003'];
  const n = await everyStep('bind', args, () => ctx.env.ok(['apply', OLD()]), async () => (await who(RANGE)).join(','), RANGE.map(() => '!ECONNREFUSED').join(','), RANGE.map(() => 'b').join(','));
  assert.ok(n >= 8);
});

test('unbind of a port range: killed at every step, all ports or none', async () => {
  const withRange = applyFile('range.json', [
    { label: 'a', prefix: '192.0.2.0/24', port: 80, protocol: 'tcp' },
    { label: 'b', prefix: '198.51.100.0/24', port: '8000-8003', protocol: 'tcp' },
  ]);
  const args = ['unbind', 'b', 'tcp', '198.51.100.0/24', '8000-8003'];
  await everyStep('unbind', args, () => ctx.env.ok(['apply', withRange]), async () => (await who(RANGE)).join(','), RANGE.map(() => 'b').join(','), RANGE.map(() => '!ECONNREFUSED').join(','));
});

test('apply: killed at every step, the old set or the new one', async () => {
  const oldSet = applyFile('set-a.json', [1, 2, 3, 4].map((i) => ({ label: 'a', prefix: `198.51.100.${i}`, port: 80, protocol: 'tcp' })));
  const newSet = applyFile('set-b.json', [1, 2, 3, 4].map((i) => ({ label: 'b', prefix: `198.51.100.${i}`, port: 80, protocol: 'tcp' })));
  const observe = async (): Promise<string> => {
    const out: string[] = [];
    for (const i of [1, 2, 3, 4]) out.push(await ctx.agent.who('tcp', `198.51.100.${i}`, 80));
    return out.join(',');
  };
  await everyStep('apply', ['apply', newSet], () => ctx.env.ok(['apply', oldSet]), observe, 'a,a,a,a', 'b,b,b,b');
});

test('a large apply (rebuilt from its target, planned without put lists), killed at every step, then the same set again', async () => {
  // 200 bindings, all relabelled: more than a quarter of the set changes, so the executor rebuilds.
  const hosts = Array.from({ length: 200 }, (_, i) => `198.51.100.${i + 1}`);
  const oldSet = applyFile('big-a.json', hosts.map((h) => ({ label: 'a', prefix: h, port: 80, protocol: 'tcp' })));
  const newSet = applyFile('big-b.json', hosts.map((h) => ({ label: 'b', prefix: h, port: 80, protocol: 'tcp' })));
  const probes = [0, 57, 130, 199].map((i) => hosts[i] as string);
  const observe = async (): Promise<string> => {
    const out: string[] = [];
    for (const h of probes) out.push(await ctx.agent.who('tcp', h, 80));
    return out.join(',');
  };
  await everyStep('apply', ['apply', newSet], () => ctx.env.ok(['apply', oldSet]), observe, 'a,a,a,a', 'b,b,b,b');
  // Whatever the last kill left, applying the new set again ends with exactly it (the apply record's short way included).
  ctx.env.ok(['apply', newSet]);
  const again = ctx.env.ok(['apply', newSet]);
  assert.match(again.stderr, /added 0, removed 0, relabelled 0, unchanged 200/);
  assert.is(await observe(), 'b,b,b,b');
});

test('register-pid and unregister: killed at every step, the old socket or the new one', async () => {
  const s1 = await ctx.agent.listen('tcp', '127.0.0.1', 9111, 'c1');
  const s2 = await ctx.agent.listen('tcp', '127.0.0.1', 9112, 'c2');
  const pid = String(ctx.agent.pid);
  const reset = (): void => {
    ctx.env.ok(['apply', applyFile('c.json', [{ label: 'c', prefix: '198.51.100.50', port: 80, protocol: 'tcp' }])]);
    ctx.env.ok(['register-pid', pid, 'c', 'tcp', '127.0.0.1', String(s1.port)]);
  };
  const observe = async (): Promise<string> => ctx.agent.who('tcp', '198.51.100.50', 80);
  await everyStep('register-pid', ['register-pid', pid, 'c', 'tcp', '127.0.0.1', String(s2.port)], reset, observe, 'c1', 'c2');
  await everyStep('unregister', ['unregister', 'c', 'ipv4', 'tcp'], reset, observe, 'c1', '!ECONNREFUSED');
});

test('upgrade: killed at every step, traffic keeps flowing, nothing is lost', async () => {
  const reset = (): void => {
    ctx.env.ok(['apply', applyFile('u.json', [{ label: 'a', prefix: '198.51.100.60', port: 80, protocol: 'tcp' }])]);
  };
  const observe = async (): Promise<string> => ctx.agent.who('tcp', '198.51.100.60', 80);
  await everyStep('upgrade', ['upgrade'], reset, observe, 'a', 'a', 5);
  assert.equal(liveBindings(inspectTestState(ctx.env)), ['a tcp 198.51.100.60/32 80']);
});

test('unload and load: killed at every step, the dispatcher is attached or not, never half', async () => {
  const reset = (): void => {
    ctx.env.ok(['load']);
    ctx.env.ok(['apply', applyFile('l.json', [{ label: 'a', prefix: '198.51.100.70', port: 80, protocol: 'tcp' }])]);
    ctx.env.ok(['register-pid', String(ctx.agent.pid), 'a', 'tcp', '127.0.0.1', '9101']);
  };
  const observe = async (): Promise<string> => ctx.agent.who('tcp', '198.51.100.70', 80);
  reset();
  const steps = stepsOf(['unload']);
  assert.ok(steps.length >= 4, steps.join(' '));
  for (const spec of steps) {
    reset();
    killedAt(['unload'], spec);
    const seen = await observe();
    assert.ok(seen === 'a' || seen === '!ECONNREFUSED', `unload killed at ${spec}: ${seen}`);
    ctx.env.ok(['unload']);
    assert.is(await observe(), '!ECONNREFUSED', `unload killed at ${spec}: the next unload finishes it`);
    assert.equal(fs.readdirSync(ctx.env.bpffs).filter((n) => n.includes('_manifold')), [], `unload killed at ${spec}: nothing left on bpffs`);
  }
  const loadSteps = stepsOf(['load']);
  ctx.env.ok(['unload']);
  for (const spec of loadSteps) {
    killedAt(['load'], spec);
    const st = ctx.env.cli(['status', '--json']);
    assert.ok(st.code === 0 || st.code === 3, `load killed at ${spec}: status exit ${st.code} ${st.stderr}`);
    ctx.env.ok(['load']);
    assert.equal(fs.readdirSync(ctx.env.bpffs).filter((n) => n.includes('_manifold-')), [], `load killed at ${spec}: no leftovers after the next load`);
    ctx.env.ok(['unload']);
  }
  reset();
});

test.run();
