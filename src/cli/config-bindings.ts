/**
 * Bindings from the manifold config files, for `apply --config`, and the
 * `verify` command.
 */
import type { Argv } from 'yargs';
import { configBindings, configError, formatProblem, loadConfig, verifyConfig, type ConfigProblem } from '../config/index.js';
import type { EntryInput } from '../ops/binding-set.js';
import { emitEvent, Priority } from '../log/events.js';
import { info, out, outJson } from './output.js';
import type { GlobalArgs } from './context.js';
import { commandHelp } from './help.js';

/**
 * The Bind= lines of all config files as apply specs. With `skipInvalid`,
 * files with problems are left out (each problem is logged as an error
 * event); otherwise any problem refuses the whole configuration.
 */
export function configSpecs(skipInvalid: boolean): (EntryInput & { source: string })[] {
  const { units, problems } = loadConfig();
  if (problems.length > 0) {
    if (!skipInvalid) throw configError(problems);
    for (const p of problems) {
      const text = formatProblem(p);
      emitEvent('error', Priority.err, `config: ${text} (file skipped)`, { CODE: 'ERR_INVALID_CONFIG', CONFIG_FILE: p.file, CONFIG_LINE: p.line });
      info(`manifold: error: ${text} (file skipped)`);
    }
  }
  return configBindings(units).map((b) => ({ label: b.label, protocol: b.protocol, prefix: b.prefix, port: b.port, source: b.source }));
}

/** Register `verify`. */
export function verifyCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'verify [files..]',
    'Check config files strictly, together (all files in the config directories when none are given)',
    (a) =>
      commandHelp(a.positional('files', { type: 'string', array: true, describe: 'config files to check together' }), [
        ['verify', 'every file of /etc/manifold, /run/manifold and /usr/lib/manifold'],
        ['verify ./web.conf ./dns.conf', 'new files, checked together before installing them'],
      ]),
    (argv) => {
      const args = argv as unknown as GlobalArgs & { files?: string[] };
      const files = args.files && args.files.length > 0 ? args.files : undefined;
      const problems: ConfigProblem[] = verifyConfig(files);
      const error = problems.length > 0 ? configError(problems) : null;
      // One JSON document: the result, with the error of a failed check in it.
      if (args.json) outJson({ ok: error === null, problems, ...(error ? { error: { code: error.code, message: error.message } } : {}) });
      else for (const p of problems) out(formatProblem(p));
      if (error) throw error;
      if (!args.json) info('manifold: configuration is valid');
    },
  );
}
