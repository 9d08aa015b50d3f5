/**
 * Fault injection for the address-target commands, with listener discovery
 * enabled on a cgroup the test creates (method: test/integration/faults.test.ts,
 * helpers: test/helpers/fault-steps.ts). Every command is killed (SIGKILL) at
 * EVERY step; after each kill, traffic sees the old state or the new one,
 * the next write repairs what the kill left (including discovery's target
 * addresses: exactly those the live generation uses), and running the
 * command again reaches the new state. This file: target, untarget, policy.
 */
import { test } from 'uvu';
import { everyStep, setupTargetFaults, targetObservers, teardownTargetFaults, type TargetFaultCtx } from '../helpers/fault-steps.js';

let t: TargetFaultCtx;

test.before(async () => {
  t = await setupTargetFaults('faultst');
});
test.after(() => teardownTargetFaults(t));

test('target: killed at every step, the old target or the new one', async () => {
  const o = targetObservers(t);
  await everyStep(t, 'target', ['target', 't', '127.0.0.6', '--protocol', 'tcp'], o.targetT1, o.other, 'T1', 'T2');
});

test('untarget: killed at every step, the target or refused', async () => {
  const o = targetObservers(t);
  await everyStep(t, 'untarget', ['untarget', 't'], o.targetT1, o.other, 'T1', '!ECONNREFUSED');
});

test('policy: killed at every step, the binding or the explicit listener', async () => {
  const o = targetObservers(t);
  o.targetT1();
  await everyStep(t, 'policy', ['policy', 'explicit-first', 'on'], () => void t.env.ok(['policy', 'explicit-first', 'off']), o.explicit, 'T1', 'E', 6);
  t.env.ok(['policy', 'explicit-first', 'off']);
});

test.run();
