/**
 * Protocols, families, addresses, prefixes and ports: the one parser and
 * formatter of manifold (CLI arguments, apply files, config files, /proc).
 *
 * Dependency-free on purpose: the systemd generator loads it at every boot.
 * Every parser has two forms: `…Text(text)` returns the value or a reason
 * string (for config files, which collect problems), the plain form throws
 * a ManifoldError with a stable code.
 */
import { ManifoldError } from '../errors.js';

/** Transport protocol of a binding or destination. */
export type Protocol = 'tcp' | 'udp';
/** Address family ("domain" in listings). */
export type Domain = 'ipv4' | 'ipv6';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Protocol name to IP protocol number. */
export function protocolNumber(p: Protocol): number {
  return p === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
}

/** IP protocol number to name (null when neither TCP nor UDP). */
export function protocolName(n: number): Protocol | null {
  return n === IPPROTO_TCP ? 'tcp' : n === IPPROTO_UDP ? 'udp' : null;
}

/** Domain to AF_* number. */
export function domainNumber(d: Domain): number {
  return d === 'ipv4' ? AF_INET : AF_INET6;
}

/** AF_* number to domain (null when neither). */
export function domainName(n: number): Domain | null {
  return n === AF_INET ? 'ipv4' : n === AF_INET6 ? 'ipv6' : null;
}

/** Parse "tcp"/"udp" (case-insensitive). */
export function parseProtocol(value: unknown, what = 'protocol'): Protocol {
  const s = typeof value === 'string' ? value.toLowerCase() : '';
  if (s === 'tcp' || s === 'udp') return s;
  throw new ManifoldError('ERR_INVALID_PROTOCOL', `invalid ${what} ${quote(value)}: expected tcp or udp`);
}

/**
 * A protocol filter: "tcp", "udp", or "any" (null: both). Throws
 * ERR_INVALID_PROTOCOL naming the three.
 */
export function parseProtocolOrAny(value: unknown, what = 'protocol'): Protocol | null {
  const s = typeof value === 'string' ? value.toLowerCase() : '';
  if (s === 'any') return null;
  if (s === 'tcp' || s === 'udp') return s;
  throw new ManifoldError('ERR_INVALID_PROTOCOL', `invalid ${what} ${quote(value)}: expected tcp, udp or any`);
}

/** Parse "ipv4"/"ipv6" (also "4"/"6", "inet"/"inet6"). */
export function parseDomain(value: unknown): Domain {
  const s = typeof value === 'string' ? value.toLowerCase() : '';
  if (s === 'ipv4' || s === '4' || s === 'inet') return 'ipv4';
  if (s === 'ipv6' || s === '6' || s === 'inet6') return 'ipv6';
  throw new ManifoldError('ERR_USAGE', `invalid address family ${quote(value)}: expected ipv4 or ipv6`);
}

/** A network prefix: family, address bytes, length. */
export interface Prefix {
  domain: Domain;
  /** 4 or 16 bytes; host bits are zero unless a `…Text` parser says otherwise. */
  addr: Uint8Array;
  len: number;
}

/** Longest text accepted as an address or prefix. */
export const MAX_PREFIX_TEXT = 64;

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

function isMapped(bytes: ArrayLike<number>): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Parse an address or prefix ("10.0.0.0/8", "2001:db8::/32", "127.0.0.1";
 * a plain address is a /32 or /128) KEEPING host bits (see hostBitsSet,
 * maskPrefix). IPv4-mapped IPv6 and IPv6 text with an embedded IPv4
 * address are refused: write the IPv4 form. Returns the prefix or why not.
 */
export function parsePrefixText(text: string): Prefix | string {
  if (text.length === 0 || text.length > MAX_PREFIX_TEXT) return 'expected an IP address or prefix such as 192.0.2.0/24';
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? null : text.slice(slash + 1);
  let bytes: number[] | null;
  let domain: Domain;
  if (addrText.includes(':')) {
    bytes = addrText.includes('%') ? null : parseV6(addrText);
    if (!bytes) return 'not a valid IPv6 address';
    if (isMapped(bytes)) return 'IPv4-mapped IPv6 addresses are not accepted; use the IPv4 form';
    if (addrText.includes('.')) return 'IPv6 addresses with an embedded IPv4 address are not accepted; write it in hexadecimal, or use the IPv4 form';
    domain = 'ipv6';
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

/**
 * Fast path of parsePrefixText for bulk input: parses into `out` (16 bytes,
 * host bits cleared) and returns the prefix length, plus 0x100 for IPv6;
 * -1 when the text is not a valid prefix (ask parsePrefixText why).
 */
export function parsePrefixInto(text: string, out: Uint8Array): number {
  if (text.length === 0 || text.length > MAX_PREFIX_TEXT) return -1;
  if (text.indexOf(':') >= 0) {
    const p = parsePrefixText(text);
    if (typeof p === 'string') return -1;
    out.fill(0);
    out.set(p.addr);
    maskInPlace(out, p.len);
    return p.len | 0x100;
  }
  // UTF-8, not latin1: a non-ASCII character must not turn into a digit.
  const bytes = Buffer.from(text, 'utf8');
  return parsePrefixBytes(bytes, 0, bytes.length, out);
}

/**
 * parsePrefixInto for text given as bytes `buf[start, end)`: IPv4 is parsed
 * in place, without a string.
 */
export function parsePrefixBytes(buf: Uint8Array, start: number, end: number, out: Uint8Array): number {
  if (end <= start || end - start > MAX_PREFIX_TEXT) return -1;
  const v4 = parseIpv4Bytes(buf, start, end, out);
  if (v4 >= 0) return v4;
  for (let j = start; j < end; j++) {
    // IPv6 text goes the general way.
    if (buf[j] === 58) return parsePrefixInto(Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8'), out);
  }
  return -1;
}

/** The IPv4 part of parsePrefixBytes: -1 for anything that is not IPv4 prefix text (IPv6 text included). */
function parseIpv4Bytes(buf: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let i = start;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (buf[i] !== 46) return -1;
      i++;
    }
    const first = i;
    let v = 0;
    while (i < end) {
      const c = buf[i] as number;
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && buf[first] === 48)) return -1;
    out[octet] = v;
  }
  let len = 32;
  if (i < end) {
    if (buf[i] !== 47) return -1;
    i++;
    const first = i;
    let v = 0;
    while (i < end) {
      const c = buf[i] as number;
      if (c < 48 || c > 57) return -1;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || (digits > 1 && buf[first] === 48) || v > 32) return -1;
    len = v;
  }
  for (let k = 4; k < 16; k++) out[k] = 0;
  // Clear the host bits of the four address bytes.
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  out[0] = (out[0] as number) & (mask >>> 24);
  out[1] = (out[1] as number) & ((mask >>> 16) & 0xff);
  out[2] = (out[2] as number) & ((mask >>> 8) & 0xff);
  out[3] = (out[3] as number) & (mask & 0xff);
  return len;
}

/** Zero the bits after `len`, in place. */
export function maskInPlace(addr: Uint8Array, len: number): void {
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    addr[i] = (addr[i] ?? 0) & ((0xff00 >> keep) & 0xff);
  }
}

/** A copy of the prefix with the host bits cleared. */
export function maskPrefix(p: Prefix): Prefix {
  const addr = Uint8Array.from(p.addr);
  maskInPlace(addr, p.len);
  return { domain: p.domain, addr, len: p.len };
}

/** True when bits after the prefix length are set. */
export function hostBitsSet(p: Prefix): boolean {
  const m = maskPrefix(p);
  return m.addr.some((b, i) => b !== p.addr[i]);
}

/** Parse an address or prefix; host bits are masked. Throws ERR_INVALID_PREFIX. */
export function parsePrefix(value: unknown, what = 'prefix'): Prefix {
  const r = typeof value === 'string' ? parsePrefixText(value) : 'expected an IP address or prefix such as 192.0.2.0/24';
  if (typeof r === 'string') throw new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${quote(value)}: ${r}`);
  maskInPlace(r.addr, r.len);
  return r;
}

/** Parse an exact IP address (no prefix length). Throws ERR_INVALID_PREFIX. */
export function parseAddress(value: unknown, what = 'address'): Prefix {
  if (typeof value === 'string' && value.includes('/')) {
    throw new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${quote(value)}: expected a single IP address, not a prefix`);
  }
  return parsePrefix(value, what);
}

/** Canonical text of an address: dotted quad, or RFC 5952 for IPv6. */
export function formatAddr(addr: Uint8Array): string {
  if (addr.length === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((addr[i] ?? 0) << 8) | (addr[i + 1] ?? 0));
  // The longest run (2 or more) of zero groups becomes "::", the first one on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Canonical text of a prefix ("10.0.0.0/8"). */
export function formatPrefix(p: Prefix): string {
  return `${formatAddr(p.addr)}/${p.len}`;
}

/** "[2001:db8::1]:80" or "192.0.2.1:80". */
export function formatEndpoint(domain: Domain, address: string, port: number): string {
  return domain === 'ipv6' ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Largest port range accepted in one binding. */
export const MAX_PORT_RANGE = 4096;

/** A port or an inclusive range; 0 means all ports. */
export interface PortRange {
  first: number;
  last: number;
}

/** Parse a port (0-65535) or a range "A-B"; returns the range or why not. */
export function parsePortRangeText(text: string): PortRange | string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return 'expected a number from 0 to 65535 or a range such as 8000-8080';
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first > 65535 || last > 65535) return 'ports range from 0 to 65535';
  if (m[2] !== undefined) {
    if (first === 0) return 'a range cannot include port 0 (0 already means all ports)';
    if (last < first) return 'the range is backwards';
    if (last - first + 1 > MAX_PORT_RANGE) return `a range may span at most ${MAX_PORT_RANGE} ports`;
  }
  return { first, last };
}

/**
 * Parse a port number (0-65535) or a range "A-B". Numbers must be
 * non-negative integers (-0 is refused: it is not a port). Throws ERR_INVALID_PORT.
 */
export function parsePortRange(value: unknown, what = 'port'): PortRange {
  let text: string | null = null;
  if (typeof value === 'number') text = Number.isInteger(value) && !Object.is(value, -0) && value >= 0 ? String(value) : null;
  else if (typeof value === 'string') text = value;
  const r = text === null ? 'expected a number from 0 to 65535 or a range such as 8000-8080' : parsePortRangeText(text);
  if (typeof r === 'string') throw new ManifoldError('ERR_INVALID_PORT', `invalid ${what} ${quote(value)}: ${r}`);
  return r;
}

/**
 * A single port "0".."65535" as text, or why not. The range form ("8000-8000"
 * too) is not a port here: one owner for every command-line input that names
 * one port. (Config files' Listen= and Target= keep accepting a one-port
 * range, as they always have: src/config/schema.ts.)
 */
export function parseSinglePortText(text: string): number | string {
  if (!/^\d{1,5}$/.test(text)) return 'expected a single port, 0 to 65535';
  const n = Number(text);
  return n > 65535 ? 'expected a single port, 0 to 65535' : n;
}

/** Parse a single port (0-65535). Throws ERR_INVALID_PORT. */
export function parsePort(value: unknown, what = 'port'): number {
  let r: number | string = 'expected a single port, 0 to 65535';
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Object.is(value, -0) && value >= 0) r = parseSinglePortText(String(value));
  } else if (typeof value === 'string') r = parseSinglePortText(value);
  if (typeof r === 'string') throw new ManifoldError('ERR_INVALID_PORT', `invalid ${what} ${quote(value)}: ${r}`);
  return r;
}

/** "80" or "8000-8080". */
export function formatPorts(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}

/**
 * Why an address cannot be one a daemon listens on for a target, or null:
 * the wildcard, a multicast address, the IPv4 limited broadcast. (A TCP
 * socket cannot listen on a multicast or broadcast address.)
 */
export function nonUnicastProblem(addr: Uint8Array): string | null {
  if (addr.every((b) => b === 0)) return 'the wildcard, not a specific address';
  if (addr.length === 4 && ((addr[0] as number) & 0xf0) === 0xe0) return 'a multicast address';
  if (addr.length === 4 && addr.every((b) => b === 255)) return 'the limited broadcast address';
  if (addr.length === 16 && addr[0] === 0xff) return 'a multicast address';
  return null;
}

/** A value quoted for an error message: JSON string escapes (no raw control characters). */
export function quote(value: unknown): string {
  if (typeof value === 'number' && Object.is(value, -0)) return '-0';
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}…` : s;
  } catch {
    return String(value);
  }
}
