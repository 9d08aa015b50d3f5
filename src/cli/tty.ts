/**
 * Whether output goes to a person: stdout or stderr is a terminal. Output
 * for people (aligned tables, progress) depends on it; output to pipes and
 * files stays plain and stable for scripts.
 */
import { isatty } from 'node:tty';

/** stdout is a terminal. */
export function stdoutIsTerminal(): boolean {
  return isatty(1);
}

/** stderr is a terminal. */
export function stderrIsTerminal(): boolean {
  return isatty(2);
}
