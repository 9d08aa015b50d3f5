/**
 * Progress of long commands for a person at a terminal: one status line on
 * stderr, rewritten in place at each phase and erased at the end. Nothing
 * is written when stderr is not a terminal (logs and pipes stay clean) or
 * when the work is small.
 */
import { escapeControls } from '../core/escape.js';
import { stderrIsTerminal } from './tty.js';

/** Carriage return + erase to the end of the line. */
const CLEAR = '\r\x1b[K';

/** A progress line; a no-op unless enabled. */
export class Progress {
  private shown = false;
  private readonly started = Date.now();

  private constructor(private readonly enabled: boolean) {}

  /** Progress that shows only when stderr is a terminal and `large` (the work is worth reporting). */
  static forTerminal(large: boolean): Progress {
    return new Progress(large && stderrIsTerminal());
  }

  /** Show the current phase ("checking 200000 bindings"). */
  phase(text: string): void {
    if (!this.enabled) return;
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`${CLEAR}${escapeControls(`manifold: ${text}… (${s} s)`, '')}`);
    this.shown = true;
  }

  /** Erase the line (before the command's own output). */
  done(): void {
    if (this.shown) process.stderr.write(CLEAR);
    this.shown = false;
  }
}
