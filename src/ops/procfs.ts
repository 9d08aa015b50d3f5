/**
 * Finding a process's sockets through /proc: which socket inodes are bound
 * to an address (/proc/PID/net/{tcp,tcp6,udp,udp6}) and at which fds the
 * process holds them (/proc/PID/fd/N -> socket:[INODE]).
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { formatAddr, type Domain, type Protocol } from '../core/net.js';

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

function hexAddr(hex: string, domain: Domain): string {
  const bytes: number[] = [];
  // Each 32-bit word is printed in host (little-endian) order.
  for (let w = 0; w < hex.length / 8; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let i = 3; i >= 0; i--) bytes.push(parseInt(word.slice(i * 2, i * 2 + 2), 16));
  }
  return formatAddr(Uint8Array.from(domain === 'ipv4' ? bytes.slice(0, 4) : bytes));
}

/** Parse one /proc/net table. */
export function parseNetTable(text: string, protocol: Protocol, domain: Domain): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [laddr, lport] = (f[1] ?? '').split(':');
    const [raddr, rport] = (f[2] ?? '').split(':');
    const st = parseInt(f[3] ?? '0', 16);
    const inode = Number(f[9]);
    if (!laddr || !lport || !inode) continue;
    const unconnected = /^0+$/.test(raddr ?? '') && /^0+$/.test(rport ?? '');
    const usable = protocol === 'tcp' ? st === 0x0a : unconnected;
    out.push({ inode, protocol, domain, address: hexAddr(laddr, domain), port: parseInt(lport, 16), usable });
  }
  return out;
}

/** Every TCP/UDP socket of the namespace of process `pid`. */
export function namespaceSockets(pid: number): ProcSocket[] {
  const out: ProcSocket[] = [];
  const tables: [string, Protocol, Domain][] = [['tcp', 'tcp', 'ipv4'], ['tcp6', 'tcp', 'ipv6'], ['udp', 'udp', 'ipv4'], ['udp6', 'udp', 'ipv6']];
  for (const [file, protocol, domain] of tables) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    out.push(...parseNetTable(text, protocol, domain));
  }
  return out;
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
      continue; // closed meanwhile
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
  return new ManifoldError('ERR_SYSTEM', `cannot inspect process ${pid}: ${(err as Error).message}`);
}

/** Parse a pid argument: a decimal pid, or a pid file (trailing whitespace allowed). */
export function parsePidArg(arg: string): number {
  let text = arg;
  if (!/^\d+$/.test(arg)) {
    if (!arg.includes('/') && !fs.existsSync(arg)) {
      throw new ManifoldError('ERR_INVALID_PID', `invalid pid ${JSON.stringify(arg)}: expected a process id or a pid file`);
    }
    try {
      const st = fs.statSync(arg);
      if (!st.isFile()) throw new ManifoldError('ERR_INVALID_PID', `pid file ${arg} is not a regular file`);
      if (st.size > 64) throw new ManifoldError('ERR_INVALID_PID', `pid file ${arg} is too large to hold a process id`);
      text = fs.readFileSync(arg, 'utf8');
    } catch (err) {
      if (err instanceof ManifoldError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new ManifoldError('ERR_INVALID_PID', `cannot read pid file ${arg}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
    text = text.replace(/\s+$/, '');
    if (!/^\d+$/.test(text)) throw new ManifoldError('ERR_INVALID_PID', `pid file ${arg} does not contain a process id`);
  }
  const pid = Number(text);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 4194304) throw new ManifoldError('ERR_INVALID_PID', `invalid pid ${JSON.stringify(text)}: out of range`);
  return pid;
}
