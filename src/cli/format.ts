/**
 * The one text formatter of bindings and destinations for the CLI: binding
 * text ("tcp 192.0.2.0/24 80"), port ranges collapsed into one line, and
 * JSON written as a stream (no document object for 200,000 bindings).
 */
import type { BindingList } from '../core/binding-list.js';
import type { Binding, BindingJson } from '../core/binding.js';
import { formatPorts, formatPrefix, type Prefix, type Protocol } from '../core/net.js';
import { escapeJson } from '../core/escape.js';
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

/**
 * Write a JSON array of bindings to stdout piece by piece, inside an
 * optional document: `head` + array + `tail` (e.g. '{"bindings":' … '}').
 */
export function streamBindingsJson(list: BindingList, order: ArrayLike<number>, labelOf: (i: number) => string, head = '', tail = ''): void {
  flushOut();
  let chunk = `${head}[`;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    chunk += `${k === 0 ? '' : ','}\n  ${JSON.stringify(bindingJson(list, i, labelOf(i)))}`;
    if (chunk.length > 1 << 16) {
      outRaw(escapeJson(chunk));
      chunk = '';
    }
  }
  outRaw(escapeJson(`${chunk}${order.length ? '\n' : ''}]${tail}\n`));
}
