/**
 * The manifold command line (yargs). Argument order follows tubular's
 * tubectl so its users can switch.
 */
import { isatty } from 'node:tty';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Exit } from '../errors.js';
import { installLogSinks } from '../log/sinks.js';
import { ManifoldError } from '../errors.js';
import { flushOut, reportError } from './output.js';
import { argumentRules, jsonRequested, protectDash } from './args.js';
import type { GlobalArgs } from './context.js';
import { loadCommand, unloadCommand, upgradeCommand, versionCommand } from './commands/lifecycle.js';
import { bindCommand, unbindCommand } from './commands/bind.js';
import { bindingsCommand } from './commands/list.js';
import { applyCommand } from './commands/apply.js';
import { lookupCommand } from './commands/lookup.js';
import { statusCommand } from './commands/status.js';
import { registerCommand, registerPidCommand, unregisterCommand } from './commands/registration.js';
import { verifyCommand } from './commands/verify.js';
import { metricsCommand } from './commands/metrics.js';
import { discoveryCommand } from './commands/discovery.js';
import { policyCommand, targetCommand, untargetCommand } from './commands/target.js';
import { manifoldVersion } from '../version.js';
import { globalHelp } from './help.js';
import { explainUsage, longArgumentError, singleDashError, yargsCommandTable, type CommandInfo } from './usage.js';
import { isCompletionRequest } from './completion.js';
import { answerCompletion, completionCommand } from './commands/completion.js';
import { doctorCommand } from './commands/doctor.js';

/** What the parser shows that depends on the environment (see {@link cliParser}). */
export interface ParserEnvironment {
  /** Terminal width; help is wrapped at min(100, columns). */
  columns: number | undefined;
  /** What --version prints. */
  version: string;
}

/**
 * The yargs parser of the CLI for `argv`. It reads nothing from the
 * environment but `env` (by default this process's stdout width and
 * manifold's version), so the start-up snapshot's warm-up
 * (src/entry/warmup.ts) can run it at build time without capturing either.
 * `argv` is kept by reference (argumentRules reads it when the parse runs).
 */
export function cliParser(argv: string[], env: ParserEnvironment = { columns: process.stdout.columns, version: manifoldVersion() }): Argv<GlobalArgs> {
  // duplicate-arguments-array: variadic positionals need it; argumentRules
  // makes the last of a repeated option win (src/cli/args.ts).
  let y = yargs(argv)
    .scriptName('manifold')
    .usage('$0 <command> [arguments]\n\nSteer subnets and port ranges to sockets with the eBPF sk_lookup hook.')
    .option('netns', { type: 'string', default: '/proc/self/ns/net', describe: 'network namespace to act on', global: true })
    .option('bpffs', { type: 'string', default: '/sys/fs/bpf', describe: 'bpffs mount holding the state', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document', global: true })
    .option('lock-timeout', { type: 'string', describe: "seconds to wait for the writers' lock (default 10)", global: true })
    .parserConfiguration({ 'duplicate-arguments-array': true })
    .middleware(argumentRules(argv) as never, true)
    .strict()
    .demandCommand(1, 'missing command')
    .recommendCommands()
    .version(env.version)
    .help()
    .alias('help', 'h')
    .wrap(Math.min(100, env.columns || 100)) as unknown as Argv<GlobalArgs>;
  y = globalHelp(y)
    .command(loadCommand)
    .command(unloadCommand)
    .command(upgradeCommand)
    .command(versionCommand)
    .command(bindCommand)
    .command(unbindCommand)
    .command(bindingsCommand)
    .command(applyCommand)
    .command(statusCommand)
    .command(registerCommand)
    .command(registerPidCommand)
    .command(unregisterCommand)
    .command(lookupCommand)
    .command(targetCommand)
    .command(untargetCommand)
    .command(policyCommand);
  y = y.command(verifyCommand).command(metricsCommand);
  y = y.command(discoveryCommand);
  y = y.command(doctorCommand).command(completionCommand);
  return y;
}

/** What --version would print if nothing asked for it (never shown: see parserFor). */
const PREPARED_VERSION = '0.0.0-unread';

/** A parser built ahead of time by {@link prepareParser}, used by the next {@link main}, the argument list it was built with, and its command table. */
let prepared: { parser: Argv<GlobalArgs>; argv: string[]; commands: CommandInfo[] } | undefined;

/**
 * Build the parser before the command line is known: the single executable
 * does this while its start-up snapshot is built (src/entry/sea.ts), so a
 * run only sets what depends on the process (arguments, version, width) and
 * parses.
 */
export function prepareParser(): void {
  const argv: string[] = [];
  const parser = cliParser(argv, { columns: undefined, version: PREPARED_VERSION });
  prepared = { parser, argv, commands: yargsCommandTable(parser) };
}

/**
 * The parser for this process: the prepared one completed, else a new one.
 * The version is read only when --version asks for it (the `version`
 * command reads it itself), and stdout's width only when it is a terminal
 * (else help is 100 columns wide, as before; this spares creating the
 * stdout stream of a command that prints nothing there).
 */
function parserFor(argv: string[]): { parser: Argv<GlobalArgs>; commands: CommandInfo[] } {
  const wantsVersion = argv.some((a) => a === '--version' || a.startsWith('--version='));
  const env: ParserEnvironment = { columns: isatty(1) ? process.stdout.columns : undefined, version: wantsVersion ? manifoldVersion() : PREPARED_VERSION };
  const p = prepared;
  prepared = undefined;
  if (!p) {
    const parser = cliParser(argv, env);
    return { parser, commands: yargsCommandTable(parser) };
  }
  // The prepared parser's argument list (argumentRules reads it) becomes this one.
  p.argv.push(...argv);
  // Declaring --version again, then --help, keeps both where they were in the help text.
  return { parser: (wantsVersion ? p.parser.version(env.version).help() : p.parser).wrap(Math.min(100, env.columns || 100)), commands: p.commands };
}

/**
 * yargs renders a command's whole help after its handler starts, in case an
 * asynchronous handler fails and help should be shown then. The CLI never
 * shows help after a failure (its fail handler prints one line), so that
 * rendering is skipped. `--help` is rendered when asked for, as always.
 */
function skipHelpCache(y: Argv<GlobalArgs>): void {
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  const json = jsonRequested(argv);
  installLogSinks();
  try {
    const long = longArgumentError(argv);
    if (long) throw new ManifoldError('ERR_USAGE', long);
    if (isCompletionRequest(argv)) {
      // A new parser, not the prepared one: yargs reads $SHELL (set by answerCompletion) when a parser is created.
      await answerCompletion(argv, () => cliParser(argv, { columns: undefined, version: manifoldVersion() }));
      flushOut();
      return Exit.OK;
    }
    const dash = singleDashError(argv);
    if (dash) throw new ManifoldError('ERR_USAGE', dash);
  } catch (err) {
    flushOut();
    return reportError(err, json);
  }
  let usageMessage: string | null = null;
  // The command table (for explaining usage errors) is read before the parse: running a command changes it.
  const { parser: ready, commands } = parserFor(argv);
  const parser = ready.fail((msg, err) => {
    if (err) throw err;
    usageMessage = msg;
    throw new UsageFailure(msg);
  });
  skipHelpCache(parser);
  try {
    await parser.parseAsync(protectDash(argv));
    flushOut();
    return process.exitCode === undefined ? Exit.OK : Number(process.exitCode);
  } catch (err) {
    flushOut();
    if (err instanceof UsageFailure || usageMessage !== null) {
      const message = explainUsage(usageMessage ?? (err as Error).message, argv, commands);
      return reportError(new ManifoldError('ERR_USAGE', message), json);
    }
    return reportError(err, json);
  }
}

class UsageFailure extends Error {}
