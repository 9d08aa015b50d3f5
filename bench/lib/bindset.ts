/**
 * Synthetic binding sets for the data-plane benchmark, encoded straight
 * into a BindingList (the dispatcher's key layout) so that a million
 * bindings take a second to build; tags are destination indices 0..63.
 *
 * A set of N bindings (all TCP/IPv4, the dispatcher's worst case: one
 * family/protocol slot holds everything):
 *  - W = N/100 (at least 1 when N > 1) port-0 bindings: prefixes of length
 *    /24../28 inside 100.64.0.0/10, one per /24;
 *  - E = N - W exact-port bindings: 9 in 10 are /32 addresses in
 *    10.0.0.0/8, 1 in 10 a /28 inside 11.0.0.0/8, each on a pseudo-random
 *    port from a pool of P = clamp(E/16, 1000, 64000) ports starting at 1024;
 *  - destination ids 1..63 round-robin; the probed bindings use id 0, the
 *    only id with a socket.
 * N = 1 is a single /32:443 binding.
 */
import { BindingList } from '../../src/core/binding-list.js';

const AF_INET = 2;
const IPPROTO_TCP = 6;

/** A destination address and port to feed BPF_PROG_TEST_RUN. */
export interface Probe {
  /** IPv4 address as a 32-bit number. */
  addr: number;
  port: number;
  /** Whether the dispatcher should pick the probe socket. */
  expectHit: boolean;
}

/** The probes of a set. */
export interface Probes {
  /** A /32 exact-port binding. */
  hitExact: Probe;
  /** An address inside a port-0 prefix, on a port no binding names (null without port-0 bindings). */
  hitWild: Probe | null;
  /** An unbound address on a port that some binding names (the exact lookup runs and misses). */
  missBoundPort: Probe;
  /** An unbound address on a port no binding names. */
  missUnboundPort: Probe;
}

/** An encoded binding set. */
export interface BindingSet {
  size: number;
  exact: number;
  wild: number;
  ports: number;
  /** Tags: destination index 0..63 (0 = the probe socket). */
  list: BindingList;
  probes: Probes;
}

/** Human description of how sets are built (for the report). */
export const BINDSET_DESCRIPTION =
  'All TCP/IPv4 (one family/protocol slot holds every binding: the worst case). N/100 port-0 bindings ' +
  '(prefixes /24–/28 in 100.64.0.0/10); the rest exact-port bindings, 9 in 10 a /32 in 10.0.0.0/8 and 1 in 10 a /28 in ' +
  '11.0.0.0/8, on pseudo-random ports from a pool of clamp(N/16, 1000, 64000) ports (1000 ports at 1k bindings, ~6.2k at ' +
  '100k, ~62k at 1M). N = 1 is a single /32 port-443 binding. Probes: hit = a /32 exact-port binding, hit-port-0 = an ' +
  'address in a port-0 prefix on an unnamed port, miss-bound-port = an unbound address on a port some binding names, ' +
  'miss-unbound-port = an unbound address (192.0.2.1) on port 22.';

function ip(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

class Encoder {
  readonly list: BindingList;

  constructor(capacity: number) {
    this.list = new BindingList(capacity);
  }

  /** A TCP/IPv4 binding of destination index `dest` (0..63). */
  add(addr: number, len: number, port: number, dest: number): void {
    const masked = len === 0 ? 0 : (addr & (~0 << (32 - len))) >>> 0;
    const bytes = Uint8Array.of(masked >>> 24, (masked >>> 16) & 255, (masked >>> 8) & 255, masked & 255);
    this.list.push('tcp', 'ipv4', bytes, len, port, dest);
  }
}

/** Build the set of `size` bindings described in BINDSET_DESCRIPTION. */
export function buildBindingSet(size: number): BindingSet {
  const enc = new Encoder(size);
  const missAddr = ip(192, 0, 2, 1);
  if (size === 1) {
    const a = ip(10, 0, 0, 1);
    enc.add(a, 32, 443, 0);
    return {
      size, exact: 1, wild: 0, ports: 1, list: enc.list,
      probes: {
        hitExact: { addr: a, port: 443, expectHit: true },
        hitWild: null,
        missBoundPort: { addr: missAddr, port: 443, expectHit: false },
        missUnboundPort: { addr: missAddr, port: 22, expectHit: false },
      },
    };
  }
  const wild = Math.max(1, Math.round(size / 100));
  const exact = size - wild;
  const ports = Math.min(64000, Math.max(1000, Math.ceil(exact / 16)));
  const rand = xorshift(0x6d616e69);
  const wildBase = ip(100, 64, 0, 0);
  const wildProbeIndex = Math.floor(wild / 2);
  for (let i = 0; i < wild; i++) {
    enc.add((wildBase + i * 256) >>> 0, 24 + (i % 5), 0, i === wildProbeIndex ? 0 : 1 + (i % 63));
  }
  // The probed exact binding: a /32 near the middle.
  let hitIndex = Math.floor(exact / 2);
  if (hitIndex % 10 === 9) hitIndex++;
  let hit: Probe | null = null;
  const base32 = ip(10, 0, 0, 1);
  const base28 = ip(11, 0, 0, 0);
  for (let i = 0; i < exact; i++) {
    const port = 1024 + (rand() % ports);
    const isHit = i === hitIndex;
    if (i % 10 === 9) enc.add((base28 + Math.floor(i / 10) * 16) >>> 0, 28, port, 1 + (i % 63));
    else {
      const addr = (base32 + i) >>> 0;
      enc.add(addr, 32, port, isHit ? 0 : 1 + (i % 63));
      if (isHit) hit = { addr, port, expectHit: true };
    }
  }
  if (!hit) throw new Error('no probe binding');
  return {
    size, exact, wild, ports, list: enc.list,
    probes: {
      hitExact: hit,
      // Port 1023 is below the port pool: only the port-0 prefix matches.
      hitWild: { addr: (wildBase + wildProbeIndex * 256 + 1) >>> 0, port: 1023, expectHit: true },
      missBoundPort: { addr: missAddr, port: hit.port, expectHit: false },
      missUnboundPort: { addr: missAddr, port: 22, expectHit: false },
    },
  };
}
