/**
 * Errors as events: the CLI's error path calls {@link logError} so that every
 * failure is one journal entry with a stable code.
 */
import { emitEvent, Priority } from './events.js';

/**
 * Emit an `error` event (priority err) with MANIFOLD_CODE=`code` (a stable
 * code such as `ERR_PERMISSION`) and, when given, the standard journal
 * field ERRNO=`errno` (also as MANIFOLD_ERRNO).
 */
export function logError(code: string, message: string, errno?: number): void {
  emitEvent('error', Priority.err, message, { CODE: code, ERRNO: errno });
}
