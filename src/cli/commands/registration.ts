/**
 * register, register-pid, unregister.
 */
import type { Argv } from 'yargs';
import { ManifoldError } from '../../errors.js';
import { labelProblem, validateLabel } from '../../core/labels.js';
import { parseAddress, parseDomain, parsePort, parseProtocol } from '../../core/net.js';
import { withState } from '../../state/state.js';
import { takeListenFds } from '../../ops/listen-fds.js';
import { inspectSocket } from '../../ops/socket-info.js';
import { registerSockets, unregisterSocket, type Registration } from '../../ops/register.js';
import { registerFromPid } from '../../ops/register-pid.js';
import { parsePidArg } from '../../ops/procfs.js';
import { emitEvent, Priority } from '../../log/events.js';
import { notifyStatus } from '../../log/notify.js';
import { out, outJson } from '../output.js';
import { openOptions, type GlobalArgs } from '../context.js';

function report(args: GlobalArgs, regs: Registration[]): void {
  for (const r of regs) {
    emitEvent('register', Priority.notice, `registered ${r.destination} socket ${r.cookie} (${r.action})`, {
      LABEL: r.label, DOMAIN: r.domain, PROTOCOL: r.protocol, SOCKET_COOKIE: r.cookie, ACTION: r.action,
    });
  }
  if (args.json) outJson(regs.length === 1 ? regs[0] : regs);
  else for (const r of regs) out(`${r.destination} socket=${r.cookie} ${r.action}${r.previousCookie && r.action === 'replaced' ? ` (was ${r.previousCookie})` : ''}`);
  notifyStatus(`registered ${regs.map((r) => `${r.destination} (socket ${r.cookie}, ${r.action})`).join(', ')}`);
}

/** Register the registration commands. */
export function registrationCommands(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command(
      'register [label]',
      'Register socket-activated fds (LISTEN_FDS); labels from the argument, $MANIFOLD_LABEL or LISTEN_FDNAMES',
      (a) => a.positional('label', { type: 'string', describe: 'label for every fd (default: $MANIFOLD_LABEL, else each fd name)' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { label?: string };
        const fixed = args.label ?? (process.env.MANIFOLD_LABEL || undefined);
        if (fixed !== undefined) validateLabel(fixed, args.label !== undefined ? 'label' : 'MANIFOLD_LABEL');
        const fds = takeListenFds();
        const requests = fds.map((f) => {
          const label = fixed ?? f.name;
          if (label === null) throw new ManifoldError('ERR_INVALID_ENV', `fd ${f.fd} has no name in LISTEN_FDNAMES: give a label argument or set FileDescriptorName=`);
          const problem = labelProblem(label);
          if (problem) throw new ManifoldError('ERR_INVALID_LABEL', `fd ${f.fd} is named ${JSON.stringify(label)}, which is not a valid label: ${problem}`);
          return { label, socket: inspectSocket(f.fd, `fd ${f.fd}`), what: `fd ${f.fd}${f.name ? ` (${f.name})` : ''}` };
        });
        const regs = withState(openOptions(args, true), (s) => registerSockets(s, requests));
        report(args, regs);
      },
    )
    .command(
      'register-pid <pid> <label> <protocol> <ip> <port>',
      "Register a running process's own listening TCP / unconnected UDP socket bound to ip:port",
      (a) =>
        a
          .positional('pid', { type: 'string', demandOption: true, describe: 'process id or pid file' })
          .positional('label', { type: 'string', demandOption: true })
          .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' })
          .positional('ip', { type: 'string', demandOption: true, describe: 'address the socket is bound to' })
          .positional('port', { type: 'string', demandOption: true, describe: 'port the socket is bound to' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { pid: string; label: string; protocol: string; ip: string; port: string };
        const label = validateLabel(args.label);
        const protocol = parseProtocol(args.protocol);
        const address = parseAddress(args.ip, 'ip');
        const port = parsePort(args.port);
        if (port === 0) throw new ManifoldError('ERR_INVALID_PORT', 'invalid port "0": a socket is bound to a specific port');
        const pid = parsePidArg(args.pid);
        const reg = withState(openOptions(args, true), (s) => registerFromPid(s, { pid, label, protocol, address, port }));
        report(args, [reg]);
      },
    )
    .command(
      'unregister <label> <domain> <protocol>',
      "Remove a destination's socket (its bindings then refuse traffic until a socket is registered again)",
      (a) =>
        a
          .positional('label', { type: 'string', demandOption: true })
          .positional('domain', { type: 'string', demandOption: true, describe: 'ipv4 or ipv6' })
          .positional('protocol', { type: 'string', demandOption: true, describe: 'tcp or udp' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { label: string; domain: string; protocol: string };
        const key = { label: validateLabel(args.label), domain: parseDomain(args.domain), protocol: parseProtocol(args.protocol) };
        const r = withState(openOptions(args, true), (s) => unregisterSocket(s, key));
        const name = `${key.domain}:${key.protocol}:${key.label}`;
        emitEvent('unregister', Priority.notice, `unregistered ${name}${r.cookie ? ` socket ${r.cookie}` : ' (had no socket)'}`, {
          LABEL: key.label, DOMAIN: key.domain, PROTOCOL: key.protocol, SOCKET_COOKIE: r.cookie ?? undefined,
        });
        if (args.json) outJson({ destination: name, cookie: r.cookie, removedDestination: r.removedDestination });
        else out(`${name} unregistered${r.cookie ? ` (socket ${r.cookie})` : ' (it had no socket)'}`);
      },
    );
}
