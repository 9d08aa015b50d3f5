/**
 * Dependency-free parsing of addresses, prefixes and ports for the config
 * files.
 *
 * Same rules and canonical forms as src/core/net.ts (the unit tests check
 * they agree), but without ipaddr.js: loading it costs the systemd generator
 * tens of milliseconds per boot. Parsers return a value or a reason string.
 */
import type { Prefix } from '../core/net.js';

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

function parseV4(text: string): number[] | null {
  return V4.test(text) ? text.split('.').map(Number) : null;
}

function groupsOf(part: string, allowV4Tail: boolean): number[] | null {
  if (part === '') return [];
  const words = part.split(':');
  const out: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (allowV4Tail && i === words.length - 1 && w.includes('.')) {
      const b = parseV4(w);
      if (!b) return null;
      out.push(((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number));
    } else if (HEX_GROUP.test(w)) {
      out.push(parseInt(w, 16));
    } else {
      return null;
    }
  }
  return out;
}

function parseV6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  let groups: number[];
  if (halves.length === 2) {
    const head = groupsOf(halves[0] as string, false);
    const tail = groupsOf(halves[1] as string, true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = groupsOf(text, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** Parse an address or prefix like src/core/net.ts parsePrefix; host bits are kept, see `hostBitsSet`. */
export function parseIpPrefix(text: string): Prefix | string {
  if (text.length === 0 || text.length > 64) return 'expected an IP address or prefix such as 192.0.2.0/24';
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? null : text.slice(slash + 1);
  let bytes: number[] | null;
  let domain: Prefix['domain'];
  if (addrText.includes(':')) {
    bytes = addrText.includes('%') ? null : parseV6(addrText);
    if (!bytes) return 'not a valid IPv6 address';
    domain = 'ipv6';
    if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
      return 'IPv4-mapped IPv6 addresses are not accepted; use the IPv4 form';
    }
    if (addrText.includes('.')) return 'IPv6 addresses with an embedded IPv4 address are not accepted; write it in hexadecimal, or use the IPv4 form';
  } else {
    bytes = parseV4(addrText);
    if (!bytes) return 'not a valid IPv4 address (four decimal octets)';
    domain = 'ipv4';
  }
  const max = domain === 'ipv4' ? 32 : 128;
  let len = max;
  if (lenText !== null) {
    if (!/^(0|[1-9]\d{0,2})$/.test(lenText)) return 'prefix length must be a decimal number';
    len = Number(lenText);
    if (len > max) return `prefix length must be between 0 and ${max}`;
  }
  return { domain, addr: Uint8Array.from(bytes), len };
}

/** A copy of the prefix with the host bits cleared. */
export function maskPrefix(p: Prefix): Prefix {
  const addr = Uint8Array.from(p.addr);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, p.len - i * 8));
    addr[i] = (addr[i] ?? 0) & ((0xff00 >> keep) & 0xff);
  }
  return { domain: p.domain, addr, len: p.len };
}

/** True when bits after the prefix length are set. */
export function hostBitsSet(p: Prefix): boolean {
  const m = maskPrefix(p);
  return m.addr.some((b, i) => b !== p.addr[i]);
}

/** Canonical address text: dotted quad, or RFC 5952 for IPv6 (as ipaddr.js prints it). */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return Array.from(addr).join('.');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((addr[i] ?? 0) << 8) | (addr[i + 1] ?? 0));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Canonical prefix text ("192.0.2.0/24"). */
export function formatIpPrefix(p: Prefix): string {
  return `${formatIp(p.addr)}/${p.len}`;
}

/** Largest port range (same as src/core/net.ts MAX_PORT_RANGE). */
export const MAX_PORT_SPAN = 4096;

/** Parse a port (0-65535) or a range "A-B" like src/core/net.ts parsePortRange. */
export function parsePorts(text: string): { first: number; last: number } | string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return 'expected a number from 0 to 65535 or a range such as 8000-8080';
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first > 65535 || last > 65535) return 'ports range from 0 to 65535';
  if (m[2] !== undefined) {
    if (first === 0) return 'a range cannot include port 0 (0 already means all ports)';
    if (last < first) return 'the range is backwards';
    if (last - first + 1 > MAX_PORT_SPAN) return `a range may span at most ${MAX_PORT_SPAN} ports`;
  }
  return { first, last };
}

/** "80" or "8000-8080". */
export function formatPorts(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}
