/**
 * Address targets in the discovery maps: which (namespace, protocol,
 * address) have their sockets kept in disc_target_socks.
 *
 * A target address is reference-counted in disc_targets (several labels may
 * use one address). Adding the first reference registers the sockets that
 * already exist on it (the namespace's iterators, or every process's files
 * on kernels < 6.5); from then on sock_ops inserts TCP listeners at
 * listen(), and the watcher (manifold-discovery.service) UDP sockets after
 * their bind. Removing the last reference takes its sockets out of the
 * SOCKHASH (which also gives them back their normal protocol operations).
 */
import { BPF_ANY, mapDelete, mapDump, mapLookup, mapUpdate } from '../sys/bpf.js';
import { ManifoldError } from '../errors.js';
import {
  decodeKey, DISC_KEY_SIZE, DISC_TARGETS_MAX, encodeKey, fromKeyAddr, targetKey, toKeyAddr,
} from './codec.js';
import { runIterator, type SeedSummary, emptySummary, addRecords, seedMethod } from './seed.js';
import type { DiscoveryState } from './state.js';

/** A target address of one namespace. */
export interface TargetAddress {
  /** Namespace cookie (SO_NETNS_COOKIE). */
  netns: bigint;
  /** IPPROTO_TCP or IPPROTO_UDP. */
  proto: number;
  /** 4 or 16 bytes (IPv4-mapped IPv6 is refused: use the IPv4 address). */
  addr: Uint8Array;
}

function check(t: TargetAddress): void {
  if (t.proto !== 6 && t.proto !== 17) throw new ManifoldError('ERR_INVALID_PROTOCOL', `invalid protocol ${t.proto}: expected tcp or udp`);
  if (t.addr.length !== 4 && t.addr.length !== 16) throw new ManifoldError('ERR_INVALID_PREFIX', 'a target address has 4 or 16 bytes');
  if (t.addr.length === 16 && fromKeyAddr(t.addr).length === 4) {
    throw new ManifoldError('ERR_INVALID_PREFIX', 'IPv4-mapped IPv6 target addresses are refused: give the IPv4 address');
  }
  if (t.addr.every((b) => b === 0)) throw new ManifoldError('ERR_INVALID_PREFIX', 'a target must be a specific address, not a wildcard');
}

function refs(state: DiscoveryState, t: TargetAddress): number {
  const v = mapLookup(state.map('disc_targets'), targetKey(t.netns, t.proto, t.addr), 4);
  return v ? v.readUInt32LE(0) : 0;
}

/** Register the sockets already bound on a new target address (the namespace's iterator, or every process's files). */
function registerExisting(state: DiscoveryState, t: TargetAddress, netnsPath: string): SeedSummary {
  const method = seedMethod();
  const summary = emptySummary(method);
  const seen = new Set<bigint>();
  if (method === 'iterators') {
    const prog = t.proto === 6 ? state.pinned('prog_iter_tcp') : state.pinned('prog_iter_udp');
    addRecords(summary, runIterator(prog, { netns: netnsPath }), seen);
    summary.namespaces = 1;
  } else {
    addRecords(summary, runIterator(state.pinned('prog_iter_file')), seen);
  }
  return summary;
}

function writeRefs(state: DiscoveryState, t: TargetAddress, n: number): void {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(n, 0);
  try {
    mapUpdate(state.map('disc_targets'), targetKey(t.netns, t.proto, t.addr), v, BPF_ANY);
  } catch (err) {
    if ((err as { errno?: number }).errno === 7 /* E2BIG */) throw new ManifoldError('ERR_NO_SPACE', `too many target addresses (at most ${DISC_TARGETS_MAX})`);
    throw err;
  }
}

/** Forget an address and take its sockets out of the SOCKHASH; returns how many were released. */
function forget(state: DiscoveryState, t: TargetAddress): number {
  mapDelete(state.map('disc_targets'), targetKey(t.netns, t.proto, t.addr));
  const want = toKeyAddr(t.addr);
  const dump = mapDump(state.map('disc_target_ck'), 8, DISC_KEY_SIZE);
  let released = 0;
  for (let i = 0; i < dump.count; i++) {
    const k = decodeKey(dump.values, i * DISC_KEY_SIZE);
    if (k.netns !== t.netns || k.proto !== t.proto || !Buffer.from(k.addr).equals(Buffer.from(want))) continue;
    mapDelete(state.map('disc_target_socks'), encodeKey(k));
    mapDelete(state.map('disc_target_ck'), dump.keys.subarray(i * 8, i * 8 + 8));
    released++;
  }
  return released;
}

/**
 * Add a reference to a target address; on the first one, register the
 * sockets already bound there. `netnsPath` is the namespace's nsfs path
 * (needed to run its iterators).
 */
export function addTarget(state: DiscoveryState, t: TargetAddress, netnsPath: string): { refs: number; registered: SeedSummary } {
  check(t);
  const n = refs(state, t);
  writeRefs(state, t, n + 1);
  return { refs: n + 1, registered: n === 0 ? registerExisting(state, t, netnsPath) : emptySummary(seedMethod()) };
}

/** Drop a reference; at zero, forget the address and take its sockets out of the SOCKHASH. */
export function removeTarget(state: DiscoveryState, t: TargetAddress): { refs: number; released: number } {
  check(t);
  const n = refs(state, t);
  if (n === 0) return { refs: 0, released: 0 };
  if (n > 1) {
    writeRefs(state, t, n - 1);
    return { refs: n - 1, released: 0 };
  }
  return { refs: 0, released: forget(state, t) };
}

/**
 * Set an address's reference count (idempotent, for the dispatcher's
 * executor: the count is the number of destinations using the address).
 * From 0, the sockets already bound there are registered; at 0, the
 * address is forgotten and its sockets released.
 */
export function setTargetRefs(state: DiscoveryState, t: TargetAddress, count: number, netnsPath: string): { registered: SeedSummary | null; released: number } {
  check(t);
  const n = refs(state, t);
  if (count <= 0) return { registered: null, released: n === 0 ? 0 : forget(state, t) };
  writeRefs(state, t, count);
  return { registered: n === 0 ? registerExisting(state, t, netnsPath) : null, released: 0 };
}

/** The target addresses of one namespace with their reference counts. */
export function targetsOf(state: DiscoveryState, netns: bigint): { proto: number; addr: Uint8Array; refs: number }[] {
  const dump = mapDump(state.map('disc_targets'), DISC_KEY_SIZE, 4);
  const out: { proto: number; addr: Uint8Array; refs: number }[] = [];
  for (let i = 0; i < dump.count; i++) {
    const k = decodeKey(dump.keys, i * DISC_KEY_SIZE);
    if (k.netns !== netns) continue;
    out.push({ proto: k.proto, addr: fromKeyAddr(k.addr), refs: dump.values.readUInt32LE(i * 4) });
  }
  return out;
}
