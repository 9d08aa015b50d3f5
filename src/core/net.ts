/**
 * Protocols, families, prefixes and ports: parsing and canonical forms.
 */
import ipaddr from 'ipaddr.js';
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
  throw new ManifoldError('ERR_INVALID_PROTOCOL', `invalid ${what} ${JSON.stringify(value)}: expected tcp or udp`);
}

/** Parse "ipv4"/"ipv6" (also "4"/"6", "inet"/"inet6"). */
export function parseDomain(value: unknown): Domain {
  const s = typeof value === 'string' ? value.toLowerCase() : String(value);
  if (s === 'ipv4' || s === '4' || s === 'inet') return 'ipv4';
  if (s === 'ipv6' || s === '6' || s === 'inet6') return 'ipv6';
  throw new ManifoldError('ERR_USAGE', `invalid address family ${JSON.stringify(value)}: expected ipv4 or ipv6`);
}

/** A network prefix: family, masked address bytes, length. */
export interface Prefix {
  domain: Domain;
  /** 4 or 16 bytes, host bits zero. */
  addr: Uint8Array;
  len: number;
}

const strictV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Parse an address or prefix ("10.0.0.0/8", "2001:db8::/32", "127.0.0.1").
 * A plain address is a /32 or /128. Host bits are masked. IPv4-mapped and
 * IPv4-compatible IPv6 forms are refused: write the IPv4 prefix instead.
 */
export function parsePrefix(value: unknown, what = 'prefix'): Prefix {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${JSON.stringify(value)}: expected an IP address or prefix such as 192.0.2.0/24`);
  }
  const slash = value.indexOf('/');
  const addrText = slash < 0 ? value : value.slice(0, slash);
  const lenText = slash < 0 ? null : value.slice(slash + 1);
  const bad = (why: string): ManifoldError => new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${JSON.stringify(value)}: ${why}`);

  let domain: Domain;
  let bytes: number[];
  if (addrText.includes(':')) {
    if (!ipaddr.IPv6.isValid(addrText) || addrText.includes('%')) throw bad('not a valid IPv6 address');
    const a = ipaddr.IPv6.parse(addrText);
    if (a.isIPv4MappedAddress()) throw bad('IPv4-mapped IPv6 addresses are not accepted; use the IPv4 form');
    if (addrText.includes('.')) throw bad('IPv6 addresses with an embedded IPv4 address are not accepted; write it in hexadecimal, or use the IPv4 form');
    bytes = a.toByteArray();
    domain = 'ipv6';
  } else {
    if (!strictV4.test(addrText)) throw bad('not a valid IPv4 address (four decimal octets)');
    // strictV4 already checked four decimal octets in 0-255.
    bytes = addrText.split('.').map(Number);
    domain = 'ipv4';
  }
  const max = domain === 'ipv4' ? 32 : 128;
  let len = max;
  if (lenText !== null) {
    if (!/^(0|[1-9]\d{0,2})$/.test(lenText)) throw bad('prefix length must be a decimal number');
    len = Number(lenText);
    if (len > max) throw bad(`prefix length must be between 0 and ${max}`);
  }
  if (domain === 'ipv6' && len >= 96) {
    // ::ffff:0:0/96 (mapped) and ::/96 (compatible) with a non-zero tail are IPv4 in disguise.
    const head = bytes.slice(0, 10).every((b) => b === 0);
    const ffff = bytes[10] === 0xff && bytes[11] === 0xff;
    if (head && ffff) throw bad('IPv4-mapped IPv6 prefixes are not accepted; use the IPv4 form');
  }
  const addr = Uint8Array.from(bytes);
  maskInPlace(addr, len);
  return { domain, addr, len };
}

/** Zero the bits after `len`. */
export function maskInPlace(addr: Uint8Array, len: number): void {
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    addr[i] = (addr[i] ?? 0) & ((0xff00 >> keep) & 0xff);
  }
}

/** Canonical text of a prefix ("10.0.0.0/8"). */
export function formatPrefix(p: Prefix): string {
  return `${formatAddr(p.addr)}/${p.len}`;
}

/** Canonical text of an address (RFC 5952 for IPv6). */
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

/** Parse an exact IP address (no prefix length). */
export function parseAddress(value: unknown, what = 'address'): Prefix {
  if (typeof value === 'string' && value.includes('/')) {
    throw new ManifoldError('ERR_INVALID_PREFIX', `invalid ${what} ${JSON.stringify(value)}: expected a single IP address, not a prefix`);
  }
  return parsePrefix(value, what);
}

/** Largest port range accepted in one binding command. */
export const MAX_PORT_RANGE = 4096;

/** A port or an inclusive range; 0 means all ports. */
export interface PortRange {
  first: number;
  last: number;
}

/** Parse a port number (0-65535) or a range "A-B". */
export function parsePortRange(value: unknown, what = 'port'): PortRange {
  const text = typeof value === 'number' ? String(value) : value;
  const bad = (why: string): ManifoldError => new ManifoldError('ERR_INVALID_PORT', `invalid ${what} ${JSON.stringify(value)}: ${why}`);
  if (typeof text !== 'string') throw bad('expected a number from 0 to 65535 or a range such as 8000-8080');
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw bad('expected a number from 0 to 65535 or a range such as 8000-8080');
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first > 65535 || last > 65535) throw bad('ports range from 0 to 65535');
  if (m[2] !== undefined) {
    if (first === 0) throw bad('a range cannot include port 0 (0 already means all ports)');
    if (last < first) throw bad('the range is backwards');
    if (last - first + 1 > MAX_PORT_RANGE) throw bad(`a range may span at most ${MAX_PORT_RANGE} ports`);
  }
  return { first, last };
}

/** Parse a single port (0-65535). */
export function parsePort(value: unknown, what = 'port'): number {
  const r = parsePortRange(value, what);
  if (r.first !== r.last) throw new ManifoldError('ERR_INVALID_PORT', `invalid ${what} ${JSON.stringify(value)}: expected a single port`);
  return r.first;
}
