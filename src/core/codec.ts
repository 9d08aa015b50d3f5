/**
 * Binary layouts of the dispatcher's maps (must match bpf/manifold.bpf.c).
 *
 * binding_key   { u32 prefixlen; u8 family; u8 protocol; be16 port; u8 addr[16] }  24 bytes
 * binding_value { u32 dest_id; u32 prefixlen }                                        8 bytes
 * dest_key      { char label[256]; u8 family; u8 protocol; u16 pad }                260 bytes
 * dest_value    { u32 id; u32 refs[2]; u32 flags }                                   16 bytes
 * dest_metrics  { u64 lookups, misses, err_bad_socket, err_wrong_family,
 *                 err_wrong_protocol, err_other }                                    48 bytes per CPU
 * gen_meta      { u8 wild_plus1[4]; u32 pad }                                         8 bytes
 * manifold_meta { u64 magic; u32 abi; u32 netns_ino; u64 netns_dev; u64 loaded_at;
 *                 u32 owner_uid; u32 owner_gid; char version[32] }                   72 bytes
 */
import { domainName, domainNumber, protocolName, protocolNumber, type Domain, type Prefix, type Protocol } from './net.js';
import { MAX_LABEL_BYTES } from './labels.js';

/** Version of the map layouts; bumped on any incompatible change. */
export const MANIFOLD_ABI = 1;
/** "manifold" in ASCII, little-endian u64 marker in manifold_meta. */
export const MANIFOLD_MAGIC = 0x646c6f66696e616dn;
/**
 * Destination ids range over [0, MAX_DESTINATIONS). Twice the 16,384
 * destinations a namespace may use, so that `apply` can replace a full set
 * with an entirely different one (both exist until the switch).
 */
export const MAX_DESTINATIONS = 32768;
/** Capacity of one generation's binding trie. */
export const MAX_BINDINGS = 1 << 21;
/** u64 words of port bits per (generation, family, protocol). */
export const PORT_WORDS = 1024;

export const BINDING_KEY_SIZE = 24;
export const BINDING_VALUE_SIZE = 8;
export const DEST_KEY_SIZE = 260;
export const DEST_VALUE_SIZE = 16;
export const METRICS_SIZE = 48;
export const GEN_META_SIZE = 8;
export const META_SIZE = 72;

/** Slot of a (family, protocol) pair: bit 0 = udp, bit 1 = ipv6. */
export function fpSlot(domain: Domain, protocol: Protocol): number {
  return (domain === 'ipv6' ? 2 : 0) | (protocol === 'udp' ? 1 : 0);
}

/** Encode a binding's LPM key into `out` at `offset`. */
export function encodeBindingKey(protocol: Protocol, prefix: Prefix, port: number, out: Buffer = Buffer.alloc(BINDING_KEY_SIZE), offset = 0): Buffer {
  out.fill(0, offset, offset + BINDING_KEY_SIZE);
  out.writeUInt32LE(32 + prefix.len, offset);
  out.writeUInt8(domainNumber(prefix.domain), offset + 4);
  out.writeUInt8(protocolNumber(protocol), offset + 5);
  out.writeUInt16BE(port, offset + 6);
  out.set(prefix.addr, offset + 8);
  return out;
}

/** A decoded binding key. */
export interface DecodedBindingKey {
  protocol: Protocol;
  prefix: Prefix;
  port: number;
}

/** Decode an LPM key; null when it is not a valid manifold key. */
export function decodeBindingKey(buf: Buffer, offset = 0): DecodedBindingKey | null {
  const domain = domainName(buf.readUInt8(offset + 4));
  const protocol = protocolName(buf.readUInt8(offset + 5));
  if (!domain || !protocol) return null;
  const len = buf.readUInt32LE(offset) - 32;
  const size = domain === 'ipv4' ? 4 : 16;
  if (len < 0 || len > size * 8) return null;
  const addr = Uint8Array.from(buf.subarray(offset + 8, offset + 8 + size));
  return { protocol, prefix: { domain, addr, len }, port: buf.readUInt16BE(offset + 6) };
}

/** Encode a binding value. */
export function encodeBindingValue(destId: number, prefixLen: number, out: Buffer = Buffer.alloc(BINDING_VALUE_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(destId, offset);
  out.writeUInt32LE(prefixLen, offset + 4);
  return out;
}

/** A destination's identity. */
export interface DestKey {
  label: string;
  domain: Domain;
  protocol: Protocol;
}

/** "ipv4:tcp:web". */
export function destName(d: DestKey): string {
  return `${d.domain}:${d.protocol}:${d.label}`;
}

/** Encode a destination key. */
export function encodeDestKey(d: DestKey, out: Buffer = Buffer.alloc(DEST_KEY_SIZE), offset = 0): Buffer {
  out.fill(0, offset, offset + DEST_KEY_SIZE);
  const n = out.write(d.label, offset, MAX_LABEL_BYTES, 'utf8');
  if (n !== Buffer.byteLength(d.label)) throw new Error('label too long');
  out.writeUInt8(domainNumber(d.domain), offset + 256);
  out.writeUInt8(protocolNumber(d.protocol), offset + 257);
  return out;
}

/** Decode a destination key (null when malformed). */
export function decodeDestKey(buf: Buffer, offset = 0): DestKey | null {
  const raw = buf.subarray(offset, offset + 256);
  const end = raw.indexOf(0);
  const label = raw.subarray(0, end < 0 ? 255 : end).toString('utf8');
  const domain = domainName(buf.readUInt8(offset + 256));
  const protocol = protocolName(buf.readUInt8(offset + 257));
  if (!domain || !protocol || label.length === 0) return null;
  return { label, domain, protocol };
}

/** A destination's value: id and binding references per generation. */
export interface DestValue {
  id: number;
  refs: [number, number];
  flags: number;
}

/** Encode a destination value. */
export function encodeDestValue(v: DestValue, out: Buffer = Buffer.alloc(DEST_VALUE_SIZE), offset = 0): Buffer {
  out.writeUInt32LE(v.id, offset);
  out.writeUInt32LE(v.refs[0], offset + 4);
  out.writeUInt32LE(v.refs[1], offset + 8);
  out.writeUInt32LE(v.flags, offset + 12);
  return out;
}

/** Decode a destination value. */
export function decodeDestValue(buf: Buffer, offset = 0): DestValue {
  return {
    id: buf.readUInt32LE(offset),
    refs: [buf.readUInt32LE(offset + 4), buf.readUInt32LE(offset + 8)],
    flags: buf.readUInt32LE(offset + 12),
  };
}

/** Counters of one destination, summed over CPUs. */
export interface DestMetrics {
  lookups: bigint;
  misses: bigint;
  errors: { bad_socket: bigint; wrong_family: bigint; wrong_protocol: bigint; other: bigint };
}

/** Sum a per-CPU metrics value (cpus * 48 bytes). */
export function decodeMetrics(buf: Buffer, cpus: number): DestMetrics {
  const m: DestMetrics = { lookups: 0n, misses: 0n, errors: { bad_socket: 0n, wrong_family: 0n, wrong_protocol: 0n, other: 0n } };
  for (let c = 0; c < cpus; c++) {
    const o = c * METRICS_SIZE;
    if (o + METRICS_SIZE > buf.length) break;
    m.lookups += buf.readBigUInt64LE(o);
    m.misses += buf.readBigUInt64LE(o + 8);
    m.errors.bad_socket += buf.readBigUInt64LE(o + 16);
    m.errors.wrong_family += buf.readBigUInt64LE(o + 24);
    m.errors.wrong_protocol += buf.readBigUInt64LE(o + 32);
    m.errors.other += buf.readBigUInt64LE(o + 40);
  }
  return m;
}

/** Total errors of a metrics record. */
export function totalErrors(m: DestMetrics): bigint {
  return m.errors.bad_socket + m.errors.wrong_family + m.errors.wrong_protocol + m.errors.other;
}

/** Contents of the manifold_meta map (the ABI marker). */
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

/** Encode manifold_meta. */
export function encodeMeta(m: Meta): Buffer {
  const b = Buffer.alloc(META_SIZE);
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

/** Decode manifold_meta. */
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

/** Encode a u32 key. */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}
