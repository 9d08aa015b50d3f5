/**
 * Logging for the generator: its stdout and stderr go to /dev/null during
 * boot, so lines go to /dev/kmsg as "<PRI>manifold-generator[PID]: message"
 * (PRI = LOG_DAEMON | level, as systemd writes them). If /dev/kmsg cannot be
 * opened the lines are dropped. Tests and --dry-run log to stderr instead.
 * Control characters in messages are escaped (src/core/escape.ts).
 */
import { fs } from '../config/node.js';
import { escapeControls } from '../core/escape.js';

/** syslog levels used here. */
export const Level = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
const LOG_DAEMON = 3 << 3;
const MAX_MESSAGE = 900;

/** A sink for generator log lines. */
export class GeneratorLog {
  private fd: number | null = null;
  private failed = false;
  /** Lines written, for tests. */
  count = 0;

  constructor(
    private readonly sink: 'kmsg' | 'stderr',
    private readonly ident = 'manifold-generator',
  ) {}

  /** Log one line at `level`. */
  log(level: number, message: string): void {
    let text = escapeControls(message.replace(/[\r\n]+/g, ' '));
    if (text.length > MAX_MESSAGE) text = `${text.slice(0, MAX_MESSAGE)}…`;
    const line = `<${LOG_DAEMON | level}>${this.ident}[${process.pid}]: ${text}\n`;
    this.count++;
    try {
      if (this.sink === 'stderr') {
        fs.writeSync(2, line);
        return;
      }
      if (this.failed) return;
      if (this.fd === null) {
        // No O_CREAT: never create a regular file called /dev/kmsg (libuv adds O_CLOEXEC).
        const c = fs.constants;
        this.fd = fs.openSync('/dev/kmsg', c.O_WRONLY | c.O_NOCTTY);
      }
      fs.writeSync(this.fd, line);
    } catch {
      this.failed = true;
    }
  }

  /** Close /dev/kmsg if it was opened. */
  close(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // nothing to do
      }
      this.fd = null;
    }
  }
}
