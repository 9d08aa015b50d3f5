/**
 * Output conventions: data on stdout, information on stderr, one JSON
 * document with --json.
 *
 * Every human-readable line goes through {@link out} or {@link info}, which
 * escape control characters (src/core/escape.ts; TAB is kept): one call is
 * one line, so a newline inside a value cannot forge another line. JSON
 * documents are escaped by JSON.stringify plus escapeJson.
 */
import { errnoForCode, Exit, ManifoldError, toManifoldError } from '../errors.js';
import { escapeControls, escapeJson } from '../core/escape.js';
import { SysError } from '../sys/errno.js';
import { logError } from '../log/error.js';
import { put, putStream, writeFailure } from '../log/stdio.js';
import { notifyError } from '../log/notify.js';

const pending: string[] = [];

/** Print one line of data (stdout), escaped. Lines are buffered and written in large chunks. */
export function out(line: string): void {
  pending.push(escapeControls(line, '\t'));
  if (pending.length >= 8192) flushOut();
}

/** Print text without a line end (buffered with the lines). */
export function outRaw(text: string): void {
  if (pending.length > 0) flushOut();
  put(1, text);
}

/** Write bytes the caller made safe (e.g. streamed JSON) to stdout, after buffered lines. */
export function outBytes(bytes: Uint8Array): void {
  if (pending.length > 0) flushOut();
  // Large documents go through the stream, which keeps what a lagging pipe reader has not taken.
  putStream(1, bytes);
}

/** Write buffered stdout lines (the CLI calls this before it exits). */
export function flushOut(): void {
  if (pending.length === 0) return;
  const text = `${pending.join('\n')}\n`;
  pending.length = 0;
  put(1, text);
}

/** Print one line of information (stderr), escaped. */
export function info(line: string): void {
  put(2, `${escapeControls(line, '\t')}\n`);
}

/** `--json` prints exactly one document: once one is out, an error adds none (reportError). */
let jsonPrinted = false;

/** Print one JSON document (stdout). */
export function outJson(doc: unknown): void {
  flushOut();
  jsonPrinted = true;
  put(1, `${escapeJson(JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2))}\n`);
}

/**
 * The lines of an error message, each escaped. Messages are one line; the
 * exceptions are lists built line by line from quoted values: configError
 * (ERR_INVALID_CONFIG) and errors marked `details.multiline` (problems of an
 * apply file, a verifier log).
 */
export function messageLines(m: ManifoldError): string[] {
  const lines = m.code === 'ERR_INVALID_CONFIG' || m.details?.multiline === true ? m.message.split('\n') : [m.message];
  return lines.map((l) => escapeControls(l, '\t'));
}

/**
 * Report an error (stderr line, JSON on stdout with --json, a journal
 * entry: priority err, notice for usage errors); returns the exit code.
 */
export function reportError(err: unknown, json: boolean): number {
  const m = toManifoldError(err);
  const lines = messageLines(m);
  lines.forEach((l, i) => info(i === 0 ? `manifold: error: ${l}` : l));
  const text = lines.join('\n');
  const errno = err instanceof SysError ? err.errno : errnoForCode(m.code);
  logError(m.code, text, errno, m.exitCode === Exit.USAGE);
  notifyError(errno, `error: ${text}`);
  const log = (err as { log?: string }).log;
  if (log && process.env.MANIFOLD_DEBUG) for (const l of log.split('\n')) info(l);
  if (process.env.MANIFOLD_DEBUG && err instanceof Error) for (const l of (err.stack ?? '').split('\n')) info(l);
  if (json && !jsonPrinted) outJson({ error: { code: m.code, message: m.message, ...(m.details ? { details: m.details } : {}) } });
  return m.exitCode;
}

/**
 * The exit status of a command that ended with `code`, once its output is flushed: what
 * became of standard output decides (src/log/stdio.ts records failed writes, never throws).
 * - Standard output could not be written: the caller did not get the data it asked for, so
 *   the status is 1 (the command's own status when that already reports a failure). When the
 *   reader went away (EPIPE: `manifold status | head -1`) nothing is said, as Unix tools
 *   killed by SIGPIPE say nothing; any other error (ENOSPC, EIO) is reported on stderr as
 *   "manifold: error: cannot write the output: <reason>" (ERR_SYSTEM).
 * - Standard error could not be written (`2>/dev/full`): the status is left alone. stderr
 *   carries information and errors about the command, not its result: a change the command
 *   made is made (its status says so), and a failure already has its own status.
 */
export function settleOutput(code: number): number {
  const failed = writeFailure(1);
  if (!failed) return code;
  if (failed.code !== 'EPIPE') {
    const err = new ManifoldError('ERR_SYSTEM', `cannot write the output: ${failed.reason}`, { errno: failed.code });
    const status = reportError(err, false);
    return code === Exit.OK ? status : code;
  }
  return code === Exit.OK ? Exit.FAILED : code;
}
