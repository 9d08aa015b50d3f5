/**
 * Bindings: (protocol, prefix, port) -> label, their canonical order and
 * the reference model of precedence used by tests and `--dry-run`.
 */
import { formatPrefix, type Domain, type Prefix, type Protocol } from './net.js';

/** One binding: one protocol, one prefix, one port (0 = all ports). */
export interface Binding {
  label: string;
  protocol: Protocol;
  prefix: Prefix;
  port: number;
}

/** The JSON/listing form of a binding. */
export interface BindingJson {
  label: string;
  protocol: Protocol;
  prefix: string;
  port: number;
}

/** Listing form. */
export function bindingToJson(b: Binding): BindingJson {
  return { label: b.label, protocol: b.protocol, prefix: formatPrefix(b.prefix), port: b.port };
}

/** Identity of a binding without its label, for messages: "tcp 10.0.0.0/8 80". */
export function bindingKeyText(b: Pick<Binding, 'protocol' | 'prefix' | 'port'>): string {
  return `${b.protocol} ${formatPrefix(b.prefix)} ${b.port}`;
}

/**
 * Compact identity of a binding without its label, for Map keys (not for
 * display): protocol, prefix length, port and address bytes as a short
 * string. Much cheaper than formatting addresses.
 */
export function bindingId(b: Pick<Binding, 'protocol' | 'prefix' | 'port'>): string {
  return String.fromCharCode(b.protocol === 'tcp' ? 6 : 17, b.prefix.len, b.port, ...b.prefix.addr);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Most specific first: longer prefix, then exact port before port 0, then
 * by protocol, family, address, port and label for a stable order.
 */
export function compareBindings(a: Binding, b: Binding): number {
  if (a.prefix.len !== b.prefix.len) return b.prefix.len - a.prefix.len;
  const aw = a.port === 0 ? 1 : 0;
  const bw = b.port === 0 ? 1 : 0;
  if (aw !== bw) return aw - bw;
  if (a.protocol !== b.protocol) return a.protocol < b.protocol ? -1 : 1;
  const c = compareBytes(a.prefix.addr, b.prefix.addr);
  if (c !== 0) return c;
  if (a.port !== b.port) return a.port - b.port;
  return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
}

/** True when `addr` (same family) lies inside `prefix`. */
export function prefixContains(prefix: Prefix, addr: Uint8Array): boolean {
  if (prefix.addr.length !== addr.length) return false;
  let bits = prefix.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff00 >> bits) & 0xff;
    if (((addr[i] ?? 0) & mask) !== (prefix.addr[i] ?? 0)) return false;
  }
  return true;
}

/**
 * Reference model of the data plane's choice: the binding that a packet to
 * (protocol, domain, addr, port) is steered by, or null.
 */
export function resolveReference(bindings: readonly Binding[], protocol: Protocol, domain: Domain, addr: Uint8Array, port: number): Binding | null {
  let best: Binding | null = null;
  for (const b of bindings) {
    if (b.protocol !== protocol || b.prefix.domain !== domain) continue;
    if (b.port !== 0 && b.port !== port) continue;
    if (!prefixContains(b.prefix, addr)) continue;
    if (!best) {
      best = b;
      continue;
    }
    if (b.prefix.len > best.prefix.len || (b.prefix.len === best.prefix.len && b.port !== 0 && best.port === 0)) best = b;
  }
  return best;
}
