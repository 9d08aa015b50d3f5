/**
 * What `status` reports: per destination (aggregated from the maps, not
 * from a binding listing) its socket, binding count and counters, the
 * processes holding the sockets, warnings, and the state's capacity and
 * kernel memory. The binding listing is optional and stays packed.
 */
import type { BindingList } from '../core/binding-list.js';
import { DestKind, destConfigBit, POLICY_EXPLICIT_FIRST } from '../core/layout.js';
import { formatAddr, protocolNumber, type Domain, type Protocol } from '../core/net.js';
import type { NamespaceDiscovery, TargetSocket } from '../discovery/status.js';
import { idsInUse, noCounters, type Counters, type DestInfo, type DispatcherMaps, type Limits, type MemoryUse } from '../state/maps.js';
import { readLive } from './read.js';
import { findSocketOwners, type SocketHolding, type SocketOwner } from './socket-owners.js';
import { destName } from './view.js';

export type { SocketOwner } from './socket-owners.js';

/** Errors of bpf_sk_assign by reason. */
export interface ErrorsByReason {
  bad_socket: number;
  wrong_family: number;
  wrong_protocol: number;
  other: number;
}

/** The address target of a destination (listener discovery). */
export interface TargetStatus {
  address: string;
  /** The fixed target port, or null: the connection's own port. */
  port: number | null;
  /**
   * A socket is registered for the target (at its fixed port; any port when
   * it follows the connection's port); null when unknown (discovery not
   * enabled, or its maps not readable).
   */
  present: boolean | null;
  /** The namespace's sockets bound on the target address (null when unknown). */
  sockets: TargetSocket[] | null;
}

/** A destination's counters and socket, as read from the maps. */
export interface DestinationCounters {
  label: string;
  domain: Domain;
  protocol: Protocol;
  id: number;
  /** What serves it: a registered socket, an address target, or nothing (traffic refused). */
  servedBy: 'socket' | 'target' | 'none';
  /** Socket cookie as a decimal string, or null when no socket is registered. */
  socket: string | null;
  /** The address target, or null. */
  target: TargetStatus | null;
  /** Bindings of the live generation referring to the destination. */
  bindings: number;
  /** Its label is defined by the config files (apply --config owns its bindings); false: made by hand. */
  configured: boolean;
  lookups: number;
  misses: number;
  errors: number;
  errorsByReason: ErrorsByReason;
  /** Lookups handed back to an explicit listener (policy explicit-first). */
  deferred: number;
  /** Lookups assigned to the target's socket. */
  redirected: number;
  /** Lookups refused because the target had no usable socket. */
  noTarget: number;
  /** Lookups addressed to the target itself, passed while it had no registered socket. */
  targetOwn: number;
}

/** The namespace's policy and listener discovery as the dispatcher uses it. */
export interface NamespaceStatus {
  /** Policy "explicit listeners first" (manifold policy explicit-first on|off). */
  explicitFirst: boolean;
  /** Lookups handed back to explicit listeners, all destinations (also collected ones). */
  deferred: number;
  /** Listener discovery on the bpffs: enabled, active (null when not asked). */
  discovery: { enabled: boolean; active: boolean } | null;
}

/** One destination in `status`. */
export interface DestinationStatus extends DestinationCounters {
  /** A socket is registered (the kernel removes closed sockets from the sockmap). */
  alive: boolean;
  /** TCP listening / UDP unconnected; null when unknown (no socket, or its holder not found). */
  usable: boolean | null;
  /** The process holding the socket (not PID 1 when another one does), or null when unknown. */
  owner: SocketOwner | null;
  /** Every process found holding the socket. */
  owners: SocketOwner[];
  /** Socket inode (ss -e: ino:N), null when unknown. */
  inode: number | null;
}

/** Something an operator should look at. */
export interface StatusWarning {
  /**
   * no_socket: bindings but no socket (refused); unusable_socket: the socket cannot take traffic (dropped, counted as errors);
   * no_target_socket: a target with nothing registered on it; no_discovery: targets or the policy without listener discovery.
   */
  kind: 'no_socket' | 'unusable_socket' | 'no_target_socket' | 'no_discovery';
  label: string;
  domain: Domain;
  protocol: Protocol;
  message: string;
}

/** Capacity: used vs maximum. */
export interface Capacity {
  bindings: { used: number; max: number };
  destinations: { used: number; max: number };
  sockets: { used: number; max: number };
}

/** Everything status gathers. */
export interface StatusData {
  destinations: DestinationStatus[];
  warnings: StatusWarning[];
  capacity: Capacity;
  /** Bindings of the live generation (tags = destination ids) when asked for. */
  bindings: BindingList | null;
  /** Label of a destination id. */
  labels: Map<number, string>;
  /** Kernel memory the state's maps lock (null when unknown). */
  memory: MemoryUse | null;
  namespace: NamespaceStatus;
}

/** Options of gatherStatus. */
export interface StatusOptions {
  /** Only this label. */
  label?: string | undefined;
  /** Look for the processes holding the sockets (needs root to find anything). */
  owners?: boolean;
  /** Read the binding listing too. */
  bindings?: boolean;
  /** Listener discovery of the namespace, for targets' sockets (omitted: not read). */
  discovery?: NamespaceDiscovery | undefined;
}

type CounterFields = 'lookups' | 'misses' | 'errors' | 'errorsByReason' | 'deferred' | 'redirected' | 'noTarget' | 'targetOwn';

function toCounters(c: Counters): Pick<DestinationCounters, CounterFields> {
  const errorsByReason = { bad_socket: Number(c.errBadSocket), wrong_family: Number(c.errWrongFamily), wrong_protocol: Number(c.errWrongProtocol), other: Number(c.errOther) };
  return {
    lookups: Number(c.lookups), misses: Number(c.misses), errors: errorsByReason.bad_socket + errorsByReason.wrong_family + errorsByReason.wrong_protocol + errorsByReason.other, errorsByReason,
    deferred: Number(c.deferred), redirected: Number(c.redirected), noTarget: Number(c.noTarget), targetOwn: Number(c.targetOwn),
  };
}

function targetStatus(info: DestInfo, protocol: Protocol, discovery: NamespaceDiscovery | undefined): TargetStatus | null {
  const t = info.target;
  if (info.kind !== DestKind.target || !t) return null;
  const known = discovery && discovery.enabled && discovery.unreadable === null;
  const sockets = known ? discovery.sockets(protocolNumber(protocol), t.addr) : null;
  const present = sockets === null ? null : discovery?.active === true && sockets.some((s) => s.registered && (t.port === 0 || s.port === t.port));
  return { address: formatAddr(t.addr), port: t.port === 0 ? null : t.port, present, sockets };
}

function compareDest(a: DestinationCounters, b: DestinationCounters): number {
  if (a.label !== b.label) return a.label < b.label ? -1 : 1;
  if (a.domain !== b.domain) return a.domain < b.domain ? -1 : 1;
  if (a.protocol !== b.protocol) return a.protocol < b.protocol ? -1 : 1;
  return 0;
}

/**
 * Every destination (optionally of one label) with its socket cookie,
 * binding count and counters, sorted by label, domain, protocol. Cheap: no
 * binding listing (the metrics exporter calls it on each scrape).
 */
export function gatherDestinations(maps: DispatcherMaps, label?: string, discovery?: NamespaceDiscovery): Gathered {
  return gatherWith(maps, label, false, discovery);
}

/** What gatherDestinations reads. */
export interface Gathered {
  destinations: DestinationCounters[];
  capacity: Capacity;
  labels: Map<number, string>;
  bindings: BindingList | null;
  namespace: NamespaceStatus;
}

function gatherWith(maps: DispatcherMaps, label: string | undefined, withBindings: boolean, discovery: NamespaceDiscovery | undefined): Gathered {
  const snap = readLive(maps, { bindings: withBindings });
  const counters = maps.allCounters(idsInUse(snap.destinations));
  const labels = new Map(snap.destinations.map((d) => [d.id, d.label]));
  let sockets = 0;
  let bindings = 0;
  const out: DestinationCounters[] = [];
  for (const d of snap.destinations) {
    bindings += d.refs[snap.gen];
    const info = snap.info[d.id] ?? { kind: DestKind.none, slot: 0 };
    const cookie = info.kind === DestKind.socket ? maps.socketCookie(info.slot) : null;
    if (cookie !== null) sockets++;
    if (label !== undefined && d.label !== label) continue;
    const target = targetStatus(info, d.protocol, discovery);
    out.push({
      label: d.label, domain: d.domain, protocol: d.protocol, id: d.id, servedBy: target ? 'target' : cookie !== null ? 'socket' : 'none',
      socket: cookie === null ? null : cookie.toString(), target, bindings: d.refs[snap.gen],
      configured: (d.flags & destConfigBit(snap.gen)) !== 0,
      ...toCounters(counters[d.id] ?? noCounters()),
    });
  }
  const limits: Limits = maps.limits;
  return {
    destinations: out.sort(compareDest),
    capacity: {
      bindings: { used: bindings, max: limits.maxBindings },
      // Half the ids: an apply may need a second id per destination while it swaps sets.
      destinations: { used: snap.destinations.length, max: Math.floor(limits.maxIds / 2) },
      sockets: { used: sockets, max: limits.sockSlots },
    },
    labels,
    bindings: snap.bindings,
    namespace: {
      explicitFirst: (snap.flags & POLICY_EXPLICIT_FIRST) !== 0,
      deferred: Number(maps.namespaceCounters().deferred),
      discovery: discovery ? { enabled: discovery.enabled, active: discovery.active } : null,
    },
  };
}

/** Warnings for destinations whose traffic cannot be delivered. */
export function statusWarnings(destinations: readonly DestinationStatus[], ns?: NamespaceStatus): StatusWarning[] {
  const out: StatusWarning[] = [];
  const targets = destinations.filter((d) => d.target !== null);
  if (ns?.discovery && (!ns.discovery.enabled || !ns.discovery.active) && (targets.length > 0 || ns.explicitFirst)) {
    // Each part with its own verb: targets refuse traffic, the policy does nothing.
    const parts = [
      targets.length > 0 ? `${targets.length} destination(s) served by address targets refuse traffic` : '',
      ns.explicitFirst ? 'the explicit-first policy has no effect' : '',
    ].filter(Boolean).join(' and ');
    const first = targets[0];
    out.push({
      kind: 'no_discovery', label: first?.label ?? '', domain: first?.domain ?? 'ipv4', protocol: first?.protocol ?? 'tcp',
      message: `listener discovery is ${ns.discovery.enabled ? 'enabled but not active' : 'not enabled'}: ${parts} until "manifold discovery enable"`,
    });
  }
  for (const d of destinations) {
    const base = { label: d.label, domain: d.domain, protocol: d.protocol };
    if (d.target) {
      if (d.target.present === false && d.bindings > 0) {
        const where = d.target.port === null ? d.target.address : `${d.target.address} port ${d.target.port}`;
        out.push({ ...base, kind: 'no_target_socket', message: `${destName(d)} targets ${where}, where no ${d.protocol === 'tcp' ? 'listener' : 'socket'} is registered: traffic to its ${d.bindings} binding(s) is refused (except traffic to the target itself)` });
      }
      continue;
    }
    if (!d.alive && d.bindings > 0) {
      out.push({ ...base, kind: 'no_socket', message: `${destName(d)} has ${d.bindings} binding(s) but no socket: traffic to them is refused` });
    } else if (d.alive && d.usable === false) {
      const why = d.protocol === 'tcp' ? 'a TCP socket that is not listening' : 'a connected UDP socket';
      out.push({ ...base, kind: 'unusable_socket', message: `${destName(d)}'s socket ${d.socket} is ${why}: traffic to its ${d.bindings} binding(s) is dropped (counted as errors)` });
    }
  }
  return out;
}

/** Gather the status. */
export function gatherStatus(maps: DispatcherMaps, netnsIno: number, opts: StatusOptions = {}): StatusData {
  const g = gatherWith(maps, opts.label, opts.bindings ?? false, opts.discovery);
  const wanted = g.destinations.filter((d) => d.socket !== null).map((d) => ({ cookie: BigInt(d.socket ?? 0), domain: d.domain, protocol: d.protocol }));
  const holdings: Map<string, SocketHolding> = opts.owners === false ? new Map() : findSocketOwners(wanted, netnsIno);
  const destinations: DestinationStatus[] = g.destinations.map((d) => {
    const h = d.socket === null ? undefined : holdings.get(d.socket);
    return { ...d, alive: d.socket !== null, usable: h ? h.usable : null, owner: h?.owners[0] ?? null, owners: h?.owners ?? [], inode: h?.inode ?? null };
  });
  return {
    destinations, warnings: statusWarnings(destinations, g.namespace), capacity: g.capacity, bindings: g.bindings, labels: g.labels, memory: maps.memory(),
    namespace: g.namespace,
  };
}
