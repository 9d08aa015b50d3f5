/**
 * Where the exporter listens: the sockets systemd passed (socket
 * activation, LISTEN_FDS), or an address and port from the command line.
 */
import net from 'node:net';
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { isListeningStream } from '../sys/socket.js';
import { parsePort } from '../core/net.js';
import { takeListenFds } from '../ops/listen-fds.js';

/** One place to listen on. */
export type ListenTarget = { kind: 'address'; host: string; port: number } | { kind: 'fd'; fd: number; name: string | null };

/** Throw unless `fd` is a listening stream socket (TCP or unix). */
export function checkListeningFd(fd: number): void {
  let listening: boolean;
  try {
    listening = isListeningStream(fd);
  } catch (err) {
    if (err instanceof SysError && err.errno === 88) throw new ManifoldError('ERR_BAD_SOCKET', `fd ${fd} (passed by systemd) is not a socket`);
    throw err;
  }
  if (!listening) {
    throw new ManifoldError('ERR_BAD_SOCKET', `fd ${fd} (passed by systemd) is not a listening stream socket: use ListenStream= in the .socket unit (and Accept=no)`);
  }
}

/**
 * Decide where to listen. With sockets passed to this process
 * (LISTEN_PID = our pid) they are used and no address may be given;
 * otherwise both address and port are required.
 */
export function listenTargets(address: string | undefined, port: string | undefined, env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ListenTarget[] {
  const activated = env.LISTEN_PID !== undefined && env.LISTEN_PID !== '';
  if (activated && (env.LISTEN_PID === String(pid) || address === undefined)) {
    if (address !== undefined) {
      throw new ManifoldError('ERR_USAGE', 'sockets were passed by systemd (LISTEN_FDS): give no address and port, the exporter serves on the passed sockets');
    }
    const fds = takeListenFds(env, pid);
    for (const f of fds) checkListeningFd(f.fd);
    return fds.map((f) => ({ kind: 'fd', fd: f.fd, name: f.name }));
  }
  if (address === undefined || port === undefined) {
    throw new ManifoldError('ERR_USAGE', 'give an address and a port to listen on (e.g. "manifold metrics 127.0.0.1 9733"), or start the exporter with systemd socket activation (manifold-metrics.socket)');
  }
  if (net.isIP(address) === 0 && address !== 'localhost') {
    throw new ManifoldError('ERR_USAGE', `invalid address ${JSON.stringify(address)}: expected an IPv4 or IPv6 address (e.g. 127.0.0.1 or ::1)`);
  }
  return [{ kind: 'address', host: address, port: parsePort(port) }];
}
