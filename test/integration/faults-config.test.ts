/**
 * Fault injection for `apply --config` (see faults.test.ts): killed at
 * every step, real traffic sees the old set or the new one, and the labels
 * marked as configured switch with it (the config bit is per generation);
 * the next write repairs what the kill left, both generations equal in
 * their bindings and their marks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import { inspectTestState } from '../helpers/inspect.js';
import { everyStep } from '../helpers/every-step.js';

process.umask(0o022);
let ctx: Ctx;
let dir: string;

test.before(async () => {
  ctx = await setup('faultcfg');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-faultcfg-'));
  fs.chmodSync(dir, 0o755);
  await serve(ctx, 'a', 'tcp', '127.0.0.1', 9121);
  await serve(ctx, 'b', 'tcp', '127.0.0.1', 9122);
  await serve(ctx, 'h', 'tcp', '127.0.0.1', 9123);
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(files: Record<string, string>): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o644 });
}

test('apply --config: killed at every step, the old set and its marks or the new ones', async () => {
  const binds = [1, 2, 3, 4].map((i) => `Bind=tcp 198.51.100.${i} 80`).join('\n');
  process.env.MANIFOLD_CONFIG_DIRS = dir;
  // Old: the config defines label a. New: b instead (a's file removed). A binding made
  // by hand (label h) is kept by every run.
  ctx.env.ok(['bind', 'h', 'tcp', '198.51.100.9', '80']);
  const reset = (): void => {
    write({ 'a.conf': `[Label]\n${binds}\n` });
    ctx.env.ok(['apply', '--config']);
    write({ 'b.conf': `[Label]\n${binds}\n` });
  };
  const observe = async (): Promise<string> => {
    const out: string[] = [];
    for (const i of [1, 2, 3, 4, 9]) out.push(await ctx.agent.who('tcp', `198.51.100.${i}`, 80));
    const st = inspectTestState(ctx.env);
    return `${out.join(',')} configured=${st.gens[st.active].configured.join(',')}`;
  };
  await everyStep(ctx.env, 'apply --config', ['apply', '--config'], reset, observe, 'a,a,a,a,h configured=a', 'b,b,b,b,h configured=b');
});

test.run();
