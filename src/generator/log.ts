/**
 * Logging for the generator: its stdout and stderr go to /dev/null during
 * boot, so lines go to /dev/kmsg as "<PRI>manifold-generator[PID]: message"
 * (PRI = LOG_DAEMON | level, as systemd writes them). If /dev/kmsg cannot be
 * opened the lines are dropped. Tests and --dry-run log to stderr instead.
 * Control characters in messages are escaped (src/core/escape.ts).
 *
 * The kernel refuses (EINVAL) a write to /dev/kmsg longer than its record
 * limit: 1024 bytes minus a 32- or 48-byte prefix reserve before Linux 6.7
 * (LOG_LINE_MAX), 1024 since (PRINTKRB_RECORD_MAX). So every record, prefix
 * and newline included, is cut to {@link MAX_RECORD_BYTES} bytes of UTF-8 at
 * a code point boundary, "…" marking the cut; a record refused all the same
 * is retried shorter, and only that record is lost if it never fits.
 */
import { fs } from '../config/node.js';
import { escapeControls } from '../core/escape.js';

/** syslog levels used here. */
export const Level = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
const LOG_DAEMON = 3 << 3;

/** Longest record written, in bytes: what every kernel's /dev/kmsg accepts (1024 - 48). */
export const MAX_RECORD_BYTES = 976;
/** A record refused with EINVAL is retried at half its length, down to this many bytes. */
const MIN_RETRY_BYTES = 64;
const ELLIPSIS = '…';
const ELLIPSIS_BYTES = 3;

/** Bytes of one code point in UTF-8 (a lone surrogate is written as U+FFFD, 3 bytes). */
function utf8Length(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8, at a code point boundary,
 * ending in "…" when cut. Time is O(min(text length, maxBytes)).
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  // Every code unit is at least one byte: more than maxBytes units never fit.
  if (text.length <= maxBytes && Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const budget = maxBytes - ELLIPSIS_BYTES;
  if (budget < 0) return '';
  let bytes = 0;
  let end = 0;
  while (end < text.length) {
    const cp = text.codePointAt(end) as number;
    const n = utf8Length(cp);
    if (bytes + n > budget) break;
    bytes += n;
    end += cp > 0xffff ? 2 : 1;
  }
  return `${text.slice(0, end)}${ELLIPSIS}`;
}

/** How the log reaches /dev/kmsg (replaceable for tests). */
export interface KmsgDevice {
  /** Open the device for writing; returns a file descriptor. */
  open(): number;
  /** Write one record; throws an error with `code` ("EINVAL": record refused). */
  write(fd: number, record: string): void;
  /** Close the descriptor. */
  close(fd: number): void;
}

const DEV_KMSG: KmsgDevice = {
  // No O_CREAT: never create a regular file called /dev/kmsg (libuv adds O_CLOEXEC).
  open: () => fs.openSync('/dev/kmsg', fs.constants.O_WRONLY | fs.constants.O_NOCTTY),
  write: (fd, record) => void fs.writeSync(fd, record),
  close: (fd) => fs.closeSync(fd),
};

/** A sink for generator log lines. */
export class GeneratorLog {
  private fd: number | null = null;
  private failed = false;
  /** Lines logged, for tests. */
  count = 0;

  constructor(
    private readonly sink: 'kmsg' | 'stderr',
    private readonly ident = 'manifold-generator',
    private readonly kmsg: KmsgDevice = DEV_KMSG,
  ) {}

  /** Log one line at `level`. */
  log(level: number, message: string): void {
    // Cut before escaping (escaping only lengthens): bounded time for any message.
    const raw = message.length > MAX_RECORD_BYTES ? message.slice(0, MAX_RECORD_BYTES) : message;
    const text = escapeControls(raw); // a line break too: a record is one line
    const prefix = `<${LOG_DAEMON | level}>${this.ident}[${process.pid}]: `;
    // The text's share of a record: what the prefix and the newline leave.
    let budget = Math.max(0, MAX_RECORD_BYTES - Buffer.byteLength(prefix, 'utf8') - 1);
    this.count++;
    if (this.sink === 'stderr') {
      try {
        fs.writeSync(2, `${prefix}${truncateUtf8(text, budget)}\n`);
      } catch {
        // nowhere to report it
      }
      return;
    }
    if (this.failed) return;
    try {
      this.fd ??= this.kmsg.open();
    } catch {
      this.failed = true;
      return;
    }
    for (;;) {
      const cut = truncateUtf8(text, budget);
      try {
        this.kmsg.write(this.fd, `${prefix}${cut}\n`);
        return;
      } catch (err) {
        const bytes = Buffer.byteLength(cut, 'utf8');
        // Refused as too long (a kernel with a smaller limit): retry shorter;
        // only this record is lost if even the shortest is refused.
        if ((err as NodeJS.ErrnoException).code === 'EINVAL') {
          if (bytes <= MIN_RETRY_BYTES) return;
          budget = Math.max(MIN_RETRY_BYTES, bytes >> 1);
          continue;
        }
        this.failed = true;
        return;
      }
    }
  }

  /** Close /dev/kmsg if it was opened. */
  close(): void {
    if (this.fd !== null) {
      try {
        this.kmsg.close(this.fd);
      } catch {
        // nothing to do
      }
      this.fd = null;
    }
  }
}
