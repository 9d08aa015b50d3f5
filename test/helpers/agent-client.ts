/**
 * Controller for test/helpers/agent.ts running inside a test namespace.
 * Every wait is bounded: the ready line, and each reply (see {@link Agent.call}).
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, type TestEnv } from './env.js';
import { nextLine, withTimeout } from './wait.js';

/** Limit for the agent's ready line. */
const START_MS = 30_000;
/** Limit for a reply, on top of the durationMs/timeoutMs the command itself asks for. */
const REPLY_MS = 30_000;

/** A handle to a running agent. */
export class Agent {
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { op: string; resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited: string | null = null;

  private constructor(child: ChildProcess, pid: number, rl: readline.Interface) {
    this.child = child;
    this.pid = pid;
    // Writing to an agent that died is reported through the 'close' below, not as a crash.
    child.stdin?.on('error', () => undefined);
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as { id: number; result?: Record<string, unknown>; error?: string };
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.result ?? {});
    });
    // The agent is the child of nsenter (which execs it): its end closes stdout.
    rl.once('close', () => {
      this.exited = `the agent's output ended (exit ${child.exitCode ?? child.signalCode ?? 'pending'})`;
      for (const p of this.pending.values()) p.reject(new Error(`${this.exited} while waiting for its reply to ${p.op}`));
      this.pending.clear();
    });
  }

  /** Start an agent in the environment's namespace. */
  static async start(env: TestEnv): Promise<Agent> {
    const script = path.join(ROOT, 'build', 'test', 'helpers', 'agent.js');
    const child = env.spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout! });
    const line = await nextLine(rl, START_MS, 'the ready line of the traffic agent', child).catch((err: Error) => {
      child.kill('SIGKILL');
      throw err;
    });
    const pid = (JSON.parse(line) as { ready: number }).ready;
    env.track(pid);
    return new Agent(child, pid, rl);
  }

  /**
   * Send one command and wait for its answer: at most 30 s plus the command's
   * own durationMs and timeoutMs; rejects at once if the agent is gone.
   */
  call(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error(`${this.exited}; cannot send ${op}`));
    const id = this.nextId++;
    const limit = REPLY_MS + Number(args.durationMs ?? 0) + Number(args.timeoutMs ?? 0);
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
    return withTimeout(reply, limit, `the traffic agent's reply to ${op} ${JSON.stringify(args)}`, () => this.pending.delete(id));
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
