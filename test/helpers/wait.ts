/**
 * Bounded waits on child processes: every wait has a time limit and says
 * what it was waiting for, and none can miss an event that fired before it
 * started (an exit is read from exitCode/signalCode, lines from a reader
 * created with the child).
 */
import type { ChildProcess } from 'node:child_process';
import type readline from 'node:readline';

/** Time limit of spawnSync/execFileSync calls of quick host tools (ip, mount, userdel…). */
export const QUICK_MS = 30_000;

/** How a child process ended: its exit code, or the signal that killed it. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Settle with `p`, or reject after `ms` with "timed out after N s waiting for <what>"
 * (calling `onTimeout` first, e.g. to kill the child that did not answer).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`timed out after ${(ms / 1000).toFixed(1)} s waiting for ${what}`));
    }, ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/**
 * The exit of `child`, also when it already happened. Rejects when the child
 * could not be started, and after `ms` (the child is then left running: the
 * caller decides whether to kill it).
 */
export function waitExit(child: ChildProcess, ms: number, what: string): Promise<Exit> {
  const done = new Promise<Exit>((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => reject(new Error(`${what}: ${err.message}`)));
  });
  return withTimeout(done, ms, `the exit of ${what}`);
}

/**
 * The next line of `rl` (a reader created right after spawning, so no line is
 * lost). Rejects when the stream ends first, when `child` cannot be started,
 * and after `ms`.
 */
export function nextLine(rl: readline.Interface, ms: number, what: string, child?: ChildProcess): Promise<string> {
  let cleanup = (): void => undefined;
  const line = new Promise<string>((resolve, reject) => {
    const onLine = (l: string): void => resolve(l);
    const onClose = (): void => {
      const how = child && (child.exitCode !== null || child.signalCode !== null) ? ` (exited with ${child.exitCode ?? child.signalCode})` : '';
      reject(new Error(`${what}: output ended before the line${how}`));
    };
    const onError = (err: Error): void => reject(new Error(`${what}: ${err.message}`));
    rl.once('line', onLine);
    rl.once('close', onClose);
    child?.once('error', onError);
    cleanup = () => {
      rl.off('line', onLine);
      rl.off('close', onClose);
      child?.off('error', onError);
    };
  });
  return withTimeout(line, ms, what).finally(() => cleanup());
}

/** Sleep `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
