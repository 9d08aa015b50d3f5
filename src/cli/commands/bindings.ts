/**
 * bind, unbind, bindings, apply (load-bindings), status.
 */
import type { Argv } from 'yargs';
import { ManifoldError } from '../../errors.js';
import { validateLabel } from '../../core/labels.js';
import { formatPrefix, parsePortRange, parsePrefix, parseProtocol, type Prefix } from '../../core/net.js';
import { bindingToJson, prefixContains, type Binding } from '../../core/binding.js';
import { withState } from '../../state/state.js';
import { bind, listBindings, unbind, type BindResult } from '../../ops/bindings.js';
import { applyBindings, type ApplyPlan } from '../../ops/apply.js';
import { expandSpecs, readApplyFile, type BindingSpec } from '../../ops/apply-file.js';
import { gatherStatus, type StatusReport } from '../../ops/status.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';

interface BindArgs extends GlobalArgs {
  label: string;
  protocol: string;
  prefix: string;
  port: string;
}

function bindPositionals(a: Argv<GlobalArgs>): Argv<BindArgs> {
  return a
    .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination' })
    .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
    .positional('prefix', { type: 'string', demandOption: true, describe: 'IP address or prefix (host bits are masked)' })
    .positional('port', { type: 'string', demandOption: true, describe: 'port, 0 for all ports, or a range A-B' }) as unknown as Argv<BindArgs>;
}

function parseBindArgs(args: BindArgs): { label: string; protocol: ReturnType<typeof parseProtocol>; prefix: Prefix; range: ReturnType<typeof parsePortRange> } {
  return {
    label: validateLabel(args.label),
    protocol: parseProtocol(args.protocol),
    prefix: parsePrefix(args.prefix),
    range: parsePortRange(args.port),
  };
}

function line(b: Binding): string {
  return `${b.protocol} ${formatPrefix(b.prefix)} ${b.port}`;
}

function bindEvents(kind: 'bind' | 'unbind', r: BindResult): void {
  const list = kind === 'bind' ? [...r.added, ...r.relabelled.map((x) => x.binding)] : r.removed;
  for (const b of list) {
    emitEvent(kind, Priority.info, `${kind === 'bind' ? 'bound' : 'unbound'} ${line(b)} ${kind === 'bind' ? '->' : 'from'} ${b.label}`, {
      LABEL: b.label, PROTOCOL: b.protocol, PREFIX: formatPrefix(b.prefix), PORT: b.port,
    });
  }
}

function printBindResult(args: GlobalArgs, r: BindResult): void {
  if (args.json) {
    outJson({
      added: r.added.map(bindingToJson),
      relabelled: r.relabelled.map((x) => ({ ...bindingToJson(x.binding), from: x.from })),
      unchanged: r.unchanged.map(bindingToJson),
      removed: r.removed.map(bindingToJson),
    });
    return;
  }
  for (const b of r.added) info(`bound ${line(b)} -> ${b.label}`);
  for (const x of r.relabelled) info(`bound ${line(x.binding)} -> ${x.binding.label} (was ${x.from})`);
  for (const b of r.unchanged) info(`already bound ${line(b)} -> ${b.label}`);
  for (const b of r.removed) info(`unbound ${line(b)} from ${b.label}`);
}

function printPlan(args: GlobalArgs, plan: ApplyPlan, dryRun: boolean): void {
  if (args.json) {
    outJson({
      dryRun,
      added: plan.added.map(bindingToJson),
      removed: plan.removed.map(bindingToJson),
      relabelled: plan.relabelled.map((x) => ({ ...bindingToJson(x.binding), from: x.from })),
      unchanged: plan.unchanged,
      total: plan.total,
    });
    return;
  }
  for (const b of plan.added) out(`+ ${line(b)} -> ${b.label}`);
  for (const b of plan.removed) out(`- ${line(b)} -> ${b.label}`);
  for (const x of plan.relabelled) out(`~ ${line(x.binding)} -> ${x.binding.label} (was ${x.from})`);
  info(`${dryRun ? 'would add' : 'added'} ${plan.added.length}, ${dryRun ? 'would remove' : 'removed'} ${plan.removed.length}, ${dryRun ? 'would relabel' : 'relabelled'} ${plan.relabelled.length}, unchanged ${plan.unchanged}`);
}

/** Apply a set of specs (from a file or the config); shared with `apply --config`. */
export function applySpecs(args: GlobalArgs, specs: BindingSpec[], context: string, dryRun: boolean): ApplyPlan {
  const desired = expandSpecs(specs, context);
  const plan = withState(openOptions(args, !dryRun), (s) => applyBindings(s, desired, dryRun));
  if (!dryRun) {
    emitEvent('apply', Priority.notice, `applied ${plan.total} bindings: added ${plan.added.length}, removed ${plan.removed.length}, relabelled ${plan.relabelled.length}`, {
      ADDED: plan.added.length, REMOVED: plan.removed.length, RELABELLED: plan.relabelled.length, TOTAL: plan.total, SOURCE: context.replace(/: $/, ''),
    });
  }
  printPlan(args, plan, dryRun);
  return plan;
}

function ownerText(d: StatusReport['destinations'][number]): string {
  if (!d.alive) return '';
  const owner = d.owner ? `  owner=${d.owner.pid}(${d.owner.comm})${d.owners.length > 1 ? `+${d.owners.length - 1}` : ''}` : '  owner=?';
  return `${owner}${d.usable === false ? '  UNUSABLE' : ''}`;
}

function errorReasons(d: StatusReport['destinations'][number]): string {
  const parts = Object.entries(d.errorsByReason).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

function renderStatus(r: StatusReport): void {
  out(`bindings (${r.bindings.length}):`);
  if (r.bindings.length === 0) out('  (none)');
  for (const b of r.bindings) out(`  ${b.protocol.padEnd(4)}${b.prefix.padEnd(44)}${String(b.port).padEnd(7)}-> ${b.label}`);
  out(`destinations (${r.destinations.length}):`);
  if (r.destinations.length === 0) out('  (none)');
  for (const d of r.destinations) {
    out(`  ${d.domain}:${d.protocol}:${d.label}  socket=${d.socket ?? 'none'}${ownerText(d)}  bindings=${d.bindings}  lookups=${d.lookups} misses=${d.misses} errors=${d.errors}${errorReasons(d)}`);
  }
  for (const w of r.warnings) info(`warning: ${w.message}`);
}

/** Register the binding commands. */
export function bindingCommands(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command(
      'bind <label> <protocol> <prefix> <port>',
      'Bind a prefix and port (0 = all ports, or a range A-B) to a label',
      bindPositionals,
      (argv) => {
        const args = argv as unknown as BindArgs;
        const p = parseBindArgs(args);
        const r = withState(openOptions(args, true), (s) => bind(s, p.label, p.protocol, p.prefix, p.range));
        bindEvents('bind', r);
        printBindResult(args, r);
      },
    )
    .command(
      'unbind <label> <protocol> <prefix> <port>',
      'Remove a binding of a label',
      bindPositionals,
      (argv) => {
        const args = argv as unknown as BindArgs;
        const p = parseBindArgs(args);
        const r = withState(openOptions(args, true), (s) => unbind(s, p.label, p.protocol, p.prefix, p.range));
        bindEvents('unbind', r);
        printBindResult(args, r);
      },
    )
    .command(
      'bindings',
      'List bindings, most specific first',
      (a) =>
        a
          .option('label', { type: 'string', describe: 'only this label' })
          .option('protocol', { type: 'string', describe: 'only tcp or udp' })
          .option('prefix', { type: 'string', describe: 'only bindings whose prefix contains this address or prefix' })
          .option('port', { type: 'string', describe: 'only bindings that match this port (exact or 0)' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { label?: string; protocol?: string; prefix?: string; port?: string };
        const label = args.label === undefined ? undefined : validateLabel(args.label);
        const protocol = args.protocol === undefined ? undefined : parseProtocol(args.protocol);
        const prefix = args.prefix === undefined ? undefined : parsePrefix(args.prefix);
        const port = args.port === undefined ? undefined : parsePortRange(args.port);
        if (port && port.first !== port.last) throw new ManifoldError('ERR_INVALID_PORT', `invalid --port ${JSON.stringify(args.port)}: expected a single port`);
        const all = withState(openOptions(args, false), (s) => listBindings(s));
        const list = all.filter(
          (b) =>
            (label === undefined || b.label === label) &&
            (protocol === undefined || b.protocol === protocol) &&
            (prefix === undefined || (b.prefix.domain === prefix.domain && b.prefix.len <= prefix.len && prefixContains(b.prefix, prefix.addr))) &&
            (port === undefined || b.port === port.first || b.port === 0),
        );
        if (args.json) outJson(list.map(bindingToJson));
        else for (const b of list) out(`${b.protocol}\t${formatPrefix(b.prefix)}\t${b.port}\t${b.label}`);
      },
    )
    .command(
      ['apply [file]', 'load-bindings [file]'],
      'Atomically replace all bindings with those of a JSON file (or of the config files with --config)',
      (a) =>
        a
          .positional('file', { type: 'string', describe: 'JSON file: {"bindings":[{"label","prefix","port","protocol"?}]}' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'print the changes without making them' })
          .option('config', { type: 'boolean', default: false, describe: 'use the Bind= lines of the manifold config files' })
          .option('skip-invalid', { type: 'boolean', default: false, describe: 'with --config: leave out files with problems (logged) instead of refusing' }),
      async (argv) => {
        const args = argv as unknown as GlobalArgs & { file?: string; 'dry-run': boolean; config: boolean; 'skip-invalid': boolean };
        if (args.config && args.file) throw new ManifoldError('ERR_USAGE', 'give either a file or --config, not both');
        if (args.config) {
          const { configSpecs } = await import('../config-bindings.js');
          applySpecs(args, configSpecs(args['skip-invalid']), '', args['dry-run']);
          return;
        }
        if (!args.file) throw new ManifoldError('ERR_USAGE', 'missing file argument (or --config)');
        applySpecs(args, readApplyFile(args.file), `${args.file}: `, args['dry-run']);
      },
    )
    .command(
      'status [label]',
      'Show bindings and destinations (socket, counters)',
      (a) => a.positional('label', { type: 'string', describe: 'only this label' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { label?: string };
        const label = args.label === undefined ? undefined : validateLabel(args.label);
        const r = withState(openOptions(args, false), (s) => gatherStatus(s, label));
        if (args.json) outJson(r);
        else renderStatus(r);
      },
    );
}
