/**
 * completion: print the bash or zsh completion script; and the answer to
 * the scripts' requests (`manifold --get-yargs-completions WORDS…`).
 */
import type { Argv, CommandModule } from 'yargs';
import { readLive } from '../../ops/read.js';
import { withState } from '../../state/state.js';
import { COMPLETION_KEY, COMPLETION_SHELL_ENV, completionScript, SHELLS, slotOf, slotValues, targetOptions, type Shell } from '../completion.js';
import { commandHelp } from '../help.js';
import { out, outJson, outRaw } from '../output.js';
import type { GlobalArgs } from '../context.js';
import { yargsCommandTable } from '../usage.js';

/** Arguments of completion. */
export interface CompletionArgs extends GlobalArgs {
  shell: Shell;
}

/** `manifold completion`. */
export const completionCommand: CommandModule<GlobalArgs, CompletionArgs> = {
  command: 'completion <shell>',
  describe: 'Print the shell completion script for bash or zsh (commands, options, labels)',
  builder: (y) =>
    commandHelp(
      y.positional('shell', { choices: SHELLS, demandOption: true, describe: 'bash or zsh' }) as Argv<CompletionArgs>,
      [
        ['completion bash > ~/.bash_completion', 'bash: complete manifold in your shells'],
        ['completion zsh > ~/.zfunc/_manifold', 'zsh: into a directory of $fpath (then compinit)'],
      ],
    ),
  handler: (args) => {
    const script = completionScript(args.shell);
    if (args.json) outJson({ shell: args.shell, script });
    else outRaw(script);
  },
};

/** Labels of the state the words name (--netns, --bpffs); none when it cannot be read. */
function readLabels(words: readonly string[]): string[] {
  const t = targetOptions(words);
  try {
    const dests = withState({ netns: t.netns ?? '/proc/self/ns/net', bpffs: t.bpffs ?? '/sys/fs/bpf', write: false, lockTimeoutMs: 0 }, (s) => readLive(s.maps, { bindings: false }).destinations);
    return [...new Set(dests.map((d) => d.label))].sort();
  } catch {
    return [];
  }
}

/**
 * Answer `--get-yargs-completions manifold WORD…` (argv as given): values
 * of the word's slot (labels, protocols, families; nothing for files), else
 * yargs' commands and options, in the format of the asking shell.
 * `parser` builds the CLI's parser; it is built after the shell is known
 * because yargs reads $SHELL when it is created.
 */
export async function answerCompletion(argv: readonly string[], parser: () => Argv<GlobalArgs>): Promise<void> {
  const shell: Shell = process.env[COMPLETION_SHELL_ENV] === 'zsh' ? 'zsh' : 'bash';
  process.env.SHELL = shell === 'zsh' ? '/bin/zsh' : '/bin/bash';
  delete process.env.ZSH_NAME;
  const y = parser();
  const words = argv.slice(1);
  const values = slotValues(slotOf(words, yargsCommandTable(y)), () => readLabels(words));
  if (values !== null) {
    for (const v of values) out(v);
    return;
  }
  await y.parseAsync([COMPLETION_KEY, ...words]);
}
