/**
 * status: bindings, destinations with sockets, owners and counters,
 * warnings, capacity.
 */
import type { CommandModule } from 'yargs';
import { validateLabel } from '../../core/labels.js';
import { formatPrefix } from '../../core/net.js';
import { gatherStatus, type DestinationStatus, type StatusData } from '../../ops/status.js';
import { destName } from '../../ops/view.js';
import { withState, type State } from '../../state/state.js';
import { streamBindingsJson } from '../format.js';
import { escapeJson } from '../../core/escape.js';
import { info, out, outRaw } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';

/** Arguments of status. */
export interface StatusArgs extends GlobalArgs {
  label?: string | undefined;
}

function kib(bytes: number): string {
  return bytes >= 10 * 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

function ownerText(d: DestinationStatus): string {
  if (!d.alive) return '';
  const owner = d.owner ? `  owner=${d.owner.pid}(${d.owner.comm})${d.owners.length > 1 ? `+${d.owners.length - 1}` : ''}` : '  owner=?';
  return `${owner}${d.usable === false ? '  UNUSABLE' : ''}`;
}

function errorReasons(d: DestinationStatus): string {
  const parts = Object.entries(d.errorsByReason).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

function bindingOrder(r: StatusData, label: string | undefined): { order: number[]; labelOf: (i: number) => string } {
  const list = r.bindings!;
  const labelOf = (i: number): string => r.labels.get(list.tag(i)) ?? `#${list.tag(i)}`;
  const order = [...list.sortedIndices(labelOf)].filter((i) => label === undefined || labelOf(i) === label);
  return { order, labelOf };
}

function render(r: StatusData, label: string | undefined): void {
  const list = r.bindings!;
  const { order, labelOf } = bindingOrder(r, label);
  out(`bindings (${order.length}):`);
  if (order.length === 0) out('  (none)');
  for (const i of order) out(`  ${list.protocol(i).padEnd(4)}${formatPrefix(list.prefix(i)).padEnd(44)}${String(list.port(i)).padEnd(7)}-> ${labelOf(i)}`);
  out(`destinations (${r.destinations.length}):`);
  if (r.destinations.length === 0) out('  (none)');
  for (const d of r.destinations) {
    out(`  ${destName(d)}  socket=${d.socket ?? 'none'}${ownerText(d)}  bindings=${d.bindings}  lookups=${d.lookups} misses=${d.misses} errors=${d.errors}${errorReasons(d)}`);
  }
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
  const rest = JSON.stringify({ destinations: r.destinations, warnings: r.warnings, capacity: r.capacity, kernelMemory: r.memory }, null, 2);
  outRaw(escapeJson(`,\n${rest.slice(2)}\n`));
}

/** `manifold status`. */
export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status [label]',
  describe: 'Show bindings and destinations (socket, owner, counters), warnings and capacity',
  builder: (y) => y.positional('label', { type: 'string', describe: 'only this label' }),
  handler: (args) => {
    const label = args.label === undefined ? undefined : validateLabel(args.label);
    withState(openOptions(args, false), (s) => {
      const r = gatherStatus(s.maps, s.target.netnsIno, { label, bindings: true });
      if (args.json) renderJson(s, r, label);
      else render(r, label);
    });
  },
};
