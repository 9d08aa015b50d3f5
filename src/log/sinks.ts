/**
 * Where events go: a plain line on stderr is printed by the commands
 * themselves; this installs the journal sink when running under systemd.
 */
import { addEventSink } from './events.js';

let installed = false;

/** Install the default sinks once. */
export function installLogSinks(): void {
  if (installed) return;
  installed = true;
  addEventSink(() => {
    /* journal sink added with the systemd integration */
  });
}
