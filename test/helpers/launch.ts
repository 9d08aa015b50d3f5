/**
 * Start test/helpers/fd-launcher.ts in a namespace and read its result.
 */
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, type TestEnv } from './env.js';
import type { LaunchSpec } from './fd-launcher.js';

/** Result of a launched `manifold register`. */
export interface Launched {
  code: number;
  stdout: string;
  stderr: string;
  json: unknown;
  /** Stop the launcher (closing its sockets). */
  stop(): void;
}

/** Run `manifold register` with sockets made inside the namespace. */
export async function launchRegister(env: TestEnv, spec: LaunchSpec): Promise<Launched> {
  const script = path.join(ROOT, 'build', 'test', 'helpers', 'fd-launcher.js');
  const args = [...spec.args, '--netns', env.netnsPath, '--bpffs', env.bpffs];
  const child = env.spawn(process.execPath, [script, JSON.stringify({ ...spec, args })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`launcher exited with ${c}`)));
  });
  const r = JSON.parse(line) as { code: number; stdout: string; stderr: string };
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = null;
  }
  return {
    ...r,
    json,
    stop: () => {
      child.stdin?.end();
      child.kill('SIGKILL');
    },
  };
}
