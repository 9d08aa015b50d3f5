/**
 * Global options shared by every command.
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { setDefaultEventFields } from '../log/journal.js';
import { defaultLockTimeoutMs } from '../state/lock.js';
import type { OpenOptions } from '../state/state.js';
import type { Target } from '../state/paths.js';

/** Parsed global options. */
export interface GlobalArgs {
  netns: string;
  bpffs: string;
  json: boolean;
  'lock-timeout'?: number | undefined;
}

/** Target and lock timeout from the global options. */
export function targetOf(args: GlobalArgs): Target & { lockTimeoutMs: number } {
  const t = args['lock-timeout'];
  if (t !== undefined && (!Number.isFinite(t) || t < 0 || t > 3600)) {
    throw new ManifoldError('ERR_USAGE', `invalid --lock-timeout ${String(t)}: expected seconds from 0 to 3600`);
  }
  try {
    setDefaultEventFields({ NETNS: Number(fs.statSync(args.netns).ino) });
  } catch {
    /* reported by the command when it resolves the target */
  }
  return { netns: args.netns, bpffs: args.bpffs, lockTimeoutMs: t === undefined ? defaultLockTimeoutMs() : Math.round(t * 1000) };
}

/** Options to open the state for reading or writing. */
export function openOptions(args: GlobalArgs, write: boolean): OpenOptions {
  return { ...targetOf(args), write };
}
