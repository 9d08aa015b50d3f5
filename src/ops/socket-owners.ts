/**
 * Who holds a registered socket. The sockmap only gives a socket's cookie,
 * so: scan /proc/PID/fd for socket inodes, narrow them to the target
 * namespace's sockets of the wanted family and protocol (its
 * /proc/PID/net tables), take one copy of each candidate with pidfd_getfd
 * and compare SO_COOKIE. Needs root (or CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH);
 * whatever is not permitted is skipped, so the result may be incomplete but
 * is never wrong.
 */
import fs from 'node:fs';
import { closeFd, pidfdGetfd, pidfdOpen } from '../sys/libc.js';
import type { Domain, Protocol } from '../core/net.js';
import { namespaceSockets, type ProcSocket } from './procfs.js';
import { inspectSocket } from './socket-info.js';

/** A process holding a socket. */
export interface SocketOwner {
  pid: number;
  comm: string;
}

/** What was found about one socket cookie. */
export interface SocketHolding {
  /** Every process holding the socket, by pid. */
  owners: SocketOwner[];
  /** TCP: listening; UDP: unconnected (what bpf_sk_assign accepts). */
  usable: boolean;
}

/** A socket to look for. */
export interface WantedSocket {
  cookie: bigint;
  domain: Domain;
  protocol: Protocol;
}

/** Upper bound on pidfd_getfd calls per search (each is a few syscalls). */
const MAX_PROBES = 4096;

interface Holder {
  pid: number;
  fd: number;
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function netnsOf(pid: number): number | null {
  try {
    return Number(fs.statSync(`/proc/${pid}/ns/net`).ino);
  } catch {
    return null;
  }
}

/** socket inode -> holders, over every process we may inspect. */
function scanHolders(): { holders: Map<number, Holder[]>; pidInNetns: (ino: number) => number | null } {
  const holders = new Map<number, Holder[]>();
  const nsPid = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    pids = [];
  }
  for (const name of pids) {
    const pid = Number(name);
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to see
    }
    const ns = netnsOf(pid);
    if (ns !== null && !nsPid.has(ns)) nsPid.set(ns, pid);
    for (const fdName of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fdName}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (!m) continue;
      const inode = Number(m[1]);
      const list = holders.get(inode);
      const h = { pid, fd: Number(fdName) };
      if (list) list.push(h);
      else holders.set(inode, [h]);
    }
  }
  return { holders, pidInNetns: (ino) => nsPid.get(ino) ?? null };
}

/**
 * A TCP socket stays in a sockmap only while it listens (closing or
 * shutting it down unhashes it), so only listeners can be registered TCP
 * sockets; any UDP socket can be (one connect()ed after registration stays).
 */
function candidate(s: ProcSocket, kinds: Set<string>): boolean {
  if (!kinds.has(`${s.domain}:${s.protocol}`)) return false;
  return s.protocol === 'udp' || s.usable;
}

/** Cookie of one holder's copy of a socket, with its usability; null when not permitted or gone. */
function probe(h: Holder, pidfds: Map<number, number | null>): { cookie: bigint; usable: boolean } | null {
  let pidfd = pidfds.get(h.pid);
  if (pidfd === undefined) {
    try {
      pidfd = pidfdOpen(h.pid);
    } catch {
      pidfd = null;
    }
    pidfds.set(h.pid, pidfd);
  }
  if (pidfd === null) return null;
  let local = -1;
  try {
    local = pidfdGetfd(pidfd, h.fd);
    const info = inspectSocket(local, `fd ${h.fd} of process ${h.pid}`);
    return { cookie: info.cookie, usable: info.protocol === 'tcp' ? info.listening : !info.connected };
  } catch {
    return null;
  } finally {
    if (local >= 0) closeFd(local);
  }
}

function preferred(a: SocketOwner, b: SocketOwner): number {
  // PID 1 (systemd holding socket-activation fds) comes last; otherwise lowest pid first.
  if ((a.pid === 1) !== (b.pid === 1)) return a.pid === 1 ? 1 : -1;
  return a.pid - b.pid;
}

/**
 * Find the processes holding the wanted sockets of namespace `netnsIno`.
 * The result maps each found cookie (decimal string) to its holders; a
 * cookie that is absent was not found (not permitted, or held only by
 * processes outside our pid namespace).
 */
export function findSocketOwners(wanted: readonly WantedSocket[], netnsIno: number): Map<string, SocketHolding> {
  const found = new Map<string, SocketHolding>();
  if (wanted.length === 0) return found;
  const cookies = new Set(wanted.map((w) => w.cookie.toString()));
  const kinds = new Set(wanted.map((w) => `${w.domain}:${w.protocol}`));
  const { holders, pidInNetns } = scanHolders();
  const nsPid = pidInNetns(netnsIno);
  let inodes: number[];
  if (nsPid !== null) {
    inodes = namespaceSockets(nsPid).filter((s) => candidate(s, kinds) && holders.has(s.inode)).map((s) => s.inode);
  } else {
    // No visible process lives in the namespace: every held socket is a candidate.
    inodes = [...holders.keys()];
  }
  const pidfds = new Map<number, number | null>();
  let probes = 0;
  try {
    for (const inode of new Set(inodes)) {
      if (found.size === cookies.size || probes >= MAX_PROBES) break;
      const list = holders.get(inode) ?? [];
      for (const h of list) {
        probes++;
        const r = probe(h, pidfds);
        if (!r) continue;
        const key = r.cookie.toString();
        if (cookies.has(key)) {
          const pids = [...new Set(list.map((x) => x.pid))];
          const owners = pids.map((pid) => ({ pid, comm: readComm(pid) })).sort(preferred);
          found.set(key, { owners, usable: r.usable });
        }
        break; // one copy tells the cookie of the inode
      }
    }
  } finally {
    for (const fd of pidfds.values()) if (fd !== null) closeFd(fd);
  }
  return found;
}
