/**
 * Events as journal entries: one entry per event through sd_journal_sendv, or,
 * when libsystemd is missing but stderr is connected to journald,
 * `<N>`-prefixed lines on stderr (sd-daemon(3) convention).
 */
import { EventIds, type EventFields, type EventKind, type EventSink } from './events.js';
import { sdJournalSendv } from '../sys/systemd.js';
import { escapeControls } from '../core/escape.js';
import { put } from './stdio.js';

/** SYSLOG_IDENTIFIER of every entry (`journalctl -t manifold`). */
export const SYSLOG_IDENTIFIER = 'manifold';
/** Prefix of the event's own fields (`LABEL` → `MANIFOLD_LABEL`). */
export const FIELD_PREFIX = 'MANIFOLD_';
/** journald rejects field names longer than this. */
const MAX_FIELD_NAME = 64;

/** A syslog priority clamped to 0 (emerg) … 7 (debug); non-numbers become 6 (info). */
export function clampPriority(priority: number): number {
  return Number.isFinite(priority) ? Math.min(7, Math.max(0, Math.trunc(priority))) : 6;
}

/**
 * Journal field name for an event field: upper-cased, characters outside
 * [A-Z0-9_] replaced by `_`, prefixed with `MANIFOLD_`. Null when nothing
 * usable is left or the name would be too long.
 */
export function journalFieldName(name: string): string | null {
  const body = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_').replace(/^_+/, '');
  if (!body) return null;
  const full = `${FIELD_PREFIX}${body}`;
  return full.length <= MAX_FIELD_NAME ? full : null;
}

/**
 * The `KEY=value` items of one journal entry: MESSAGE (control characters
 * escaped but TAB and LF, see src/core/escape.ts), MESSAGE_ID, PRIORITY,
 * SYSLOG_IDENTIFIER, MANIFOLD_EVENT, then every non-null field of `fields` as
 * `MANIFOLD_<NAME>` (in insertion order; on a name clash the first one wins).
 * `extra` holds standard journal fields added as they are (e.g. `ERRNO`).
 */
export function journalFields(
  kind: EventKind,
  priority: number,
  message: string,
  fields: EventFields = {},
  extra: Readonly<Record<string, string | number>> = {},
): string[] {
  const items = [
    `MESSAGE=${escapeControls(message, '\t\n')}`,
    `MESSAGE_ID=${EventIds[kind]}`,
    `PRIORITY=${clampPriority(priority)}`,
    `SYSLOG_IDENTIFIER=${SYSLOG_IDENTIFIER}`,
    `${FIELD_PREFIX}EVENT=${kind}`,
  ];
  const seen = new Set([`${FIELD_PREFIX}EVENT`]);
  for (const [name, value] of Object.entries(fields)) {
    if (value === null || value === undefined) continue;
    const key = journalFieldName(name);
    if (!key || seen.has(key)) continue;
    seen.add(key);
    if (Array.isArray(value)) for (const v of value as readonly string[]) items.push(`${key}=${v}`);
    else items.push(`${key}=${String(value)}`);
  }
  for (const [key, value] of Object.entries(extra)) {
    if (/^[A-Z][A-Z0-9_]{0,63}$/.test(key)) items.push(`${key}=${String(value)}`);
  }
  return items;
}

/**
 * An event as stderr text for journald's stream protocol: every line of the
 * message, escaped, prefixed with `<priority>` so that journald keeps the priority.
 */
export function prefixedStderrLines(priority: number, message: string): string {
  const p = clampPriority(priority);
  return `${escapeControls(message, '\t\n').split('\n').map((line) => `<${p}>${line}`).join('\n')}\n`;
}

/** Fields added to every journal entry unless the event gives them (see {@link setDefaultEventFields}). */
let defaults: EventFields = {};

/**
 * Fields added to every later event unless the event sets them itself, e.g.
 * `{ NETNS: <inode of the namespace acted on> }` once the CLI knows it.
 */
export function setDefaultEventFields(fields: EventFields): void {
  defaults = { ...fields };
}

/** Why the last journal write failed (-errno), for diagnostics; 0 when none did. */
let lastError = 0;

/** -errno of the last failed sd_journal_sendv (0 if none failed). */
export function lastJournalError(): number {
  return lastError;
}

/**
 * A sink writing each event as one journal entry. Never throws; a failed
 * write is remembered in {@link lastJournalError}.
 */
export const journalSink: EventSink = (kind, priority, message, fields) => {
  const errno = fields.ERRNO;
  const extra: Record<string, string | number> = {};
  if (typeof errno === 'number' && Number.isInteger(errno) && errno > 0) extra.ERRNO = errno;
  const ret = sdJournalSendv(journalFields(kind, priority, message, { ...defaults, ...fields }, extra));
  if (ret !== null && ret < 0) lastError = ret;
};

/** A sink writing `<N>message` lines on stderr (for journald's stdout/stderr stream). */
export const prefixedStderrSink: EventSink = (_kind, priority, message) => {
  put(2, prefixedStderrLines(priority, message));
};
