/**
 * lookup: which binding wins for a (protocol, address, port), its
 * destination and socket, and why — answered twice: by the reference model
 * over the live bindings (core/binding.ts, for the explanation) and by the
 * loaded program itself, run on a synthetic sk_lookup context with
 * BPF_PROG_TEST_RUN (the kernel's answer). The program is a fresh copy of
 * the dispatcher object sharing every map the attached program uses (found
 * by id through the link) except the counters (a private, throw-away
 * dest_metrics), so a lookup changes nothing: no counter moves, no traffic
 * is seen.
 */
import { compareBindings, prefixContains, resolveReference, type Binding } from '../core/binding.js';
import { DestKind, POLICY_EXPLICIT_FIRST } from '../core/layout.js';
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, formatPrefix, type Domain, type Prefix, type Protocol } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import { loadDispatcher } from '../state/loader.js';
import { MapPins, type KernelMaps } from '../state/kernel-maps.js';
import { ObjectPins } from '../state/paths.js';
import type { Limits } from '../state/maps.js';
import type { PinDir } from '../state/pins.js';
import { SysError } from '../sys/errno.js';
import { linkInfo, mapFdById, mapInfo, progFdById, progMapIds, progTestRun } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { readLive } from './read.js';
import { targetText } from './target.js';
import { findSocketOwners, type SocketOwner } from './socket-owners.js';
import { destName } from './view.js';

/** struct bpf_sk_lookup (uapi), as BPF_PROG_TEST_RUN takes it. */
const CTX_SIZE = 72;
const SK_PASS = 1;
const EOPNOTSUPP = 95;

/** What to look up. */
export interface LookupRequest {
  protocol: Protocol;
  /** The local (destination) address of the connection or datagram. */
  address: Prefix;
  port: number;
  /** The remote end (default: the documentation address of the same family, port 40000). */
  source?: { address: Prefix; port: number };
}

/** The model's and the kernel's answer. */
export interface LookupResult {
  protocol: Protocol;
  domain: Domain;
  address: string;
  port: number;
  /** The winning binding, or null when none matches (the kernel's own socket lookup decides). */
  binding: Binding | null;
  /** Why it wins (or why nothing matches). */
  reason: string;
  /** Other matching bindings it beats, most specific first (at most 10). */
  beaten: Binding[];
  /** How many bindings match in all. */
  matches: number;
  destination: {
    name: string;
    socket: string | null;
    owner: SocketOwner | null;
    inode: number | null;
    /** The address target serving it instead of a registered socket ("ADDRESS" or "ADDRESS PORT"), or null. */
    target: string | null;
  } | null;
  /** The namespace's policy hands connections to explicit listeners first (a matched binding can be passed back). */
  explicitFirst: boolean;
  /** What the kernel's answer means, in words. */
  outcome: string;
  kernel: {
    /** SK_PASS or SK_DROP. */
    verdict: 'pass' | 'drop';
    /** Cookie of the socket the program assigned, null when none. */
    socket: string | null;
    /** The program assigned a member of an SO_REUSEPORT group (the kernel then picks one; BPF_PROG_TEST_RUN cannot say which). */
    reuseportGroup: boolean;
  };
  /** The kernel did what the model predicts. */
  agrees: boolean;
}

function why(win: Binding, beaten: readonly Binding[]): string {
  const portText = win.port === 0 ? 'all ports' : `port ${win.port}`;
  const base = `${formatPrefix(win.prefix)} ${portText} is the most specific matching binding`;
  const next = beaten[0];
  if (!next) return `${base} (the only one that matches)`;
  if (next.prefix.len < win.prefix.len) return `${base}: its prefix /${win.prefix.len} is longer than the next match's /${next.prefix.len} (${formatPrefix(next.prefix)})`;
  return `${base}: at the same prefix length /${win.prefix.len}, an exact port beats all ports (${formatPrefix(next.prefix)} all ports)`;
}

function contextFor(r: LookupRequest): Buffer {
  const ctx = Buffer.alloc(CTX_SIZE);
  const v4 = r.address.domain === 'ipv4';
  ctx.writeUInt32LE(v4 ? AF_INET : AF_INET6, 8);
  ctx.writeUInt32LE(r.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, 12);
  const src = r.source ?? { address: defaultSource(r.address.domain), port: 40000 };
  if (src.address.domain !== r.address.domain) throw new ManifoldError('ERR_USAGE', `--source ${formatPrefix(src.address)} is not an ${r.address.domain} address like ${formatPrefix(r.address)}`);
  if (v4) {
    Buffer.from(src.address.addr).copy(ctx, 16);
    Buffer.from(r.address.addr).copy(ctx, 40);
  } else {
    Buffer.from(src.address.addr).copy(ctx, 20);
    Buffer.from(r.address.addr).copy(ctx, 44);
  }
  ctx.writeUInt16BE(src.port, 36); // remote_port: network order
  ctx.writeUInt32LE(r.port, 60); // local_port: host order
  return ctx;
}

function defaultSource(domain: Domain): Prefix {
  // 198.51.100.7 (TEST-NET-2) or 2001:db8::7 (documentation).
  return domain === 'ipv4'
    ? { domain, addr: Uint8Array.of(198, 51, 100, 7), len: 32 }
    : { domain, addr: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7), len: 128 };
}

/**
 * The maps the attached program uses, by name (the kernel keeps 15
 * characters of a name), except the counters: fds to close. Listener
 * discovery's maps are among them (the pinned shared ones or the
 * program's private ones), so the copy answers as the running program.
 */
function runningMaps(dir: PinDir): Map<string, number> {
  const out = new Map<string, number>();
  const linkFd = dir.openObject(ObjectPins.link);
  let progFd = -1;
  try {
    progFd = progFdById(linkInfo(linkFd).progId);
    for (const id of progMapIds(progFd)) {
      const fd = mapFdById(id);
      const name = mapInfo(fd).name;
      // Private counters (a lookup counts nothing): the destinations' and the namespace's.
      if (name === MapPins.metrics || name === MapPins.metrics2 || name === MapPins.nsMetrics || out.has(name)) closeFd(fd);
      else out.set(name, fd);
    }
    return out;
  } catch (err) {
    for (const fd of out.values()) closeFd(fd);
    throw err;
  } finally {
    closeFd(linkFd);
    if (progFd >= 0) closeFd(progFd);
  }
}

/** Run the attached program's object (a copy with private counters, on the same maps) on one synthetic lookup. */
function kernelAnswer(dir: PinDir, limits: Limits, r: LookupRequest): LookupResult['kernel'] {
  const running = runningMaps(dir);
  let object: ReturnType<typeof loadDispatcher>;
  try {
    object = loadDispatcher(limits, undefined, running);
  } finally {
    for (const fd of running.values()) closeFd(fd);
  }
  try {
    const run = progTestRun(object.progFd, contextFor(r), 1);
    const cookie = run.ctxOut.readBigUInt64LE(0);
    return { verdict: run.retval === SK_PASS ? 'pass' : 'drop', socket: cookie === 0n ? null : cookie.toString(), reuseportGroup: false };
  } catch (err) {
    // The kernel refuses to report a socket of a reuseport group picked without
    // a reuseport selection (bpf_sk_assign without BPF_SK_LOOKUP_F_NO_REUSEPORT).
    if (err instanceof SysError && err.errno === EOPNOTSUPP) return { verdict: 'pass', socket: null, reuseportGroup: true };
    throw err;
  } finally {
    object.close();
  }
}

/** Answer a lookup from the live state. Needs root (it loads a program). */
export function lookup(maps: KernelMaps, dir: PinDir, netnsIno: number, r: LookupRequest): LookupResult {
  if (r.address.len !== (r.address.domain === 'ipv4' ? 32 : 128)) throw new ManifoldError('ERR_USAGE', `lookup takes an address, not the prefix ${formatPrefix(r.address)}`);
  const snap = readLive(maps, { bindings: true });
  const list = snap.bindings!;
  const labels = new Map(snap.destinations.map((d) => [d.id, d.label]));
  const matching: Binding[] = [];
  for (let i = 0; i < list.count; i++) {
    if (list.protocol(i) !== r.protocol || list.domain(i) !== r.address.domain) continue;
    const port = list.port(i);
    if (port !== 0 && port !== r.port) continue;
    const b = list.binding(i, labels.get(list.tag(i)) ?? `#${list.tag(i)}`);
    if (prefixContains(b.prefix, r.address.addr)) matching.push(b);
  }
  matching.sort(compareBindings);
  const win = resolveReference(matching, r.protocol, r.address.domain, r.address.addr, r.port);
  const beaten = win ? matching.filter((b) => b !== win).slice(0, 10) : [];
  let destination: LookupResult['destination'] = null;
  let expectSocket: string | null = null;
  let target: string | null = null;
  // Whether the kernel takes the registered socket (TCP: listening; UDP: not connected); null: unknown.
  let usable: boolean | null = null;
  const explicitFirst = (maps.genMeta(snap.gen).flags & POLICY_EXPLICIT_FIRST) !== 0;
  if (win) {
    const d = snap.destinations.find((x) => x.label === win.label && x.domain === r.address.domain && x.protocol === r.protocol);
    const info = d ? snap.info[d.id] : undefined;
    if (info && info.kind === DestKind.target && info.target) target = targetText(info.target);
    const socket = d && info && info.kind === DestKind.socket ? maps.socketCookie(info.slot) : null;
    expectSocket = socket === null ? null : socket.toString();
    let owner: SocketOwner | null = null;
    let inode: number | null = null;
    if (socket !== null) {
      const h = findSocketOwners([{ cookie: socket, domain: r.address.domain, protocol: r.protocol }], netnsIno).get(socket.toString());
      owner = h?.owners[0] ?? null;
      inode = h?.inode ?? null;
      usable = h?.usable ?? null;
    }
    destination = { name: destName({ label: win.label, domain: r.address.domain, protocol: r.protocol }), socket: expectSocket, owner, inode, target };
  }
  const kernel = kernelAnswer(dir, maps.limits, r);
  const passedBack = kernel.verdict === 'pass' && kernel.socket === null && !kernel.reuseportGroup;
  let agrees: boolean;
  let outcome: string;
  if (win === null) {
    agrees = passedBack;
    outcome = 'passed on: the kernel\'s own socket lookup decides';
  } else if (explicitFirst && passedBack) {
    // Rule 1 of listener discovery: a socket listens on the exact address and port (or a wildcard covering it).
    agrees = true;
    outcome = 'passed back to a socket listening on the exact address and port (policy explicit-first)';
  } else if (target !== null) {
    // Served by whatever listens on the target (listener discovery): the model cannot see it, the kernel can.
    agrees = kernel.verdict === 'drop' || kernel.socket !== null || kernel.reuseportGroup || passedBack;
    outcome = kernel.verdict === 'drop'
      ? `refused: nothing listens on the target ${target} (or listener discovery is not enabled)`
      : passedBack ? `passed on: the connection is addressed to the target ${target} itself` : `redirected to the socket listening on the target ${target}`;
  } else if (expectSocket === null) {
    agrees = kernel.verdict === 'drop';
    outcome = 'refused: the destination has no socket';
  } else if (usable === false) {
    agrees = kernel.verdict === 'drop';
    outcome = `dropped: the registered socket is ${r.protocol === 'tcp' ? 'a TCP socket that is not listening' : 'a connected UDP socket'} (counted as an error)`;
  } else {
    agrees = kernel.verdict === 'pass' && (kernel.reuseportGroup || kernel.socket === expectSocket);
    outcome = 'assigned to the registered socket';
  }
  return {
    protocol: r.protocol, domain: r.address.domain, address: formatPrefix(r.address).replace(/\/\d+$/, ''), port: r.port,
    binding: win, beaten, matches: matching.length,
    reason: win ? why(win, beaten) : 'no binding matches: the program passes and the kernel\'s own socket lookup decides',
    destination, explicitFirst, outcome, kernel, agrees,
  };
}
