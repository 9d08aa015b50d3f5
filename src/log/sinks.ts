/**
 * Where events go. The commands print their own plain lines for people at a
 * terminal; this adds the machine-readable copy:
 *
 * - `journal`: one structured entry per event through libsystemd's
 *   sd_journal_sendv, whenever journald's socket exists (also at a terminal:
 *   these are audit entries);
 * - `stderr-prefix`: when that is impossible (libsystemd missing) but stderr
 *   is connected to journald ($JOURNAL_STREAM matches fd 2), `<N>message`
 *   lines on stderr so journald keeps the priority;
 * - `none`: otherwise, or when $MANIFOLD_JOURNAL is `0`, `off`, `no` or `false`.
 */
import * as fs from 'node:fs';
import { addEventSink, type EventSink } from './events.js';
import { journalSink, prefixedStderrSink } from './journal.js';
import { journalSocketExists, libsystemdAvailable } from '../sys/systemd.js';

/** Which sink {@link installLogSinks} installed. */
export type LogTarget = 'journal' | 'stderr-prefix' | 'none';

/** What the choice of {@link LogTarget} depends on. */
export interface LogEnvironment {
  /** $MANIFOLD_JOURNAL turns the journal copy off. */
  disabled: boolean;
  /** libsystemd.so.0 could be loaded (probed only when the journal socket exists). */
  libsystemd: boolean;
  /** /run/systemd/journal/socket exists. */
  journalSocket: boolean;
  /** stderr is journald's stream ($JOURNAL_STREAM names fd 2's device:inode). */
  stderrIsJournal: boolean;
}

/** The sink for an environment (pure; see the module comment). */
export function chooseLogTarget(env: LogEnvironment): LogTarget {
  if (env.disabled) return 'none';
  if (env.libsystemd && env.journalSocket) return 'journal';
  if (env.stderrIsJournal) return 'stderr-prefix';
  return 'none';
}

/**
 * True when stderr is connected to journald: $JOURNAL_STREAM is
 * `<device>:<inode>` of fd 2 (systemd.exec(5)), not merely inherited.
 */
export function stderrIsJournal(journalStream: string | undefined = process.env.JOURNAL_STREAM): boolean {
  const m = /^(\d+):(\d+)$/.exec(journalStream ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(2, { bigint: true });
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

/** True when $MANIFOLD_JOURNAL asks for no journal copy. */
export function journalDisabled(value: string | undefined = process.env.MANIFOLD_JOURNAL): boolean {
  return /^(0|off|no|false)$/i.test(value ?? '');
}

/** Probe this process's environment (loads koffi + libsystemd only when journald's socket exists). */
export function probeLogEnvironment(): LogEnvironment {
  const disabled = journalDisabled();
  const journalSocket = !disabled && journalSocketExists();
  return {
    disabled,
    journalSocket,
    libsystemd: journalSocket && libsystemdAvailable(),
    stderrIsJournal: !disabled && stderrIsJournal(),
  };
}

let installed = false;
let given: LogEnvironment | undefined;
let target: LogTarget | undefined;

/**
 * The sink in use, decided on first use (so that a command which emits no
 * event never loads koffi/libsystemd) from the environment given to
 * {@link installLogSinks} or probed with {@link probeLogEnvironment}.
 */
export function logTarget(): LogTarget {
  target ??= chooseLogTarget(given ?? probeLogEnvironment());
  return target;
}

const dispatch: EventSink = (kind, priority, message, fields) => {
  const t = logTarget();
  if (t === 'journal') journalSink(kind, priority, message, fields);
  else if (t === 'stderr-prefix') prefixedStderrSink(kind, priority, message, fields);
};

/**
 * Install the event sink once (the CLI calls this at start). Cheap: the
 * target is chosen at the first event; pass `env` to override the probe.
 */
export function installLogSinks(env?: LogEnvironment): void {
  if (installed) return;
  installed = true;
  given = env;
  addEventSink(dispatch);
}
