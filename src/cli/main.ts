/**
 * The manifold command line (yargs). Argument order follows tubular's
 * tubectl so its users can switch.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Exit } from '../errors.js';
import { installLogSinks } from '../log/sinks.js';
import { flushOut, info, outJson, reportError } from './output.js';
import { argumentRules, jsonRequested } from './args.js';
import type { GlobalArgs } from './context.js';
import { loadCommand, unloadCommand, upgradeCommand, versionCommand } from './commands/lifecycle.js';
import { bindCommand, unbindCommand } from './commands/bind.js';
import { bindingsCommand } from './commands/list.js';
import { applyCommand } from './commands/apply.js';
import { statusCommand } from './commands/status.js';
import { registerCommand, registerPidCommand, unregisterCommand } from './commands/registration.js';
import { verifyCommand } from './config-bindings.js';
import { metricsCommands } from './commands/metrics.js';
import { discoveryCommands } from './commands/discovery.js';
import { manifoldVersion } from '../version.js';

function build(argv: string[]): Argv<GlobalArgs> {
  // duplicate-arguments-array: variadic positionals need it; argumentRules
  // makes the last of a repeated option win (src/cli/args.ts).
  let y = yargs(argv)
    .scriptName('manifold')
    .usage('$0 <command> [arguments]\n\nSteer subnets and port ranges to sockets with the eBPF sk_lookup hook.')
    .option('netns', { type: 'string', default: '/proc/self/ns/net', describe: 'network namespace to act on', global: true })
    .option('bpffs', { type: 'string', default: '/sys/fs/bpf', describe: 'bpffs mount holding the state', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document', global: true })
    .option('lock-timeout', { type: 'string', describe: 'seconds to wait for the state lock (default 10, env MANIFOLD_LOCK_TIMEOUT)', global: true })
    .parserConfiguration({ 'duplicate-arguments-array': true })
    .middleware(argumentRules(argv) as never, true)
    .strict()
    .demandCommand(1, 'give a command (see --help)')
    .recommendCommands()
    .version(manifoldVersion())
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100)) as unknown as Argv<GlobalArgs>;
  y = y
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
    .command(unregisterCommand);
  y = verifyCommand(y);
  y = metricsCommands(y);
  y = discoveryCommands(y);
  return y;
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  const json = jsonRequested(argv);
  installLogSinks();
  let usageMessage: string | null = null;
  const parser = build(argv).fail((msg, err) => {
    if (err) throw err;
    usageMessage = msg;
    throw new UsageFailure(msg);
  });
  try {
    await parser.parseAsync();
    flushOut();
    return process.exitCode === undefined ? Exit.OK : Number(process.exitCode);
  } catch (err) {
    flushOut();
    if (err instanceof UsageFailure || usageMessage !== null) {
      const message = usageMessage ?? (err as Error).message;
      info(`manifold: error: ${message}`);
      info('(run "manifold --help" for usage)');
      if (json) outJson({ error: { code: 'ERR_USAGE', message } });
      return Exit.USAGE;
    }
    return reportError(err, json);
  }
}

class UsageFailure extends Error {}
