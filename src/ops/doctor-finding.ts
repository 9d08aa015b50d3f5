/**
 * The findings of `manifold doctor` (src/ops/doctor.ts): what one looks
 * like, how severities compare, and what the checks are given.
 */
import type { ResolvedTarget } from '../state/paths.js';

/** How bad a finding is, from harmless to broken. */
export type Severity = 'ok' | 'info' | 'warning' | 'error';

/** Severities in order. */
export const SEVERITIES: readonly Severity[] = ['ok', 'info', 'warning', 'error'];

/** One finding. */
export interface Finding {
  /** Stable identifier ("kernel.sk_lookup", "netns.other_sk_lookup"), documented in manifold(1). */
  id: string;
  severity: Severity;
  /** What was found, in words. */
  message: string;
  /** What to do about it (absent when nothing is to be done). */
  hint?: string;
  /** Machine-readable facts (JSON only). */
  details?: Record<string, unknown>;
}

/** What doctor looks at. */
export interface DoctorOptions {
  netns: string;
  bpffs: string;
  /** Root of the file system the systemd files are looked for in ("/"). */
  root: string;
}

/** A finding constructor for the check modules. */
export function finding(id: string, severity: Severity, message: string, hint?: string, details?: Record<string, unknown>): Finding {
  return { id, severity, message, ...(hint === undefined ? {} : { hint }), ...(details === undefined ? {} : { details }) };
}

/** The worse of two severities. */
export function worse(a: Severity, b: Severity): Severity {
  return SEVERITIES.indexOf(a) >= SEVERITIES.indexOf(b) ? a : b;
}

/** What every check is given: the options and what was resolved from them once. */
export interface DoctorContext {
  opts: DoctorOptions;
  /** The namespace and state directory, or null when the bpffs is unusable. */
  target: ResolvedTarget | null;
  /** Why the bpffs is unusable (target is null), or null. */
  bpffsError: string | null;
  /** Inode of the network namespace checked. */
  netnsIno: number;
  /** It is the caller's own network namespace. */
  ownNetns: boolean;
  /** NAME when running inside `ip netns exec NAME` (src/ops/netns-exec.ts). */
  netnsExec: string | null;
}
