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

/** What `apply --config` takes from the config files. */
export interface ConfigSource {
  /** The Bind= lines of the valid files as apply specs. */
  specs: (EntryInput & { source: string })[];
  /** Labels the valid files define (also those without Bind= lines). */
  labels: Set<string>;
  /** Problems of the files left out (only with skipInvalid; otherwise they throw). */
  problems: ConfigProblem[];
}

/**
 * The configuration for `apply --config`. Any problem refuses the whole
 * configuration (ERR_INVALID_CONFIG), unless `skipInvalid`: then the files
 * with problems are left out and their problems returned.
 */
export function configSource(skipInvalid: boolean): ConfigSource {
  const { units, problems } = loadConfig();
  if (problems.length > 0 && !skipInvalid) throw configError(problems);
  const specs = configBindings(units).map((b) => ({ label: b.label, protocol: b.protocol, prefix: b.prefix, port: b.port, source: b.source }));
  return { specs, labels: new Set(units.map((u) => u.name)), problems };
}

/**
 * Report the problems of files `apply --config --skip-invalid` left out: one
 * line each on stderr and, unless `dryRun`, one error event each (the
 * journal at priority err, with the file and line).
 */
export function reportLeftOut(problems: readonly ConfigProblem[], dryRun: boolean): void {
  for (const p of problems) {
    const text = formatProblem(p);
    if (!dryRun) emitEvent('error', Priority.err, `config: ${text} (file skipped)`, { CODE: 'ERR_INVALID_CONFIG', CONFIG_FILE: p.file, CONFIG_LINE: p.line });
    info(`manifold: error: ${text} (file skipped)`);
  }
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
