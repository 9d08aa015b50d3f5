/**
 * What `status` reports: bindings and destinations with their sockets,
 * counters, the processes holding the sockets, and warnings about
 * destinations whose traffic is refused or dropped.
 */
import { mapLookup } from '../sys/bpf.js';
import { possibleCpus } from '../sys/cpus.js';
import { decodeMetrics, METRICS_SIZE, totalErrors, u32, type DestMetrics } from '../core/codec.js';
import { bindingToJson, type BindingJson } from '../core/binding.js';
import type { Domain, Protocol } from '../core/net.js';
import type { State } from '../state/state.js';
import { DestinationTable, socketCookie } from './destinations.js';
import { listBindings } from './bindings.js';
import { findSocketOwners, type SocketHolding, type SocketOwner } from './socket-owners.js';

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
  lookups: number;
  misses: number;
  errors: number;
  errorsByReason: ErrorsByReason;
}

/** One destination in `status`. */
export interface DestinationStatus extends DestinationCounters {
  /**
   * A socket is registered. The kernel removes a socket from the sockmap
   * when it is closed, so a registered socket is an open socket.
   */
  alive: boolean;
  /**
   * Whether the socket can take steered traffic (TCP: listening; UDP:
   * not connected); null when it could not be inspected (no socket, or its
   * holder was not found / not permitted).
   */
  usable: boolean | null;
  /** The process holding the socket (not PID 1 when another one does), or null when unknown. */
  owner: SocketOwner | null;
  /** Every process found holding the socket. */
  owners: SocketOwner[];
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

/** The whole status document. */
export interface StatusReport {
  netns: string;
  netnsIno: number;
  stateDir: string;
  version: string;
  bindings: BindingJson[];
  destinations: DestinationStatus[];
  warnings: StatusWarning[];
}

/** Options of {@link gatherStatus}. */
export interface StatusOptions {
  /** Look for the processes holding the sockets (default true; needs root to find anything). */
  owners?: boolean;
}

/** Counters of one destination id. */
export function readMetrics(state: State, id: number): DestMetrics {
  const cpus = possibleCpus();
  const raw = mapLookup(state.fd('metrics'), u32(id), METRICS_SIZE * cpus);
  return decodeMetrics(raw ?? Buffer.alloc(0), cpus);
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
 * binding listing (used by the metrics exporter on each scrape).
 */
export function gatherDestinations(state: State, label?: string, table: DestinationTable = new DestinationTable(state)): DestinationCounters[] {
  const gen = state.activeGen();
  return table
    .all()
    .filter((d) => label === undefined || d.label === label)
    .map((d) => {
      const m = readMetrics(state, d.value.id);
      const cookie = socketCookie(state, d.value.id);
      return {
        label: d.label,
        domain: d.domain,
        protocol: d.protocol,
        id: d.value.id,
        socket: cookie === null ? null : cookie.toString(),
        bindings: d.value.refs[gen] ?? 0,
        lookups: Number(m.lookups),
        misses: Number(m.misses),
        errors: Number(totalErrors(m)),
        errorsByReason: {
          bad_socket: Number(m.errors.bad_socket),
          wrong_family: Number(m.errors.wrong_family),
          wrong_protocol: Number(m.errors.wrong_protocol),
          other: Number(m.errors.other),
        },
      };
    })
    .sort(compareDest);
}

function name(d: DestinationCounters): string {
  return `${d.domain}:${d.protocol}:${d.label}`;
}

/** Warnings for destinations whose traffic cannot be delivered. */
export function statusWarnings(destinations: readonly DestinationStatus[]): StatusWarning[] {
  const out: StatusWarning[] = [];
  for (const d of destinations) {
    const base = { label: d.label, domain: d.domain, protocol: d.protocol };
    if (!d.alive && d.bindings > 0) {
      out.push({ ...base, kind: 'no_socket', message: `${name(d)} has ${d.bindings} binding(s) but no socket: traffic to them is refused` });
    } else if (d.alive && d.usable === false) {
      const why = d.protocol === 'tcp' ? 'a TCP socket that is not listening' : 'a connected UDP socket';
      out.push({ ...base, kind: 'unusable_socket', message: `${name(d)}'s socket ${d.socket} is ${why}: traffic to its ${d.bindings} binding(s) is dropped (counted as errors)` });
    }
  }
  return out;
}

/** Gather the status, optionally for one label only. */
export function gatherStatus(state: State, label?: string, opts: StatusOptions = {}): StatusReport {
  const table = new DestinationTable(state);
  const counters = gatherDestinations(state, label, table);
  const bindings = listBindings(state, table).filter((b) => label === undefined || b.label === label);
  const wanted = counters.filter((d) => d.socket !== null).map((d) => ({ cookie: BigInt(d.socket ?? 0), domain: d.domain, protocol: d.protocol }));
  const holdings: Map<string, SocketHolding> = opts.owners === false ? new Map() : findSocketOwners(wanted, state.target.netnsIno);
  const destinations: DestinationStatus[] = counters.map((d) => {
    const h = d.socket === null ? undefined : holdings.get(d.socket);
    return { ...d, alive: d.socket !== null, usable: h ? h.usable : null, owner: h?.owners[0] ?? null, owners: h?.owners ?? [] };
  });
  return {
    netns: state.target.netns,
    netnsIno: state.target.netnsIno,
    stateDir: state.target.stateDir,
    version: state.meta.version,
    bindings: bindings.map(bindingToJson),
    destinations,
    warnings: statusWarnings(destinations),
  };
}
