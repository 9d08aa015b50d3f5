/**
 * Output conventions: data on stdout, information on stderr, one JSON
 * document with --json.
 */
import { errnoForCode, toManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { logError } from '../log/error.js';
import { notifyError } from '../log/notify.js';

const pending: string[] = [];

/** Print data (stdout). Lines are buffered and written in large chunks. */
export function out(line: string): void {
  pending.push(line);
  if (pending.length >= 8192) flushOut();
}

/** Print text without a line end (buffered with the lines). */
export function outRaw(text: string): void {
  if (pending.length > 0) flushOut();
  process.stdout.write(text);
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

/** Report an error (stderr line, JSON on stdout with --json); returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const m = toManifoldError(err);
  info(`manifold: error: ${m.message}`);
  const errno = err instanceof SysError ? err.errno : errnoForCode(m.code);
  logError(m.code, m.message, errno);
  notifyError(errno, `error: ${m.message}`);
  const log = (err as { log?: string }).log;
  if (log && process.env.MANIFOLD_DEBUG) info(log);
  if (process.env.MANIFOLD_DEBUG && err instanceof Error) info(err.stack ?? '');
  if (json) outJson({ error: { code: m.code, message: m.message, ...(m.details ? { details: m.details } : {}) } });
  return m.exitCode;
}
