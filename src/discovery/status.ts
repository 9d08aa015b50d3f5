/**
 * What `discovery status` reports: attachment, map fill levels, counters,
 * target addresses with their sockets, kernel checks and warnings.
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';
import { mapDump, mapLookup } from '../sys/bpf.js';
import { possibleCpus } from '../sys/cpus.js';
import { formatAddr } from '../core/net.js';
import {
  COUNTER_NAMES, decodeKey, decodeSock, DISC_INDEX_MAX, DISC_KEY_SIZE, DISC_OVERFLOW_MAX, DISC_SOCK_SIZE, DISC_TARGET_SOCKS_MAX,
  DISC_TARGETS_MAX, fromKeyAddr, protoName, toKeyAddr, type CounterName,
} from './codec.js';
import { cgroup2Mount } from './cgroup.js';
import { kernelChecks, machineFacts, type KernelCheck } from './kernel.js';
import { discoveryDir } from './paths.js';
import { seedMethod, type SeedMethod } from './seed.js';
import { DiscoveryState, inspectDir, type LinkHealth } from './state.js';

/** Fill level of a map. */
export interface Fill {
  entries: number;
  max: number;
}

/** A socket on a target address. */
export interface TargetSocket {
  port: number;
  cookie: string;
  /** In disc_target_socks, so dispatchers can assign it. */
  registered: boolean;
}

/** A target address and its sockets. */
export interface TargetStatus {
  netns: string;
  protocol: string;
  address: string;
  refs: number;
  sockets: TargetSocket[];
}

/** The status document. */
export interface DiscoveryStatus {
  enabled: boolean;
  /** disc_meta.active: attached and seeded. */
  active: boolean;
  stateDir: string;
  cgroup: { path: string; id: string } | null;
  version: string | null;
  enabledAt: string | null;
  links: LinkHealth[];
  maps: { sockets: Fill; index: Fill; overflow: Fill; targets: Fill; targetSockets: Fill } | null;
  counters: Record<CounterName, number> | null;
  targets: TargetStatus[];
  seedMethod: SeedMethod | null;
  kernel: KernelCheck[];
  warnings: string[];
}

function sumCounters(state: DiscoveryState): Record<CounterName, number> {
  const cpus = possibleCpus();
  const out = {} as Record<CounterName, number>;
  COUNTER_NAMES.forEach((name, i) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i, 0);
    const v = mapLookup(state.map('disc_counters'), k, 8 * cpus);
    let sum = 0n;
    if (v) for (let c = 0; c < cpus; c++) sum += v.readBigUInt64LE(c * 8);
    out[name] = Number(sum);
  });
  return out;
}

function addrText(a16: Uint8Array): string {
  return formatAddr(fromKeyAddr(a16));
}

/** Listener discovery as the status of one namespace's dispatcher sees it. */
export interface NamespaceDiscovery {
  /** Enabled on the bpffs (its state directory exists and opens). */
  enabled: boolean;
  /** Attached and seeded: dispatchers use the index. */
  active: boolean;
  /** Why its maps could not be read (e.g. not root), or null. */
  unreadable: string | null;
  /** Sockets of this namespace bound on exactly `addr` (4 or 16 bytes) for `proto`, by port. */
  sockets(proto: number, addr: Uint8Array): TargetSocket[];
}

/** Read what one namespace's status needs from discovery (read-only; never throws for a missing or unreadable discovery). */
export function namespaceDiscovery(bpffs: string, netns: bigint): NamespaceDiscovery {
  const none = (enabled: boolean, unreadable: string | null): NamespaceDiscovery => ({ enabled, active: false, unreadable, sockets: () => [] });
  if (!fs.existsSync(discoveryDir(bpffs))) return none(false, null);
  let state: DiscoveryState;
  try {
    state = DiscoveryState.open(bpffs, false);
  } catch (err) {
    if (err instanceof ManifoldError && err.code === 'ERR_NOT_LOADED') return none(false, null);
    return none(true, err instanceof Error ? err.message : String(err));
  }
  try {
    const active = state.meta()?.active === 1;
    const socks = mapDump(state.map('disc_socks'), 8, DISC_SOCK_SIZE);
    const targetCk = mapDump(state.map('disc_target_ck'), 8, DISC_KEY_SIZE);
    const registered = new Set<bigint>();
    for (let i = 0; i < targetCk.count; i++) registered.add(targetCk.keys.readBigUInt64LE(i * 8));
    const byAddr = new Map<string, TargetSocket[]>();
    for (let j = 0; j < socks.count; j++) {
      const sk = decodeSock(socks.values, j * DISC_SOCK_SIZE);
      if (sk.key.netns !== netns) continue;
      const k = `${sk.key.proto} ${Buffer.from(sk.key.addr).toString('hex')}`;
      const cookie = socks.keys.readBigUInt64LE(j * 8);
      const list = byAddr.get(k) ?? [];
      list.push({ port: sk.key.port, cookie: String(cookie), registered: registered.has(cookie) });
      byAddr.set(k, list);
    }
    for (const list of byAddr.values()) list.sort((a, b) => a.port - b.port || (a.cookie < b.cookie ? -1 : 1));
    return {
      enabled: true, active, unreadable: null,
      sockets: (proto, addr) => [...(byAddr.get(`${proto} ${Buffer.from(toKeyAddr(addr)).toString('hex')}`) ?? [])],
    };
  } catch (err) {
    return none(true, err instanceof Error ? err.message : String(err));
  } finally {
    state.close();
  }
}

/** Read the status of discovery on a bpffs. */
export function discoveryStatus(bpffs: string, lockTimeoutMs: number): DiscoveryStatus {
  const checks = kernelChecks(machineFacts(cgroup2Mount()));
  let method: SeedMethod | null = null;
  try {
    method = seedMethod();
  } catch {
    method = null;
  }
  const dir = discoveryDir(bpffs);
  const doc: DiscoveryStatus = {
    enabled: false, active: false, stateDir: dir, cgroup: null, version: null, enabledAt: null, links: [], maps: null, counters: null,
    targets: [], seedMethod: method, kernel: checks, warnings: [],
  };
  for (const c of checks) if (!c.ok) doc.warnings.push(`${c.fatal ? 'kernel requirement not met' : 'limitation'}: needs ${c.needs}; found ${c.found}`);
  if (!fs.existsSync(dir)) return doc;
  const root = process.getuid?.() === 0;
  const health = inspectDir(dir, root);
  let state: DiscoveryState;
  try {
    state = DiscoveryState.open(bpffs, false, lockTimeoutMs);
  } catch (err) {
    if (!(err instanceof ManifoldError) || !['ERR_STALE_STATE', 'ERR_INCOMPATIBLE'].includes(err.code)) throw err;
    doc.enabled = true;
    doc.links = health.links;
    doc.warnings.push(`discovery is broken: ${err.message}`);
    return doc;
  }
  try {
    const meta = state.meta();
    const cfg = state.config();
    doc.enabled = true;
    doc.active = meta?.active === 1;
    doc.version = meta?.version ?? null;
    doc.enabledAt = meta ? new Date(meta.enabledAt).toISOString() : null;
    doc.cgroup = cfg ? { path: cfg.cgroupPath, id: String(cfg.cgroupId) } : null;
    doc.links = health.links;
    if (!health.ok && health.reason) doc.warnings.push(`discovery is broken: ${health.reason} (run "manifold discovery enable" to repair)`);
    if (!doc.active) doc.warnings.push('the index is not active (enable did not finish seeding): dispatchers ignore it');

    const socks = mapDump(state.map('disc_socks'), 8, DISC_SOCK_SIZE);
    const index = mapDump(state.map('disc_index'), DISC_KEY_SIZE, 8);
    const overflow = mapDump(state.map('disc_overflow'), DISC_KEY_SIZE, 4);
    const targets = mapDump(state.map('disc_targets'), DISC_KEY_SIZE, 4);
    const targetCk = mapDump(state.map('disc_target_ck'), 8, DISC_KEY_SIZE);
    doc.maps = {
      sockets: { entries: socks.count, max: DISC_INDEX_MAX },
      index: { entries: index.count, max: DISC_INDEX_MAX },
      overflow: { entries: overflow.count, max: DISC_OVERFLOW_MAX },
      targets: { entries: targets.count, max: DISC_TARGETS_MAX },
      targetSockets: { entries: targetCk.count, max: DISC_TARGET_SOCKS_MAX },
    };
    doc.counters = sumCounters(state);

    const registered = new Set<bigint>();
    for (let i = 0; i < targetCk.count; i++) registered.add(targetCk.keys.readBigUInt64LE(i * 8));
    for (let i = 0; i < targets.count; i++) {
      const t = decodeKey(targets.keys, i * DISC_KEY_SIZE);
      const entry: TargetStatus = {
        netns: String(t.netns), protocol: protoName(t.proto), address: addrText(t.addr), refs: targets.values.readUInt32LE(i * 4), sockets: [],
      };
      for (let j = 0; j < socks.count; j++) {
        const s = decodeSock(socks.values, j * DISC_SOCK_SIZE);
        if (s.key.netns !== t.netns || s.key.proto !== t.proto || !Buffer.from(s.key.addr).equals(Buffer.from(t.addr))) continue;
        const cookie = socks.keys.readBigUInt64LE(j * 8);
        entry.sockets.push({ port: s.key.port, cookie: String(cookie), registered: registered.has(cookie) });
      }
      entry.sockets.sort((a, b) => a.port - b.port || (a.cookie < b.cookie ? -1 : 1));
      doc.targets.push(entry);
      for (const s of entry.sockets) {
        if (!s.registered) {
          doc.warnings.push(`${entry.protocol} ${entry.address}:${s.port} (socket ${s.cookie}) is bound on a target address but not registered${entry.protocol === 'udp' ? ': is manifold-discovery.service (manifold discovery watch) running?' : ''}`);
        }
      }
    }
    doc.targets.sort((a, b) => a.netns.localeCompare(b.netns) || a.protocol.localeCompare(b.protocol) || a.address.localeCompare(b.address));
    const c = doc.counters;
    if (c.index_full) doc.warnings.push(`${c.index_full} socket(s) could not be indexed (index full): their traffic may be steered away from them`);
    if (c.overflow_full) doc.warnings.push(`${c.overflow_full} socket(s) could not be indexed (overflow map full)`);
    if (c.target_full) doc.warnings.push(`${c.target_full} target socket(s) could not be registered (more than the slots per address and port, or the map is full)`);
    if (c.events_lost) doc.warnings.push(`${c.events_lost} UDP bind event(s) were lost (ring buffer full); the watcher re-scans on start`);
    if (c.no_statecb) doc.warnings.push(`${c.no_statecb} listener(s) that existed before enable are unindexed only when closed, not on shutdown() (needs Linux >= 6.10)`);
    for (const [name, fill] of Object.entries(doc.maps)) {
      if (fill.entries >= fill.max * 0.9) doc.warnings.push(`map ${name} is ${Math.round((fill.entries / fill.max) * 100)}% full`);
    }
  } finally {
    state.close();
  }
  return doc;
}
