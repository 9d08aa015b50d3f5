/**
 * Controller for test/helpers/agent.ts running inside a test namespace.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, type TestEnv } from './env.js';

/** A handle to a running agent. */
export class Agent {
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  private constructor(child: ChildProcess, pid: number, rl: readline.Interface) {
    this.child = child;
    this.pid = pid;
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as { id: number; result?: Record<string, unknown>; error?: string };
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.result ?? {});
    });
  }

  /** Start an agent in the environment's namespace. */
  static async start(env: TestEnv): Promise<Agent> {
    const script = path.join(ROOT, 'build', 'test', 'helpers', 'agent.js');
    const child = env.spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout! });
    const pid = await new Promise<number>((resolve, reject) => {
      rl.once('line', (line) => resolve((JSON.parse(line) as { ready: number }).ready));
      child.once('exit', (code) => reject(new Error(`agent exited with ${code}`)));
    });
    env.track(pid);
    return new Agent(child, pid, rl);
  }

  /** Send one command and wait for its answer. */
  call(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Start a TCP or UDP server that answers with `tag`. */
  async listen(proto: 'tcp' | 'udp', host: string, port: number, tag: string, extra: Record<string, unknown> = {}): Promise<{ handle: number; fd: number; port: number }> {
    const r = await this.call('listen', { proto, host, port, tag, ...extra });
    return r as { handle: number; fd: number; port: number };
  }

  /** Connect (TCP) or send a datagram (UDP); returns the answer or the error code. */
  async connect(proto: 'tcp' | 'udp', host: string, port: number, extra: Record<string, unknown> = {}): Promise<{ ok: boolean; data?: string; code?: string; from?: string }> {
    return (await this.call('connect', { proto, host, port, ...extra })) as { ok: boolean; data?: string; code?: string; from?: string };
  }

  /** The answer's tag, or "!CODE" on failure. */
  async who(proto: 'tcp' | 'udp', host: string, port: number): Promise<string> {
    const r = await this.connect(proto, host, port);
    return r.ok ? String(r.data) : `!${r.code}`;
  }

  /** Stop the agent. */
  stop(): void {
    this.child.stdin?.end();
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
