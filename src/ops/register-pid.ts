/**
 * register-pid: take a running process's own listening TCP socket or
 * unconnected UDP socket (bound exactly to ip:port) with pidfd_getfd.
 * The socket is found through /proc first (procfs.ts), pidfd_getfd is
 * called only for that fd, and the socket obtained is checked to be the one
 * found (same inode) before anything changes: a process that swaps the fd
 * meanwhile, or a reused pid, is refused instead of registering another
 * socket.
 */
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { closeFd, pidfdGetfd, pidfdOpen } from '../sys/libc.js';
import { formatAddr, formatEndpoint, type Prefix, type Protocol } from '../core/net.js';
import type { DispatcherMaps } from '../state/maps.js';
import { boundSockets, fdHolding, namespaceSockets, processNetnsIno, threadGroupOf } from './procfs.js';
import { inspectSocket } from './socket-info.js';
import { registerSockets, type Registration } from './register.js';
import { step } from './faults.js';

/** What to look for. */
export interface PidSocketQuery {
  pid: number;
  label: string;
  protocol: Protocol;
  address: Prefix;
  port: number;
}

function noMatch(q: PidSocketQuery, wanted: string): ManifoldError {
  const listening = namespaceSockets(q.pid).filter((s) => s.usable).map((s) => `${s.protocol} ${formatEndpoint(s.domain, s.address, s.port)}`);
  const unique = [...new Set(listening)].sort();
  return new ManifoldError(
    'ERR_NO_MATCHING_SOCKET',
    `process ${q.pid} has no ${q.protocol === 'tcp' ? 'listening' : 'unconnected'} socket bound to ${wanted}; its network namespace ${unique.length ? `has: ${unique.slice(0, 20).join(', ')}${unique.length > 20 ? ', …' : ''}` : 'has no listening TCP or unconnected UDP sockets'}`,
  );
}

/** Find the socket in the process and register it. */
export function registerFromPid(maps: DispatcherMaps, netnsIno: number, q: PidSocketQuery): Registration {
  const tgid = threadGroupOf(q.pid);
  if (tgid !== q.pid) throw new ManifoldError('ERR_INVALID_PID', `${q.pid} is a thread of process ${tgid}, not a process: give the process id (${tgid})`);
  const nsIno = processNetnsIno(q.pid);
  if (nsIno !== netnsIno) {
    throw new ManifoldError('ERR_WRONG_NETNS', `process ${q.pid} is in network namespace ${nsIno}, not in the target namespace ${netnsIno} (use --netns /proc/${q.pid}/ns/net to act on its namespace)`);
  }
  const wanted = `${q.protocol} ${formatEndpoint(q.address.domain, formatAddr(q.address.addr), q.port)}`;
  // Several inodes = an SO_REUSEPORT group (or SO_REUSEADDR UDP sockets): registering one is enough.
  const inodes = boundSockets(q.pid, q.protocol, q.address.domain, q.address.addr, q.port);
  const held = inodes.length ? fdHolding(q.pid, inodes) : null;
  if (!held) {
    // Gone meanwhile: that, not "no socket" (its namespace could no longer be read).
    processNetnsIno(q.pid);
    throw noMatch(q, wanted);
  }
  step('register-pid-found');
  let pidfd: number;
  try {
    pidfd = pidfdOpen(q.pid);
  } catch (err) {
    if (err instanceof SysError && err.errno === 3) throw new ManifoldError('ERR_NO_SUCH_PROCESS', `no such process: ${q.pid}`);
    throw err;
  }
  let local = -1;
  try {
    try {
      local = pidfdGetfd(pidfd, held.fd);
    } catch (err) {
      if (err instanceof SysError && err.errno === 9) throw new ManifoldError('ERR_NO_MATCHING_SOCKET', `process ${q.pid} closed its socket ${wanted} (fd ${held.fd}) while it was being registered; nothing was changed`);
      if (err instanceof SysError && err.errno === 3) throw new ManifoldError('ERR_NO_SUCH_PROCESS', `process ${q.pid} exited; nothing was changed`);
      if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
        throw new ManifoldError('ERR_PERMISSION', `permission denied taking fd ${held.fd} of process ${q.pid} (pidfd_getfd needs root or CAP_SYS_PTRACE over the process)`);
      }
      throw err;
    }
    const info = inspectSocket(local, `fd ${held.fd} of process ${q.pid}`);
    if (info.inode !== held.inode) {
      throw new ManifoldError('ERR_NO_MATCHING_SOCKET', `fd ${held.fd} of process ${q.pid} changed while it was being registered (it no longer holds the socket bound to ${wanted}); nothing was changed`);
    }
    if (info.protocol !== q.protocol || info.domain !== q.address.domain || info.local.address !== formatAddr(q.address.addr) || info.local.port !== q.port) {
      throw new ManifoldError('ERR_NO_MATCHING_SOCKET', `fd ${held.fd} of process ${q.pid} is not bound to ${wanted} any more; nothing was changed`);
    }
    const [reg] = registerSockets(maps, netnsIno, [{ label: q.label, socket: info, what: `fd ${held.fd} of process ${q.pid}` }]);
    if (!reg) throw new Error('registration produced no result');
    // The process's fd, not this process's copy of it (closed when this returns).
    return { ...reg, fd: held.fd };
  } finally {
    if (local >= 0) closeFd(local);
    closeFd(pidfd);
  }
}
