/**
 * apply (load-bindings): replace the whole binding set atomically with the
 * set of a JSON file, standard input, or the config files. Text output
 * shows consecutive ports as one range; a long apply shows its progress on
 * a terminal.
 */
import type { CommandModule } from 'yargs';
import { ManifoldError } from '../../errors.js';
import { apply, parseApplyDocument, readApplyInput, throwProblems, type ApplyResult } from '../../ops/apply.js';
import { applyConfig, type ConfigApplyResult } from '../../ops/apply-config.js';
import { BindingSetBuilder, type BuiltSet } from '../../ops/binding-set.js';
import { countProblems, formatProblem, type ConfigProblem } from '../../config/types.js';
import type { ConfigSource } from '../config-bindings.js';
import { withState } from '../../state/state.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import type { BindingList } from '../../core/binding-list.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { bindingJson, collapseIndices, DiffLines, streamRangeLines, type IndexRange } from '../format.js';
import { commandHelp } from '../help.js';
import { Progress } from '../progress.js';

/** Inputs from this size on show progress on a terminal (about 3,000 bindings). */
const LARGE_INPUT_BYTES = 256 * 1024;

/** Most "has no socket" warnings printed by one apply. */
const MAX_WARNINGS = 10;

/** One warning per destination without a socket, up to a screenful. */
function warnUnserved(unserved: readonly string[]): void {
  for (const w of unserved.slice(0, MAX_WARNINGS)) info(`manifold: warning: ${w}`);
  if (unserved.length > MAX_WARNINGS) info(`manifold: warning: … and ${unserved.length - MAX_WARNINGS} more destinations without a socket (see "manifold status")`);
}

/** Arguments of apply. */
export interface ApplyArgs extends GlobalArgs {
  file?: string | undefined;
  'dry-run': boolean;
  config: boolean;
  'skip-invalid': boolean;
  prune: boolean;
  force: boolean;
}

function buildSet(specs: ConfigSource['specs'], limit: number): BuiltSet {
  const builder = new BindingSetBuilder(limit);
  for (const e of specs) builder.add(e, e.source);
  throwProblems(builder.problems, builder.dropped, 'the configuration');
  return builder.build();
}

function diffJson(r: ApplyResult, dryRun: boolean): Record<string, unknown> {
  return {
    dryRun,
    added: r.added.map((i) => bindingJson(r.target, i, r.labelOf(r.target.tag(i)))),
    removed: r.removed.map((j) => bindingJson(r.live, j, r.labelOf(r.live.tag(j)))),
    relabelled: r.relabelled.map(([i, j]) => ({ ...bindingJson(r.target, i, r.labelOf(r.target.tag(i))), from: r.labelOf(r.live.tag(j)) })),
    unchanged: r.unchanged,
    total: r.target.count,
  };
}

/** Entries collapsed per call of collapseIndices (at least; a chunk ends where no range can go on). */
const COLLAPSE_CHUNK = 4096;

/**
 * collapseIndices over `order` a chunk at a time (no range object per
 * binding of a large diff alive at once), calling `each` per range. A chunk
 * ends only between entries whose ports are not consecutive (or port 0),
 * where collapseIndices starts a new range anyway: the ranges are the same.
 */
function eachRange(list: BindingList, order: readonly number[], labelOf: (i: number) => string, note: ((i: number) => string | undefined) | undefined, each: (x: IndexRange) => void): void {
  let start = 0;
  while (start < order.length) {
    let end = Math.min(order.length, start + COLLAPSE_CHUNK);
    while (end < order.length) {
      const prev = list.port(order[end - 1] as number);
      const port = list.port(order[end] as number);
      if (prev === 0 || port === 0 || port !== prev + 1) break;
      end++;
    }
    for (const x of collapseIndices(list, order.slice(start, end), labelOf, note)) each(x);
    start = end;
  }
}

function printDiff(r: ApplyResult, dryRun: boolean): void {
  const newLabel = (i: number): string => r.labelOf(r.target.tag(i));
  const oldLabel = (j: number): string => r.labelOf(r.live.tag(j));
  // Written as bytes in chunks (src/cli/format.ts): when stdout is a pipe whose reader lags, it
  // keeps the chunks until the end, outside the JS heap.
  streamRangeLines(r.target, r.added, newLabel, '+ ', false, ' -> ');
  streamRangeLines(r.live, r.removed, oldLabel, '- ', false, ' -> ');
  const lines = new DiffLines();
  const was = new Map(r.relabelled);
  const note = (i: number): string => oldLabel(was.get(i) as number);
  eachRange(r.target, r.relabelled.map(([i]) => i), newLabel, note, (x) => lines.line('~', r.target, x, x.note ?? '?'));
  lines.end();
  const verb = (done: string, would: string): string => (dryRun ? would : done);
  info(`${verb('added', 'would add')} ${r.added.length}, ${verb('removed', 'would remove')} ${r.removed.length}, ${verb('relabelled', 'would relabel')} ${r.relabelled.length}, unchanged ${r.unchanged}`);
}

function perLabel(m: Map<string, number>): string {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([l, n]) => `${l} (${n})`).join(', ');
}

/** Most labels an apply event names (journald caps the fields of an entry). */
const MAX_EVENT_LABELS = 100;

/**
 * The labels whose bindings an apply changed (added, removed, relabelled:
 * both labels), for the event's repeated MANIFOLD_LABEL field, so that
 * `journalctl MANIFOLD_LABEL=web` finds applies as it finds bind and unbind.
 * At most MAX_EVENT_LABELS, in name order; LABELS_OMITTED counts the rest.
 */
function changedLabels(r: ApplyResult): { LABEL: string[]; LABELS_OMITTED: number | undefined } {
  const targetIds = new Set<number>();
  const liveIds = new Set<number>();
  for (const i of r.added) targetIds.add(r.target.tag(i));
  for (const j of r.removed) liveIds.add(r.live.tag(j));
  for (const [i, j] of r.relabelled) {
    targetIds.add(r.target.tag(i));
    liveIds.add(r.live.tag(j));
  }
  const labels = new Set<string>();
  for (const id of targetIds) labels.add(r.labelOf(id));
  for (const id of liveIds) labels.add(r.labelOf(id));
  const sorted = [...labels].sort();
  return { LABEL: sorted.slice(0, MAX_EVENT_LABELS), LABELS_OMITTED: sorted.length > MAX_EVENT_LABELS ? sorted.length - MAX_EVENT_LABELS : undefined };
}

function total(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

/** What apply --config kept, and why, on stderr. */
function printKept(r: ConfigApplyResult, prune: boolean, dryRun: boolean): void {
  const keep = dryRun ? 'would keep' : 'kept';
  if (r.keptByHand.size > 0) {
    info(`manifold: ${keep} ${total(r.keptByHand)} binding(s) made by hand, of labels no config file defines: ${perLabel(r.keptByHand)}${prune ? '' : '; --prune removes them'}`);
  }
  if (r.keptConfigured.size > 0) {
    info(`manifold: ${keep} ${total(r.keptConfigured)} binding(s) of labels applied from the configuration before, because files with problems were left out: ${perLabel(r.keptConfigured)}`);
  }
  const shown = r.takenOver.slice(0, 5).join(', ');
  if (r.takenOver.length > 0) info(`manifold: warning: ${r.takenOver.length} binding(s) not from the configuration are now bound by a config file to its label: ${shown}${r.takenOver.length > 5 ? ', …' : ''}`);
}

function keptJson(r: ConfigApplyResult): Record<string, unknown> {
  return {
    configuredLabels: r.configuredLabels,
    kept: { byHand: Object.fromEntries(r.keptByHand), configured: Object.fromEntries(r.keptConfigured) },
    takenOver: r.takenOver,
  };
}

/** ERR_INVALID_CONFIG after a partial apply: the problems of the files left out. */
function leftOutError(problems: readonly ConfigProblem[], dryRun: boolean): ManifoldError {
  // A file's problems past the first hundred are one entry that counts them (src/config/problems.ts).
  const n = countProblems(problems);
  const head = `${n} problem${n === 1 ? '' : 's'} in the configuration: the files with problems were left out, ${dryRun ? 'the rest would be' : 'the rest was'} applied, and labels applied from the configuration before keep their bindings (manifold verify)`;
  return new ManifoldError('ERR_INVALID_CONFIG', [`${head}:`, ...problems.map((p) => `  ${formatProblem(p)}`)].join('\n'), { problems: problems.map((p) => ({ ...p })) });
}

/** Journal events of the targets and policy apply --config changed. */
function targetEvents(r: ApplyResult): void {
  for (const c of r.targets) {
    if (c.action === 'unchanged') continue;
    const where = c.port === null ? c.address : `${c.address} port ${c.port}`;
    emitEvent(c.action === 'removed' ? 'untarget' : 'target', Priority.notice, `${c.destination}: address target ${where} ${c.action} (configuration)`, {
      LABEL: c.label, DOMAIN: c.domain, PROTOCOL: c.protocol, TARGET_ADDRESS: c.address, TARGET_PORT: c.port ?? 0, ACTION: c.action, PREVIOUS: c.previous,
    });
  }
  if (r.policy) emitEvent('policy', Priority.notice, `policy explicit-first ${r.policy.explicitFirst ? 'on' : 'off'} (configuration)`, { POLICY: 'explicit-first', VALUE: r.policy.explicitFirst ? 'on' : 'off' });
}

/** The targets and policy apply --config changed, one line each. */
function printTargets(r: ApplyResult): void {
  for (const c of r.targets) {
    if (c.action === 'unchanged') continue;
    const where = c.port === null ? c.address : `${c.address} port ${c.port}`;
    out(`${c.action === 'removed' ? '-' : '+'} ${c.destination} target ${where}${c.action === 'replaced' && c.previous ? ` (was ${c.previous})` : ''}`);
  }
  if (r.policy) out(`policy explicit-first ${r.policy.explicitFirst ? 'on' : 'off'}`);
}

async function applyConfigFiles(args: ApplyArgs): Promise<void> {
  const dryRun = args['dry-run'];
  const { configSource, reportLeftOut } = await import('../config-bindings.js');
  const src = configSource(args['skip-invalid']);
  const limit = withState(openOptions(args, false), (s) => s.maps.limits.maxBindings);
  const set = buildSet(src.specs, limit);
  // The targets become those of the Target= lines, and the policy explicit-first is on exactly when there are any.
  const assignments = src.targets.map((t) => ({ key: { label: t.label, domain: t.domain, protocol: t.protocol }, target: { domain: t.domain, addr: t.addr, port: t.port } }));
  const targets = { assignments, explicitFirst: assignments.length > 0 };
  const input = { set, labels: src.labels, incomplete: src.problems.length > 0, prune: args.prune, targets, registeredBy: src.registeredBy };
  const r = withState(openOptions(args, !dryRun), (s) => applyConfig(s.maps, input, dryRun, { force: true }));
  reportLeftOut(src.problems, dryRun);
  for (const n of r.awaiting.slice(0, MAX_WARNINGS)) info(`manifold: ${n}`);
  if (r.awaiting.length > MAX_WARNINGS) info(`manifold: … and ${r.awaiting.length - MAX_WARNINGS} more destinations waiting for their units to register a socket`);
  warnUnserved(r.unserved);
  if (!dryRun && r.exec) {
    emitEvent('apply', src.problems.length > 0 ? Priority.warning : Priority.notice, `applied ${r.target.count} bindings from the configuration: added ${r.added.length}, removed ${r.removed.length}, relabelled ${r.relabelled.length}`, {
      ADDED: r.added.length, REMOVED: r.removed.length, RELABELLED: r.relabelled.length, TOTAL: r.target.count, SOURCE: 'the configuration',
      KEPT_BY_HAND: total(r.keptByHand), KEPT_CONFIGURED: total(r.keptConfigured), LEFT_OUT: src.problems.length, ...changedLabels(r),
    });
  }
  if (!dryRun) targetEvents(r);
  const error = src.problems.length > 0 ? leftOutError(src.problems, dryRun) : null;
  if (args.json) {
    outJson({ ...diffJson(r, dryRun), ...keptJson(r), targets: r.targets, policy: r.policy, problems: src.problems, ...(error ? { error: { code: error.code, message: error.message } } : {}) });
  } else {
    printTargets(r);
    printDiff(r, dryRun);
    printKept(r, args.prune, dryRun);
  }
  if (error) throw error;
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
        .option('config', { type: 'boolean', default: false, describe: 'apply the Bind= lines of the manifold config files to the labels they define; bindings of other labels (made by hand) are kept' })
        .option('skip-invalid', { type: 'boolean', default: false, describe: 'with --config: leave out files with problems, apply the rest, keep the bindings of labels applied from the config before, and exit 1' })
        .option('prune', { type: 'boolean', default: false, describe: 'with --config: also remove bindings of labels no config file defines (made by hand)' })
        .option('force', { type: 'boolean', default: false, describe: 'apply bindings of a whole address family (prefix /0) to labels without a socket' }),
      [
        ['apply bindings.json', 'replace every binding with those of the file'],
        ['apply --dry-run bindings.json', 'show what would change (+ added, - removed, ~ relabelled)'],
        ['bindings --json | manifold apply -', 'apply a listing (here: the same set again, nothing changes)'],
        ['apply --config', 'apply the Bind= lines of /etc/manifold/*.conf to the labels they define'],
        ['apply --config --prune', 'the same, and remove bindings made by hand'],
      ],
    ),
  handler: async (args) => {
    if (args.config && args.file !== undefined) throw new ManifoldError('ERR_USAGE', 'give either a file or --config, not both');
    if (!args.config && args.file === undefined) throw new ManifoldError('ERR_USAGE', 'missing file argument ("-" for standard input), or --config (see "manifold apply --help")');
    if (!args.config && (args.prune || args['skip-invalid'])) throw new ManifoldError('ERR_USAGE', `--${args.prune ? 'prune' : 'skip-invalid'} goes with --config (apply FILE always replaces the whole set)`);
    if (args.config) return applyConfigFiles(args);
    const dryRun = args['dry-run'];
    // Read the input before taking the writers' lock (standard input may be slow).
    let input: Buffer | null = readApplyInput(args.file as string);
    const progress = Progress.forTerminal(input.length >= LARGE_INPUT_BYTES);
    const limit = withState(openOptions(args, false), (s) => s.maps.limits.maxBindings);
    const name = args.file === '-' ? '<stdin>' : (args.file as string);
    progress.phase(`checking ${name}`);
    let r: ApplyResult;
    try {
      const set = parseApplyDocument(input, name, limit);
      input = null; // the document is not needed any more: its memory can go while the set is written

      progress.phase(`${dryRun ? 'comparing' : 'comparing and writing'} ${set.list.count} bindings`);
      r = withState(openOptions(args, !dryRun), (s) => apply(s.maps, set, dryRun, { force: args.force }));
    } finally {
      progress.done();
    }
    warnUnserved(r.unserved);
    if (!dryRun && r.exec) {
      emitEvent('apply', Priority.notice, `applied ${r.target.count} bindings: added ${r.added.length}, removed ${r.removed.length}, relabelled ${r.relabelled.length}`, {
        ADDED: r.added.length, REMOVED: r.removed.length, RELABELLED: r.relabelled.length, TOTAL: r.target.count, SOURCE: name, ...changedLabels(r),
      });
    }
    if (args.json) outJson(diffJson(r, dryRun));
    else printDiff(r, dryRun);
  },
};
