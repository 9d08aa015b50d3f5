/**
 * Fault injection for the address-target commands, with listener discovery
 * enabled on a cgroup the test creates (method: test/integration/faults.test.ts,
 * helpers: test/helpers/fault-steps.ts). Every command is killed (SIGKILL) at
 * EVERY step; after each kill, traffic sees the old state or the new one,
 * the next write repairs what the kill left (including discovery's target
 * addresses: exactly those the live generation uses), and running the
 * command again reaches the new state. This file: a registered socket replacing a target, and a target replacing a socket.
 */
import { test } from 'uvu';
import { everyStep, setupTargetFaults, targetObservers, teardownTargetFaults, type TargetFaultCtx } from '../helpers/fault-steps.js';

let t: TargetFaultCtx;

test.before(async () => {
  t = await setupTargetFaults('faultsw');
});
test.after(() => teardownTargetFaults(t));

test('a socket replacing a target and a target replacing a socket: killed at every step', async () => {
  const o = targetObservers(t);
  const s = await t.agent.listen('tcp', '127.0.0.1', 9181, 'S');
  const toSocket = ['register-pid', String(t.agent.pid), 't', 'tcp', '127.0.0.1', String(s.port)];
  await everyStep(t, 'register over a target', toSocket, o.targetT1, o.other, 'T1', 'S');
  await everyStep(t, 'target over a socket', ['target', 't', '127.0.0.6', '--protocol', 'tcp'], () => void t.env.ok(toSocket), o.other, 'S', 'T2');
  await t.agent.call('close', { handle: s.handle });
});

test.run();
