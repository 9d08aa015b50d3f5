/**
 * The writers' lock of a namespace's state: an exclusive flock(2) on a
 * directory `<bpffs>/<netns inode>_manifold_lock` that only its owner (the
 * user running the writers, normally root) can open — mode 0700. Readers
 * take no lock at all (they read consistently without one, see
 * ops/read.ts), so no member of the read-only group, and no other user, can
 * block a writer. A lock directory someone else created (bpffs is
 * world-writable with the sticky bit by default) is replaced, and the
 * replacement is reported.
 *
 * Node has no flock(): it comes from libc; waiting polls LOCK_NB so a stuck
 * holder produces ERR_LOCK_TIMEOUT instead of hanging forever.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsReason, ManifoldError } from '../errors.js';
import { flock, LOCK_EX, LOCK_NB } from '../sys/libc.js';
import { lockDirName, type ResolvedTarget } from './paths.js';

// Created on first use: SharedArrayBuffer does not exist while a start-up snapshot is built.
let sleeper: Int32Array | undefined;

/** Sleep synchronously (the CLI is single-shot; nothing else runs). */
export function sleepMs(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Largest --lock-timeout / MANIFOLD_LOCK_TIMEOUT, in seconds. */
export const MAX_LOCK_TIMEOUT_S = 3600;

/** Default lock wait: MANIFOLD_LOCK_TIMEOUT (seconds, 0 to 3600) or 10 s. */
export function defaultLockTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MANIFOLD_LOCK_TIMEOUT;
  if (v === undefined || v === '') return 10_000;
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(v) || Number(v) > MAX_LOCK_TIMEOUT_S) {
    throw new ManifoldError('ERR_INVALID_ENV', `MANIFOLD_LOCK_TIMEOUT=${JSON.stringify(v)} is not a number of seconds from 0 to ${MAX_LOCK_TIMEOUT_S}`);
  }
  return Math.round(Number(v) * 1000);
}

/** A held writers' lock; close() releases it. */
export interface WriterLock {
  /** A foreign lock directory that was replaced, or null. */
  replaced: string | null;
  close(): void;
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/** Why an open lock directory is not ours, or null when it is. */
function foreign(st: fs.Stats): string | null {
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== euid()) return `it is owned by uid ${st.uid}`;
  if ((st.mode & 0o077) !== 0) return `its mode is ${(st.mode & 0o777).toString(8)}`;
  return null;
}

/** Take the writers' lock of a namespace or throw ERR_LOCK_TIMEOUT after `timeoutMs`. */
export function lockWriters(target: ResolvedTarget, timeoutMs: number): WriterLock {
  return lockDirectory(path.join(target.bpffs, lockDirName(target.netnsIno)), target.bpffs, timeoutMs, 'this state');
}

/**
 * Take an exclusive lock on the lock directory `dir` (created 0700 on
 * `bpffs` when missing; replaced when someone else made it); `what` names
 * what it protects in the timeout message.
 */
export function lockDirectory(dir: string, bpffs: string, timeoutMs: number, what: string): WriterLock {
  const target = { bpffs };
  const deadline = Date.now() + timeoutMs;
  let replaced: string | null = null;
  let delay = 1;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        throw new ManifoldError('ERR_PERMISSION', `cannot create the lock ${dir}: permission denied (writes need root, or CAP_BPF and CAP_NET_ADMIN with write access to ${target.bpffs})`);
      }
      if (code !== 'EEXIST') throw err;
    }
    let fd: number;
    try {
      fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // removed by an unload meanwhile
      if ((code === 'ELOOP' || code === 'ENOTDIR') && attempt < 3) {
        replaced = `${dir} (${code === 'ELOOP' ? 'a symlink' : 'not a directory'})`;
        fs.rmSync(dir, { force: true });
        continue;
      }
      if (code === 'EACCES' || code === 'EPERM') {
        throw new ManifoldError('ERR_PERMISSION', `cannot open the lock ${dir}: permission denied (writes need root)`);
      }
      throw err;
    }
    const why = foreign(fs.fstatSync(fd));
    if (why) {
      fs.closeSync(fd);
      if (attempt >= 3) throw new ManifoldError('ERR_PERMISSION', `the lock ${dir} keeps being replaced by another user (${why}); refusing to write`);
      replaced = `${dir} (${why})`;
      // Not ours: someone else made it (bpffs is sticky and world-writable). Move it away and retry.
      const away = `${dir}-foreign-${process.pid}-${attempt}`;
      try {
        fs.renameSync(dir, away);
      } catch (err) {
        throw new ManifoldError('ERR_PERMISSION', `the lock ${dir} was not created by manifold (${why}) and cannot be moved aside: ${fsReason(err)}`);
      }
      // Removed only when empty: what another user put there is not walked as root (it may be
      // thousands deep, or change meanwhile); it stays aside.
      try {
        fs.rmdirSync(away);
      } catch {
        replaced = `${dir} (${why}; moved aside as ${away}, not empty)`;
      }
      continue;
    }
    try {
      while (!flock(fd, LOCK_EX | LOCK_NB)) {
        if (Date.now() >= deadline) {
          throw new ManifoldError(
            'ERR_LOCK_TIMEOUT',
            `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for the writers' lock ${dir}: another manifold command is changing ${what}`,
          );
        }
        sleepMs(delay);
        delay = Math.min(delay * 2, 20);
      }
      // An unload removes the lock directory: make sure we hold the one at the path.
      let same = false;
      try {
        same = fs.statSync(dir).ino === fs.fstatSync(fd).ino;
      } catch {
        same = false;
      }
      if (!same) {
        fs.closeSync(fd);
        continue;
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return {
      replaced,
      close: () => {
        try {
          fs.closeSync(fd);
        } catch {
          /* closed already */
        }
      },
    };
  }
}

/** Remove the lock directory (unload, while holding the lock). */
export function removeLockDir(target: ResolvedTarget): void {
  fs.rmSync(path.join(target.bpffs, lockDirName(target.netnsIno)), { recursive: true, force: true });
}
