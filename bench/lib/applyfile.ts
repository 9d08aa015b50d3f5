/**
 * Apply files ({"bindings":[{label, prefix, port, protocol}]}) for the CLI
 * and load benchmarks.
 */
import fs from 'node:fs';

/** One entry of an apply file. */
export interface ApplyEntry {
  label: string;
  prefix: string;
  port: number;
  protocol: 'tcp' | 'udp';
}

function dotted(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** How the large apply set is built (for the report). */
export const LARGE_SET_DESCRIPTION =
  'N TCP bindings over 100 labels: 99% /32 exact-port bindings in 10.0.0.0/8 on 4,096 ports (1024–5119), 1% port-0 /24 prefixes in 100.64.0.0/10; every entry names its protocol, so N entries = N bindings.';

/** The large set of `n` bindings (see LARGE_SET_DESCRIPTION). */
export function largeSet(n: number): ApplyEntry[] {
  const out: ApplyEntry[] = [];
  const wild = Math.max(1, Math.round(n / 100));
  for (let i = 0; i < wild; i++) {
    out.push({ label: `svc-${i % 100}`, prefix: `${dotted(((100 << 24) | (64 << 16)) + i * 256)}/24`, port: 0, protocol: 'tcp' });
  }
  const base = (10 << 24) >>> 0;
  for (let i = 0; i < n - wild; i++) {
    out.push({ label: `svc-${i % 100}`, prefix: `${dotted(base + 1 + i)}/32`, port: 1024 + ((i * 7919) % 4096), protocol: 'tcp' });
  }
  return out;
}

/**
 * One of two sets that both steer `steer` (an IPv4 address in 127.0.0.8/29)
 * port `port` to label "steer": variant A with an exact-port /32, variant B
 * with a port-0 127.0.0.8/29, each plus `others` unrelated bindings that
 * differ between the variants.
 */
export function steeringSet(variant: 'A' | 'B', steer: string, port: number, others: number): ApplyEntry[] {
  const out: ApplyEntry[] = variant === 'A'
    ? [{ label: 'steer', prefix: `${steer}/32`, port, protocol: 'tcp' }]
    : [{ label: 'steer', prefix: '127.0.0.8/29', port: 0, protocol: 'tcp' }];
  const base = ((variant === 'A' ? 10 : 11) << 24) >>> 0;
  for (let i = 0; i < others; i++) {
    out.push({ label: `other-${i % 10}`, prefix: `${dotted(base + 1 + i)}/32`, port: 2000 + (i % 500), protocol: 'tcp' });
  }
  return out;
}

/** Write an apply file. */
export function writeApplyFile(file: string, entries: readonly ApplyEntry[]): void {
  fs.writeFileSync(file, JSON.stringify({ bindings: entries }));
}
