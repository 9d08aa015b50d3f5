/**
 * lookup: which binding wins for a connection or datagram, answered by the
 * loaded program itself (see src/ops/lookup.ts).
 */
import type { CommandModule } from 'yargs';
import { formatPrefix, parseAddress, parsePort, parseProtocol } from '../../core/net.js';
import type { Binding } from '../../core/binding.js';
import { ManifoldError } from '../../errors.js';
import { lookup, type LookupResult } from '../../ops/lookup.js';
import { withState } from '../../state/state.js';
import { info, out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

/** Arguments of lookup. */
export interface LookupArgs extends GlobalArgs {
  protocol: string;
  address: string;
  port: string;
  source?: string | undefined;
  'source-port'?: string | undefined;
}

function bindingText(b: Binding): string {
  return `${b.protocol} ${formatPrefix(b.prefix)} ${b.port} -> ${b.label}`;
}

function bindingJson(b: Binding): { label: string; protocol: string; prefix: string; port: number } {
  return { label: b.label, protocol: b.protocol, prefix: formatPrefix(b.prefix), port: b.port };
}

function kernelText(r: LookupResult): string {
  const k = r.kernel;
  if (k.reuseportGroup) return 'the program assigned a socket of an SO_REUSEPORT group (SK_PASS; the kernel picks the member)';
  if (k.socket !== null) return `the program assigned socket ${k.socket} (SK_PASS)`;
  return k.verdict === 'drop' ? 'the program refuses it (SK_DROP)' : 'the program passes without assigning a socket (SK_PASS)';
}

function render(r: LookupResult): void {
  out(`${r.protocol} ${r.address} port ${r.port}:`);
  if (r.binding) out(`  binding:     ${bindingText(r.binding)}`);
  out(`  why:         ${r.reason}`);
  for (const b of r.beaten) out(`  beats:       ${bindingText(b)}`);
  if (r.matches > r.beaten.length + (r.binding ? 1 : 0)) out(`  …            ${r.matches - r.beaten.length - 1} more matching bindings`);
  if (r.destination) {
    const d = r.destination;
    const owner = d.owner ? `  owner=${d.owner.pid}(${d.owner.comm})` : '';
    const ino = d.inode !== null ? `  ino:${d.inode}` : '';
    const serving = d.target !== null ? `target=${d.target}` : `socket=${d.socket ?? 'none (traffic is refused)'}${ino}${owner}`;
    out(`  destination: ${d.name}  ${serving}`);
  }
  if (r.explicitFirst) out('  policy:      explicit listeners first');
  out(`  kernel:      ${kernelText(r)}`);
  out(`  outcome:     ${r.outcome}`);
}

/** `manifold lookup`. */
export const lookupCommand: CommandModule<GlobalArgs, LookupArgs> = {
  command: 'lookup <protocol> <address> <port>',
  describe: 'Show which binding, destination and socket the loaded program picks for a connection to ADDRESS:PORT, and why',
  builder: (y) =>
    commandHelp(
      y
        .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
        .positional('address', { type: 'string', demandOption: true, describe: 'the local address connected to (IPv4 or IPv6)' })
        .positional('port', { type: 'string', demandOption: true, describe: 'the local port' })
        .option('source', { type: 'string', describe: 'the remote address (default 198.51.100.7 or 2001:db8::7)' })
        .option('source-port', { type: 'string', describe: 'the remote port (default 40000)' }),
      [
        ['lookup tcp 192.0.2.10 443', 'which socket gets a TCP connection to 192.0.2.10:443'],
        ['lookup udp 2001:db8::53 53 --json', 'the same for a UDP datagram, as JSON'],
      ],
    ),
  handler: (args) => {
    const protocol = parseProtocol(args.protocol);
    const address = parseAddress(args.address);
    const port = parsePort(args.port);
    if (port === 0) throw new ManifoldError('ERR_INVALID_PORT', 'lookup takes the port of a connection (1-65535), not 0');
    const source = args.source === undefined && args['source-port'] === undefined
      ? undefined
      : {
        address: args.source === undefined
          ? (address.domain === 'ipv4' ? parseAddress('198.51.100.7') : parseAddress('2001:db8::7'))
          : parseAddress(args.source, '--source'),
        port: args['source-port'] === undefined ? 40000 : parsePort(args['source-port'], '--source-port'),
      };
    // A reader: nothing is written (the program copy reads the state's maps and counts into its own).
    const r = withState(openOptions(args, false), (s) => lookup(s.maps, s.dir, s.target.netnsIno, { protocol, address, port, ...(source ? { source } : {}) }));
    if (args.json) outJson({ ...r, binding: r.binding ? bindingJson(r.binding) : null, beaten: r.beaten.map(bindingJson) });
    else render(r);
    if (!r.agrees) {
      info('manifold: warning: the kernel\'s answer differs from what the bindings predict (a write in progress, or a bug: please report it)');
      process.exitCode = 1;
    }
  },
};
