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
} as const;

/** An event kind. */
export type EventKind = keyof typeof EventIds;

/** syslog priorities. */
export const Priority = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

/** Extra journal fields (upper-case names, MANIFOLD_ prefix added). */
export type EventFields = Record<string, string | number | bigint | null | undefined>;

/** A sink receives every event. */
export type EventSink = (kind: EventKind, priority: number, message: string, fields: EventFields) => void;

const sinks: EventSink[] = [];

/** Add a sink (the CLI adds the journal and stderr sinks). */
export function addEventSink(sink: EventSink): void {
  sinks.push(sink);
}

/** Emit one event to every sink. */
export function emitEvent(kind: EventKind, priority: number, message: string, fields: EventFields = {}): void {
  for (const sink of sinks) {
    try {
      sink(kind, priority, message, fields);
    } catch {
      /* logging never breaks a command */
    }
  }
}
