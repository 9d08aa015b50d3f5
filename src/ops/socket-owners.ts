/**
 * Who holds a registered socket. The sockmap only gives a socket's cookie,
 * so: find the processes holding socket inodes (procfs.ts), then tell which
 * inode has which cookie. The kernel says it directly (sock_diag reports
 * each socket's cookie and inode) when it can be asked inside the target
 * namespace; otherwise the holders are narrowed to the namespace's sockets
 * of the wanted family and protocol (/proc tables), one copy of each
 * candidate is taken with pidfd_getfd and its SO_COOKIE compared. Needs
 * root (or CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH); whatever is not permitted
 * is skipped, so the result may be incomplete but is never wrong.
 */
import { closeFd, pidfdGetfd, pidfdOpen } from '../sys/libc.js';
import type { Domain, Protocol } from '../core/net.js';
import { namespaceDiag, namespaceSockets, processComm, scanSocketHolders, type Holder, type ProcSocket } from './procfs.js';
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
  /** Socket inode (as `ss -e` shows it: ino:N); null when not found (a TCP socket that stopped listening). */
  inode: number | null;
}

/** A socket to look for. */
export interface WantedSocket {
  cookie: bigint;
  domain: Domain;
  protocol: Protocol;
}

/** Upper bound on pidfd_getfd calls per search (each is a few syscalls). */
const MAX_PROBES = 4096;

/**
 * A TCP socket stays in a sockmap only while it listens (closing or
 * shutting it down unhashes it), so only listeners can be registered TCP
 * sockets; any UDP socket can be (one connect()ed after registration stays).
 */
function candidate(s: ProcSocket, kinds: Set<string>): boolean {
  if (!kinds.has(`${s.domain}:${s.protocol}`)) return false;
  return s.protocol === 'udp' || s.usable;
}

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
 * Inode and usability of every socket of the wanted kinds in the namespace
 * of `pid`, by cookie (decimal string), from sock_diag; null when any dump
 * cannot be had (the caller probes instead).
 */
function diagCookies(pid: number, wanted: readonly WantedSocket[]): Map<string, { inode: number; usable: boolean }> | null {
  const out = new Map<string, { inode: number; usable: boolean }>();
  const kinds = new Map(wanted.map((w) => [`${w.domain}:${w.protocol}`, w]));
  for (const w of kinds.values()) {
    const diag = namespaceDiag(pid, w.protocol, w.domain, 0);
    if (!diag) return null;
    // TCP: the dump holds listening sockets only (all a sockmap keeps); UDP: every state.
    for (const s of diag.list) out.set(s.cookie.toString(), { inode: s.inode, usable: w.protocol === 'tcp' || s.unconnected });
  }
  return out;
}

/**
 * Find the processes holding the wanted sockets of namespace `netnsIno`.
 * Maps each found cookie (decimal string) to its holders; a cookie that is
 * absent was not found (not permitted, or held only outside our pid namespace).
 * When sock_diag can be asked, a TCP cookie that is not among the namespace's
 * listeners is reported not usable, with no holders (it stopped listening).
 * `probe` skips sock_diag and takes the probing way (the tests compare both).
 */
export function findSocketOwners(wanted: readonly WantedSocket[], netnsIno: number, opts: { probe?: boolean } = {}): Map<string, SocketHolding> {
  const found = new Map<string, SocketHolding>();
  if (wanted.length === 0) return found;
  const cookies = new Set(wanted.map((w) => w.cookie.toString()));
  const kinds = new Set(wanted.map((w) => `${w.domain}:${w.protocol}`));
  const { holders, pidInNetns } = scanSocketHolders();
  const nsPid = pidInNetns.get(netnsIno);
  const owners = (list: readonly Holder[]): SocketOwner[] => [...new Set(list.map((x) => x.pid))].map((pid) => ({ pid, comm: processComm(pid) })).sort(preferred);
  const byCookie = nsPid !== undefined && opts.probe !== true ? diagCookies(nsPid, wanted) : null;
  if (byCookie) {
    for (const w of wanted) {
      const key = w.cookie.toString();
      const s = byCookie.get(key);
      const list = s && holders.get(s.inode);
      if (s && list && list.length > 0) found.set(key, { owners: owners(list), usable: s.usable, inode: s.inode });
      // The namespace's TCP dump lists every listener: a registered TCP socket missing from it has stopped
      // listening (shut down: the sockmap keeps it, bpf_sk_assign refuses it). Its holders are not sought.
      else if (!s && w.protocol === 'tcp') found.set(key, { owners: [], usable: false, inode: null });
    }
    return found;
  }
  const inodes = nsPid !== undefined ? namespaceSockets(nsPid).filter((s) => candidate(s, kinds) && holders.has(s.inode)).map((s) => s.inode) : [...holders.keys()];
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
        if (cookies.has(key)) found.set(key, { owners: owners(list), usable: r.usable, inode });
        break; // one copy tells the cookie of the inode
      }
    }
  } finally {
    for (const fd of pidfds.values()) if (fd !== null) closeFd(fd);
  }
  return found;
}
