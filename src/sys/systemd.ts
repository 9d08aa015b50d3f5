/**
 * libsystemd (`libsystemd.so.0`) through koffi: sd_notify, sd_notify_barrier and
 * sd_journal_sendv.
 *
 * The library is opened lazily and optionally: when it is missing every function
 * here returns `null` ("unavailable") instead of throwing, and importing this
 * module never loads anything.
 */
import * as fs from 'node:fs';
import { koffi, openLib } from './ffi.js';

/** Where journald listens for native protocol datagrams. */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

interface SdFns {
  notify: (unsetEnvironment: number, state: string) => number;
  notifyBarrier: (unsetEnvironment: number, timeoutUsec: bigint) => number;
  journalSendv: (iov: Buffer, n: number) => number;
}

let fns: SdFns | null | undefined;

function sd(): SdFns | null {
  if (fns !== undefined) return fns;
  try {
    const lib = openLib('libsystemd.so.0', true);
    fns = lib
      ? {
          notify: lib.func('int sd_notify(int unset_environment, const char *state)') as SdFns['notify'],
          notifyBarrier: lib.func('int sd_notify_barrier(int unset_environment, uint64_t timeout)') as SdFns['notifyBarrier'],
          journalSendv: lib.func('int sd_journal_sendv(const uint8_t *iov, int n)') as SdFns['journalSendv'],
        }
      : null;
  } catch {
    /* koffi itself missing or a symbol absent (libsystemd < 246 lacks sd_notify_barrier) */
    fns = null;
  }
  return fns;
}

/** True when libsystemd.so.0 (with the functions used here) could be loaded. */
export function libsystemdAvailable(): boolean {
  return sd() !== null;
}

/**
 * True when journald's native socket exists. sd_journal_sendv returns 0 even
 * when nobody listens, so check this before relying on the journal.
 */
export function journalSocketExists(socketPath: string = JOURNAL_SOCKET): boolean {
  try {
    return fs.statSync(socketPath).isSocket();
  } catch {
    return false;
  }
}

/**
 * sd_notify(3): send `state` (newline-separated `KEY=value` assignments) to
 * $NOTIFY_SOCKET. Returns >0 when sent, 0 when $NOTIFY_SOCKET is unset,
 * -errno on failure, null when libsystemd is unavailable.
 */
export function sdNotify(state: string, unsetEnvironment = false): number | null {
  const f = sd();
  return f ? f.notify(unsetEnvironment ? 1 : 0, state) : null;
}

/**
 * sd_notify_barrier(3): wait until the service manager has processed every
 * notification sent so far (so a short-lived process's STATUS=/READY= are
 * attributed to its unit before it exits). Returns >= 0 on success (0 also
 * when $NOTIFY_SOCKET is unset), -errno (e.g. -ETIMEDOUT) on failure, null
 * when libsystemd is unavailable.
 */
export function sdNotifyBarrier(timeoutUsec: number | bigint, unsetEnvironment = false): number | null {
  const f = sd();
  return f ? f.notifyBarrier(unsetEnvironment ? 1 : 0, BigInt(timeoutUsec)) : null;
}

/**
 * sd_journal_sendv(3): write one journal entry made of `KEY=value` items
 * (binary-safe; values may contain newlines). Returns 0 on success — also
 * when journald is not running, see {@link journalSocketExists} — -errno on
 * failure, null when libsystemd is unavailable.
 */
export function sdJournalSendv(items: ReadonlyArray<string | Buffer>): number | null {
  const f = sd();
  if (!f) return null;
  if (items.length === 0) return -22; /* EINVAL, as libsystemd would say */
  const k = koffi();
  const ptrSize = k.sizeof('void *');
  const entry = ptrSize + k.sizeof('size_t');
  /* The iovecs hold raw addresses: `pinned` keeps the Buffers alive during the call. */
  const data = items.map((i) => (typeof i === 'string' ? Buffer.from(i, 'utf8') : i));
  const iov = Buffer.alloc(entry * data.length);
  data.forEach((buf, i) => {
    k.encode(iov, i * entry, 'void *', buf.length ? k.address(buf) : null);
    k.encode(iov, i * entry + ptrSize, 'size_t', buf.length);
  });
  pinned = data;
  try {
    return f.journalSendv(iov, data.length);
  } finally {
    pinned = undefined;
  }
}

/** The Buffers an iovec array points at, referenced for the duration of the call. */
let pinned: Buffer[] | undefined;
