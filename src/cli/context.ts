/**
 * Global options shared by every command.
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { setDefaultEventFields } from '../log/journal.js';
import { defaultLockTimeoutMs } from '../state/lock.js';
import { refuseNetnsExecBpffs } from '../ops/netns-exec.js';
import type { OpenOptions } from '../state/state.js';
import type { Target } from '../state/paths.js';

/** Parsed global options. */
export interface GlobalArgs {
  netns: string;
  bpffs: string;
  json: boolean;
  /** Seconds, as given (a string: yargs' number parsing adds up a repeated option whose last value is 1). */
  'lock-timeout'?: string | undefined;
}

/** Longest lock wait, in seconds. */
const MAX_LOCK_TIMEOUT_S = 3600;

/**
 * Seconds from 0 to 3600 in plain decimal ("10", "0.5") as milliseconds, or
 * null. No exponents, hex, signs or blanks.
 */
export function parseLockTimeout(text: string): number | null {
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(text)) return null;
  const s = Number(text);
  return s <= MAX_LOCK_TIMEOUT_S ? Math.round(s * 1000) : null;
}

function lockTimeoutMs(args: GlobalArgs): number {
  const t = args['lock-timeout'];
  if (t !== undefined) {
    const ms = parseLockTimeout(String(t));
    if (ms === null) throw new ManifoldError('ERR_USAGE', `invalid --lock-timeout ${JSON.stringify(String(t))}: expected seconds from 0 to ${MAX_LOCK_TIMEOUT_S}`);
    return ms;
  }
  const env = process.env.MANIFOLD_LOCK_TIMEOUT;
  if (env !== undefined && env !== '') {
    const ms = parseLockTimeout(env);
    if (ms === null) throw new ManifoldError('ERR_INVALID_ENV', `invalid MANIFOLD_LOCK_TIMEOUT ${JSON.stringify(env)}: expected seconds from 0 to ${MAX_LOCK_TIMEOUT_S}`);
  }
  return defaultLockTimeoutMs();
}

/**
 * Target and lock timeout from the global options. Refuses a bpffs under
 * the private /sys of `ip netns exec` (src/ops/netns-exec.ts).
 */
export function targetOf(args: GlobalArgs): Target & { lockTimeoutMs: number } {
  const timeoutMs = lockTimeoutMs(args);
  refuseNetnsExecBpffs(args.bpffs);
  try {
    setDefaultEventFields({ NETNS: Number(fs.statSync(args.netns).ino) });
  } catch {
    /* reported by the command when it resolves the target */
  }
  return { netns: args.netns, bpffs: args.bpffs, lockTimeoutMs: timeoutMs };
}

/** Options to open the state for reading or writing. */
export function openOptions(args: GlobalArgs, write: boolean): OpenOptions {
  return { ...targetOf(args), write };
}
