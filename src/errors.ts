/**
 * Errors with stable codes and exit statuses, and the one translator of
 * system errors (errno) into them, used by the CLI and the exporter.
 *
 * Every failure manifold reports carries a `code` (stable, documented in the
 * README) and maps to a process exit status. Messages name what failed and
 * why in plain words; the kernel's errno name may follow in parentheses.
 */
import { oneLine } from './core/escape.js';

/** Exit statuses of the CLI. */
export const Exit = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  NOT_LOADED: 3,
  PERMISSION: 4,
  LOCK_TIMEOUT: 5,
} as const;

/** Stable error codes and their exit statuses. */
export const ErrorCodes = {
  ERR_USAGE: Exit.USAGE,
  ERR_INVALID_LABEL: Exit.USAGE,
  ERR_INVALID_PROTOCOL: Exit.USAGE,
  ERR_INVALID_PREFIX: Exit.USAGE,
  ERR_INVALID_PORT: Exit.USAGE,
  ERR_INVALID_FILE: Exit.FAILED,
  ERR_FILE_NOT_FOUND: Exit.FAILED,
  ERR_INVALID_ENV: Exit.USAGE,
  ERR_INVALID_PID: Exit.USAGE,
  ERR_NOT_LOADED: Exit.NOT_LOADED,
  ERR_ALREADY_LOADED: Exit.FAILED,
  ERR_STALE_STATE: Exit.FAILED,
  ERR_INCOMPATIBLE: Exit.FAILED,
  ERR_PERMISSION: Exit.PERMISSION,
  ERR_LOCK_TIMEOUT: Exit.LOCK_TIMEOUT,
  ERR_BUSY: Exit.LOCK_TIMEOUT,
  ERR_NO_SPACE: Exit.FAILED,
  ERR_NOT_FOUND: Exit.FAILED,
  ERR_NO_SUCH_PROCESS: Exit.FAILED,
  ERR_NO_MATCHING_SOCKET: Exit.FAILED,
  ERR_BAD_SOCKET: Exit.FAILED,
  ERR_WRONG_NETNS: Exit.FAILED,
  ERR_NO_FDS: Exit.FAILED,
  ERR_NO_SOCKET: Exit.FAILED,
  ERR_BPF_OBJECT: Exit.FAILED,
  ERR_SYSTEM: Exit.FAILED,
  ERR_INVALID_CONFIG: Exit.FAILED,
} as const;

/** One of the stable error codes. */
export type ErrorCode = keyof typeof ErrorCodes;

/** An expected failure: a stable code, a human message and optional details. */
export class ManifoldError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ManifoldError';
    this.code = code;
    this.details = details;
  }

  /** The process exit status for this error. */
  get exitCode(): number {
    return ErrorCodes[this.code];
  }
}

/** A failed system call as src/sys reports it (SysError), recognised without importing src/sys. */
interface SysLike {
  errno: number;
  errnoName: string;
  call: string;
  message: string;
  /** libbpf's and the verifier's log, on a BPF object load failure. */
  log?: string;
}

function sysLike(err: unknown): SysLike | null {
  const e = err as Partial<SysLike> | null;
  return e && typeof e === 'object' && typeof e.errno === 'number' && typeof e.errnoName === 'string' && typeof e.call === 'string' ? (e as SysLike) : null;
}

/** Lines of a verifier log shown in an error message. */
const VERIFIER_TAIL_LINES = 12;

/**
 * Any thrown value as a ManifoldError: system errors by errno (permission,
 * no space, …), BPF load failures as ERR_BPF_OBJECT with the tail of the
 * verifier log; the original error is kept as `cause`.
 */
export function toManifoldError(err: unknown): ManifoldError {
  if (err instanceof ManifoldError) return err;
  const sys = sysLike(err);
  if (sys && sys.call === 'bpf_object') {
    const err = sys;
    const tail = (err.log ?? '').split('\n').filter((l) => l.trim() !== '').slice(-VERIFIER_TAIL_LINES);
    const perm = err.errno === 1;
    const message = perm
      ? `${err.message}: run as root (loading BPF programs needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON or root)`
      : `${oneLine(err.message)}${tail.length ? `; libbpf and the verifier said:\n  ${tail.map(oneLine).join('\n  ')}` : ''}`;
    return new ManifoldError(perm ? 'ERR_PERMISSION' : 'ERR_BPF_OBJECT', message, { errno: err.errnoName, call: err.call, multiline: !perm && tail.length > 0 }, { cause: err });
  }
  if (sys) {
    const err = sys;
    if (err.errno === 1 || err.errno === 13) {
      return new ManifoldError('ERR_PERMISSION', `${err.message}: run as root (needs CAP_BPF and CAP_NET_ADMIN)`, { errno: err.errnoName, call: err.call }, { cause: err });
    }
    if (err.errno === 28 || err.errno === 7) {
      return new ManifoldError('ERR_NO_SPACE', `${err.message}: a map of the state is full`, { errno: err.errnoName, call: err.call }, { cause: err });
    }
    return new ManifoldError('ERR_SYSTEM', err.message, { errno: err.errnoName, call: err.call }, { cause: err });
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && (e.code === 'EACCES' || e.code === 'EPERM')) {
    return new ManifoldError('ERR_PERMISSION', `permission denied: ${e.message}`, undefined, { cause: err });
  }
  if (e && typeof e.code === 'string' && e.code === 'ENOSPC') {
    return new ManifoldError('ERR_NO_SPACE', `no space left: ${e.message}`, undefined, { cause: err });
  }
  return new ManifoldError('ERR_SYSTEM', e?.message ?? String(err), undefined, { cause: err });
}

/** A failed call in words with its errno name: src/core/errno-text.ts (re-exported: most callers already import this module). */
export { fsReason } from './core/errno-text.js';

/** errno to report for a code (journal ERRNO=, sd_notify ERRNO=). */
export function errnoForCode(code: ErrorCode): number {
  const table: Partial<Record<ErrorCode, number>> = {
    ERR_PERMISSION: 1, ERR_NOT_LOADED: 2, ERR_NOT_FOUND: 2, ERR_NO_SUCH_PROCESS: 3, ERR_LOCK_TIMEOUT: 110, ERR_BUSY: 16, ERR_NO_SPACE: 28,
  };
  return table[code] ?? (ErrorCodes[code] === Exit.USAGE ? 22 : 5);
}
