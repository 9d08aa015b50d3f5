/**
 * Rules for command-line arguments on top of yargs (docs/manifold.1.md,
 * "Arguments"):
 *
 * - a variadic positional (`verify [files..]`) takes every value given:
 *   yargs runs with `duplicate-arguments-array`, which it needs for that;
 * - a repeated option takes its last value (`--netns A --netns B` acts on
 *   B): {@link lastValueWins} collapses the arrays yargs then builds for
 *   options that are not arrays;
 * - an option spelled like a positional argument of the command
 *   (`bind web tcp 192.0.2.1 80 --label x`, `status --label x`) is a usage
 *   error: yargs would silently use one of the two values;
 * - `--json` is known before parsing (for usage errors) by
 *   {@link jsonRequested}, with the same last-one-wins rule;
 * - a lone `-` (standard input: `apply -`) is an argument like any other:
 *   yargs would read it as an option without a name and pass "" or true
 *   (yargs/yargs-parser#381), so {@link protectDash} hides it from yargs and
 *   argumentRules puts it back;
 * - `--` ends the options: what follows is positional arguments, even when
 *   it starts with `-` (yargs would set them aside and fill no positional
 *   argument from them), so {@link protectDash} drops the `--` and hides
 *   each such argument from yargs the same way;
 * - an option that takes a value and is given none (`--netns` last, or
 *   followed by another option) is a usage error: yargs would use the
 *   default — the host's namespace for an empty `$NS` in a script;
 * - a flag given a value (`--dry-run=1`) takes only `true` or `false`:
 *   yargs would read any other value as false.
 */
import { ManifoldError } from '../errors.js';

/** Internal yargs interface used to find the running command's definition (see {@link positionalsOfRunningCommand}). */
interface YargsContext {
  getInternalMethods?: () => { getContext?: () => { fullCommands?: unknown } };
  getOptions?: () => { array?: unknown; string?: unknown; boolean?: unknown };
}

/** Names of the positional arguments in a yargs command string: "bind <label> [port..]" → ["label", "port"]. */
export function positionalNames(command: string): string[] {
  const names: string[] = [];
  for (const m of command.matchAll(/[<[]([^\]>]+)[\]>]/g)) {
    for (const n of (m[1] as string).replace(/\.\.\.?$/, '').split('|')) if (n) names.push(n);
  }
  return names;
}

/**
 * Positional arguments a command also takes as options: `bindings`' filters
 * were options (`--protocol`, `--prefix`, `--port`) before they became
 * positional, in tubectl's form; scripts written for either keep working.
 */
const POSITIONALS_ALSO_OPTIONS: Readonly<Record<string, readonly string[]>> = { bindings: ['protocol', 'prefix', 'port'] };

/**
 * The running command's positional arguments: those that are only
 * arguments, and those that may also be given as options.
 */
function positionalsOfRunningCommand(y: YargsContext): { only: string[]; alsoOptions: string[] } {
  const out = { only: [] as string[], alsoOptions: [] as string[] };
  const full = y.getInternalMethods?.().getContext?.().fullCommands;
  if (!Array.isArray(full)) return out;
  for (const c of full) {
    if (typeof c !== 'string') continue;
    const also = POSITIONALS_ALSO_OPTIONS[c.split(' ')[0] ?? ''] ?? [];
    for (const n of positionalNames(c)) (also.includes(n) ? out.alsoOptions : out.only).push(n);
  }
  return out;
}

/**
 * The raw option tokens before `--`, as option names ("--no-json" → "json",
 * "--port=80" → "port"), with the value given after "=" and the token that
 * follows (the value of "--port 80").
 */
function optionNames(raw: readonly string[]): Array<{ token: string; name: string; negated: boolean; value: string | null; next: string | null }> {
  const out: Array<{ token: string; name: string; negated: boolean; value: string | null; next: string | null }> = [];
  for (let i = 0; i < raw.length; i++) {
    const token = raw[i] as string;
    if (token === '--') break;
    if (!token.startsWith('--') || token.length === 2) continue;
    const eq = token.indexOf('=');
    let name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    const negated = name.startsWith('no-');
    if (negated) name = name.slice(3);
    out.push({ token, name, negated, value: eq < 0 ? null : token.slice(eq + 1), next: raw[i + 1] ?? null });
  }
  return out;
}

/** The value of the last `--name VALUE` or `--name=VALUE` before `--`, or null. */
function lastOptionValue(raw: readonly string[], name: string): string | null {
  let last: string | null = null;
  for (const o of optionNames(raw)) if (!o.negated && sameOption(name, o.name)) last = o.value ?? o.next;
  return last;
}

/** yargs' camel-case alias of a dashed option name ("lock-timeout" → "lockTimeout"). */
export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** "lock-timeout" and "lockTimeout" are the same option for yargs. */
function sameOption(a: string, b: string): boolean {
  return camelCase(a) === camelCase(b);
}

/** Marks an argument yargs must not read as an option: no command-line argument can contain NUL. */
const HIDDEN = '\u0000';

/**
 * The argument list for yargs: each lone "-", and each argument after `--`
 * that starts with "-", behind a marker that {@link argumentRules} takes
 * off again; the `--` itself is dropped (everything after it is a
 * positional argument).
 */
export function protectDash(argv: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (!rest && a === '--') {
      rest = true;
      continue;
    }
    out.push(a === '-' || (rest && a.startsWith('-')) ? HIDDEN + a : a);
  }
  return out;
}

function unhide(v: unknown): unknown {
  return typeof v === 'string' && v.startsWith(HIDDEN) ? v.slice(1) : v;
}

function restoreDash(argv: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(argv)) {
    if (Array.isArray(value)) argv[key] = value.map(unhide);
    else argv[key] = unhide(value);
  }
}

/** Looks like an option to yargs (not a lone "-", not a negative number). */
function optionLike(token: string): boolean {
  return token.startsWith('-') && token !== '-' && !/^-\d/.test(token);
}

/** Options that need a value and got none, and flags given a value other than true or false. */
function checkValues(raw: readonly string[], declared: { string?: unknown; boolean?: unknown } | undefined): void {
  const strings = Array.isArray(declared?.string) ? (declared.string as string[]) : [];
  const booleans = Array.isArray(declared?.boolean) ? (declared.boolean as string[]) : [];
  for (let i = 0; i < raw.length; i++) {
    const token = raw[i] as string;
    if (token === '--') return;
    if (!token.startsWith('--') || token.length === 2) continue;
    const eq = token.indexOf('=');
    const name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    if (eq < 0 && strings.some((o) => sameOption(o, name))) {
      const next = raw[i + 1];
      if (next === undefined || next === '--' || optionLike(next)) {
        throw new ManifoldError('ERR_USAGE', `${token} needs a value${next === undefined ? '' : ` (it is followed by ${next})`}`);
      }
    }
    if (eq >= 0 && booleans.some((o) => sameOption(o, name))) {
      const value = token.slice(eq + 1);
      if (value !== 'true' && value !== 'false') {
        throw new ManifoldError('ERR_USAGE', `${token.slice(0, eq)} is a flag: give it alone, or =true or =false`);
      }
    }
  }
}

/**
 * A yargs middleware (run before validation): repeated options keep their
 * last value, and options named like one of the running command's
 * positional arguments are refused. `raw` is the argument list being parsed.
 */
export function argumentRules(raw: readonly string[]): (argv: Record<string, unknown>, y: unknown) => void {
  return (argv, y) => {
    const ctx = y as YargsContext;
    const { only: positionals, alsoOptions } = positionalsOfRunningCommand(ctx);
    for (const o of optionNames(raw)) {
      const clash = positionals.find((p) => sameOption(p, o.name));
      if (clash !== undefined) {
        throw new ManifoldError('ERR_USAGE', `${o.token.split('=')[0]} is not an option of this command: give the ${clash} as an argument`);
      }
    }
    // Given both ways (`bindings tcp --protocol udp`), yargs silently keeps the argument: a
    // value that is not the option's last one means both were given, and differ.
    for (const name of alsoOptions) {
      const last = lastOptionValue(raw, name);
      const value = argv[name];
      if (last !== null && value !== undefined && String(Array.isArray(value) ? value[value.length - 1] : value) !== last) {
        throw new ManifoldError('ERR_USAGE', `the ${name.toUpperCase()} argument and --${name} were both given, and differ: give one`);
      }
    }
    const options = ctx.getOptions?.();
    checkValues(raw, options as { string?: unknown; boolean?: unknown } | undefined);
    const declared = options?.array;
    lastValueWins(argv, Array.isArray(declared) ? (declared as string[]) : []);
    restoreDash(argv);
  };
}

/** Replace the array yargs builds for a repeated non-array option by its last element. */
export function lastValueWins(argv: Record<string, unknown>, arrayOptions: readonly string[]): void {
  for (const [key, value] of Object.entries(argv)) {
    if (key === '_' || key === '$0' || key === '--' || !Array.isArray(value)) continue;
    if (arrayOptions.some((a) => sameOption(a, key))) continue;
    argv[key] = value[value.length - 1];
  }
}

/** Whether `--json` is in effect (the last of --json, --json=BOOL, --no-json before `--`). */
export function jsonRequested(raw: readonly string[]): boolean {
  let json = false;
  for (const o of optionNames(raw)) {
    if (o.name !== 'json') continue;
    json = !o.negated && (o.value === null || o.value === 'true'); // as yargs reads a boolean
  }
  return json;
}
