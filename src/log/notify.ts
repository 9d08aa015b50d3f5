/**
 * Readiness and status for commands run by systemd units (sd_notify(3)).
 *
 * Every function does nothing when $NOTIFY_SOCKET is unset, and nothing when
 * libsystemd.so.0 is missing: speaking the protocol without it needs a unix
 * datagram socket, which Node cannot create without a native addon. Each
 * message is followed by sd_notify_barrier (1 s), so a oneshot helper's
 * STATUS= is processed — and attributed to its unit — before it exits.
 * The environment is kept (children may notify too). The unit must allow
 * the sender: `NotifyAccess=main` for the main process (the default only for
 * Type=notify), `NotifyAccess=all` for ExecStartPost= helpers.
 */
import { sdNotify, sdNotifyBarrier } from '../sys/systemd.js';
import { escapeControls } from '../core/escape.js';

/** How long to wait for the manager to acknowledge a message. */
const BARRIER_USEC = 1_000_000;

/** Outcome of a notification: sent, skipped (no $NOTIFY_SOCKET / no libsystemd), or failed with -errno. */
export type NotifyResult = 'sent' | 'no-socket' | 'unavailable' | { errno: number };

/**
 * STATUS= text on one line (a newline would start a new assignment), other
 * control characters escaped (`systemctl status` prints it on a terminal).
 */
export function statusText(text: string): string {
  return escapeControls(text.replace(/[\r\n]+/g, ' ').trim(), '\t');
}

/**
 * The sd_notify state string for assignments (pure): `KEY=value` lines in
 * order, values of STATUS= flattened to one line, null/undefined skipped.
 */
export function notifyState(assignments: Readonly<Record<string, string | number | null | undefined>>): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(assignments)) {
    if (value === null || value === undefined) continue;
    lines.push(`${key}=${key === 'STATUS' ? statusText(String(value)) : String(value).replace(/[\r\n]+/g, ' ')}`);
  }
  return lines.join('\n');
}

/** Send assignments and wait (≤ 1 s) for the manager to process them. Never throws. */
export function notify(assignments: Readonly<Record<string, string | number | null | undefined>>): NotifyResult {
  if (!process.env.NOTIFY_SOCKET) return 'no-socket';
  try {
    const ret = sdNotify(notifyState(assignments));
    if (ret === null) return 'unavailable';
    if (ret < 0) return { errno: -ret };
    if (ret === 0) return 'no-socket';
    const b = sdNotifyBarrier(BARRIER_USEC);
    return b !== null && b < 0 ? { errno: -b } : 'sent';
  } catch {
    return 'unavailable';
  }
}

/** `STATUS=<text>` (shown by `systemctl status`, `StatusText=`). */
export function notifyStatus(text: string): NotifyResult {
  return notify({ STATUS: text });
}

/** `READY=1`, with `STATUS=<status>` when given: a Type=notify unit becomes active. */
export function notifyReady(status?: string): NotifyResult {
  return notify({ READY: 1, STATUS: status });
}

/** `STATUS=<text>` and `ERRNO=<errno>` (→ `StatusErrno=`) for a failure. */
export function notifyError(errno: number, text: string): NotifyResult {
  return notify({ STATUS: text, ERRNO: Math.abs(Math.trunc(errno)) });
}
