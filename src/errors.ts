/**
 * Errors with stable codes and exit statuses.
 *
 * Every failure manifold reports carries a `code` (stable, documented in the
 * README) and maps to a process exit status. Messages name what failed and
 * why in plain words; the kernel's errno name may follow in parentheses.
 */

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
  ERR_NO_SPACE: Exit.FAILED,
  ERR_NOT_FOUND: Exit.FAILED,
  ERR_NO_SUCH_PROCESS: Exit.FAILED,
  ERR_NO_MATCHING_SOCKET: Exit.FAILED,
  ERR_BAD_SOCKET: Exit.FAILED,
  ERR_WRONG_NETNS: Exit.FAILED,
  ERR_NO_FDS: Exit.FAILED,
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

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ManifoldError';
    this.code = code;
    this.details = details;
  }

  /** The process exit status for this error. */
  get exitCode(): number {
    return ErrorCodes[this.code];
  }
}

/** Shorthand for a usage error (exit 2). */
export function usageError(code: ErrorCode, message: string): ManifoldError {
  return new ManifoldError(code, message);
}
