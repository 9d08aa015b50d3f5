/**
 * register, register-pid, unregister.
 */
import type { CommandModule } from 'yargs';
import { ManifoldError } from '../../errors.js';
import { validateLabel } from '../../core/labels.js';
import { parseAddress, parseDomain, parsePort, parseProtocol } from '../../core/net.js';
import { withState } from '../../state/state.js';
import { fixedLabel, listenFdRequests, registerListenFds } from '../../ops/register-fds.js';
import { unregisterSocket, type Registration } from '../../ops/register.js';
import { registerFromPid } from '../../ops/register-pid.js';
import { parsePidArg } from '../../ops/procfs.js';
import { emitEvent, Priority } from '../../log/events.js';
import { notifyStatus } from '../../log/notify.js';
import { out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

function report(args: GlobalArgs, regs: Registration[]): void {
  for (const r of regs) {
    emitEvent('register', Priority.notice, `registered ${r.destination} socket ${r.cookie} (${r.action})`, {
      LABEL: r.label, DOMAIN: r.domain, PROTOCOL: r.protocol, SOCKET_COOKIE: r.cookie, ACTION: r.action,
    });
  }
  if (args.json) outJson(regs.length === 1 ? regs[0] : regs);
  else for (const r of regs) out(`${r.destination} socket=${r.cookie} ${r.action}${r.action === 'replaced' ? ` (was ${r.previousCookie ?? `target ${r.previousTarget}`})` : ''}`);
  notifyStatus(`registered ${regs.map((r) => `${r.destination} (socket ${r.cookie}, ${r.action})`).join(', ')}`);
}

/** Arguments of register. */
export interface RegisterArgs extends GlobalArgs {
  label?: string | undefined;
}

/** `manifold register`. */
export const registerCommand: CommandModule<GlobalArgs, RegisterArgs> = {
  command: 'register [label]',
  describe: 'Register socket-activated fds (LISTEN_FDS); labels from the argument, $MANIFOLD_LABEL or LISTEN_FDNAMES',
  builder: (y) =>
    commandHelp(y.positional('label', { type: 'string', describe: 'label for every fd (default: $MANIFOLD_LABEL, else each fd name)' }), [
      ['register', 'in a unit with Sockets=: each fd under its FileDescriptorName='],
      ['register web', 'every passed fd under label web'],
    ]),
  handler: (args) => {
    const requests = listenFdRequests(fixedLabel(args.label));
    const regs = withState(openOptions(args, true), (s) => registerListenFds(s.maps, s.target.netnsIno, requests));
    report(args, regs);
  },
};

/** Arguments of register-pid. */
export interface RegisterPidArgs extends GlobalArgs {
  pid: string;
  label: string;
  protocol: string;
  ip: string;
  port: string;
}

/** `manifold register-pid`. */
export const registerPidCommand: CommandModule<GlobalArgs, RegisterPidArgs> = {
  command: 'register-pid <pid> <label> <protocol> <ip> <port>',
  describe: "Register a running process's own listening TCP / unconnected UDP socket bound to ip:port",
  builder: (y) =>
    commandHelp(
      y
        .positional('pid', { type: 'string', demandOption: true, describe: 'process id or pid file' })
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination' })
        .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
        .positional('ip', { type: 'string', demandOption: true, describe: 'address the socket is bound to' })
        .positional('port', { type: 'string', demandOption: true, describe: 'port the socket is bound to' }),
      [
        ['register-pid "$(pidof nginx)" web tcp 127.0.0.1 8080', "nginx's listener on 127.0.0.1:8080 serves label web"],
        ['register-pid /run/named.pid dns udp ::1 53', 'a pid file, an IPv6 UDP socket'],
      ],
    ),
  handler: (args) => {
    const label = validateLabel(args.label);
    const protocol = parseProtocol(args.protocol);
    const address = parseAddress(args.ip, 'ip');
    const port = parsePort(args.port);
    if (port === 0) throw new ManifoldError('ERR_INVALID_PORT', 'invalid port "0": a socket is bound to a specific port');
    const pid = parsePidArg(args.pid);
    const reg = withState(openOptions(args, true), (s) => registerFromPid(s.maps, s.target.netnsIno, { pid, label, protocol, address, port }));
    report(args, [reg]);
  },
};

/** Arguments of unregister. */
export interface UnregisterArgs extends GlobalArgs {
  label: string;
  domain: string;
  protocol: string;
}

/** `manifold unregister`. */
export const unregisterCommand: CommandModule<GlobalArgs, UnregisterArgs> = {
  command: 'unregister <label> <domain> <protocol>',
  describe: "Remove a destination's socket (its bindings then refuse traffic until a socket is registered again)",
  builder: (y) =>
    commandHelp(
      y
        .positional('label', { type: 'string', demandOption: true, describe: 'label of the destination' })
        .positional('domain', { type: 'string', demandOption: true, describe: 'ipv4 or ipv6' })
        .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' }),
      [['unregister web ipv4 tcp', "remove web's IPv4 TCP socket (its bindings refuse traffic)"]],
    ),
  handler: (args) => {
    const key = { label: validateLabel(args.label), domain: parseDomain(args.domain), protocol: parseProtocol(args.protocol) };
    const r = withState(openOptions(args, true), (s) => unregisterSocket(s.maps, key));
    emitEvent('unregister', Priority.notice, `unregistered ${r.destination} socket ${r.cookie}`, {
      LABEL: key.label, DOMAIN: key.domain, PROTOCOL: key.protocol, SOCKET_COOKIE: r.cookie,
    });
    if (args.json) outJson({ destination: r.destination, cookie: r.cookie, removedDestination: r.removedDestination });
    else out(`${r.destination} unregistered (socket ${r.cookie})`);
  },
};
