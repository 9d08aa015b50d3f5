/**
 * The one text formatter of bindings and destinations for the CLI: binding
 * text ("tcp 192.0.2.0/24 80"), port ranges collapsed into one line, and
 * JSON written as a stream (no document object for 200,000 bindings).
 */
import type { BindingList } from '../core/binding-list.js';
import type { Binding, BindingJson } from '../core/binding.js';
import { formatPorts, formatPrefix, type Prefix, type Protocol } from '../core/net.js';
import { escapeJson } from '../core/escape.js';
import { Sizes } from '../core/layout.js';
import { flushOut, outRaw } from './output.js';

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

/** Entry i's prefix as text (IPv4 straight from the key bytes). */
function prefixText(list: BindingList, i: number): string {
  if (list.domain(i) !== 'ipv4') return formatPrefix(list.prefix(i));
  const k = list.keys;
  const o = i * Sizes.bindingKey + 8;
  return `${k[o]}.${k[o + 1]}.${k[o + 2]}.${k[o + 3]}/${list.len(i)}`;
}

/**
 * Write a JSON array of bindings to stdout piece by piece, inside an
 * optional document: `head` + array + `tail` (e.g. '{"bindings":' … '}').
 * `labelOf` must depend only on the entry's tag (it is asked once per tag).
 */
export function streamBindingsJson(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string, head = '', tail = ''): void {
  flushOut();
  // The text JSON.stringify(bindingJson(...)) gives, written directly: one
  // string per binding, labels encoded once per destination.
  const labelJson = new Map<number, string>();
  let chunk = `${head}[`;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    const tag = list.tag(i);
    let lj = labelJson.get(tag);
    if (lj === undefined) labelJson.set(tag, (lj = JSON.stringify(labelOf(i))));
    chunk += `${k === 0 ? '' : ','}\n  {"label":${lj},"protocol":"${list.protocol(i)}","prefix":"${prefixText(list, i)}","port":${list.port(i)}}`;
    if (chunk.length > 1 << 16) {
      outRaw(escapeJson(chunk));
      chunk = '';
    }
  }
  outRaw(escapeJson(`${chunk}${order.length ? '\n' : ''}]${tail}\n`));
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
