/**
 * The bindings a configuration asks for, in the shape `apply --config` takes.
 */
import type { Protocol } from '../core/net.js';
import { formatIpPrefix, formatPorts } from './ip.js';
import type { LabelConfig } from './types.js';

/** One binding from a Bind= line (a Bind= with protocol "any" gives two). */
export interface ConfigBinding {
  label: string;
  protocol: Protocol;
  /** Canonical prefix text ("192.0.2.0/24", "2001:db8::/32"). */
  prefix: string;
  /** "80", "0" (all ports) or a range "8000-8080". */
  port: string;
  /** "file:line" of the Bind= line. */
  source: string;
}

/** Every binding of the units, in file order then line order (tcp before udp for "any"). */
export function configBindings(units: readonly LabelConfig[]): ConfigBinding[] {
  const out: ConfigBinding[] = [];
  for (const u of units) {
    for (const b of u.binds) {
      for (const protocol of b.protocols) {
        out.push({ label: u.name, protocol, prefix: formatIpPrefix(b.prefix), port: formatPorts(b.first, b.last), source: `${u.file}:${b.line}` });
      }
    }
  }
  return out;
}
