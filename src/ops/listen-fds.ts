/**
 * Socket activation fds per sd_listen_fds(3): LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES; fds start at 3.
 */
import { ManifoldError } from '../errors.js';
import { setCloexec } from '../sys/libc.js';

/** One passed fd and its name (FileDescriptorName=, or null). */
export interface ListenFd {
  fd: number;
  name: string | null;
}

const SD_LISTEN_FDS_START = 3;

/**
 * Read the passed fds from `env` (process.env by default), mark them
 * close-on-exec and remove the three variables from the environment.
 * LISTEN_PID, when set, must be this process (else the fds were passed to a
 * shell or wrapper that did not exec manifold); when it is not set at all,
 * LISTEN_FDS is taken as it is, as tubectl does (a harness or wrapper that
 * passes fds by hand; systemd always sets it).
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ListenFd[] {
  const listenPid = env.LISTEN_PID;
  const listenFds = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  const hint = 'manifold register must be started by systemd with socket activation (a .socket unit, Sockets= in the service, or a socket\'s ExecStartPost= with PassFileDescriptorsToExec=yes), the command running manifold directly';
  const pidGiven = listenPid !== undefined && listenPid !== '';
  if (pidGiven && !/^\d+$/.test(listenPid)) throw new ManifoldError('ERR_INVALID_ENV', `LISTEN_PID=${JSON.stringify(listenPid)} is not a process id`);
  if (pidGiven && Number(listenPid) !== pid) {
    throw new ManifoldError('ERR_INVALID_ENV', `LISTEN_PID=${listenPid} but this process is ${pid}: the sockets were passed to another process (a shell or wrapper?); ExecStart= must exec manifold directly`);
  }
  if (listenFds === undefined || listenFds === '') throw new ManifoldError('ERR_NO_FDS', `LISTEN_FDS is not set: ${hint}`);
  if (!/^\d+$/.test(listenFds) || Number(listenFds) > 4096) throw new ManifoldError('ERR_INVALID_ENV', `LISTEN_FDS=${JSON.stringify(listenFds)} is not a valid count of file descriptors`);
  const n = Number(listenFds);
  if (n === 0) throw new ManifoldError('ERR_NO_FDS', 'LISTEN_FDS=0: no sockets were passed');
  let nameList: (string | null)[] = new Array<string | null>(n).fill(null);
  if (names !== undefined && names !== '') {
    const parts = names.split(':');
    if (parts.length !== n) throw new ManifoldError('ERR_INVALID_ENV', `LISTEN_FDNAMES has ${parts.length} ${parts.length === 1 ? 'name' : 'names'} but LISTEN_FDS=${n}`);
    nameList = parts.map((p) => (p === '' ? null : p));
  }
  const out: ListenFd[] = [];
  for (let i = 0; i < n; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    try {
      setCloexec(fd);
    } catch {
      throw new ManifoldError('ERR_BAD_SOCKET', `fd ${fd} (passed by LISTEN_FDS=${n}) is not open`);
    }
    out.push({ fd, name: nameList[i] ?? null });
  }
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  return out;
}
