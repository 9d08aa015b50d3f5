/**
 * Bounds on what is said about one config file: at most
 * {@link MAX_PROBLEMS_PER_FILE} problems are recorded per file, the rest only
 * counted (one summary problem says how many: {@link omittedProblem}), and a
 * value echoed in a message is cut ({@link quote}, {@link clip}). A file of
 * a million bad lines, or nine files conflicting with another in every line,
 * then costs bounded memory and gives messages of bounded length.
 *
 * Kept free of heavy imports: the systemd generator loads this module.
 */
import { quote } from '../core/net.js';
import type { ConfigProblem } from './types.js';

export { quote };

/** Most problems recorded per config file; the rest are counted. */
export const MAX_PROBLEMS_PER_FILE = 100;

/** Longest text {@link clip} leaves as it is (the length {@link quote} cuts at). */
const CLIP_AT = 80;

/**
 * Text echoed without quotes (a section or key name) cut like {@link quote}
 * cuts a value: at most 80 characters, "…" marking the cut.
 */
export function clip(text: string): string {
  return text.length > CLIP_AT ? `${text.slice(0, CLIP_AT - 3)}…` : text;
}

/**
 * The problem standing for the `omitted` problems of `file` that were not
 * recorded: "… and N more problems", with `omitted` set so that JSON output
 * and {@link countProblems} can tell exactly how many.
 */
export function omittedProblem(file: string, omitted: number): ConfigProblem {
  const s = omitted === 1 ? '' : 's';
  return { file, line: 0, message: `… and ${omitted} more problem${s} (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`, omitted };
}

/**
 * The first `max` problems added, in line order (problems of the same line
 * in the order they were added), and how many more there were. Memory stays
 * O(max) however many problems are added; time is O(n log max).
 */
export class FirstProblems<P extends { line: number }> {
  private kept: P[] = [];
  private dropped = 0;

  constructor(private readonly max: number = MAX_PROBLEMS_PER_FILE) {}

  /** Record one problem (it may be dropped, and then counted, later). */
  add(p: P): void {
    this.kept.push(p);
    if (this.kept.length >= 2 * this.max) this.trim();
  }

  /** Count `n` problems dropped before they reached this list. */
  addOmitted(n: number): void {
    this.dropped += n;
  }

  /** Every problem added or counted. */
  get total(): number {
    return this.kept.length + this.dropped;
  }

  /** The first problems in line order, and how many were left out. */
  result(): { problems: P[]; omitted: number } {
    this.trim();
    return { problems: this.kept.slice(), omitted: this.dropped };
  }

  private trim(): void {
    // Array.prototype.sort is stable: problems of one line keep their order.
    this.kept.sort((a, b) => a.line - b.line);
    if (this.kept.length > this.max) {
      this.dropped += this.kept.length - this.max;
      this.kept.length = this.max;
    }
  }
}
