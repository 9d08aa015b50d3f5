/**
 * bind and unbind: parse, one ops call, output.
 */
import type { CommandModule } from 'yargs';
import { validateLabel } from '../../core/labels.js';
import { formatPrefix, parsePortRange, parsePrefix, parseProtocol } from '../../core/net.js';
import { bindingToJson, type Binding } from '../../core/binding.js';
import { bind, unbind, type BindRequest, type BindResult } from '../../ops/bind.js';
import { unservedText } from '../../ops/safety.js';
import { withState } from '../../state/state.js';
import { emitEvent, Priority } from '../../log/events.js';
import { bindingText, collapse, type BindingRange } from '../format.js';
import { info, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

/** Arguments of bind and unbind. */
export interface BindArgs extends GlobalArgs {
  label: string;
  protocol: string;
  prefix: string;
  port: string;
  force?: boolean;
}

/** The request of a bind or unbind command line (also run by the snapshot warm-up, src/entry/warmup-ops.ts). */
export function bindRequest(args: Pick<BindArgs, 'label' | 'protocol' | 'prefix' | 'port' | 'force'>): BindRequest {
  return {
    label: validateLabel(args.label),
    protocol: parseProtocol(args.protocol),
    prefix: parsePrefix(args.prefix),
    ports: parsePortRange(args.port),
    force: args.force === true,
  };
}

function rangeText(r: BindingRange): string {
  return bindingText(r.protocol, r.prefix, r.first, r.last);
}

function events(kind: 'bind' | 'unbind', list: readonly Binding[]): void {
  for (const r of collapse(list)) {
    emitEvent(kind, Priority.info, `${kind === 'bind' ? 'bound' : 'unbound'} ${rangeText(r)} ${kind === 'bind' ? '->' : 'from'} ${r.label}`, {
      LABEL: r.label, PROTOCOL: r.protocol, PREFIX: formatPrefix(r.prefix), PORT: r.first === r.last ? r.first : `${r.first}-${r.last}`,
    });
  }
}

function print(args: GlobalArgs, r: BindResult): void {
  if (args.json) {
    outJson({
      added: r.added.map(bindingToJson),
      relabelled: r.relabelled.map((x) => ({ ...bindingToJson(x.binding), from: x.from })),
      unchanged: r.unchanged.map(bindingToJson),
      removed: r.removed.map(bindingToJson),
      destination: r.destination,
      socket: r.hasSocket,
    });
    return;
  }
  for (const x of collapse(r.added)) info(`bound ${rangeText(x)} -> ${x.label}`);
  for (const x of collapse(r.relabelled.map((y) => y.binding), (b) => r.relabelled.find((y) => y.binding === b)?.from)) info(`bound ${rangeText(x)} -> ${x.label} (was ${x.note ?? '?'})`);
  for (const x of collapse(r.unchanged)) info(`already bound ${rangeText(x)} -> ${x.label}`);
  for (const x of collapse(r.removed)) info(`unbound ${rangeText(x)} from ${x.label}`);
}

function warnUnserved(r: BindResult, req: BindRequest): void {
  if (r.hasSocket || r.added.length + r.relabelled.length === 0) return;
  info(`manifold: warning: ${unservedText({ destination: r.destination, protocol: req.protocol, prefix: req.prefix, first: req.ports.first, last: req.ports.last })}`);
}

/** `manifold bind`. */
export const bindCommand: CommandModule<GlobalArgs, BindArgs> = {
  command: 'bind <label> <protocol> <prefix> <port>',
  describe: 'Bind a prefix and port (0 = all ports, or a range A-B) to a label',
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination' })
        .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
        .positional('prefix', { type: 'string', demandOption: true, describe: 'IP address or prefix (host bits are masked)' })
        .positional('port', { type: 'string', demandOption: true, describe: 'port, 0 for all ports, or a range A-B' })
        .option('force', { type: 'boolean', default: false, describe: 'bind a whole address family (prefix /0) even though the label has no socket yet' }),
      [
        ['bind web tcp 192.0.2.0/24 80', 'port 80 of a /24 to label web'],
        ['bind web tcp 192.0.2.0/24 8000-8080', 'a port range (at most 4096 ports)'],
        ['bind dns udp 2001:db8::/64 0', 'every port of a /64'],
      ],
    ),
  handler: (args) => {
    const req = bindRequest(args);
    const r = withState(openOptions(args, true), (s) => bind(s.maps, req));
    events('bind', [...r.added, ...r.relabelled.map((x) => x.binding)]);
    print(args, r);
    warnUnserved(r, req);
  },
};

/** `manifold unbind`. */
export const unbindCommand: CommandModule<GlobalArgs, BindArgs> = {
  command: 'unbind <label> <protocol> <prefix> <port>',
  describe: 'Remove bindings of a label (a range: all of them or none)',
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination' })
        .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
        .positional('prefix', { type: 'string', demandOption: true, describe: 'IP address or prefix (host bits are masked)' })
        .positional('port', { type: 'string', demandOption: true, describe: 'port, 0 for all ports, or a range A-B' }),
      [
        ['unbind web tcp 192.0.2.0/24 80', 'remove one binding'],
        ['unbind web tcp 192.0.2.0/24 8000-8080', 'remove a range (all of it or nothing)'],
      ],
    ),
  handler: (args) => {
    const req = bindRequest(args);
    const r = withState(openOptions(args, true), (s) => unbind(s.maps, req));
    events('unbind', r.removed);
    print(args, r);
  },
};
