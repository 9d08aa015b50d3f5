/**
 * Errors as events: the CLI's error path calls {@link logError} so that every
 * failure is one journal entry with a stable code.
 */
import { emitEvent, Priority } from './events.js';

/**
 * Emit an `error` event with MANIFOLD_CODE=`code` (a stable code such as
 * `ERR_PERMISSION`) and, when given, the standard journal field
 * ERRNO=`errno` (also as MANIFOLD_ERRNO). Priority err, except for usage
 * errors (`usage`: bad arguments, nothing was tried or changed), which are
 * notice so that `journalctl -p err` shows real failures only.
 */
export function logError(code: string, message: string, errno?: number, usage = false): void {
  emitEvent('error', usage ? Priority.notice : Priority.err, message, { CODE: code, ERRNO: errno });
}
