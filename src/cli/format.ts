/**
 * The one text formatter of bindings and destinations for the CLI: binding
 * text ("tcp 192.0.2.0/24 80"), port ranges collapsed into one line, and
 * JSON written as a stream (no document object for 200,000 bindings).
 */
import type { BindingList } from '../core/binding-list.js';
import type { Binding, BindingJson } from '../core/binding.js';
import { AF_INET, IPPROTO_UDP, formatPorts, formatPrefix, type Prefix, type Protocol } from '../core/net.js';
import { escapeControls, escapeJson } from '../core/escape.js';
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

/** Write the decimal digits of a non-negative integer at `at`; returns the new offset. */
function putDecimal(buf: Buffer, at: number, value: number): number {
  if (value > 0x7fffffff) return at + buf.write(String(value), at, 'latin1');
  let digits = 1;
  for (let v = value; v >= 10; v = (v / 10) | 0) digits++;
  const end = at + digits;
  let v = value;
  for (let j = end - 1; j >= at; j--) {
    const q = (v / 10) | 0;
    buf[j] = 48 + v - q * 10;
    v = q;
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
  const starts: (Buffer | undefined)[] = [];
  const cur: Cursor = { at: 0, k: 0 };
  let buf = Buffer.allocUnsafe(CHUNK + ENTRY_ROOM);
  while (cur.k < order.length) {
    putEntries(buf, cur, list, order, starts);
    if (cur.k === order.length) break;
    const i = order[cur.k] as number;
    const udp = list.keys[i * Sizes.bindingKey + 5] === IPPROTO_UDP;
    const which = (list.tags[i] as number) * 2 + (udp ? 1 : 0);
    const start = starts[which];
    if (start === undefined) {
      starts[which] = Buffer.from(`\n  {"label":${escapeJson(JSON.stringify(labelOf(i)))},"protocol":"${udp ? 'udp' : 'tcp'}","prefix":"`);
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
function putEntries(buf: Buffer, cur: Cursor, list: BindingList, order: ArrayLike<number>, starts: readonly (Buffer | undefined)[]): void {
  const keys = list.keys;
  const tags = list.tags;
  const limit = buf.length - ENTRY_ROOM;
  let at = cur.at;
  let k = cur.k;
  for (; k < order.length; k++) {
    const i = order[k] as number;
    const o = i * Sizes.bindingKey;
    const start = starts[(tags[i] as number) * 2 + (keys[o + 5] === IPPROTO_UDP ? 1 : 0)];
    if (start === undefined || at + start.length > limit) break;
    if (k > 0) buf[at++] = 44; // ','
    buf.set(start, at);
    at += start.length;
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

/** The longest text of one binding range: "udp " + an IPv6 prefix + "/128 " + "65535-65535". */
const RANGE_ROOM = 64;

/** Label bytes by tag, escaped for a text line (TAB kept, as out() does), made on first use. */
class LineLabels {
  private readonly bytes = new Map<number, Buffer>();
  constructor(private readonly list: BindingList, private readonly labelOf: (i: number) => string) {}

  /** Entry i's label, escaped, as bytes. */
  of(i: number): Buffer {
    const tag = this.list.tags[i] as number;
    let b = this.bytes.get(tag);
    if (b === undefined) {
      b = Buffer.from(escapeControls(this.labelOf(i), '\t'));
      this.bytes.set(tag, b);
    }
    return b;
  }
}

/** Chunks of stdout bytes: `room(n)` makes sure n more bytes fit, handing full chunks to stdout. */
class ChunkWriter {
  buf = Buffer.allocUnsafe(CHUNK + ENTRY_ROOM);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    if (this.at > 0) outBytes(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK, n) + ENTRY_ROOM);
    this.at = 0;
  }

  end(): void {
    if (this.at > 0) outBytes(this.buf.subarray(0, this.at));
    this.at = 0;
  }
}

/**
 * Write "PROTOCOL PREFIX PORTS" of entry `i` (ports `first`..`last`) at
 * `at`, as bindingText does; returns the new offset.
 */
function putRangeText(buf: Buffer, at: number, list: BindingList, i: number, first: number, last: number): number {
  const keys = list.keys;
  const o = i * Sizes.bindingKey;
  at = putBytes(buf, at, keys[o + 5] === IPPROTO_UDP ? UDP_SP : TCP_SP);
  if (keys[o + 4] === AF_INET) at = putIpv4Prefix(buf, at, keys, o, (keys[o] as number) - 32);
  else at += buf.write(formatPrefix(list.prefix(i)), at, 'latin1');
  buf[at++] = 32; // ' '
  at = putDecimal(buf, at, first);
  if (last === first) return at;
  buf[at++] = 45; // '-'
  return putDecimal(buf, at, last);
}

const TCP_SP = Buffer.from('tcp ', 'latin1');
const UDP_SP = Buffer.from('udp ', 'latin1');

/**
 * Ranges of entries taken in `order` (as {@link collapseIndices} makes
 * them, without notes), as typed arrays: each range's first entry and its
 * first and last port.
 */
export interface RangeColumns {
  count: number;
  index: Uint32Array;
  first: Uint32Array;
  last: Uint32Array;
}

/**
 * {@link collapseIndices} (no notes) into columns: no object per range.
 * Entries are compared by tag, not by label: entries with the same key
 * but for the port have the same family and protocol, and then the same
 * label means the same tag (a destination id, or a label index).
 */
export function collapseColumns(list: BindingList, order: ArrayLike<number>): RangeColumns {
  const n = order.length;
  const cols: RangeColumns = { count: 0, index: new Uint32Array(n), first: new Uint32Array(n), last: new Uint32Array(n) };
  const words = list.words;
  const tags = list.tags;
  let prev = -1;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const port = list.port(i);
    const r = cols.count - 1;
    if (r >= 0 && tags[i] === tags[prev] && port !== 0 && cols.first[r] !== 0 && (cols.last[r] as number) + 1 === port && sameWordsButPort(words, prev, i)) {
      cols.last[r] = port;
    } else {
      cols.index[r + 1] = i;
      cols.first[r + 1] = port;
      cols.last[r + 1] = port;
      cols.count = r + 2;
    }
    prev = i;
  }
  return cols;
}

/** Entries a and b have the same key words but for the port (prefix length, family, protocol, address). */
function sameWordsButPort(words: Uint32Array, a: number, b: number): boolean {
  const oa = a * (Sizes.bindingKey / 4);
  const ob = b * (Sizes.bindingKey / 4);
  // Word 1 is family, protocol, port: compare its low half only.
  return words[oa] === words[ob] && (((words[oa + 1] as number) ^ (words[ob + 1] as number)) & 0xffff) === 0 &&
    words[oa + 2] === words[ob + 2] && words[oa + 3] === words[ob + 3] && words[oa + 4] === words[ob + 4] && words[oa + 5] === words[ob + 5];
}

/**
 * Write `lead` + range text (padded to the longest when `pad`) + `arrow` +
 * label per range, one line each, as bytes: what
 * `out(\`${lead}${rangeText(…).padEnd(width)}${arrow}${label}\`)` prints for each
 * range of collapseIndices, without a string or object per binding (status:
 * padded, "  -> "; apply's diff: "+ "/"- ", not padded, " -> ").
 */
export function streamRangeLines(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string, lead: string, pad: boolean, arrow = '  -> '): void {
  const ranges = collapseColumns(list, order);
  const labels = new LineLabels(list, labelOf);
  if (!pad) {
    streamUnpadded(list, ranges, labels, Buffer.from(lead, 'latin1'), Buffer.from(arrow, 'latin1'));
    return;
  }
  // The range texts first (their widths decide the padding).
  const texts = Buffer.allocUnsafe(Math.max(1, ranges.count * RANGE_ROOM));
  const ends = new Uint32Array(ranges.count);
  const width = putRangeTexts(texts, ends, list, ranges);
  const leadBytes = Buffer.from(lead, 'latin1');
  const arrowBytes = Buffer.from(arrow, 'latin1');
  const w = new ChunkWriter();
  let start = 0;
  for (let r = 0; r < ranges.count; r++) {
    const label = labels.of(ranges.index[r] as number);
    w.room(leadBytes.length + width + arrowBytes.length + label.length + 1);
    const end = ends[r] as number;
    w.at = putLine(w.buf, w.at, leadBytes, texts, start, end, pad ? width : 0, arrowBytes, label);
    start = end;
  }
  w.end();
}

/** streamRangeLines without padding: each range's text goes straight into the line. */
function streamUnpadded(list: BindingList, ranges: RangeColumns, labels: LineLabels, lead: Buffer, arrow: Buffer): void {
  const w = new ChunkWriter();
  for (let r = 0; r < ranges.count; r++) {
    const i = ranges.index[r] as number;
    const label = labels.of(i);
    w.room(lead.length + RANGE_ROOM + arrow.length + label.length + 1);
    let at = putBytes(w.buf, w.at, lead);
    at = putRangeText(w.buf, at, list, i, ranges.first[r] as number, ranges.last[r] as number);
    at = putBytes(w.buf, at, arrow);
    at = putBytes(w.buf, at, label);
    w.buf[at] = 10;
    w.at = at + 1;
  }
  w.end();
}

/** Each range's text into `texts` (ends[r] = where range r's text ends); returns the longest length. */
function putRangeTexts(texts: Buffer, ends: Uint32Array, list: BindingList, ranges: RangeColumns): number {
  let at = 0;
  let width = 0;
  for (let r = 0; r < ranges.count; r++) {
    const next = putRangeText(texts, at, list, ranges.index[r] as number, ranges.first[r] as number, ranges.last[r] as number);
    if (next - at > width) width = next - at;
    ends[r] = next;
    at = next;
  }
  return width;
}

/** lead + texts[start, end) + spaces up to `width` + arrow + label + LF at `at`; returns the new offset. */
function putLine(buf: Buffer, at: number, lead: Buffer, texts: Buffer, start: number, end: number, width: number, arrow: Buffer, label: Buffer): number {
  at = putBytes(buf, at, lead);
  for (let j = start; j < end; j++) buf[at++] = texts[j] as number;
  for (let j = end - start; j < width; j++) buf[at++] = 32;
  at = putBytes(buf, at, arrow);
  at = putBytes(buf, at, label);
  buf[at] = 10;
  return at + 1;
}

/**
 * One line per entry in `order`: protocol, prefix, port and label separated
 * by TABs (the `bindings` listing for scripts), as bytes.
 */
export function streamBindingRows(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string): void {
  const labels = new LineLabels(list, labelOf);
  const keys = list.keys;
  const w = new ChunkWriter();
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    const label = labels.of(i);
    w.room(RANGE_ROOM + label.length + 4);
    w.at = putRow(w.buf, w.at, list, keys, i, label);
  }
  w.end();
}

/** "PROTOCOL\tPREFIX\tPORT\tLABEL\n" of entry i at `at`; returns the new offset. */
function putRow(buf: Buffer, at: number, list: BindingList, keys: Buffer, i: number, label: Buffer): number {
  const o = i * Sizes.bindingKey;
  at = putBytes(buf, at, keys[o + 5] === IPPROTO_UDP ? UDP_TAB : TCP_TAB);
  if (keys[o + 4] === AF_INET) at = putIpv4Prefix(buf, at, keys, o, (keys[o] as number) - 32);
  else at += buf.write(formatPrefix(list.prefix(i)), at, 'latin1');
  buf[at++] = 9;
  at = putDecimal(buf, at, ((keys[o + 6] as number) << 8) | (keys[o + 7] as number));
  buf[at++] = 9;
  at = putBytes(buf, at, label);
  buf[at] = 10;
  return at + 1;
}

const TCP_TAB = Buffer.from('tcp\t', 'latin1');
const UDP_TAB = Buffer.from('udp\t', 'latin1');

const WAS = Buffer.from(' (was ', 'latin1');
const SPACED_ARROW = Buffer.from(' -> ', 'latin1');

/**
 * The lines of apply's text diff ("+ tcp 192.0.2.0/24 80-81 -> web",
 * "~ … -> web (was api)") written as bytes into chunks: the text of
 * `${sign} ${rangeText(list, range)} -> ${label}`, each label escaped once
 * (escapeControls keeping TAB: the same bytes as escaping the whole line,
 * every other part being ASCII made here). Call end() once done.
 */
export class DiffLines {
  private readonly w = new ChunkWriter();
  private readonly labels = new Map<string, Buffer>();

  /** One line: `sign` ('+', '-' or '~'), a range of entries of `list`, its label, and `was` (the old label) for '~'. */
  line(sign: '+' | '-' | '~', list: BindingList, r: IndexRange, was?: string): void {
    const label = this.label(r.label);
    const old = was === undefined ? null : this.label(was);
    this.w.room(2 + RANGE_ROOM + SPACED_ARROW.length + label.length + (old ? WAS.length + old.length + 1 : 0) + 1);
    const buf = this.w.buf;
    let at = this.w.at;
    buf[at++] = sign.charCodeAt(0);
    buf[at++] = 32;
    at = putRangeText(buf, at, list, r.index, r.first, r.last);
    at = putBytes(buf, at, SPACED_ARROW);
    at = putBytes(buf, at, label);
    if (old) {
      at = putBytes(buf, at, WAS);
      at = putBytes(buf, at, old);
      buf[at++] = 41; // ')'
    }
    buf[at++] = 10;
    this.w.at = at;
  }

  /** Write what is left. */
  end(): void {
    this.w.end();
  }

  private label(text: string): Buffer {
    let b = this.labels.get(text);
    if (b === undefined) this.labels.set(text, (b = Buffer.from(escapeControls(text, '\t'))));
    return b;
  }
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
