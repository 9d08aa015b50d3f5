/**
 * flock(2)-based locking of the state directory, with a timeout.
 *
 * Writers take an exclusive lock, readers a shared one. Node has no flock,
 * so it comes from libc; waiting polls LOCK_NB so a stuck holder produces a
 * clear ERR_LOCK_TIMEOUT instead of hanging forever.
 */
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../sys/libc.js';
import { ManifoldError } from '../errors.js';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Sleep synchronously (the CLI is single-shot; nothing else runs). */
export function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Default lock wait, overridable with MANIFOLD_LOCK_TIMEOUT (seconds). */
export function defaultLockTimeoutMs(): number {
  const env = process.env.MANIFOLD_LOCK_TIMEOUT;
  if (env !== undefined && /^\d+(\.\d+)?$/.test(env)) return Math.round(Number(env) * 1000);
  return 10_000;
}

/** Take a lock on `fd` or throw ERR_LOCK_TIMEOUT after `timeoutMs`. */
export function lockFd(fd: number, exclusive: boolean, timeoutMs: number, what: string): void {
  const op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (!flock(fd, op)) {
    if (Date.now() >= deadline) {
      throw new ManifoldError(
        'ERR_LOCK_TIMEOUT',
        `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for the ${exclusive ? 'exclusive' : 'shared'} lock on ${what}: another manifold command is holding it`,
      );
    }
    sleepMs(delay);
    delay = Math.min(delay * 2, 20);
  }
}

/** Release a lock (closing the fd releases it too). */
export function unlockFd(fd: number): void {
  flock(fd, LOCK_UN);
}
