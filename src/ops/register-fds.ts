/**
 * register: the sockets systemd passed by socket activation
 * (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES), each under a fixed label or its
 * fd name, inspected and registered all or nothing.
 */
import fs from 'node:fs';
import { labelProblem, validateLabel } from '../core/labels.js';
import { quote } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import type { DispatcherMaps } from '../state/maps.js';
import { takeListenFds } from './listen-fds.js';
import { registerSockets, type Registration, type SocketRequest } from './register.js';
import { inspectSocket } from './socket-info.js';

/** Where the label comes from: the argument, else $MANIFOLD_LABEL, else each fd's name. */
export function fixedLabel(argument: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (argument !== undefined) return validateLabel(argument, 'label');
  const fromEnv = env.MANIFOLD_LABEL;
  if (fromEnv === undefined || fromEnv === '') return undefined;
  return validateLabel(fromEnv, 'MANIFOLD_LABEL');
}

/** True when fd is an anonymous inode (an epoll, an eventfd…): never a socket systemd passed. */
function runtimeFd(fd: number): boolean {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:');
  } catch {
    return false;
  }
}

/** Take the passed fds and build the requests (before the state is opened: nothing is changed on error). */
export function listenFdRequests(label: string | undefined, env: NodeJS.ProcessEnv = process.env): SocketRequest[] {
  return takeListenFds(env).map((f) => {
    const l = label ?? f.name;
    if (l === null) throw new ManifoldError('ERR_INVALID_ENV', `fd ${f.fd} has no name in LISTEN_FDNAMES: give a label argument or set FileDescriptorName=`);
    const problem = labelProblem(l);
    if (problem) throw new ManifoldError('ERR_INVALID_LABEL', `fd ${f.fd} is named ${quote(l)}, which is not a valid label: ${problem}`);
    const what = `fd ${f.fd}${f.name ? ` (${f.name.length > 80 ? `${f.name.slice(0, 79)}…` : f.name})` : ''}`;
    try {
      return { label: l, socket: inspectSocket(f.fd, what), what };
    } catch (err) {
      // systemd passes sockets (and files): an anonymous inode there is one of this process's own
      // (the runtime's event loop took the number), so LISTEN_FDS counts fds that were never passed.
      if (err instanceof ManifoldError && err.code === 'ERR_BAD_SOCKET' && runtimeFd(f.fd)) {
        throw new ManifoldError('ERR_BAD_SOCKET', `${err.message}: fewer fds were passed than LISTEN_FDS says (this one is manifold's own)`);
      }
      throw err;
    }
  });
}

/** Register the requests. */
export function registerListenFds(maps: DispatcherMaps, netnsIno: number, requests: readonly SocketRequest[]): Registration[] {
  return registerSockets(maps, netnsIno, requests);
}
