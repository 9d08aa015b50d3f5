/**
 * What `status` reports: per destination (aggregated from the maps, not
 * from a binding listing) its socket, binding count and counters, the
 * processes holding the sockets, warnings, and the state's capacity and
 * kernel memory. The binding listing is optional and stays packed.
 */
import type { BindingList } from '../core/binding-list.js';
import { DestKind, destConfigBit } from '../core/layout.js';
import type { Domain, Protocol } from '../core/net.js';
import type { Counters, DispatcherMaps, Limits, MemoryUse } from '../state/maps.js';
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

/** A destination's counters and socket, as read from the maps. */
export interface DestinationCounters {
  label: string;
  domain: Domain;
  protocol: Protocol;
  id: number;
  /** Socket cookie as a decimal string, or null when no socket is registered. */
  socket: string | null;
  /** Bindings of the live generation referring to the destination. */
  bindings: number;
  /** Its label is defined by the config files (apply --config owns its bindings); false: made by hand. */
  configured: boolean;
  lookups: number;
  misses: number;
  errors: number;
  errorsByReason: ErrorsByReason;
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
  /** no_socket: bindings but no socket (refused); unusable_socket: the socket cannot take traffic (dropped, counted as errors). */
  kind: 'no_socket' | 'unusable_socket';
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
}

/** Options of gatherStatus. */
export interface StatusOptions {
  /** Only this label. */
  label?: string | undefined;
  /** Look for the processes holding the sockets (needs root to find anything). */
  owners?: boolean;
  /** Read the binding listing too. */
  bindings?: boolean;
}

function toCounters(c: Counters): Pick<DestinationCounters, 'lookups' | 'misses' | 'errors' | 'errorsByReason'> {
  const errorsByReason = { bad_socket: Number(c.errBadSocket), wrong_family: Number(c.errWrongFamily), wrong_protocol: Number(c.errWrongProtocol), other: Number(c.errOther) };
  return { lookups: Number(c.lookups), misses: Number(c.misses), errors: errorsByReason.bad_socket + errorsByReason.wrong_family + errorsByReason.wrong_protocol + errorsByReason.other, errorsByReason };
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
export function gatherDestinations(maps: DispatcherMaps, label?: string): { destinations: DestinationCounters[]; capacity: Capacity; labels: Map<number, string>; bindings: BindingList | null } {
  return gatherWith(maps, label, false);
}

function gatherWith(maps: DispatcherMaps, label: string | undefined, withBindings: boolean): { destinations: DestinationCounters[]; capacity: Capacity; labels: Map<number, string>; bindings: BindingList | null } {
  const snap = readLive(maps, { bindings: withBindings });
  const counters = maps.allCounters();
  const labels = new Map(snap.destinations.map((d) => [d.id, d.label]));
  let sockets = 0;
  let bindings = 0;
  const out: DestinationCounters[] = [];
  for (const d of snap.destinations) {
    bindings += d.refs[snap.gen];
    const info = snap.info[d.id];
    const cookie = info && info.kind === DestKind.socket ? maps.socketCookie(info.slot) : null;
    if (cookie !== null) sockets++;
    if (label !== undefined && d.label !== label) continue;
    out.push({
      label: d.label, domain: d.domain, protocol: d.protocol, id: d.id, socket: cookie === null ? null : cookie.toString(), bindings: d.refs[snap.gen],
      configured: (d.flags & destConfigBit(snap.gen)) !== 0,
      ...toCounters(counters[d.id] ?? { lookups: 0n, misses: 0n, errBadSocket: 0n, errWrongFamily: 0n, errWrongProtocol: 0n, errOther: 0n }),
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
  };
}

/** Warnings for destinations whose traffic cannot be delivered. */
export function statusWarnings(destinations: readonly DestinationStatus[]): StatusWarning[] {
  const out: StatusWarning[] = [];
  for (const d of destinations) {
    const base = { label: d.label, domain: d.domain, protocol: d.protocol };
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
  const g = gatherWith(maps, opts.label, opts.bindings ?? false);
  const wanted = g.destinations.filter((d) => d.socket !== null).map((d) => ({ cookie: BigInt(d.socket ?? 0), domain: d.domain, protocol: d.protocol }));
  const holdings: Map<string, SocketHolding> = opts.owners === false ? new Map() : findSocketOwners(wanted, netnsIno);
  const destinations: DestinationStatus[] = g.destinations.map((d) => {
    const h = d.socket === null ? undefined : holdings.get(d.socket);
    return { ...d, alive: d.socket !== null, usable: h ? h.usable : null, owner: h?.owners[0] ?? null, owners: h?.owners ?? [], inode: h?.inode ?? null };
  });
  return { destinations, warnings: statusWarnings(destinations), capacity: g.capacity, bindings: g.bindings, labels: g.labels, memory: maps.memory() };
}
