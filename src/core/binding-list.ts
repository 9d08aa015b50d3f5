/**
 * BindingList: many bindings without an object per binding. Each entry is
 * a binding key in the dispatcher's binding_key layout (bpf/manifold.h:
 * u32 prefixlen = 32 + length, u8 family, u8 protocol, be16 port,
 * u8 addr[16]; 24 bytes) and a 32-bit number: a destination id, or any
 * other tag the owner chooses (the apply parser stores a label index).
 *
 * KeyIndex finds entries by key in O(1) (open addressing over the packed
 * keys), for duplicate detection and diffs at hundreds of thousands of
 * bindings.
 */
import { compareBindings, type Binding } from './binding.js';
import { Sizes, slotOf } from './layout.js';
import { AF_INET, domainName, domainNumber, protocolName, protocolNumber, type Domain, type Prefix, type Protocol } from './net.js';

const K = Sizes.bindingKey;

/** A growable list of packed bindings. */
export class BindingList {
  keys: Buffer;
  tags: Uint32Array;
  count = 0;

  constructor(capacity = 16) {
    const n = Math.max(1, capacity);
    this.keys = Buffer.alloc(n * K);
    this.tags = new Uint32Array(n);
  }

  /** Wrap packed keys and tags (not copied). */
  static from(keys: Buffer, tags: Uint32Array, count: number): BindingList {
    const l = new BindingList(0);
    l.keys = keys;
    l.tags = tags;
    l.count = count;
    return l;
  }

  private grow(need: number): void {
    if (need <= this.tags.length) return;
    const cap = Math.max(need, this.tags.length * 2);
    const keys = Buffer.alloc(cap * K);
    this.keys.copy(keys, 0, 0, this.count * K);
    const tags = new Uint32Array(cap);
    tags.set(this.tags.subarray(0, this.count));
    this.keys = keys;
    this.tags = tags;
  }

  /** Append a binding; host bits of `addr` beyond `len` must already be zero. Returns its index. */
  push(protocol: Protocol, domain: Domain, addr: Uint8Array, len: number, port: number, tag: number): number {
    this.grow(this.count + 1);
    const i = this.count++;
    const o = i * K;
    this.keys.fill(0, o, o + K);
    this.keys.writeUInt32LE(32 + len, o);
    this.keys[o + 4] = domainNumber(domain);
    this.keys[o + 5] = protocolNumber(protocol);
    this.keys.writeUInt16BE(port, o + 6);
    this.keys.set(addr, o + 8);
    this.tags[i] = tag;
    return i;
  }

  /** Append a binding of a prefix. */
  pushPrefix(protocol: Protocol, prefix: Prefix, port: number, tag: number): number {
    return this.push(protocol, prefix.domain, prefix.addr, prefix.len, port, tag);
  }

  /** Append entry `i` of another list, with a tag. */
  pushFrom(other: BindingList, i: number, tag: number): number {
    this.grow(this.count + 1);
    const j = this.count++;
    other.keys.copy(this.keys, j * K, i * K, (i + 1) * K);
    this.tags[j] = tag;
    return j;
  }

  /** Append a raw 24-byte key at `offset` of `src`; false when it is not a valid manifold key. */
  pushKey(src: Buffer, offset: number, tag: number): boolean {
    if (!validKey(src, offset)) return false;
    this.grow(this.count + 1);
    const j = this.count++;
    src.copy(this.keys, j * K, offset, offset + K);
    this.tags[j] = tag;
    return true;
  }

  /** The packed key of entry i (a view, not a copy). */
  key(i: number): Buffer {
    return this.keys.subarray(i * K, (i + 1) * K);
  }

  /** Keys of the first `count` entries, packed (a view). */
  packedKeys(): Buffer {
    return this.keys.subarray(0, this.count * K);
  }

  tag(i: number): number {
    return this.tags[i] ?? 0;
  }

  setTag(i: number, tag: number): void {
    this.tags[i] = tag;
  }

  protocol(i: number): Protocol {
    return this.keys[i * K + 5] === 17 ? 'udp' : 'tcp';
  }

  domain(i: number): Domain {
    return this.keys[i * K + 4] === AF_INET ? 'ipv4' : 'ipv6';
  }

  /** Address prefix length. */
  len(i: number): number {
    return this.keys.readUInt32LE(i * K) - 32;
  }

  port(i: number): number {
    return this.keys.readUInt16BE(i * K + 6);
  }

  /** (family, protocol) slot. */
  slot(i: number): number {
    return slotOf(this.domain(i), this.protocol(i));
  }

  /** The address bytes (4 or 16; a copy). */
  addr(i: number): Uint8Array {
    const o = i * K + 8;
    return Uint8Array.from(this.keys.subarray(o, o + (this.keys[i * K + 4] === AF_INET ? 4 : 16)));
  }

  prefix(i: number): Prefix {
    return { domain: this.domain(i), addr: this.addr(i), len: this.len(i) };
  }

  /** Entry i as a Binding with the given label. */
  binding(i: number, label: string): Binding {
    return { label, protocol: this.protocol(i), prefix: this.prefix(i), port: this.port(i) };
  }

  /**
   * Indices sorted most specific first (the listing order of
   * compareBindings), ties broken by `labelOf`.
   */
  sortedIndices(labelOf: (i: number) => string): Uint32Array {
    const idx = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) idx[i] = i;
    const keys = this.keys;
    const cmpBytes = (a: number, b: number, from: number, to: number): number => {
      for (let o = from; o < to; o++) {
        const d = (keys[a * K + o] ?? 0) - (keys[b * K + o] ?? 0);
        if (d !== 0) return d;
      }
      return 0;
    };
    idx.sort((a, b) => {
      const la = this.len(a);
      const lb = this.len(b);
      if (la !== lb) return lb - la;
      const wa = this.port(a) === 0 ? 1 : 0;
      const wb = this.port(b) === 0 ? 1 : 0;
      if (wa !== wb) return wa - wb;
      const pa = this.protocol(a);
      const pb = this.protocol(b);
      if (pa !== pb) return pa < pb ? -1 : 1;
      const da = keys[a * K + 4] ?? 0;
      const db = keys[b * K + 4] ?? 0;
      if (da !== db) return da - db;
      const c = cmpBytes(a, b, 8, 24);
      if (c !== 0) return c;
      const d = this.port(a) - this.port(b);
      if (d !== 0) return d;
      const ka = labelOf(a);
      const kb = labelOf(b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return idx;
  }
}

/** True when the 24 bytes at `offset` are a well-formed manifold binding key. */
export function validKey(buf: Buffer, offset: number): boolean {
  const domain = domainName(buf[offset + 4] ?? 0);
  if (!domain || !protocolName(buf[offset + 5] ?? 0)) return false;
  const len = buf.readUInt32LE(offset) - 32;
  return len >= 0 && len <= (domain === 'ipv4' ? 32 : 128);
}

function hashKey(buf: Buffer, o: number): number {
  let h = 0x811c9dc5;
  for (let w = 0; w < 6; w++) {
    h = Math.imul(h ^ buf.readUInt32LE(o + w * 4), 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

function sameKey(a: Buffer, ao: number, b: Buffer, bo: number): boolean {
  for (let w = 0; w < 24; w += 4) if (a.readUInt32LE(ao + w) !== b.readUInt32LE(bo + w)) return false;
  return true;
}

/** Find entries of a BindingList by key. */
export class KeyIndex {
  private readonly list: BindingList;
  private table: Int32Array;
  private mask: number;
  private size = 0;

  constructor(list: BindingList, expected = list.count) {
    this.list = list;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Int32Array(cap);
    this.mask = cap - 1;
  }

  /** Index all entries of the list. Duplicate keys keep the first entry. */
  static of(list: BindingList): KeyIndex {
    const ix = new KeyIndex(list);
    for (let i = 0; i < list.count; i++) ix.add(i);
    return ix;
  }

  /** Index entry i; returns the index of an earlier entry with the same key, or -1. */
  add(i: number): number {
    if ((this.size + 1) * 2 > this.table.length) this.rehash();
    const keys = this.list.keys;
    let p = hashKey(keys, i * K) & this.mask;
    for (;;) {
      const v = this.table[p] ?? 0;
      if (v === 0) {
        this.table[p] = i + 1;
        this.size++;
        return -1;
      }
      if (sameKey(keys, (v - 1) * K, keys, i * K)) return v - 1;
      p = (p + 1) & this.mask;
    }
  }

  /** Index of the entry whose key equals `buf[offset..offset+24)`, or -1. */
  find(buf: Buffer, offset = 0): number {
    const keys = this.list.keys;
    let p = hashKey(buf, offset) & this.mask;
    for (;;) {
      const v = this.table[p] ?? 0;
      if (v === 0) return -1;
      if (sameKey(keys, (v - 1) * K, buf, offset)) return v - 1;
      p = (p + 1) & this.mask;
    }
  }

  private rehash(): void {
    const old = this.table;
    this.table = new Int32Array(old.length * 2);
    this.mask = this.table.length - 1;
    this.size = 0;
    const keys = this.list.keys;
    for (const v of old) {
      if (v === 0) continue;
      let p = hashKey(keys, (v - 1) * K) & this.mask;
      while ((this.table[p] ?? 0) !== 0) p = (p + 1) & this.mask;
      this.table[p] = v;
      this.size++;
    }
  }
}

/** Sort Binding objects (small sets) most specific first. */
export function sortBindings(list: Binding[]): Binding[] {
  return list.sort(compareBindings);
}
