/**
 * How every command's help reads: its own options first ("Options:"), then
 * the options every command takes ("Global options:"), then its
 * `Examples:`. Command builders end with {@link commandHelp}.
 */
import type { Argv } from 'yargs';

/** Options every command takes (declared global in src/cli/main.ts). */
export const GLOBAL_OPTIONS = ['netns', 'bpffs', 'json', 'lock-timeout', 'help', 'version'] as const;

/** Heading of the global options' group. */
export const GLOBAL_GROUP = 'Global options:';

/** One example: the command line (after "manifold ") and what it does. */
export type Example = readonly [command: string, description: string];

/**
 * Put the command's own options before the global ones and add its
 * examples. yargs lists groups in the order they are created and shows the
 * global options' group (kept from the top level) after the command's own;
 * creating "Options:" here, before any option is rendered, puts the
 * command's ungrouped options first.
 */
export function commandHelp<T>(y: Argv<T>, examples: readonly Example[]): Argv<T> {
  let out = y.group([], 'Options:');
  for (const [cmd, what] of examples) out = out.example(`$0 ${cmd}`, what);
  return out;
}

/** Examples of `manifold --help`. */
const TOP_EXAMPLES: readonly Example[] = [
  ['load', 'attach the dispatcher to this network namespace'],
  ['bind web tcp 192.0.2.0/24 80', 'steer port 80 of a /24 to label web'],
  ['register-pid "$(pidof nginx)" web tcp 127.0.0.1 8080', 'give label web the socket nginx listens on'],
  ['status', 'bindings, sockets, counters'],
  ['doctor', 'check the kernel, the host and the state'],
  ['CMD --help', "a command's arguments, options and examples"],
];

/** Group the global options at the top level and add its examples (src/cli/main.ts). */
export function globalHelp<T>(y: Argv<T>): Argv<T> {
  let out = y.group([...GLOBAL_OPTIONS], GLOBAL_GROUP);
  for (const [cmd, what] of TOP_EXAMPLES) out = out.example(`$0 ${cmd}`, what);
  return out;
}
