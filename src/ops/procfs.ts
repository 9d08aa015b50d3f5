/**
 * The one /proc scanner: a process's network namespace, the sockets of a
 * namespace (/proc/PID/net/{tcp,tcp6,udp,udp6}), which fd of a process
 * holds a socket inode (/proc/PID/fd/N -> socket:[INODE]), and every
 * process holding sockets (for status owners).
 *
 * register-pid looks for one socket: it asks the kernel for the sockets
 * bound to the port (sock_diag: listening TCP sockets only, so the
 * connections are not walked) from a netlink socket opened in the target's
 * network namespace (entered with setns for that call when it is not this
 * process's own); when that is not possible it searches the one table of
 * the wanted protocol and family for the wanted local address text. Then
 * it reads fd links in ascending order only until the socket is found, so
 * its cost does not grow with the target's fd count or the namespace's
 * connections.
 */
import fs from 'node:fs';
import { fsReason, ManifoldError } from '../errors.js';
import { formatAddr, type Domain, type Protocol } from '../core/net.js';
import { diagSockets, type DiagSocket } from '../sys/sockdiag.js';
import { inNetns } from '../sys/netns.js';

/** A socket found in /proc/PID/net. */
export interface ProcSocket {
  inode: number;
  protocol: Protocol;
  domain: Domain;
  address: string;
  port: number;
  /** TCP LISTEN, or UDP unconnected. */
  usable: boolean;
}

/** sk_state of a listening TCP socket (the tables' "st" column; sock_diag's state). */
const TCP_LISTEN = 0x0a;
/** TCP_LISTEN as the tables write it (%02X). */
const TCP_LISTEN_HEX = TCP_LISTEN.toString(16).toUpperCase().padStart(2, '0');
/** fds whose links fdHolding reads before listing /proc/PID/fd. */
const FIRST_FDS = 16;

/** True when process `pid` is in this process's network namespace. */
function inOwnNetns(pid: number): boolean {
  try {
    return fs.statSync('/proc/self/ns/net').ino === fs.statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return false;
  }
}

function tableName(protocol: Protocol, domain: Domain): string {
  return `${protocol}${domain === 'ipv6' ? '6' : ''}`;
}

/** The table's hex text of an address: 32-bit words in host (little-endian) order. */
export function hexAddress(addr: Uint8Array): string {
  let out = '';
  for (let w = 0; w < addr.length; w += 4) {
    for (let i = 3; i >= 0; i--) out += (addr[w + i] ?? 0).toString(16).padStart(2, '0');
  }
  return out.toUpperCase();
}

function addrFromHex(hex: string, domain: Domain): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length / 8; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let i = 3; i >= 0; i--) bytes.push(parseInt(word.slice(i * 2, i * 2 + 2), 16));
  }
  return formatAddr(Uint8Array.from(domain === 'ipv4' ? bytes.slice(0, 4) : bytes));
}

function parseLine(line: string, protocol: Protocol, domain: Domain): ProcSocket | null {
  const f = line.trim().split(/\s+/);
  if (f.length < 10) return null;
  const [laddr, lport] = (f[1] ?? '').split(':');
  const [raddr, rport] = (f[2] ?? '').split(':');
  const st = parseInt(f[3] ?? '0', 16);
  const inode = Number(f[9]);
  if (!laddr || !lport || !inode) return null;
  const unconnected = /^0+$/.test(raddr ?? '') && /^0+$/.test(rport ?? '');
  const usable = protocol === 'tcp' ? st === TCP_LISTEN : unconnected;
  return { inode, protocol, domain, address: addrFromHex(laddr, domain), port: parseInt(lport, 16), usable };
}

/** Parse one /proc/net table. */
export function parseNetTable(text: string, protocol: Protocol, domain: Domain): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const s = parseLine(line, protocol, domain);
    if (s) out.push(s);
  }
  return out;
}

function readTable(pid: number, protocol: Protocol, domain: Domain): string {
  try {
    return fs.readFileSync(`/proc/${pid}/net/${tableName(protocol, domain)}`, 'latin1');
  } catch {
    return '';
  }
}

/** Every TCP/UDP socket of the namespace of process `pid`. */
export function namespaceSockets(pid: number): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    // One by one: a busy namespace's table can hold more entries than a call may have arguments.
    for (const domain of ['ipv4', 'ipv6'] as const) for (const e of parseNetTable(readTable(pid, protocol, domain), protocol, domain)) out.push(e);
  }
  return out;
}

/** How {@link boundSocketsVia} found the sockets. */
export type SearchWay = 'diag' | 'diag-setns' | 'table';

/**
 * The sockets bound to the port (0: every port) in the namespace of `pid`,
 * from sock_diag (TCP: listening ones; UDP: all): directly when it is this
 * process's namespace, else from inside it (setns on this thread for the
 * one dump). Null when that cannot be done
 * (no right to enter the namespace, sock_diag unavailable): the caller
 * reads the table instead. A failure to come back to this process's own
 * namespace is not swallowed: nothing may run on in the wrong one.
 */
export function namespaceDiag(pid: number, protocol: Protocol, domain: Domain, port: number): { list: DiagSocket[]; way: SearchWay } | null {
  const dump = (): DiagSocket[] | null => {
    try {
      return diagSockets(protocol, domain, port);
    } catch {
      return null;
    }
  };
  if (inOwnNetns(pid)) {
    const list = dump();
    return list && { list, way: 'diag' };
  }
  let entered = false;
  try {
    const list = inNetns(`/proc/${pid}/ns/net`, () => {
      entered = true;
      return dump();
    });
    return list && { list, way: 'diag-setns' };
  } catch (err) {
    if (entered) throw err;
    return null;
  }
}

/**
 * Inodes of the usable sockets (TCP listening / UDP unconnected) bound
 * exactly to addr:port in the namespace of `pid`, and how they were found.
 */
export function boundSocketsVia(pid: number, protocol: Protocol, domain: Domain, addr: Uint8Array, port: number): { inodes: number[]; way: SearchWay } {
  const diag = namespaceDiag(pid, protocol, domain, port);
  if (!diag) return { inodes: tableBoundSockets(pid, protocol, domain, addr, port), way: 'table' };
  const inodes = diag.list
    .filter((s) => (protocol === 'tcp' ? s.state === TCP_LISTEN : s.unconnected) && s.address.length === addr.length && s.address.every((b, i) => b === addr[i]))
    .map((s) => s.inode);
  return { inodes, way: diag.way };
}

/**
 * Inodes of the usable sockets (TCP listening / UDP unconnected) bound
 * exactly to addr:port in the namespace of `pid`.
 */
export function boundSockets(pid: number, protocol: Protocol, domain: Domain, addr: Uint8Array, port: number): number[] {
  return boundSocketsVia(pid, protocol, domain, addr, port).inodes;
}

/** boundSockets from the table /proc/PID/net/{tcp,tcp6,udp,udp6} (any namespace). */
export function tableBoundSockets(pid: number, protocol: Protocol, domain: Domain, addr: Uint8Array, port: number): number[] {
  const text = readTable(pid, protocol, domain);
  const hex = hexAddress(addr);
  const needle = ` ${hex}:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const out: number[] = [];
  // The kernel writes "LOCAL REMOTE ST" with fixed widths (%08X…:%04X, %02X): the remote
  // address and the state of a line whose local address is the needle sit at fixed offsets.
  // A connection accepted by the listener has its local address too (a busy listener: hundreds
  // of lines); those are passed over without parsing. Anything else is parsed and checked.
  const remoteLen = addr.length * 2 + 5;
  const zeroRemote = `${'0'.repeat(addr.length * 2)}:0000`;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const after = at + needle.length;
    if (text.charCodeAt(after + remoteLen) === 0x20) {
      const usable = protocol === 'tcp' ? text.startsWith(TCP_LISTEN_HEX, after + remoteLen + 1) : text.startsWith(zeroRemote, after);
      if (!usable) continue;
    }
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    const s = parseLine(text.slice(start, end < 0 ? text.length : end), protocol, domain);
    // The needle may also match the remote address column: check it is the local one.
    if (s && s.usable && s.port === port && hex === text.slice(start, end).trim().split(/\s+/)[1]?.split(':')[0]) out.push(s.inode);
  }
  return out;
}

/**
 * The lowest fd of process `pid` holding one of `inodes`, reading links in
 * ascending fd order and stopping at the first match; null when none does.
 */
export function fdHolding(pid: number, inodes: readonly number[]): { fd: number; inode: number } | null {
  const dir = `/proc/${pid}/fd`;
  const want = new Set(inodes.map((i) => `socket:[${i}]`));
  // Daemons hold their listening sockets among their first fds: those links are read
  // directly, before listing the whole directory (2,000 entries take milliseconds to list).
  for (let fd = 0; fd < FIRST_FDS; fd++) {
    let target: string;
    try {
      target = fs.readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // no such fd (or no such process: the listing below says which)
    }
    if (want.has(target)) return { fd, inode: Number(target.slice(8, -1)) };
  }
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw procError(err, pid);
  }
  const fds = names.map(Number).filter((fd) => Number.isInteger(fd) && fd >= FIRST_FDS).sort((a, b) => a - b);
  for (const fd of fds) {
    let target: string;
    try {
      target = fs.readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (want.has(target)) return { fd, inode: Number(target.slice(8, -1)) };
  }
  return null;
}

/** Map socket inode -> fd numbers held by process `pid`. */
export function socketFds(pid: number): Map<number, number[]> {
  const dir = `/proc/${pid}/fd`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw procError(err, pid);
  }
  const out = new Map<number, number[]>();
  for (const name of names) {
    let target: string;
    try {
      target = fs.readlinkSync(`${dir}/${name}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (!m) continue;
    const inode = Number(m[1]);
    const list = out.get(inode);
    if (list) list.push(Number(name));
    else out.set(inode, [Number(name)]);
  }
  for (const list of out.values()) list.sort((a, b) => a - b);
  return out;
}

/** A process holding a socket at an fd. */
export interface Holder {
  pid: number;
  fd: number;
}

/** Socket inode -> holders, over every process we may inspect; and one pid per network namespace. */
export function scanSocketHolders(): { holders: Map<number, Holder[]>; pidInNetns: Map<number, number> } {
  const holders = new Map<number, Holder[]>();
  const pidInNetns = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    pids = [];
  }
  for (const name of pids) {
    const pid = Number(name);
    let fds: Map<number, number[]>;
    try {
      fds = socketFds(pid);
    } catch {
      continue; // gone, or not ours to see
    }
    const ns = netnsOf(pid);
    if (ns !== null && !pidInNetns.has(ns)) pidInNetns.set(ns, pid);
    for (const [inode, list] of fds) {
      const h = holders.get(inode) ?? [];
      for (const fd of list) h.push({ pid, fd });
      holders.set(inode, h);
    }
  }
  return { holders, pidInNetns };
}

/** A process's command name, or "" when it cannot be read. */
export function processComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
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

/**
 * The thread group (process) id of task `pid`: `pid` itself for a process,
 * its process's id for one of its threads (/proc lists only processes but
 * answers for every thread id).
 */
export function threadGroupOf(pid: number): number {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch (err) {
    throw procError(err, pid);
  }
  const m = /^Tgid:\s*(\d+)$/m.exec(text);
  return m ? Number(m[1]) : pid;
}

/** Inode of the network namespace of process `pid`. */
export function processNetnsIno(pid: number): number {
  try {
    return Number(fs.statSync(`/proc/${pid}/ns/net`).ino);
  } catch (err) {
    throw procError(err, pid);
  }
}

/** Translate /proc access failures. */
export function procError(err: unknown, pid: number): ManifoldError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') return new ManifoldError('ERR_NO_SUCH_PROCESS', `no such process: ${pid}`);
  if (code === 'EACCES' || code === 'EPERM') return new ManifoldError('ERR_PERMISSION', `permission denied inspecting process ${pid}: run as root or as its owner with CAP_SYS_PTRACE`);
  return new ManifoldError('ERR_SYSTEM', `cannot inspect process ${pid}: ${fsReason(err)}`);
}

/** Parse a pid argument: a decimal pid, or a pid file (trailing whitespace allowed). */
export function parsePidArg(arg: string): number {
  let text = arg;
  if (!/^\d+$/.test(arg)) {
    if (!arg.includes('/') && !fs.existsSync(arg)) {
      throw new ManifoldError('ERR_INVALID_PID', `invalid pid ${JSON.stringify(arg)}: expected a process id or a pid file`);
    }
    let fd: number;
    try {
      fd = fs.openSync(arg, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ManifoldError('ERR_INVALID_PID', `cannot read pid file ${JSON.stringify(arg)}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : fsReason(err)}`);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new ManifoldError('ERR_INVALID_PID', `pid file ${JSON.stringify(arg)} is not a regular file`);
      if (st.size > 64) throw new ManifoldError('ERR_INVALID_PID', `pid file ${JSON.stringify(arg)} is too large to hold a process id`);
      const buf = Buffer.alloc(65);
      const n = fs.readSync(fd, buf, 0, 65, 0);
      text = buf.toString('utf8', 0, n);
    } finally {
      fs.closeSync(fd);
    }
    text = text.replace(/\s+$/, '');
    if (!/^\d+$/.test(text)) throw new ManifoldError('ERR_INVALID_PID', `pid file ${JSON.stringify(arg)} does not contain a process id`);
  }
  const pid = Number(text);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 4194304) throw new ManifoldError('ERR_INVALID_PID', `invalid pid ${JSON.stringify(text)}: out of range`);
  return pid;
}
