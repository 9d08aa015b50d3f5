/**
 * Start test/helpers/fd-launcher.ts in a namespace and read its result.
 */
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, type TestEnv } from './env.js';
import type { LaunchSpec } from './fd-launcher.js';
import { nextLine } from './wait.js';

/** Result of a launched `manifold register`. */
export interface Launched {
  code: number;
  stdout: string;
  stderr: string;
  json: unknown;
  /** Stop the launcher (closing its sockets). */
  stop(): void;
}

/**
 * Run `manifold register` with sockets made inside the namespace. The launcher
 * kills register after spec.timeoutMs (default 60 s); its result line is awaited
 * 30 s longer than that, then the launcher is killed and this rejects.
 */
export async function launchRegister(env: TestEnv, spec: LaunchSpec): Promise<Launched> {
  const script = path.join(ROOT, 'build', 'test', 'helpers', 'fd-launcher.js');
  const args = [...spec.args, '--netns', env.netnsPath, '--bpffs', env.bpffs];
  const child = env.spawn(process.execPath, [script, JSON.stringify({ ...spec, args })], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin?.on('error', () => undefined);
  const rl = readline.createInterface({ input: child.stdout! });
  const line = await nextLine(rl, (spec.timeoutMs ?? 60_000) + 30_000, `the result line of fd-launcher (manifold ${spec.args.join(' ')})`, child).catch((err: Error) => {
    child.kill('SIGKILL');
    throw err;
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
