/**
 * status: bindings (consecutive ports as one range), destinations with
 * sockets (cookie and `ss -e` identity), owners and counters, warnings,
 * capacity; `--summary`: one line per label.
 */
import type { CommandModule } from 'yargs';
import { validateLabel } from '../../core/labels.js';
import { gatherStatus, type DestinationStatus, type StatusData } from '../../ops/status.js';
import { namespaceDiscovery } from '../../discovery/status.js';
import { destName } from '../../ops/view.js';
import { withState, type State } from '../../state/state.js';
import { socketIdText, streamBindingsJson, streamRangeLines } from '../format.js';
import { commandHelp } from '../help.js';
import { printTable } from '../table.js';
import { escapeJson } from '../../core/escape.js';
import { info, out, outJson, outRaw } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';

/** Arguments of status. */
export interface StatusArgs extends GlobalArgs {
  label?: string | undefined;
  summary: boolean;
}

/** One label in `status --summary`. */
export interface LabelSummary {
  label: string;
  /** Destinations (family, protocol) of the label. */
  destinations: number;
  /** Bindings of the live generation. */
  bindings: number;
  /** Destinations with a socket registered. */
  sockets: number;
  lookups: number;
  misses: number;
  errors: number;
}

/** Per-label totals of the destinations (sorted by label). */
export function summarize(destinations: readonly DestinationStatus[]): LabelSummary[] {
  const by = new Map<string, LabelSummary>();
  for (const d of destinations) {
    const s = by.get(d.label) ?? { label: d.label, destinations: 0, bindings: 0, sockets: 0, lookups: 0, misses: 0, errors: 0 };
    s.destinations++;
    s.bindings += d.bindings;
    if (d.socket !== null) s.sockets++;
    s.lookups += d.lookups;
    s.misses += d.misses;
    s.errors += d.errors;
    by.set(d.label, s);
  }
  return [...by.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

function kib(bytes: number): string {
  return bytes >= 10 * 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

function socketText(d: DestinationStatus): string {
  return d.socket === null ? 'socket=none' : `socket=${d.socket} (${socketIdText(d.socket, d.inode)})`;
}

function ownerText(d: DestinationStatus): string {
  if (!d.alive) return '';
  const owner = d.owner ? `  owner=${d.owner.pid}(${d.owner.comm})${d.owners.length > 1 ? `+${d.owners.length - 1}` : ''}` : '  owner=?';
  return `${owner}${d.usable === false ? '  UNUSABLE' : ''}`;
}

function servedText(d: DestinationStatus): string {
  if (d.target) {
    const where = d.target.port === null ? d.target.address : `${d.target.address} port ${d.target.port}`;
    const present = d.target.present === null ? '' : d.target.present ? ' (listening)' : ' (NOTHING LISTENING)';
    return `target=${where}${present}  redirected=${d.redirected} no_target=${d.noTarget} to_target=${d.targetOwn}`;
  }
  return `${socketText(d)}${ownerText(d)}`;
}

function errorReasons(d: DestinationStatus): string {
  const parts = Object.entries(d.errorsByReason).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

function bindingOrder(r: StatusData, label: string | undefined): { order: Uint32Array; labelOf: (i: number) => string } {
  const list = r.bindings!;
  const labelOf = (i: number): string => r.labels.get(list.tag(i)) ?? `#${list.tag(i)}`;
  const sorted = list.sortedIndices(labelOf, { uniqueKeys: true }); // a generation's keys are unique
  if (label === undefined) return { order: sorted, labelOf };
  return { order: sorted.filter((i) => labelOf(i) === label), labelOf };
}

function render(r: StatusData, label: string | undefined): void {
  const list = r.bindings!;
  const { order, labelOf } = bindingOrder(r, label);
  out(`bindings (${order.length}):`);
  if (order.length === 0) out('  (none)');
  streamRangeLines(list, order, labelOf, '  ', true);
  out(`destinations (${r.destinations.length}):`);
  if (r.destinations.length === 0) out('  (none)');
  for (const d of r.destinations) {
    const deferred = d.deferred > 0 ? ` deferred=${d.deferred}` : '';
    out(`  ${destName(d)}  ${servedText(d)}  bindings=${d.bindings}  lookups=${d.lookups} misses=${d.misses} errors=${d.errors}${errorReasons(d)}${deferred}`);
  }
  const ns = r.namespace;
  const disc = ns.discovery === null ? '' : ns.discovery.active ? 'active' : ns.discovery.enabled ? 'enabled, not active' : 'not enabled';
  out(`policy: explicit-first ${ns.explicitFirst ? 'on' : 'off'} (deferred=${ns.deferred}); listener discovery ${disc}`);
  const c = r.capacity;
  out(`capacity: bindings ${c.bindings.used}/${c.bindings.max}, destinations ${c.destinations.used}/${c.destinations.max}, sockets ${c.sockets.used}/${c.sockets.max}`);
  if (r.memory) out(`kernel memory: ${kib(r.memory.total)} locked by the state's maps`);
  for (const w of r.warnings) info(`warning: ${w.message}`);
}

function renderJson(s: State, r: StatusData, label: string | undefined): void {
  const head = {
    netns: s.target.netns,
    netnsIno: s.target.netnsIno,
    stateDir: s.target.stateDir,
    version: s.meta.version,
  };
  const { order, labelOf } = bindingOrder(r, label);
  outRaw(escapeJson(`${JSON.stringify(head, null, 2).slice(0, -2)},\n  "bindings": `));
  streamBindingsJson(r.bindings!, order, labelOf);
  const destinations = r.destinations.map((d) => ({ ...d, sk: d.socket === null ? null : BigInt(d.socket).toString(16) }));
  const rest = JSON.stringify({ namespace: r.namespace, destinations, warnings: r.warnings, capacity: r.capacity, kernelMemory: r.memory }, null, 2);
  outRaw(escapeJson(`,\n${rest.slice(2)}\n`));
}

function renderSummary(s: State, r: StatusData, json: boolean): void {
  const labels = summarize(r.destinations);
  if (json) {
    outJson({ netns: s.target.netns, netnsIno: s.target.netnsIno, stateDir: s.target.stateDir, version: s.meta.version, labels, warnings: r.warnings, capacity: r.capacity });
    return;
  }
  const n = (x: number): string => String(x);
  printTable(['LABEL', 'DESTINATIONS', 'BINDINGS', 'SOCKETS', 'LOOKUPS', 'MISSES', 'ERRORS'],
    labels.map((l) => [l.label, n(l.destinations), n(l.bindings), `${l.sockets}/${l.destinations}`, n(l.lookups), n(l.misses), n(l.errors)]));
  const c = r.capacity;
  out(`capacity: bindings ${c.bindings.used}/${c.bindings.max}, destinations ${c.destinations.used}/${c.destinations.max}, sockets ${c.sockets.used}/${c.sockets.max}`);
  for (const w of r.warnings) info(`warning: ${w.message}`);
}

/** `manifold status`. */
export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: ['status [label]', 'list [label]'],
  describe: 'Show bindings and destinations (socket, owner, counters), warnings and capacity',
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', describe: 'only this label' })
        .option('summary', { type: 'boolean', default: false, describe: 'one line per label: destinations, bindings, sockets, lookups, misses, errors' }),
      [
        ['status', 'everything: bindings, destinations, warnings, capacity'],
        ['status web', 'one label'],
        ['status --summary', 'one line per label'],
        ['status --json | jq \'.destinations[] | select(.socket == null)\'', 'destinations without a socket'],
      ],
    ),
  handler: (args) => {
    const label = args.label === undefined ? undefined : validateLabel(args.label);
    withState(openOptions(args, false), (s) => {
      const discovery = namespaceDiscovery(s.target.bpffs, s.netnsCookie);
      if (args.summary) {
        renderSummary(s, gatherStatus(s.maps, s.target.netnsIno, { label, bindings: false, discovery }), args.json);
        return;
      }
      const r = gatherStatus(s.maps, s.target.netnsIno, { label, bindings: true, discovery });
      if (args.json) renderJson(s, r, label);
      else render(r, label);
    });
  },
};
