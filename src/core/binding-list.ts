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
import { Sizes } from './layout.js';
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, domainNumber, protocolNumber, type Domain, type Prefix, type Protocol } from './net.js';

const K = Sizes.bindingKey;
/** 32-bit words per key. */
const W = K / 4;

/** A growable list of packed bindings. */
export class BindingList {
  private keyBytes: Buffer;
  /** The same memory as 32-bit words (keys are 6 words), for hashing and comparing. */
  words: Uint32Array;
  tags: Uint32Array;
  count = 0;

  constructor(capacity = 16) {
    const n = Math.max(1, capacity);
    this.keyBytes = Buffer.alloc(n * K);
    this.words = wordsOf(this.keyBytes);
    this.tags = new Uint32Array(n);
  }

  /** Packed keys (24 bytes each; capacity may exceed count). */
  get keys(): Buffer {
    return this.keyBytes;
  }

  /** Wrap packed keys and tags (not copied, unless the keys are not 4-byte aligned). */
  static from(keys: Buffer, tags: Uint32Array, count: number): BindingList {
    const l = new BindingList(0);
    l.keyBytes = keys.byteOffset % 4 === 0 ? keys : Buffer.from(keys);
    l.words = wordsOf(l.keyBytes);
    l.tags = tags;
    l.count = count;
    return l;
  }

  /** Make room for `need` entries in all (growing by doubling). */
  reserve(need: number): void {
    if (need <= this.tags.length) return;
    const cap = Math.max(need, this.tags.length * 2);
    const keys = Buffer.alloc(cap * K);
    this.keyBytes.copy(keys, 0, 0, this.count * K);
    const tags = new Uint32Array(cap);
    tags.set(this.tags.subarray(0, this.count));
    this.keyBytes = keys;
    this.words = wordsOf(keys);
    this.tags = tags;
  }

  private grow(need: number): void {
    if (need > this.tags.length) this.reserve(need);
  }

  /** Append a binding; host bits of `addr` beyond `len` must already be zero. Returns its index. */
  push(protocol: Protocol, domain: Domain, addr: Uint8Array, len: number, port: number, tag: number): number {
    this.grow(this.count + 1);
    const i = this.count++;
    const o = i * K;
    const w = this.words;
    for (let k = i * W; k < (i + 1) * W; k++) w[k] = 0;
    const b = this.keyBytes;
    // prefixlen (u32, little-endian; at most 160), family, protocol, port (big-endian), address.
    b[o] = 32 + len;
    b[o + 4] = domainNumber(domain);
    b[o + 5] = protocolNumber(protocol);
    b[o + 6] = port >>> 8;
    b[o + 7] = port & 0xff;
    for (let k = 0; k < addr.length; k++) b[o + 8 + k] = addr[k] as number;
    this.tags[i] = tag;
    return i;
  }

  /**
   * Append a key given as its six 32-bit words (host order, as `words`
   * holds them): prefixlen, family | protocol << 8 | port (big-endian) << 16,
   * then the address. Returns its index.
   */
  pushWords(w0: number, w1: number, a0: number, a1: number, a2: number, a3: number, tag: number): number {
    if (this.count >= this.tags.length) this.reserve(this.count + 1);
    const i = this.count++;
    const w = this.words;
    const o = i * W;
    w[o] = w0;
    w[o + 1] = w1;
    w[o + 2] = a0;
    w[o + 3] = a1;
    w[o + 4] = a2;
    w[o + 5] = a3;
    this.tags[i] = tag;
    return i;
  }

  /** Append a binding of a prefix. */
  pushPrefix(protocol: Protocol, prefix: Prefix, port: number, tag: number): number {
    return this.push(protocol, prefix.domain, prefix.addr, prefix.len, port, tag);
  }

  /** Append entry `i` of another list, with a tag. */
  pushFrom(other: BindingList, i: number, tag: number): number {
    if (this.count >= this.tags.length) this.reserve(this.count + 1);
    const j = this.count++;
    // Six words: cheaper than a Buffer copy per key.
    const from = other.words;
    const to = this.words;
    const a = i * W;
    const o = j * W;
    to[o] = from[a] as number;
    to[o + 1] = from[a + 1] as number;
    to[o + 2] = from[a + 2] as number;
    to[o + 3] = from[a + 3] as number;
    to[o + 4] = from[a + 4] as number;
    to[o + 5] = from[a + 5] as number;
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
    // prefixlen is the key's first word (host order).
    return (this.words[i * W] as number) - 32;
  }

  port(i: number): number {
    const o = i * K + 6;
    return (((this.keyBytes[o] as number) << 8) | (this.keyBytes[o + 1] as number)) >>> 0;
  }

  /** (family, protocol) slot. */
  slot(i: number): number {
    // slotOf(domain, protocol), from the key bytes.
    const o = i * K;
    return (this.keyBytes[o + 4] === AF_INET6 ? 2 : 0) | (this.keyBytes[o + 5] === IPPROTO_UDP ? 1 : 0);
  }

  /** The address bytes (4 or 16; a copy). */
  addr(i: number): Uint8Array {
    const b = this.keyBytes;
    const o = i * K + 8;
    const out = new Uint8Array(b[i * K + 4] === AF_INET ? 4 : 16);
    for (let k = 0; k < out.length; k++) out[k] = b[o + k] as number;
    return out;
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
   * compareBindings), ties broken by `labelOf` (`uniqueKeys`: the caller
   * knows no key appears twice, so there are no ties).
   */
  sortedIndices(labelOf: (i: number) => string, opts: { uniqueKeys?: boolean } = {}): Uint32Array {
    const n = this.count;
    // Each entry's sort key as SORT_WORDS unsigned columns compared in order:
    // (longest prefix first, exact port before port 0, protocol, family),
    // the address big-endian (four words), the port, the label's rank. With
    // unique keys (a generation read from the maps holds each key once) the
    // label never decides: its column is left out.
    const cols = Array.from({ length: opts.uniqueKeys ? SORT_WORDS - 1 : SORT_WORDS }, () => new Uint32Array(n));
    if (!opts.uniqueKeys) labelRanks(this, n, labelOf, cols[SORT_WORDS - 1] as Uint32Array);
    sortColumns(this.words, n, cols);
    return sortByColumns(cols, n);
  }
}

const SORT_WORDS = 7;

/** Big-endian value of a word read little-endian from key bytes. */
function bswap(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/**
 * The first six sort columns of entries 0..n-1 from their key words (see
 * sortedIndices): head, the address big-endian in four words, the port.
 */
function sortColumns(words: Uint32Array, n: number, cols: Uint32Array[]): void {
  const [head, a0, a1, a2, a3, ports] = cols as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  for (let i = 0; i < n; i++) {
    const o = i * W;
    // Word 0: prefixlen (LE); word 1: family, protocol, port (BE) as bytes 4..7.
    const len = (words[o] as number) - 32;
    const w1 = words[o + 1] as number;
    const family = w1 & 0xff;
    const protocol = (w1 >>> 8) & 0xff;
    const port = ((w1 >>> 16) & 0xff) << 8 | (w1 >>> 24);
    head[i] = (((255 - len) << 24) | ((port === 0 ? 1 : 0) << 16) | (protocol << 8) | family) >>> 0;
    a0[i] = bswap(words[o + 2] as number);
    a1[i] = bswap(words[o + 3] as number);
    a2[i] = bswap(words[o + 4] as number);
    a3[i] = bswap(words[o + 5] as number);
    ports[i] = port;
  }
}

/**
 * Indices 0..n-1 ordered by the unsigned words of `cols` (column 0 first,
 * ties broken by the next): an LSD radix sort on 16-bit digits that skips
 * columns and digits every entry shares (the usual /32 ports need about
 * five passes), or a comparator sort for short lists. Stable.
 *
 * Each step of a pass is its own small function: a command sorts once, so
 * the sort runs cold; a loop in a function called once per pass is
 * optimised for the passes after the first, where loops inlined in one
 * function would each start again in the interpreter.
 */
export function sortByColumns(cols: readonly Uint32Array[], n: number): Uint32Array {
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (n < 1024) {
    return idx.sort((a, b) => {
      for (const c of cols) {
        const x = c[a] as number;
        const y = c[b] as number;
        if (x !== y) return x < y ? -1 : 1;
      }
      return a - b;
    });
  }
  let tmp = new Uint32Array(n);
  const count = new Uint32Array(1 << 16);
  const digits = new Uint16Array(n);
  const range = new Uint32Array(2);
  for (let k = cols.length - 1; k >= 0; k--) {
    const col = cols[k] as Uint32Array;
    if (isConstant(col, n)) continue;
    for (let shift = 0; shift <= 16; shift += 16) {
      digitsOf(col, shift, n, digits, range);
      const lo = range[0] as number;
      const hi = range[1] as number;
      if (lo === hi) continue;
      count.fill(0, lo, hi + 1);
      countDigits(digits, n, count);
      offsetsOf(count, lo, hi);
      scatter(idx, tmp, digits, count, n);
      const t = idx;
      idx = tmp;
      tmp = t;
    }
  }
  return idx;
}

/** True when the first n words of `col` are all equal. */
function isConstant(col: Uint32Array, n: number): boolean {
  const first = col[0] as number;
  for (let i = 1; i < n; i++) if (col[i] !== first) return false;
  return true;
}

/** The 16-bit digit at `shift` of each word into `digits`; the smallest and largest into `range`. */
function digitsOf(col: Uint32Array, shift: number, n: number, digits: Uint16Array, range: Uint32Array): void {
  let lo = 0xffff;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const d = ((col[i] as number) >>> shift) & 0xffff;
    digits[i] = d;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  range[0] = lo;
  range[1] = hi;
}

/** Occurrences of each digit (count must be zero over the digits' range). */
function countDigits(digits: Uint16Array, n: number, count: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const d = digits[i] as number;
    count[d] = (count[d] as number) + 1;
  }
}

/** Counts into starting offsets, over digits lo..hi. */
function offsetsOf(count: Uint32Array, lo: number, hi: number): void {
  let sum = 0;
  for (let d = lo; d <= hi; d++) {
    const c = count[d] as number;
    count[d] = sum;
    sum += c;
  }
}

/** One stable counting pass: `idx` ordered by digit into `tmp`. */
function scatter(idx: Uint32Array, tmp: Uint32Array, digits: Uint16Array, count: Uint32Array, n: number): void {
  for (let j = 0; j < n; j++) {
    const i = idx[j] as number;
    const d = digits[i] as number;
    const at = count[d] as number;
    tmp[at] = i;
    count[d] = at + 1;
  }
}

/** Each entry's label rank into `out` (labels compared as strings; computed once per tag). */
function labelRanks(list: BindingList, n: number, labelOf: (i: number) => string, out: Uint32Array): void {
  const byTag = new Map<number, string>();
  let maxTag = 0;
  const tags = list.tags;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const t = tags[i] as number;
    if (t === last) continue;
    last = t;
    if (t > maxTag) maxTag = t;
    if (!byTag.has(t)) byTag.set(t, labelOf(i));
  }
  const sorted = [...new Set(byTag.values())].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rank = new Map<string, number>(sorted.map((l, r) => [l, r]));
  if (maxTag < 1 << 20) {
    // Tags are destination ids (small): a table instead of a Map lookup per entry.
    const table = new Uint32Array(maxTag + 1);
    for (const [t, l] of byTag) table[t] = rank.get(l) ?? 0;
    for (let i = 0; i < n; i++) out[i] = table[tags[i] as number] as number;
    return;
  }
  const tagRank = new Map<number, number>();
  for (const [t, l] of byTag) tagRank.set(t, rank.get(l) ?? 0);
  for (let i = 0; i < n; i++) out[i] = tagRank.get(tags[i] as number) ?? 0;
}

/**
 * Index of the first of the `n` packed keys that is not a well-formed
 * manifold binding key (see {@link validKey}), or -1. Works on the key
 * words (one read per word, no Buffer method per key).
 */
export function firstInvalidKey(words: Uint32Array, n: number): number {
  for (let i = 0; i < n; i++) {
    const o = i * W;
    const len = (words[o] as number) - 32;
    const w1 = words[o + 1] as number;
    const family = w1 & 0xff;
    const protocol = (w1 >>> 8) & 0xff;
    const max = family === AF_INET ? 32 : family === AF_INET6 ? 128 : -1;
    if (len < 0 || len > max || (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP)) return i;
  }
  return -1;
}

/** True when the 24 bytes at `offset` are a well-formed manifold binding key. */
export function validKey(buf: Buffer, offset: number): boolean {
  const family = buf[offset + 4];
  const protocol = buf[offset + 5];
  if ((family !== AF_INET && family !== AF_INET6) || (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP)) return false;
  const len = buf.readUInt32LE(offset) - 32;
  return len >= 0 && len <= (family === AF_INET ? 32 : 128);
}

/** 32-bit words over a 4-byte-aligned buffer (whole keys only). */
function wordsOf(buf: Buffer): Uint32Array {
  return new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4));
}


function hashKey(words: Uint32Array, o: number): number {
  let h = 0x811c9dc5;
  for (let w = 0; w < W; w++) {
    h = Math.imul(h ^ (words[o + w] as number), 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

function sameKey(a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean {
  for (let w = 0; w < W; w++) if (a[ao + w] !== b[bo + w]) return false;
  return true;
}

/**
 * Find entries of a BindingList by key: open addressing, each slot two
 * words (entry + 1, the key's hash), so a probe compares hashes in the
 * table before it reads a key from the list (one cache line, not two).
 */
export class KeyIndex {
  private readonly list: BindingList;
  /** Slot s: [2s] = entry + 1 (0: empty), [2s + 1] = hash of its key. */
  private table: Uint32Array;
  private mask: number;
  private size = 0;

  constructor(list: BindingList, expected = list.count) {
    this.list = list;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Uint32Array(cap * 2);
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
    if ((this.size + 1) * 2 > this.mask + 1) this.rehash();
    const keys = this.list.words;
    const t = this.table;
    const h = hashKey(keys, i * W);
    let p = h & this.mask;
    for (;;) {
      const v = t[p * 2] as number;
      if (v === 0) {
        t[p * 2] = i + 1;
        t[p * 2 + 1] = h;
        this.size++;
        return -1;
      }
      if (t[p * 2 + 1] === h && sameKey(keys, (v - 1) * W, keys, i * W)) return v - 1;
      p = (p + 1) & this.mask;
    }
  }

  /** Index of the entry whose key equals entry `i` of `other`, or -1. */
  find(other: BindingList, i: number): number {
    const keys = this.list.words;
    const words = other.words;
    const t = this.table;
    const offset = i * W;
    const h = hashKey(words, offset);
    let p = h & this.mask;
    for (;;) {
      const v = t[p * 2] as number;
      if (v === 0) return -1;
      if (t[p * 2 + 1] === h && sameKey(keys, (v - 1) * W, words, offset)) return v - 1;
      p = (p + 1) & this.mask;
    }
  }

  private rehash(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    const t = new Uint32Array(cap * 2);
    this.table = t;
    this.mask = cap - 1;
    for (let s = 0; s < old.length; s += 2) {
      const v = old[s] as number;
      if (v === 0) continue;
      const h = old[s + 1] as number;
      let p = h & this.mask;
      while (t[p * 2] !== 0) p = (p + 1) & this.mask;
      t[p * 2] = v;
      t[p * 2 + 1] = h;
    }
  }
}

/** Sort Binding objects (small sets) most specific first. */
export function sortBindings(list: Binding[]): Binding[] {
  return list.sort(compareBindings);
}
