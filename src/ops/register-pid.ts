/**
 * register-pid: take a running process's own listening TCP socket or
 * unconnected UDP socket (bound exactly to ip:port) with pidfd_getfd.
 * Socket inodes are resolved through /proc first, so pidfd_getfd is only
 * called for the candidate fd.
 */
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { closeFd, pidfdGetfd, pidfdOpen } from '../sys/libc.js';
import { formatAddr, type Prefix, type Protocol } from '../core/net.js';
import type { State } from '../state/state.js';
import { namespaceSockets, processNetnsIno, socketFds } from './procfs.js';
import { inspectSocket } from './socket-info.js';
import { registerSockets, type Registration } from './register.js';

/** What to look for. */
export interface PidSocketQuery {
  pid: number;
  label: string;
  protocol: Protocol;
  address: Prefix;
  port: number;
}

function describe(p: Protocol, address: string, port: number, domain: string): string {
  return `${p} ${domain === 'ipv6' ? `[${address}]` : address}:${port}`;
}

/** Find the socket in the process and register it. */
export function registerFromPid(state: State, q: PidSocketQuery): Registration {
  const nsIno = processNetnsIno(q.pid);
  if (nsIno !== state.target.netnsIno) {
    throw new ManifoldError('ERR_WRONG_NETNS', `process ${q.pid} is in network namespace ${nsIno}, not in the target namespace ${state.target.netnsIno} (use --netns /proc/${q.pid}/ns/net to act on its namespace)`);
  }
  const wantAddr = formatAddr(q.address.addr);
  const fds = socketFds(q.pid);
  const sockets = namespaceSockets(q.pid).filter((s) => fds.has(s.inode));
  const matches = sockets.filter((s) => s.protocol === q.protocol && s.domain === q.address.domain && s.address === wantAddr && s.port === q.port && s.usable);
  const wanted = describe(q.protocol, wantAddr, q.port, q.address.domain);
  if (matches.length === 0) {
    const listening = sockets.filter((s) => s.usable).map((s) => describe(s.protocol, s.address, s.port, s.domain));
    const unique = [...new Set(listening)].sort();
    throw new ManifoldError(
      'ERR_NO_MATCHING_SOCKET',
      `process ${q.pid} has no ${q.protocol === 'tcp' ? 'listening' : 'unconnected'} socket bound to ${wanted}; it ${unique.length ? `listens on: ${unique.join(', ')}` : 'has no listening TCP or unconnected UDP sockets'}`,
    );
  }
  // Several inodes = an SO_REUSEPORT group: registering one is enough.
  const match = matches[0]!;
  const fdNums = fds.get(match.inode) ?? [];
  let pidfd: number;
  try {
    pidfd = pidfdOpen(q.pid);
  } catch (err) {
    if (err instanceof SysError && err.errno === 3) throw new ManifoldError('ERR_NO_SUCH_PROCESS', `no such process: ${q.pid}`);
    throw err;
  }
  try {
    for (const targetFd of fdNums) {
      let local: number;
      try {
        local = pidfdGetfd(pidfd, targetFd);
      } catch (err) {
        if (err instanceof SysError && err.errno === 9) continue; // closed meanwhile; try the next copy
        if (err instanceof SysError && err.errno === 3) throw new ManifoldError('ERR_NO_SUCH_PROCESS', `process ${q.pid} exited`);
        if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
          throw new ManifoldError('ERR_PERMISSION', `permission denied taking fd ${targetFd} of process ${q.pid} (pidfd_getfd needs root or CAP_SYS_PTRACE over the process)`);
        }
        throw err;
      }
      try {
        const info = inspectSocket(local, `fd ${targetFd} of process ${q.pid}`);
        const [reg] = registerSockets(state, [{ label: q.label, socket: info, what: `fd ${targetFd} of process ${q.pid} (${wanted})` }]);
        if (!reg) throw new Error('registration produced no result');
        return reg;
      } finally {
        closeFd(local);
      }
    }
  } finally {
    closeFd(pidfd);
  }
  throw new ManifoldError('ERR_NO_MATCHING_SOCKET', `process ${q.pid} closed its socket ${wanted} while it was being registered`);
}
