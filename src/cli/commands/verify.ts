/**
 * verify: check config files strictly, together.
 */
import type { CommandModule } from 'yargs';
import { configError, formatProblem, verifyConfig, type ConfigProblem } from '../../config/index.js';
import { info, out, outJson } from '../output.js';
import type { GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

/** Arguments of verify. */
export interface VerifyArgs extends GlobalArgs {
  files?: string[] | undefined;
}

/** `manifold verify`. */
export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify [files..]',
  describe: 'Check config files strictly, together (all files in the config directories when none are given)',
  builder: (y) =>
    commandHelp(y.positional('files', { type: 'string', array: true, describe: 'config files to check together' }), [
      ['verify', 'every file of /etc/manifold, /run/manifold and /usr/lib/manifold'],
      ['verify ./web.conf ./dns.conf', 'new files, checked together before installing them'],
    ]),
  handler: (args) => {
    const files = args.files && args.files.length > 0 ? args.files : undefined;
    const problems: ConfigProblem[] = verifyConfig(files);
    const error = problems.length > 0 ? configError(problems) : null;
    // One JSON document: the result, with the error of a failed check in it.
    if (args.json) outJson({ ok: error === null, problems, ...(error ? { error: { code: error.code, message: error.message } } : {}) });
    else for (const p of problems) out(formatProblem(p));
    if (error) throw error;
    if (!args.json) info('manifold: configuration is valid');
  },
};
