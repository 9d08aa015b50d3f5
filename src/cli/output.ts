/**
 * Output conventions: data on stdout, information on stderr, one JSON
 * document with --json.
 */
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { logError } from '../log/error.js';
import { notifyError } from '../log/notify.js';

const codeErrno: Partial<Record<string, number>> = {
  ERR_PERMISSION: 1, ERR_NOT_LOADED: 2, ERR_NOT_FOUND: 2, ERR_NO_SUCH_PROCESS: 3, ERR_LOCK_TIMEOUT: 110, ERR_NO_SPACE: 28,
};

const pending: string[] = [];

/** Print data (stdout). Lines are buffered and written in large chunks. */
export function out(line: string): void {
  pending.push(line);
  if (pending.length >= 8192) flushOut();
}

/** Write buffered stdout lines (the CLI calls this before it exits). */
export function flushOut(): void {
  if (pending.length === 0) return;
  process.stdout.write(`${pending.join('\n')}\n`);
  pending.length = 0;
}

/** Print information (stderr). */
export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Print one JSON document (stdout). */
export function outJson(doc: unknown): void {
  flushOut();
  process.stdout.write(`${JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

/** Normalise any thrown value into a ManifoldError. */
export function toManifoldError(err: unknown): ManifoldError {
  if (err instanceof ManifoldError) return err;
  if (err instanceof SysError) {
    if (err.errno === 1 || err.errno === 13) return new ManifoldError('ERR_PERMISSION', `${err.message}: run as root (needs CAP_BPF and CAP_NET_ADMIN)`);
    return new ManifoldError('ERR_SYSTEM', err.message, { errno: err.errnoName, call: err.call });
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && (e.code === 'EACCES' || e.code === 'EPERM')) {
    return new ManifoldError('ERR_PERMISSION', `permission denied: ${e.message}`);
  }
  return new ManifoldError('ERR_SYSTEM', e?.message ?? String(err));
}

/** Report an error (stderr line, JSON on stdout with --json); returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const m = toManifoldError(err);
  info(`manifold: error: ${m.message}`);
  const errno = err instanceof SysError ? err.errno : (codeErrno[m.code] ?? (m.exitCode === 2 ? 22 : 5));
  logError(m.code, m.message, errno);
  notifyError(errno, `error: ${m.message}`);
  const log = (err as { log?: string }).log;
  if (log && process.env.MANIFOLD_DEBUG) info(log);
  if (process.env.MANIFOLD_DEBUG && err instanceof Error) info(err.stack ?? '');
  if (json) outJson({ error: { code: m.code, message: m.message, ...(m.details ? { details: m.details } : {}) } });
  return m.exitCode;
}
