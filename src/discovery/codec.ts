/**
 * Byte layouts of the discovery maps (bpf/discovery.h, bpf/discovery.bpf.c,
 * map ABI DISC_ABI), encoded and decoded without koffi.
 * test/unit/bpf-object.test.ts checks every size against the object.
 */
import { IPPROTO_TCP, IPPROTO_UDP } from '../core/net.js';

/** Map ABI of the discovery object (DISC_ABI). */
export const DISC_ABI = 1;
/** disc_meta.magic ("mfdiscov"). */
export const DISC_MAGIC = 0x6d66646973636f76n;

export const DISC_KEY_SIZE = 32;
export const DISC_SOCK_SIZE = 40;
export const DISC_META_SIZE = 64;
export const DISC_CONFIG_SIZE = 256;
export const DISC_EVENT_SIZE = 40;
export const DISC_SEED_REC_SIZE = 16;
export const DISC_INDEX_SLOTS = 16;
export const DISC_TARGET_SLOTS = 8;
export const DISC_INDEX_MAX = 262144;
export const DISC_TARGETS_MAX = 4096;
export const DISC_TARGET_SOCKS_MAX = 16384;
export const DISC_OVERFLOW_MAX = 4096;
export const DISC_NO_SLOT = 0xff;
export const DISC_SLOT_OVERFLOW = 0xfe;
export const DISC_SLOT_FILTER_ONLY = 0xfd;
/** Length of disc_config.cgroup_path including its NUL. */
export const CGROUP_PATH_MAX = 240;

/** disc_sock.flags. */
export const DiscFlags = { DUAL: 1, SEEDED: 2, V6ONLY: 4, STATECB: 8 } as const;

/** disc_seed_rec.what bits. */
export const SeedBits = { INDEXED: 1, TARGET: 2, NO_STATECB: 4, OUT_OF_SCOPE: 8, FAILED: 16 } as const;

/** disc_counters, in index order (the order is ABI). */
export const COUNTER_NAMES = [
  'listen', 'bind', 'seeded', 'unindexed', 'index_full', 'overflow', 'overflow_full', 'target_added', 'target_full',
  'target_removed', 'events', 'events_lost', 'no_statecb', 'out_of_scope',
] as const;
/** A counter name. */
export type CounterName = (typeof COUNTER_NAMES)[number];

/** (netns, address, port, protocol, slot). `addr` is 16 bytes: IPv6 or IPv4-mapped. */
export interface DiscKey {
  netns: bigint;
  addr: Uint8Array;
  port: number;
  proto: number;
  slot: number;
}

/** A disc_sock value: where a socket is indexed. */
export interface DiscSock {
  key: DiscKey;
  slot2: number;
  flags: number;
  family: number;
}

/** An address as 16 bytes: IPv4 (4 bytes) becomes ::ffff:a.b.c.d. */
export function toKeyAddr(addr: Uint8Array): Uint8Array {
  if (addr.length === 16) return Uint8Array.from(addr);
  if (addr.length !== 4) throw new Error(`bad address length ${addr.length}`);
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(addr, 12);
  return out;
}

/** True for ::ffff:a.b.c.d. */
export function isMapped(addr16: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (addr16[i] !== 0) return false;
  return addr16[10] === 0xff && addr16[11] === 0xff;
}

/** The address as the family sees it: 4 bytes when IPv4-mapped, else 16. */
export function fromKeyAddr(addr16: Uint8Array): Uint8Array {
  return isMapped(addr16) ? addr16.slice(12, 16) : addr16.slice(0, 16);
}

/** Encode a disc_key. */
export function encodeKey(k: DiscKey): Buffer {
  const b = Buffer.alloc(DISC_KEY_SIZE);
  b.writeBigUInt64LE(k.netns, 0);
  b.set(k.addr.subarray(0, 16), 8);
  b.writeUInt16LE(k.port, 24);
  b.writeUInt8(k.proto, 26);
  b.writeUInt8(k.slot, 27);
  return b;
}

/** Decode a disc_key. */
export function decodeKey(b: Buffer, off = 0): DiscKey {
  return {
    netns: b.readBigUInt64LE(off),
    addr: Uint8Array.from(b.subarray(off + 8, off + 24)),
    port: b.readUInt16LE(off + 24),
    proto: b.readUInt8(off + 26),
    slot: b.readUInt8(off + 27),
  };
}

/** The disc_targets key of an address: port 0, slot 0. */
export function targetKey(netns: bigint, proto: number, addr: Uint8Array): Buffer {
  return encodeKey({ netns, addr: toKeyAddr(addr), port: 0, proto, slot: 0 });
}

/** Decode a disc_sock. */
export function decodeSock(b: Buffer, off = 0): DiscSock {
  return { key: decodeKey(b, off), slot2: b.readUInt8(off + 32), flags: b.readUInt8(off + 33), family: b.readUInt16LE(off + 34) };
}

/** disc_meta[0]. */
export interface DiscMeta {
  magic: bigint;
  abi: number;
  active: number;
  cgroupId: bigint;
  enabledAt: number;
  version: string;
}

/** Encode disc_meta. */
export function encodeMeta(m: DiscMeta): Buffer {
  const b = Buffer.alloc(DISC_META_SIZE);
  b.writeBigUInt64LE(m.magic, 0);
  b.writeUInt32LE(m.abi, 8);
  b.writeUInt32LE(m.active, 12);
  b.writeBigUInt64LE(m.cgroupId, 16);
  b.writeBigUInt64LE(BigInt(m.enabledAt), 24);
  b.write(m.version.slice(0, 31), 32, 'utf8');
  return b;
}

/** Decode disc_meta. */
export function decodeMeta(b: Buffer): DiscMeta {
  return {
    magic: b.readBigUInt64LE(0),
    abi: b.readUInt32LE(8),
    active: b.readUInt32LE(12),
    cgroupId: b.readBigUInt64LE(16),
    enabledAt: Number(b.readBigUInt64LE(24)),
    version: cString(b.subarray(32, 64)),
  };
}

/** disc_config[0]. */
export interface DiscConfig {
  cgroupId: bigint;
  scopeAll: boolean;
  cgroupPath: string;
}

/** Encode disc_config (a path longer than the field is cut; it is only shown). */
export function encodeConfig(c: DiscConfig): Buffer {
  const b = Buffer.alloc(DISC_CONFIG_SIZE);
  b.writeBigUInt64LE(c.cgroupId, 0);
  b.writeUInt32LE(c.scopeAll ? 1 : 0, 8);
  const p = Buffer.from(c.cgroupPath, 'utf8');
  p.copy(b, 16, 0, Math.min(p.length, CGROUP_PATH_MAX - 1));
  return b;
}

/** Decode disc_config. */
export function decodeConfig(b: Buffer): DiscConfig {
  return { cgroupId: b.readBigUInt64LE(0), scopeAll: b.readUInt32LE(8) === 1, cgroupPath: cString(b.subarray(16, 16 + CGROUP_PATH_MAX)) };
}

/** A disc_event: a UDP bind on a target address. */
export interface DiscEvent {
  netns: bigint;
  cookie: bigint;
  addr: Uint8Array;
  port: number;
  proto: number;
  family: number;
  tgid: number;
}

/** Decode a disc_event (null when too short). */
export function decodeEvent(b: Buffer): DiscEvent | null {
  if (b.length < DISC_EVENT_SIZE) return null;
  return {
    netns: b.readBigUInt64LE(0),
    cookie: b.readBigUInt64LE(8),
    addr: Uint8Array.from(b.subarray(16, 32)),
    port: b.readUInt16LE(32),
    proto: b.readUInt8(34),
    family: b.readUInt8(35),
    tgid: b.readUInt32LE(36),
  };
}

/** One record of a seeding iterator. */
export interface SeedRecord {
  cookie: bigint;
  proto: number;
  what: number;
}

/** Decode the records a seeding iterator wrote (a trailing partial record is ignored). */
export function decodeSeedRecords(b: Buffer): SeedRecord[] {
  const out: SeedRecord[] = [];
  for (let off = 0; off + DISC_SEED_REC_SIZE <= b.length; off += DISC_SEED_REC_SIZE) {
    out.push({ cookie: b.readBigUInt64LE(off), proto: b.readUInt8(off + 8), what: b.readUInt8(off + 9) });
  }
  return out;
}

/** "tcp" / "udp" / "proto N". */
export function protoName(p: number): string {
  return p === IPPROTO_TCP ? 'tcp' : p === IPPROTO_UDP ? 'udp' : `proto ${p}`;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}
