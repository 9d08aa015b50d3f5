/**
 * What `status` reports: bindings and destinations with their sockets and
 * counters.
 */
import { mapLookup } from '../sys/bpf.js';
import { possibleCpus } from '../sys/cpus.js';
import { decodeMetrics, METRICS_SIZE, totalErrors, u32, type DestMetrics } from '../core/codec.js';
import { bindingToJson, type BindingJson } from '../core/binding.js';
import type { Domain, Protocol } from '../core/net.js';
import type { State } from '../state/state.js';
import { DestinationTable, socketCookie } from './destinations.js';
import { listBindings } from './bindings.js';

/** One destination in `status`. */
export interface DestinationStatus {
  label: string;
  domain: Domain;
  protocol: Protocol;
  id: number;
  /** Socket cookie as a decimal string, or null when no socket is registered. */
  socket: string | null;
  bindings: number;
  lookups: number;
  misses: number;
  errors: number;
  errorsByReason: { bad_socket: number; wrong_family: number; wrong_protocol: number; other: number };
}

/** The whole status document. */
export interface StatusReport {
  netns: string;
  netnsIno: number;
  stateDir: string;
  version: string;
  bindings: BindingJson[];
  destinations: DestinationStatus[];
}

/** Counters of one destination id. */
export function readMetrics(state: State, id: number): DestMetrics {
  const cpus = possibleCpus();
  const raw = mapLookup(state.fd('metrics'), u32(id), METRICS_SIZE * cpus);
  return decodeMetrics(raw ?? Buffer.alloc(0), cpus);
}

/** Gather the status, optionally for one label only. */
export function gatherStatus(state: State, label?: string): StatusReport {
  const table = new DestinationTable(state);
  const gen = state.activeGen();
  const bindings = listBindings(state, table).filter((b) => label === undefined || b.label === label);
  const destinations: DestinationStatus[] = table
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
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
  return {
    netns: state.target.netns,
    netnsIno: state.target.netnsIno,
    stateDir: state.target.stateDir,
    version: state.meta.version,
    bindings: bindings.map(bindingToJson),
    destinations,
  };
}
