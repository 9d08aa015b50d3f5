/**
 * bindings: list the live bindings, most specific first. On a terminal:
 * a header, aligned columns, consecutive ports as one range; to a pipe or
 * file: one binding per line, tab-separated (stable for scripts).
 */
import type { CommandModule } from 'yargs';
import { validateLabel } from '../../core/labels.js';
import { prefixContains } from '../../core/binding.js';
import { formatPorts, formatPrefix, parsePort, parsePrefix, parseProtocolOrAny, type Prefix } from '../../core/net.js';
import { readLive } from '../../ops/read.js';
import { withState } from '../../state/state.js';
import { collapseIndices, streamBindingRows, streamBindingsJson } from '../format.js';
import { commandHelp } from '../help.js';
import { printTable } from '../table.js';
import { stdoutIsTerminal } from '../tty.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { out } from '../output.js';

/** Arguments of `bindings`. */
export interface ListArgs extends GlobalArgs {
  label?: string | undefined;
  protocol?: string | undefined;
  prefix?: string | undefined;
  port?: string | undefined;
}

/** Whether two prefixes of one family overlap (one contains the other). */
function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.domain !== b.domain) return false;
  return a.len <= b.len ? prefixContains(a, b.addr) : prefixContains(b, a.addr);
}

/** `manifold bindings`. */
export const bindingsCommand: CommandModule<GlobalArgs, ListArgs> = {
  command: 'bindings [protocol] [prefix] [port]',
  describe: 'List bindings, most specific first',
  builder: (y) =>
    commandHelp(
      y
        .positional('protocol', { type: 'string', describe: 'only tcp or udp (any: both); or --protocol' })
        .positional('prefix', { type: 'string', describe: 'only bindings whose prefix overlaps this address or prefix; or --prefix' })
        .positional('port', { type: 'string', describe: 'only bindings that match this port (exact or 0); or --port' })
        .option('label', { type: 'string', describe: 'only this label' }),
      [
        ['bindings', 'every binding (a table on a terminal; tab-separated, one binding per line, in a pipe)'],
        ['bindings any 192.0.2.7 80', 'the bindings a connection to 192.0.2.7:80 could match (tubectl\'s form; --prefix 192.0.2.7 --port 80 too)'],
        ['bindings tcp 10.0.0.0/8', 'TCP bindings within or around 10.0.0.0/8'],
        ['bindings --label web --json', 'one label, as JSON (accepted by "manifold apply")'],
      ],
    ),
  handler: (args) => {
    const label = args.label === undefined ? undefined : validateLabel(args.label);
    const protocol = args.protocol === undefined ? undefined : (parseProtocolOrAny(args.protocol) ?? undefined);
    const prefix = args.prefix === undefined ? undefined : parsePrefix(args.prefix);
    const port = args.port === undefined ? undefined : parsePort(args.port, 'port');
    const snap = withState(openOptions(args, false), (s) => readLive(s.maps, { bindings: true }));
    const list = snap.bindings!;
    const labels = new Map(snap.destinations.map((d) => [d.id, d.label]));
    const labelOf = (i: number): string => labels.get(list.tag(i)) ?? `#${list.tag(i)}`;
    const matches = (i: number): boolean => {
      if (label !== undefined && labelOf(i) !== label) return false;
      if (protocol !== undefined && list.protocol(i) !== protocol) return false;
      if (port !== undefined && list.port(i) !== port && list.port(i) !== 0) return false;
      if (prefix !== undefined && !overlaps(list.prefix(i), prefix)) return false;
      return true;
    };
    const sorted = list.sortedIndices(labelOf, { uniqueKeys: true }); // a generation's keys are unique
    const filtered = label !== undefined || protocol !== undefined || port !== undefined || prefix !== undefined;
    const keep = filtered ? sorted.filter(matches) : sorted;
    if (args.json) streamBindingsJson(list, keep, labelOf);
    else if (stdoutIsTerminal()) {
      if (keep.length === 0 && filtered) {
        out('no bindings matched');
        return;
      }
      const rows = collapseIndices(list, keep, labelOf).map((r) => [list.protocol(r.index), formatPrefix(list.prefix(r.index)), formatPorts(r.first, r.last), r.label]);
      printTable(['PROTOCOL', 'PREFIX', 'PORT', 'LABEL'], rows);
    } else streamBindingRows(list, keep, labelOf);
  },
};
