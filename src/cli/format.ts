/**
 * The one text formatter of bindings and destinations for the CLI: binding
 * text ("tcp 192.0.2.0/24 80"), port ranges collapsed into one line, and
 * JSON written as a stream (no document object for 200,000 bindings).
 */
import type { BindingList } from '../core/binding-list.js';
import type { Binding, BindingJson } from '../core/binding.js';
import { AF_INET, IPPROTO_UDP, formatPorts, formatPrefix, type Prefix, type Protocol } from '../core/net.js';
import { escapeJson } from '../core/escape.js';
import { Sizes } from '../core/layout.js';
import { flushOut, outBytes, outRaw } from './output.js';

/** "tcp 192.0.2.0/24 80" (a port or a range). */
export function bindingText(protocol: Protocol, prefix: Prefix, first: number, last = first): string {
  return `${protocol} ${formatPrefix(prefix)} ${formatPorts(first, last)}`;
}

/** Consecutive ports of one (label, protocol, prefix) as one range. */
export interface BindingRange {
  label: string;
  protocol: Protocol;
  prefix: Prefix;
  first: number;
  last: number;
  /** Extra text shared by the range (e.g. the previous label). */
  note?: string;
}

/** Collapse bindings that differ only by consecutive ports (in the given order). */
export function collapse(list: readonly Binding[], note: (b: Binding) => string | undefined = () => undefined): BindingRange[] {
  const out: BindingRange[] = [];
  for (const b of list) {
    const n = note(b);
    const last = out[out.length - 1];
    if (
      last && last.label === b.label && last.protocol === b.protocol && last.note === n && last.last + 1 === b.port && b.port !== 0 && last.first !== 0 &&
      last.prefix.len === b.prefix.len && formatPrefix(last.prefix) === formatPrefix(b.prefix)
    ) {
      last.last = b.port;
      continue;
    }
    out.push({ label: b.label, protocol: b.protocol, prefix: b.prefix, first: b.port, last: b.port, ...(n === undefined ? {} : { note: n }) });
  }
  return out;
}

/** JSON of one binding: {label, protocol, prefix, port}. */
export function bindingJson(list: BindingList, i: number, label: string): BindingJson {
  return { label, protocol: list.protocol(i), prefix: formatPrefix(list.prefix(i)), port: list.port(i) };
}

/** Decimal text of 0..255, 4 bytes each: the length, then up to three digits. */
const BYTE_DIGITS = ((): Uint8Array => {
  const t = new Uint8Array(256 * 4);
  for (let b = 0; b < 256; b++) {
    const text = String(b);
    t[b * 4] = text.length;
    for (let j = 0; j < text.length; j++) t[b * 4 + 1 + j] = text.charCodeAt(j);
  }
  return t;
})();

/** Write the decimal digits of a non-negative integer below 10^10 at `at`; returns the new offset. */
function putDecimal(buf: Buffer, at: number, value: number): number {
  let digits = 1;
  for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
  const end = at + digits;
  let v = value;
  for (let j = end - 1; j >= at; j--) {
    buf[j] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return end;
}

/** Write an IPv4 prefix "a.b.c.d/len" from the key bytes at `o`; returns the new offset. */
function putIpv4Prefix(buf: Buffer, at: number, keys: Buffer, o: number, len: number): number {
  for (let j = 0; j < 4; j++) {
    const t = (keys[o + 8 + j] as number) * 4;
    const n = BYTE_DIGITS[t] as number;
    for (let d = 1; d <= n; d++) buf[at++] = BYTE_DIGITS[t + d] as number;
    buf[at++] = j === 3 ? 47 : 46; // '/' after the last byte, '.' between
  }
  return putDecimal(buf, at, len);
}

/** Fixed text between a streamed binding's prefix and port. */
const PORT_KEY = Buffer.from('","port":', 'latin1');

/** Bytes written before a chunk is handed to stdout. */
const CHUNK = 1 << 16;
/** Room one binding's text can take beyond the label: fixed text, an IPv6 prefix, a port. */
const ENTRY_ROOM = 160;

/**
 * Write a JSON array of bindings to stdout piece by piece, inside an
 * optional document: `head` + array + `tail` (e.g. '{"bindings":' … '}').
 * `labelOf` must depend only on the entry's tag (it is asked once per tag).
 *
 * The text is what JSON.stringify(bindingJson(...)) gives for each entry
 * (with escapeJson), written as bytes straight into the output chunks: a
 * label is encoded once per destination, addresses and ports from the key
 * bytes, so no string is made per binding.
 */
export function streamBindingsJson(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string, head = '', tail = ''): void {
  flushOut();
  outRaw(escapeJson(`${head}[`));
  // The text up to the prefix's value, by tag and protocol.
  const starts = new Map<number, Buffer>();
  const cur: Cursor = { at: 0, k: 0 };
  let buf = Buffer.allocUnsafe(CHUNK + ENTRY_ROOM);
  while (cur.k < order.length) {
    putEntries(buf, cur, list, order, starts);
    if (cur.k === order.length) break;
    const i = order[cur.k] as number;
    const udp = list.keys[i * Sizes.bindingKey + 5] === IPPROTO_UDP;
    const which = (list.tags[i] as number) * 2 + (udp ? 1 : 0);
    const start = starts.get(which);
    if (start === undefined) {
      starts.set(which, Buffer.from(`\n  {"label":${escapeJson(JSON.stringify(labelOf(i)))},"protocol":"${udp ? 'udp' : 'tcp'}","prefix":"`));
    } else {
      // The chunk is full.
      outBytes(buf.subarray(0, cur.at));
      buf = Buffer.allocUnsafe(Math.max(CHUNK, start.length) + ENTRY_ROOM);
      cur.at = 0;
    }
  }
  if (cur.at > 0) outBytes(buf.subarray(0, cur.at));
  outRaw(escapeJson(`${order.length ? '\n' : ''}]${tail}\n`));
}

/** Where {@link putEntries} is: the next byte of the chunk, the next entry of the order. */
interface Cursor {
  at: number;
  k: number;
}

/**
 * Write entries from `cur.k` on into `buf` until one has no text in
 * `starts` yet or the chunk is full (the caller handles both and calls
 * again). The one loop a large listing spends its time in: it has no other
 * branch, so the optimised code made for it is not thrown away halfway.
 */
function putEntries(buf: Buffer, cur: Cursor, list: BindingList, order: ArrayLike<number>, starts: Map<number, Buffer>): void {
  const keys = list.keys;
  const tags = list.tags;
  const limit = buf.length - ENTRY_ROOM;
  let at = cur.at;
  let k = cur.k;
  for (; k < order.length; k++) {
    const i = order[k] as number;
    const o = i * Sizes.bindingKey;
    const start = starts.get((tags[i] as number) * 2 + (keys[o + 5] === IPPROTO_UDP ? 1 : 0));
    if (start === undefined || at + start.length > limit) break;
    if (k > 0) buf[at++] = 44; // ','
    at = putBytes(buf, at, start);
    if (keys[o + 4] === AF_INET) at = putIpv4Prefix(buf, at, keys, o, (keys[o] as number) - 32);
    else at += buf.write(formatPrefix(list.prefix(i)), at, 'latin1');
    at = putBytes(buf, at, PORT_KEY);
    at = putDecimal(buf, at, ((keys[o + 6] as number) << 8) | (keys[o + 7] as number));
    buf[at++] = 125; // '}'
  }
  cur.at = at;
  cur.k = k;
}

/** Copy `bytes` into `buf` at `at`; returns the new offset. */
function putBytes(buf: Buffer, at: number, bytes: Uint8Array): number {
  for (let j = 0; j < bytes.length; j++) buf[at + j] = bytes[j] as number;
  return at + bytes.length;
}

/** Consecutive ports of one (label, protocol, prefix) among entries of a list, as found in `order`. */
export interface IndexRange {
  /** The first entry of the range. */
  index: number;
  label: string;
  first: number;
  last: number;
  /** Extra text shared by the range (e.g. the previous label). */
  note?: string;
}

/**
 * Collapse entries of `list` taken in `order` that differ only by
 * consecutive ports (never port 0) into ranges, like {@link collapse}.
 */
export function collapseIndices(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string, note: (i: number) => string | undefined = () => undefined): IndexRange[] {
  const out: IndexRange[] = [];
  let prevIndex = -1;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    const label = labelOf(i);
    const n = note(i);
    const port = list.port(i);
    const last = out[out.length - 1];
    if (last && last.label === label && last.note === n && port !== 0 && last.first !== 0 && last.last + 1 === port && sameKeyButPort(list, prevIndex, i)) {
      last.last = port;
    } else {
      out.push({ index: i, label, first: port, last: port, ...(n === undefined ? {} : { note: n }) });
    }
    prevIndex = i;
  }
  return out;
}

/** Entries a and b have the same key but for the port (prefix length, family, protocol, address). */
function sameKeyButPort(list: BindingList, a: number, b: number): boolean {
  if (a < 0) return false;
  const ka = list.key(a);
  const kb = list.key(b);
  return ka.compare(kb, 0, 6, 0, 6) === 0 && ka.compare(kb, 8, 24, 8, 24) === 0;
}

/** A range of entries as "tcp 192.0.2.0/24 8000-8080". */
export function rangeText(list: BindingList, r: IndexRange): string {
  return bindingText(list.protocol(r.index), list.prefix(r.index), r.first, r.last);
}

/** A socket as `ss -e` names it: "ino:INODE sk:COOKIE-IN-HEX" (ino: only when known). */
export function socketIdText(cookie: string, inode: number | null): string {
  return `${inode === null ? '' : `ino:${inode} `}sk:${BigInt(cookie).toString(16)}`;
}
