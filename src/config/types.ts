/**
 * Types shared by the config parser, the loader and the generator.
 *
 * Kept free of heavy imports: the systemd generator loads this module.
 */
import type { Prefix, Protocol } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import { escapeControls } from '../core/escape.js';

/** One problem found in a config file. `line` is 1-based; 0 means the whole file. */
export interface ConfigProblem {
  file: string;
  line: number;
  message: string;
  /**
   * Set only on the last problem of a file that had more than
   * MAX_PROBLEMS_PER_FILE (src/config/problems.ts): this entry stands for
   * that many problems that were not recorded ("… and N more problems").
   */
  omitted?: number;
}

/** How many problems `problems` describe: an entry with `omitted` counts as that many. */
export function countProblems(problems: readonly ConfigProblem[]): number {
  let n = 0;
  for (const p of problems) n += p.omitted ?? 1;
  return n;
}

/** How a failed `register-pid` affects the service (Registration=). */
export type Registration = 'required' | 'optional';

/** A Bind= line: one or two protocols, a masked prefix and a port or range (0 = all ports). */
export interface BindConfig {
  protocols: Protocol[];
  prefix: Prefix;
  first: number;
  last: number;
  line: number;
}

/** A Listen= line: the socket a service listens on. */
export interface ListenConfig {
  protocols: Protocol[];
  /** An exact address (prefix length 32 or 128). */
  address: Prefix;
  port: number;
  line: number;
}

/** A Target= line: the address (and fixed port, 0 = the connection's own) serving the label's bindings of its family. */
export interface TargetConfig {
  /** An exact, specific address (prefix length 32 or 128). */
  address: Prefix;
  port: number;
  line: number;
}

/** A unit name with the line it came from. */
export interface UnitRef {
  unit: string;
  line: number;
}

/** One validated config file: a label, its bindings and where its sockets come from. */
export interface LabelConfig {
  /** The label (Name=, or the file name without .conf). */
  name: string;
  /** Path of the file that defines it. */
  file: string;
  /** Line of Name= (0 when the name comes from the file name). */
  nameLine: number;
  binds: BindConfig[];
  /** Socket units whose fds are registered under the label (Socket=). */
  sockets: UnitRef[];
  /** Service whose listening sockets are registered after start-up (Service=). */
  service: UnitRef | null;
  listens: ListenConfig[];
  registration: Registration;
  /** Address targets (Target=), at most one per family; never with Socket= or Service=. */
  targets: TargetConfig[];
}

/**
 * "file:line: message" (or "file: message" for a whole-file problem), on one
 * line: control characters in the file name or message are escaped.
 */
export function formatProblem(p: ConfigProblem): string {
  return escapeControls(p.line > 0 ? `${p.file}:${p.line}: ${p.message}` : `${p.file}: ${p.message}`);
}

/**
 * An ERR_INVALID_CONFIG error listing every problem recorded (details.problems
 * holds them): a head line counting all problems (those left out of a file
 * too, see {@link countProblems}), then one escaped line per problem. The CLI
 * relies on this being the only multi-line error message (src/cli/output.ts).
 */
export function configError(problems: readonly ConfigProblem[]): ManifoldError {
  const n = countProblems(problems);
  const head = `invalid configuration (${n} problem${n === 1 ? '' : 's'})`;
  const lines = problems.map((p) => `  ${formatProblem(p)}`);
  return new ManifoldError('ERR_INVALID_CONFIG', [head + ':', ...lines].join('\n'), { problems: problems.map((p) => ({ ...p })) });
}
