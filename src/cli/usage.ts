/**
 * Usage errors in manifold's words: yargs' messages ("Not enough
 * non-option arguments: got 1, need at least 4") rewritten to name what is
 * missing or unknown and where to read more (`manifold CMD --help`), unknown
 * commands with the closest match, and tubectl-style single-dash options
 * (`-netns`) answered with their spelling here (`--netns`). Pure functions
 * of the message, the argument list and the command table, so they are
 * unit-tested without running yargs.
 */
import { camelCase, positionalNames } from './args.js';

/** A command as the usage messages need it. */
export interface CommandInfo {
  /** "bind". */
  name: string;
  /** Other names ("load-bindings"). */
  aliases: readonly string[];
  /** Positional argument names in order. */
  positionals: readonly string[];
  /** The last positional takes any number of words (`verify [files..]`). */
  variadic?: boolean;
}

/** Global options that take a value (so the token after them is not the command). */
const VALUE_OPTIONS = new Set(['netns', 'bpffs', 'lock-timeout']);

/** A command table from yargs command strings: [command, aliases]. */
export function commandTable(entries: ReadonlyArray<readonly [string, readonly string[]]>): CommandInfo[] {
  return entries.map(([cmd, aliases]) => ({
    name: cmd.split(/\s+/)[0] ?? cmd,
    aliases: aliases.map((a) => a.split(/\s+/)[0] ?? a),
    positionals: positionalNames(cmd),
    variadic: /\.\.\.?[\]>]\s*$/.test(cmd),
  }));
}

/** yargs' internal usage instance: the registered commands as [command, description, isDefault, aliases]. */
interface UsageInternals {
  getInternalMethods?: () => { getUsageInstance?: () => { getCommands?: () => unknown } };
}

/** The command table of a yargs parser (read from its usage instance; empty when yargs changes its internals). */
export function yargsCommandTable(y: unknown): CommandInfo[] {
  const list = (y as UsageInternals).getInternalMethods?.().getUsageInstance?.().getCommands?.();
  if (!Array.isArray(list)) return [];
  const entries: Array<[string, string[]]> = [];
  for (const e of list) {
    if (!Array.isArray(e) || typeof e[0] !== 'string') continue;
    const aliases = Array.isArray(e[3]) ? (e[3] as unknown[]).filter((a): a is string => typeof a === 'string') : [];
    entries.push([e[0], aliases]);
  }
  return commandTable(entries);
}

/** The words before `--` that are not options or values of global options. */
export function positionalWords(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i] as string;
    if (t === '--') break;
    if (t.startsWith('--')) {
      if (!t.includes('=') && VALUE_OPTIONS.has(t.slice(2))) i++;
      continue;
    }
    if (t.startsWith('-') && t.length > 1) continue;
    out.push(t);
  }
  return out;
}

/** The command named on the command line, if any. */
export function commandOf(argv: readonly string[], commands: readonly CommandInfo[]): CommandInfo | undefined {
  const first = positionalWords(argv)[0];
  if (first === undefined) return undefined;
  return commands.find((c) => c.name === first || c.aliases.includes(first));
}

/** Edit distance (insert, delete, replace, swap adjacent). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_v, i) => Array.from({ length: b.length + 1 }, (_w, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The command names closest to `word` (a prefix of it, or at most a third of its letters off), best first. */
export function closestCommands(word: string, commands: readonly CommandInfo[]): string[] {
  const names = commands.flatMap((c) => [c.name, ...c.aliases]);
  const w = word.toLowerCase();
  const prefix = names.filter((n) => w.length >= 2 && n.startsWith(w));
  if (prefix.length > 0) return prefix;
  const limit = Math.max(1, Math.floor(w.length / 3));
  const scored = names.map((n) => ({ n, d: editDistance(w, n) })).filter((s) => s.d <= limit);
  scored.sort((a, b) => a.d - b.d || a.n.localeCompare(b.n));
  const best = scored[0]?.d;
  return scored.filter((s) => s.d === best).map((s) => s.n);
}

/** "see \"manifold CMD --help\"" for the command (or the top level). */
export function helpPointer(command: CommandInfo | undefined): string {
  return `see "manifold ${command ? `${command.name} ` : ''}--help"`;
}

/** No argument manifold takes is longer (a path is at most 4095 bytes, a label 255). */
export const MAX_ARGUMENT_LENGTH = 4096;

/**
 * A usage error for an argument longer than MAX_ARGUMENT_LENGTH, before the
 * parser sees it: yargs compares an unknown command with every known one
 * character by character (seconds for the 128 KiB Linux allows), and an
 * error would echo the whole value.
 */
export function longArgumentError(argv: readonly string[]): string | null {
  const i = argv.findIndex((a) => a.length > MAX_ARGUMENT_LENGTH);
  if (i < 0) return null;
  return `argument ${i + 1} is ${(argv[i] as string).length} characters long: no manifold argument is longer than ${MAX_ARGUMENT_LENGTH}`;
}

/**
 * The first tubectl-style single-dash option before `--` (`-netns`,
 * `-bpffs=/x`) or unknown short option (`-v`), as the error to report, or
 * null. Options here are long options with two dashes; `-h` is the only
 * short one, `-` alone is an argument (standard input) and `-1` is not an
 * option (a bad port, reported as such).
 */
export function singleDashError(argv: readonly string[]): string | null {
  for (const t of argv) {
    if (t === '--') return null;
    const one = /^-([^-0-9h])$/u.exec(t);
    if (one) return `"${t}" is not an option: the only short option is -h; options are written with two dashes (see "manifold --help")`;
    const m = /^-([A-Za-z][A-Za-z0-9-]+)(=.*)?$/.exec(t);
    if (!m) continue;
    return `"${t.split('=')[0]}" is not an option: options are written with two dashes ("--${m[1]}")`;
  }
  return null;
}

function quoteList(words: readonly string[]): string {
  return words.map((w) => `"${w}"`).join(', ');
}

/**
 * The message for a yargs validation failure `msg`, given the command line
 * and the command table.
 */
export function explainUsage(msg: string, argv: readonly string[], commands: readonly CommandInfo[]): string {
  const dash = singleDashError(argv);
  if (dash) return dash;
  const cmd = commandOf(argv, commands);
  const words = positionalWords(argv);
  const pointer = helpPointer(cmd);
  if (!cmd) {
    const first = words[0];
    if (first === undefined) return `missing command (${pointer} for the list of commands)`;
    const near = closestCommands(first, commands);
    const hint = near.length > 0 ? `: did you mean ${near.map((n) => `"${n}"`).join(' or ')}?` : '';
    return `unknown command "${first}"${hint} (${pointer} for the list of commands)`;
  }
  let m = /^Not enough non-option arguments: got (\d+), need at least (\d+)/.exec(msg);
  if (m) {
    const missing = cmd.positionals.slice(Number(m[1]), Number(m[2]));
    return `missing ${missing.length === 1 ? 'argument' : 'arguments'} ${missing.map((p) => p.toUpperCase()).join(' ')} of "${cmd.name}" (${pointer})`;
  }
  m = /^Missing required arguments?: (.*)$/.exec(msg);
  if (m) {
    const names = (m[1] as string).split(', ');
    return `missing ${names.length === 1 ? 'argument' : 'arguments'} ${names.map((p) => p.toUpperCase()).join(' ')} of "${cmd.name}" (${pointer})`;
  }
  if (/^Too many non-option arguments/.test(msg)) {
    const extra = words.slice(1 + cmd.positionals.length);
    return `too many arguments for "${cmd.name}"${extra.length ? `: ${quoteList(extra)} not expected` : ''} (${pointer})`;
  }
  m = /^Unknown arguments?: (.*)$/.exec(msg);
  if (m) {
    const unknown = (m[1] as string).split(', ');
    const options = unknown.filter((u) => argv.some((a) => a === `--${u}` || a.startsWith(`--${u}=`) || a === `--no-${u}`));
    // yargs also reports an unknown --foo-bar as "fooBar" (its camel-case alias): not a second complaint.
    const camel = new Set(options.map(camelCase));
    const extra = unknown.filter((u) => !options.includes(u) && !camel.has(u));
    const parts: string[] = [];
    if (options.length) parts.push(`unknown ${options.length === 1 ? 'option' : 'options'} ${options.map((o) => `--${o}`).join(', ')} for "${cmd.name}"`);
    if (extra.length) parts.push(`unexpected ${extra.length === 1 ? 'argument' : 'arguments'} ${quoteList(extra)} for "${cmd.name}"`);
    return `${parts.join('; ')} (${pointer})`;
  }
  m = /^Invalid values?:\s*Argument: (\S+), Given: (.*), Choices: (.*)$/s.exec(msg.replace(/\n\s*/g, ' '));
  if (m) return `invalid ${(m[1] as string).toUpperCase()} ${m[2]}: expected one of ${m[3]} (${pointer})`;
  return `${msg} (${pointer})`;
}
