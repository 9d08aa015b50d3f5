/**
 * Structured events: every state change is one event with a fixed
 * MESSAGE_ID per kind. Sinks: the journal (when available), and a plain
 * line on stderr for people at a terminal.
 */

/** Kinds of events and their journal MESSAGE_IDs (fixed forever). */
export const EventIds = {
  load: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a01',
  unload: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a02',
  upgrade: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a03',
  bind: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a04',
  unbind: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a05',
  apply: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a06',
  register: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a07',
  unregister: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a08',
  error: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a09',
  metrics: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a0a',
  'discovery-enable': '5b1d3c0a8f2e4e61a3c27d9b0e6f4a20',
  'discovery-disable': '5b1d3c0a8f2e4e61a3c27d9b0e6f4a21',
  'discovery-register': '5b1d3c0a8f2e4e61a3c27d9b0e6f4a22',
  target: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a23',
  untarget: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a24',
  policy: '5b1d3c0a8f2e4e61a3c27d9b0e6f4a25',
} as const;

/** An event kind. */
export type EventKind = keyof typeof EventIds;

/** syslog priorities. */
export const Priority = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

/** A journal field's value (null/undefined: left out; a list: the field once per item, as journald allows). */
export type FieldValue = string | number | bigint | readonly string[] | null | undefined;

/**
 * The journal fields each kind of event may carry (names without the
 * MANIFOLD_ prefix). The one list: emitEvent's type is derived from it and
 * test/unit/journal-fields-doc.test.ts checks docs/journal.md against it.
 * NETNS is added to every event once the target is known (defaults).
 */
export const EventFieldNames = {
  load: ['NETNS', 'STATE_DIR'],
  unload: ['STATE_DIR'],
  upgrade: ['STATE_DIR', 'VERSION', 'ABI', 'NETNS'],
  bind: ['LABEL', 'PROTOCOL', 'PREFIX', 'PORT'],
  unbind: ['LABEL', 'PROTOCOL', 'PREFIX', 'PORT'],
  apply: ['ADDED', 'REMOVED', 'RELABELLED', 'TOTAL', 'SOURCE', 'KEPT_BY_HAND', 'KEPT_CONFIGURED', 'LEFT_OUT', 'LABEL', 'LABELS_OMITTED'],
  register: ['LABEL', 'PROTOCOL', 'DOMAIN', 'SOCKET_COOKIE', 'ACTION'],
  unregister: ['LABEL', 'PROTOCOL', 'DOMAIN', 'SOCKET_COOKIE'],
  error: ['CODE', 'ERRNO', 'CONFIG_FILE', 'CONFIG_LINE'],
  metrics: ['ERROR_CODE', 'REASON', 'ADDRESSES'],
  'discovery-enable': ['CGROUP', 'CGROUP_ID', 'STATE_DIR', 'SEED_METHOD', 'SEEDED_TCP', 'SEEDED_UDP'],
  'discovery-disable': ['CGROUP', 'STATE_DIR'],
  'discovery-register': ['PROTOCOL', 'ADDRESS', 'PORT', 'SOCKET_COOKIE', 'PID', 'NETNS_COOKIE'],
  target: ['LABEL', 'DOMAIN', 'PROTOCOL', 'TARGET_ADDRESS', 'TARGET_PORT', 'ACTION', 'PREVIOUS'],
  untarget: ['LABEL', 'DOMAIN', 'PROTOCOL', 'TARGET_ADDRESS', 'TARGET_PORT', 'ACTION', 'PREVIOUS'],
  policy: ['POLICY', 'VALUE'],
} as const satisfies Record<EventKind, readonly string[]>;

/** Fields added to every event (see setDefaultEventFields in journal.ts). */
export const DefaultFieldNames = ['NETNS'] as const;

/** The fields an event of kind K may carry. */
export type FieldsOf<K extends EventKind> = Partial<Record<(typeof EventFieldNames)[K][number], FieldValue>>;

/** Extra journal fields of any event (upper-case names, MANIFOLD_ prefix added), as sinks see them. */
export type EventFields = Record<string, FieldValue>;

/** A sink receives every event. */
export type EventSink = (kind: EventKind, priority: number, message: string, fields: EventFields) => void;

const sinks: EventSink[] = [];

/** Add a sink (the CLI adds the journal and stderr sinks). */
export function addEventSink(sink: EventSink): void {
  sinks.push(sink);
}

/** Emit one event to every sink. */
export function emitEvent<K extends EventKind>(kind: K, priority: number, message: string, fields: FieldsOf<K> = {}): void {
  for (const sink of sinks) {
    try {
      sink(kind, priority, message, fields as EventFields);
    } catch {
      /* logging never breaks a command */
    }
  }
}
