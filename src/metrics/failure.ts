/**
 * Why a scrape could not read the state, as an HTTP status and a
 * `reason` label of manifold_collection_errors_total.
 */
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';

/** Values of the `reason` label of manifold_collection_errors_total. */
export const COLLECTION_ERROR_REASONS = ['not_loaded', 'stale_state', 'lock_timeout', 'permission', 'incompatible', 'other'] as const;

/** One of {@link COLLECTION_ERROR_REASONS}. */
export type CollectionErrorReason = (typeof COLLECTION_ERROR_REASONS)[number];

/** A classified scrape failure. */
export interface ScrapeFailure {
  /** 503 when the state is absent or busy (try again later), 500 otherwise. */
  status: 500 | 503;
  reason: CollectionErrorReason;
  /** Stable error code (ERR_…). */
  code: string;
  message: string;
}

/** Classify an error thrown while reading the state. */
export function classifyFailure(err: unknown): ScrapeFailure {
  if (err instanceof ManifoldError) {
    switch (err.code) {
      case 'ERR_NOT_LOADED':
        return { status: 503, reason: 'not_loaded', code: err.code, message: err.message };
      case 'ERR_STALE_STATE':
        return { status: 503, reason: 'stale_state', code: err.code, message: err.message };
      case 'ERR_LOCK_TIMEOUT':
        return { status: 503, reason: 'lock_timeout', code: err.code, message: err.message };
      case 'ERR_PERMISSION':
        return { status: 500, reason: 'permission', code: err.code, message: err.message };
      case 'ERR_INCOMPATIBLE':
        return { status: 500, reason: 'incompatible', code: err.code, message: err.message };
      default:
        return { status: 500, reason: 'other', code: err.code, message: err.message };
    }
  }
  if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
    return { status: 500, reason: 'permission', code: 'ERR_PERMISSION', message: err.message };
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && (e.code === 'EACCES' || e.code === 'EPERM')) {
    return { status: 500, reason: 'permission', code: 'ERR_PERMISSION', message: e.message };
  }
  return { status: 500, reason: 'other', code: 'ERR_SYSTEM', message: e?.message ?? String(err) };
}
