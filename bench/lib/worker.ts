/**
 * JSON-line RPC with a benchmark worker (a node script run inside a
 * namespace). The worker prints {"ready":PID} first, then answers each
 * {"id","op",...} line on stdin with {"id","result"} or {"id","error"}.
 * Its stderr goes to a log file so failures can be shown.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type { BenchNs } from './netns.js';

/** Limit for a worker's ready line. */
const START_MS = 60_000;
/** Limit for an answer, on top of the durationMs the command asks for. */
const REPLY_MS = 60_000;

/** A running worker. */
export class Worker {
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited: string | null = null;

  private constructor(child: ChildProcess, pid: number, rl: readline.Interface) {
    this.child = child;
    this.pid = pid;
    rl.on('line', (line) => {
      let msg: { id: number; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    });
    child.once('exit', (code, signal) => {
      this.exited = `worker exited (${code ?? signal})`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  /** Start `node <script> ...args` inside the namespace. */
  static async start(ns: BenchNs, script: string, args: string[], logFile: string): Promise<Worker> {
    const log = fs.openSync(logFile, 'a');
    const child = ns.spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', log] });
    fs.closeSync(log);
    const rl = readline.createInterface({ input: child.stdout! });
    const pid = await new Promise<number>((resolve, reject) => {
      // Listeners are attached right after spawn (no event can be missed); the wait is bounded.
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${script} printed no ready line within ${START_MS / 1000} s (see ${logFile})`));
      }, START_MS);
      rl.once('close', () => clearTimeout(timer));
      rl.once('line', (line) => {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(line) as { ready: number }).ready);
        } catch (err) {
          reject(err as Error);
        }
      });
      child.once('error', (err) => reject(new Error(`${script}: ${err.message}`)));
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready (see ${logFile})`)));
    });
    ns.track(pid);
    return new Worker(child, pid, rl);
  }

  /** Send one command and wait for its answer: at most 60 s plus the command's durationMs. */
  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    const limit = REPLY_MS + Number(args.durationMs ?? 0);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.pid} did not answer ${op} within ${limit / 1000} s`));
      }, limit);
      const settle = <V>(f: (v: V) => void) => (v: V): void => {
        clearTimeout(timer);
        f(v);
      };
      this.pending.set(id, { resolve: settle(resolve as (v: unknown) => void), reject: settle(reject) });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Stop the worker: close stdin and send SIGTERM (it exits, running its exit handlers). */
  stop(): void {
    this.child.stdin?.end();
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

/** Handler table of a worker: op -> async function of the request. */
export type Handlers = Record<string, (req: Record<string, unknown>) => Promise<unknown> | unknown>;

/**
 * Worker side: announce readiness and serve requests from stdin until it
 * closes. Requests run one after another unless a handler returns at once.
 */
export function serveWorker(handlers: Handlers): void {
  const rl = readline.createInterface({ input: process.stdin });
  const reply = (body: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(body)}\n`);
  };
  rl.on('line', (line) => {
    const req = JSON.parse(line) as { id: number; op: string } & Record<string, unknown>;
    const h = handlers[req.op];
    if (!h) {
      reply({ id: req.id, error: `unknown op ${req.op}` });
      return;
    }
    Promise.resolve()
      .then(() => h(req))
      .then(
        (result) => reply({ id: req.id, result: result ?? null }),
        (err: unknown) => reply({ id: req.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  rl.on('close', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  reply({ ready: process.pid });
}
