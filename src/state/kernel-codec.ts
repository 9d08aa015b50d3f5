/**
 * Byte layouts of the dispatcher's map values (bpf/manifold.h, sizes in
 * core/layout.ts). Used only by the kernel map implementation, the loader
 * and the ABI migration: nothing else encodes map bytes.
 */
import { EXACT_LENS, MAX_LABEL_BYTES, SLOTS, Sizes } from '../core/layout.js';
import { domainName, domainNumber, protocolName, protocolNumber } from '../core/net.js';
import type { GenMeta } from '../core/placement.js';
import type { ApplyRecord, Counters, DestInfo, DestKey, DestRecord, GenState, Limits, TargetSpec } from './maps.js';

/** Encode a u32 key. */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** struct dest_key. */
export function encodeDestKey(d: DestKey, out: Buffer = Buffer.alloc(Sizes.destKey), offset = 0): Buffer {
  out.fill(0, offset, offset + Sizes.destKey);
  const n = out.write(d.label, offset, MAX_LABEL_BYTES, 'utf8');
  if (n !== Buffer.byteLength(d.label)) throw new Error('label too long');
  out.writeUInt8(domainNumber(d.domain), offset + 256);
  out.writeUInt8(protocolNumber(d.protocol), offset + 257);
  return out;
}

/** struct dest_key; null when malformed. */
export function decodeDestKey(buf: Buffer, offset = 0): DestKey | null {
  const raw = buf.subarray(offset, offset + 256);
  const end = raw.indexOf(0);
  const label = raw.subarray(0, end < 0 ? 255 : end).toString('utf8');
  const domain = domainName(buf.readUInt8(offset + 256));
  const protocol = protocolName(buf.readUInt8(offset + 257));
  if (!domain || !protocol || label.length === 0) return null;
  return { label, domain, protocol };
}

/** struct dest_value. */
export function encodeDestValue(d: Pick<DestRecord, 'id' | 'refs' | 'flags'>): Buffer {
  const b = Buffer.alloc(Sizes.destValue);
  b.writeUInt32LE(d.id, 0);
  b.writeUInt32LE(d.refs[0], 4);
  b.writeUInt32LE(d.refs[1], 8);
  b.writeUInt32LE(d.flags, 12);
  return b;
}

/** struct dest_value. */
export function decodeDestValue(buf: Buffer, offset = 0): Pick<DestRecord, 'id' | 'refs' | 'flags'> {
  return { id: buf.readUInt32LE(offset), refs: [buf.readUInt32LE(offset + 4), buf.readUInt32LE(offset + 8)], flags: buf.readUInt32LE(offset + 12) };
}

/** struct dest_info. */
export function encodeDestInfo(d: DestInfo): Buffer {
  const b = Buffer.alloc(Sizes.destInfo);
  b.writeUInt32LE(d.slot, 0);
  b.writeUInt8(d.kind, 4);
  return b;
}

/** struct dest_info. */
export function decodeDestInfo(buf: Buffer, offset = 0): DestInfo {
  return { slot: buf.readUInt32LE(offset), kind: buf.readUInt8(offset + 4) };
}

/** struct dest_target (all zero for a destination without a target). */
export function encodeDestTarget(t: TargetSpec | undefined): Buffer {
  const b = Buffer.alloc(Sizes.destTarget);
  if (!t) return b;
  b.set(t.addr.subarray(0, 16), 0);
  b.writeUInt16LE(t.port, 16);
  b.writeUInt8(domainNumber(t.domain), 18);
  return b;
}

/** struct dest_target; undefined when it holds no target. */
export function decodeDestTarget(buf: Buffer, offset = 0): TargetSpec | undefined {
  const domain = domainName(buf.readUInt8(offset + 18));
  if (!domain) return undefined;
  const n = domain === 'ipv4' ? 4 : 16;
  return { domain, addr: Uint8Array.from(buf.subarray(offset, offset + n)), port: buf.readUInt16LE(offset + 16) };
}

/** struct gen_meta. */
export function encodeGenMeta(m: GenMeta): Buffer {
  const b = Buffer.alloc(Sizes.genMeta);
  for (let s = 0; s < SLOTS; s++) {
    b[s] = m.wildPlus1[s] ?? 0;
    const lens = m.exactLens[s] ?? [];
    if (lens.length > EXACT_LENS) throw new Error('too many exact lengths');
    lens.forEach((len, i) => {
      b[8 + s * EXACT_LENS + i] = len + 1;
    });
  }
  b[4] = m.trieSlots;
  b[5] = m.flags & 0xff;
  return b;
}

/** struct gen_meta. */
export function decodeGenMeta(b: Buffer): GenMeta {
  const m: GenMeta = { wildPlus1: [], trieSlots: b[4] ?? 0, exactLens: [], flags: b[5] ?? 0 };
  for (let s = 0; s < SLOTS; s++) {
    m.wildPlus1.push(b[s] ?? 0);
    const lens: number[] = [];
    for (let i = 0; i < EXACT_LENS; i++) {
      const l1 = b[8 + s * EXACT_LENS + i] ?? 0;
      if (l1 === 0) break;
      lens.push(l1 - 1);
    }
    m.exactLens.push(lens);
  }
  return m;
}

/** struct gen_state. */
export function encodeGenState(s: GenState): Buffer {
  const b = Buffer.alloc(Sizes.genState);
  b.writeBigUInt64LE(s.seq, 0);
  b.writeUInt32LE(s.flags, 8);
  b.writeUInt32LE(s.exactCapacity, 12);
  b.writeBigUInt64LE(s.txid, 16);
  b.writeUInt32LE(s.exactCount, 24);
  return b;
}

/** struct gen_state. */
export function decodeGenState(b: Buffer): GenState {
  return { seq: b.readBigUInt64LE(0), flags: b.readUInt32LE(8), exactCapacity: b.readUInt32LE(12), txid: b.readBigUInt64LE(16), exactCount: b.readUInt32LE(24) };
}

/** struct dest_metrics and (when given) struct dest_metrics2. */
export function decodeCounters(b: Buffer, offset = 0, b2: Buffer | null = null, offset2 = 0): Counters {
  return {
    lookups: b.readBigUInt64LE(offset),
    misses: b.readBigUInt64LE(offset + 8),
    errBadSocket: b.readBigUInt64LE(offset + 16),
    errWrongFamily: b.readBigUInt64LE(offset + 24),
    errWrongProtocol: b.readBigUInt64LE(offset + 32),
    errOther: b.readBigUInt64LE(offset + 40),
    deferred: b2 ? b2.readBigUInt64LE(offset2) : 0n,
    redirected: b2 ? b2.readBigUInt64LE(offset2 + 8) : 0n,
    noTarget: b2 ? b2.readBigUInt64LE(offset2 + 16) : 0n,
    targetOwn: b2 ? b2.readBigUInt64LE(offset2 + 24) : 0n,
  };
}

/** struct dest_metrics2. */
export function encodeCounters2(c: Counters): Buffer {
  const b = Buffer.alloc(Sizes.metrics2);
  b.writeBigUInt64LE(c.deferred, 0);
  b.writeBigUInt64LE(c.redirected, 8);
  b.writeBigUInt64LE(c.noTarget, 16);
  b.writeBigUInt64LE(c.targetOwn, 24);
  return b;
}

/** struct dest_metrics (the fields of struct dest_metrics2 are left out). */
export function encodeCounters(c: Counters): Buffer {
  const b = Buffer.alloc(Sizes.metrics);
  b.writeBigUInt64LE(c.lookups, 0);
  b.writeBigUInt64LE(c.misses, 8);
  b.writeBigUInt64LE(c.errBadSocket, 16);
  b.writeBigUInt64LE(c.errWrongFamily, 24);
  b.writeBigUInt64LE(c.errWrongProtocol, 32);
  b.writeBigUInt64LE(c.errOther, 40);
  return b;
}

/** struct manifold_config. */
export function encodeConfig(l: Limits, netnsCookie = 0n, flags = 0): Buffer {
  const b = Buffer.alloc(Sizes.config);
  b.writeBigUInt64LE(netnsCookie, 0);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(l.maxIds, 12);
  b.writeUInt32LE(l.sockSlots, 16);
  b.writeUInt32LE(l.maxBindings, 20);
  return b;
}

/** struct manifold_config. */
export function decodeConfig(b: Buffer): Limits {
  return { maxIds: b.readUInt32LE(12), sockSlots: b.readUInt32LE(16), maxBindings: b.readUInt32LE(20) };
}

/** The apply record in manifold_config.reserved[0] (seq) and reserved[1] (digest); null when seq is 0. */
export function decodeApplyRecord(b: Buffer): ApplyRecord | null {
  const seq = b.readBigUInt64LE(24);
  return seq === 0n ? null : { seq, digest: b.readBigUInt64LE(32) };
}

/** A copy of a manifold_config value with the apply record set (null: cleared). */
export function withApplyRecord(b: Buffer, record: ApplyRecord | null): Buffer {
  const out = Buffer.from(b);
  out.writeBigUInt64LE(record?.seq ?? 0n, 24);
  out.writeBigUInt64LE(record?.digest ?? 0n, 32);
  return out;
}

/** manifold_config.netns_cookie (0: not filled in, a state made before listener discovery). */
export function decodeConfigCookie(b: Buffer): bigint {
  return b.readBigUInt64LE(0);
}

/** Contents of manifold_meta (the ABI marker). */
export interface Meta {
  magic: bigint;
  abi: number;
  netnsIno: number;
  netnsDev: bigint;
  loadedAt: number;
  ownerUid: number;
  ownerGid: number;
  version: string;
}

/** struct manifold_meta. */
export function encodeMeta(m: Meta): Buffer {
  const b = Buffer.alloc(Sizes.meta);
  b.writeBigUInt64LE(m.magic, 0);
  b.writeUInt32LE(m.abi, 8);
  b.writeUInt32LE(m.netnsIno >>> 0, 12);
  b.writeBigUInt64LE(m.netnsDev, 16);
  b.writeBigUInt64LE(BigInt(m.loadedAt), 24);
  b.writeUInt32LE(m.ownerUid, 32);
  b.writeUInt32LE(m.ownerGid, 36);
  b.write(m.version.slice(0, 31), 40, 31, 'utf8');
  return b;
}

/** struct manifold_meta. */
export function decodeMeta(b: Buffer): Meta {
  const v = b.subarray(40, 72);
  const end = v.indexOf(0);
  return {
    magic: b.readBigUInt64LE(0),
    abi: b.readUInt32LE(8),
    netnsIno: b.readUInt32LE(12),
    netnsDev: b.readBigUInt64LE(16),
    loadedAt: Number(b.readBigUInt64LE(24)),
    ownerUid: b.readUInt32LE(32),
    ownerGid: b.readUInt32LE(36),
    version: v.subarray(0, end < 0 ? 32 : end).toString('utf8'),
  };
}
