/**
 * apply (load-bindings): replace the whole binding set atomically with the
 * set of a JSON file, standard input, or the config files. Text output
 * shows consecutive ports as one range; a long apply shows its progress on
 * a terminal.
 */
import type { CommandModule } from 'yargs';
import { ManifoldError } from '../../errors.js';
import { apply, parseApplyDocument, readApplyInput, throwProblems, type ApplyResult } from '../../ops/apply.js';
import { BindingSetBuilder, type BuiltSet } from '../../ops/binding-set.js';
import { withState } from '../../state/state.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { bindingJson, collapseIndices, rangeText } from '../format.js';
import { commandHelp } from '../help.js';
import { Progress } from '../progress.js';

/** Inputs from this size on show progress on a terminal (about 3,000 bindings). */
const LARGE_INPUT_BYTES = 256 * 1024;

/** Most "has no socket" warnings printed by one apply. */
const MAX_WARNINGS = 10;

/** Arguments of apply. */
export interface ApplyArgs extends GlobalArgs {
  file?: string | undefined;
  'dry-run': boolean;
  config: boolean;
  'skip-invalid': boolean;
  force: boolean;
}

async function configSet(skipInvalid: boolean, limit: number): Promise<BuiltSet> {
  const { configSpecs } = await import('../config-bindings.js');
  const builder = new BindingSetBuilder(limit);
  for (const e of configSpecs(skipInvalid)) builder.add(e, e.source);
  throwProblems(builder.problems, builder.dropped, 'the configuration');
  return builder.build();
}

function print(args: ApplyArgs, r: ApplyResult, dryRun: boolean): void {
  if (args.json) {
    outJson({
      dryRun,
      added: r.added.map((i) => bindingJson(r.target, i, r.labelOf(r.target.tag(i)))),
      removed: r.removed.map((j) => bindingJson(r.live, j, r.labelOf(r.live.tag(j)))),
      relabelled: r.relabelled.map(([i, j]) => ({ ...bindingJson(r.target, i, r.labelOf(r.target.tag(i))), from: r.labelOf(r.live.tag(j)) })),
      unchanged: r.unchanged,
      total: r.target.count,
    });
    return;
  }
  const newLabel = (i: number): string => r.labelOf(r.target.tag(i));
  const oldLabel = (j: number): string => r.labelOf(r.live.tag(j));
  for (const x of collapseIndices(r.target, r.added, newLabel)) out(`+ ${rangeText(r.target, x)} -> ${x.label}`);
  for (const x of collapseIndices(r.live, r.removed, oldLabel)) out(`- ${rangeText(r.live, x)} -> ${x.label}`);
  const was = new Map(r.relabelled);
  const relabelled = collapseIndices(r.target, r.relabelled.map(([i]) => i), newLabel, (i) => oldLabel(was.get(i) as number));
  for (const x of relabelled) out(`~ ${rangeText(r.target, x)} -> ${x.label} (was ${x.note ?? '?'})`);
  const verb = (done: string, would: string): string => (dryRun ? would : done);
  info(`${verb('added', 'would add')} ${r.added.length}, ${verb('removed', 'would remove')} ${r.removed.length}, ${verb('relabelled', 'would relabel')} ${r.relabelled.length}, unchanged ${r.unchanged}`);
}

/** `manifold apply`. */
export const applyCommand: CommandModule<GlobalArgs, ApplyArgs> = {
  command: ['apply [file]', 'load-bindings [file]'],
  describe: 'Atomically replace all bindings with those of a JSON file ("-": standard input) or of the config files (--config)',
  builder: (y) =>
    commandHelp(
      y
        .positional('file', { type: 'string', describe: 'JSON: {"bindings":[{"label","prefix","port","protocol"?}]} or the output of "bindings --json"; "-" reads standard input' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the changes without making them' })
        .option('config', { type: 'boolean', default: false, describe: 'use the Bind= lines of the manifold config files' })
        .option('skip-invalid', { type: 'boolean', default: false, describe: 'with --config: leave out files with problems (logged) instead of refusing' })
        .option('force', { type: 'boolean', default: false, describe: 'apply bindings of a whole address family (prefix /0) to labels without a socket' }),
      [
        ['apply bindings.json', 'replace every binding with those of the file'],
        ['apply --dry-run bindings.json', 'show what would change (+ added, - removed, ~ relabelled)'],
        ['bindings --json | manifold apply -', 'apply a listing (here: the same set again, nothing changes)'],
        ['apply --config', 'apply the Bind= lines of /etc/manifold/*.conf'],
      ],
    ),
  handler: async (args) => {
    if (args.config && args.file !== undefined) throw new ManifoldError('ERR_USAGE', 'give either a file or --config, not both');
    if (!args.config && args.file === undefined) throw new ManifoldError('ERR_USAGE', 'missing file argument ("-" for standard input), or --config (see "manifold apply --help")');
    const dryRun = args['dry-run'];
    // Read the input before taking the writers' lock (standard input may be slow).
    const input = args.config ? null : readApplyInput(args.file as string);
    const progress = Progress.forTerminal((input?.length ?? 0) >= LARGE_INPUT_BYTES);
    const limit = withState(openOptions(args, false), (s) => s.maps.limits.maxBindings);
    const name = args.config ? 'the configuration' : args.file === '-' ? '<stdin>' : (args.file as string);
    progress.phase(`checking ${name}`);
    let r: ApplyResult;
    try {
      const set = input ? parseApplyDocument(input, name, limit) : await configSet(args['skip-invalid'], limit);
      progress.phase(`${dryRun ? 'comparing' : 'comparing and writing'} ${set.list.count} bindings`);
      r = withState(openOptions(args, !dryRun), (s) => apply(s.maps, set, dryRun, { force: args.force || args.config }));
    } finally {
      progress.done();
    }
    // One warning per destination without a socket, up to a screenful.
    for (const w of r.unserved.slice(0, MAX_WARNINGS)) info(`manifold: warning: ${w}`);
    if (r.unserved.length > MAX_WARNINGS) info(`manifold: warning: … and ${r.unserved.length - MAX_WARNINGS} more destinations without a socket (see "manifold status")`);
    if (!dryRun && r.exec) {
      emitEvent('apply', Priority.notice, `applied ${r.target.count} bindings: added ${r.added.length}, removed ${r.removed.length}, relabelled ${r.relabelled.length}`, {
        ADDED: r.added.length, REMOVED: r.removed.length, RELABELLED: r.relabelled.length, TOTAL: r.target.count, SOURCE: name,
      });
    }
    print(args, r, dryRun);
  },
};
