/**
 * The bindings a configuration asks for, in the shape `apply --config` takes.
 */
import type { Domain, Protocol } from '../core/net.js';
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

/** One address target from a Target= line, for one destination (label, family, protocol). */
export interface ConfigTarget {
  label: string;
  domain: Domain;
  protocol: Protocol;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  /** 0: the connection's own port. */
  port: number;
  /** "file:line" of the Target= line. */
  source: string;
}

/** Every target of the units: a Target= serves the protocols of the label's Bind= lines of its family. */
export function configTargets(units: readonly LabelConfig[]): ConfigTarget[] {
  const out: ConfigTarget[] = [];
  for (const u of units) {
    for (const t of u.targets) {
      const protocols = new Set<Protocol>();
      for (const b of u.binds) if (b.prefix.domain === t.address.domain) for (const p of b.protocols) protocols.add(p);
      for (const protocol of (['tcp', 'udp'] as const).filter((p) => protocols.has(p))) {
        out.push({ label: u.name, domain: t.address.domain, protocol, addr: t.address.addr, port: t.port, source: `${u.file}:${t.line}` });
      }
    }
  }
  return out;
}
