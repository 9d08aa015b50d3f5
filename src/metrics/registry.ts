/**
 * The exporter's prom-client registry: a fresh Registry (never the global
 * one) whose collectors fill themselves from the scrape's snapshot.
 *
 * prom-client calls every metric's collect() synchronously at the start of
 * Registry.metrics(), so all metrics of one scrape see one snapshot; the
 * first collector to ask reads the state (SnapshotSource.get), and a failed
 * read rejects Registry.metrics() with the read's error.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { MANIFOLD_ABI } from '../core/layout.js';
import { manifoldVersion } from '../version.js';
import { COLLECTION_ERROR_REASONS, type CollectionErrorReason } from './failure.js';
import type { SnapshotSource } from './snapshot.js';

const DEST_LABELS = ['label', 'domain', 'protocol'] as const;
type DestLabel = (typeof DEST_LABELS)[number];
const ERROR_REASONS = ['bad_socket', 'wrong_family', 'wrong_protocol', 'other'] as const;

/** The registry and the handle to count failed collections. */
export interface ExporterRegistry {
  registry: Registry;
  /** Count a scrape that could not read the state. */
  collectionError(reason: CollectionErrorReason): void;
}

function destCounter(registry: Registry, source: SnapshotSource, name: string, help: string, value: (d: ReturnType<SnapshotSource['get']>['destinations'][number]) => number): void {
  new Counter<DestLabel>({
    name,
    help,
    labelNames: DEST_LABELS,
    registers: [registry],
    collect() {
      const snap = source.get();
      this.reset();
      for (const d of snap.destinations) this.inc({ label: d.label, domain: d.domain, protocol: d.protocol }, value(d));
    },
  });
}

function destGauge(registry: Registry, source: SnapshotSource, name: string, help: string, value: (d: ReturnType<SnapshotSource['get']>['destinations'][number]) => number): void {
  new Gauge<DestLabel>({
    name,
    help,
    labelNames: DEST_LABELS,
    registers: [registry],
    collect() {
      const snap = source.get();
      this.reset();
      for (const d of snap.destinations) this.set({ label: d.label, domain: d.domain, protocol: d.protocol }, value(d));
    },
  });
}

/** Build the registry for one exporter. */
export function createExporterRegistry(source: SnapshotSource): ExporterRegistry {
  const registry = new Registry();
  destCounter(registry, source, 'manifold_lookups_total', 'Connections and datagrams that matched a binding of the destination, whatever followed (steered, missed, refused, or handed to its target or an explicit listener), as tubular counts them.', (d) => d.lookups);
  destCounter(registry, source, 'manifold_misses_total', 'Lookups that matched a binding of the destination while it had no socket (dropped: TCP clients see connection refused).', (d) => d.misses);
  new Counter<DestLabel | 'reason'>({
    name: 'manifold_errors_total',
    help: 'Lookups dropped because the socket could not take them (bpf_sk_assign failed), by reason: bad_socket (e.g. a UDP socket connect()ed after registration), wrong_family, wrong_protocol, other.',
    labelNames: [...DEST_LABELS, 'reason'],
    registers: [registry],
    collect() {
      const snap = source.get();
      this.reset();
      for (const d of snap.destinations) {
        for (const reason of ERROR_REASONS) this.inc({ label: d.label, domain: d.domain, protocol: d.protocol, reason }, d.errorsByReason[reason]);
      }
    },
  });
  destGauge(registry, source, 'manifold_bindings', 'Bindings (prefix, port) of the live generation steering to the destination.', (d) => d.bindings);
  destCounter(registry, source, 'manifold_redirected_total', 'Lookups assigned to the socket listening on the destination\'s address target (listener discovery).', (d) => d.redirected);
  destCounter(registry, source, 'manifold_no_target_total', 'Lookups refused because the destination\'s address target had no usable socket (or listener discovery is not enabled).', (d) => d.noTarget);
  destCounter(registry, source, 'manifold_target_own_total', 'Lookups addressed to the target address and port itself, passed to the kernel\'s own lookup while no target socket was registered.', (d) => d.targetOwn);
  destCounter(registry, source, 'manifold_deferred_total', 'Lookups that matched a binding of the destination but were handed to an explicit listener on their exact address and port (policy explicit-first).', (d) => d.deferred);
  destGauge(registry, source, 'manifold_destination_has_target', '1 when the destination is served by an address target (manifold target), else 0.', (d) => (d.target === null ? 0 : 1));
  new Gauge({
    name: 'manifold_explicit_first',
    help: 'The namespace\'s policy "explicit listeners first" (manifold policy explicit-first on|off): 1 on, 0 off.',
    registers: [registry],
    collect() {
      this.reset();
      this.set(source.get().namespace.explicitFirst ? 1 : 0);
    },
  });
  new Counter({
    name: 'manifold_namespace_deferred_total',
    help: 'Lookups handed to explicit listeners in the namespace, all destinations (also those removed since).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(source.get().namespace.deferred);
    },
  });
  destGauge(registry, source, 'manifold_destination_has_socket', '1 when a socket is registered for the destination (an open socket: the kernel removes closed ones), else 0.', (d) => (d.socket === null ? 0 : 1));
  new Gauge<'version'>({
    name: 'manifold_dispatcher_info',
    help: 'The loaded dispatcher: its version (changes on manifold upgrade). Always 1.',
    labelNames: ['version'],
    registers: [registry],
    collect() {
      const snap = source.get();
      this.reset();
      this.set({ version: snap.dispatcherVersion }, 1);
    },
  });
  new Gauge<'resource'>({
    name: 'manifold_capacity',
    help: 'What the state was loaded for (manifold load --max-destinations/--max-bindings): bindings, destinations and socket slots.',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      const c = source.get().capacity;
      this.reset();
      for (const r of ['bindings', 'destinations', 'sockets'] as const) this.set({ resource: r }, c[r].max);
    },
  });
  new Gauge<'resource'>({
    name: 'manifold_capacity_used',
    help: 'Bindings, destinations and socket slots in use (compare with manifold_capacity).',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      const c = source.get().capacity;
      this.reset();
      for (const r of ['bindings', 'destinations', 'sockets'] as const) this.set({ resource: r }, c[r].used);
    },
  });
  new Gauge({
    name: 'manifold_kernel_memory_bytes',
    help: 'Kernel memory locked by the state\'s BPF maps (bpftool\'s bytes_memlock, summed).',
    registers: [registry],
    collect() {
      const m = source.get().memoryBytes;
      this.reset();
      if (m !== null) this.set(m);
    },
  });
  const build = new Gauge<'version' | 'abi'>({
    name: 'manifold_build_info',
    help: 'The exporter\'s manifold version and BPF map ABI. Always 1.',
    labelNames: ['version', 'abi'],
    registers: [registry],
  });
  build.set({ version: manifoldVersion(), abi: String(MANIFOLD_ABI) }, 1);
  const errors = new Counter<'reason'>({
    name: 'manifold_collection_errors_total',
    help: 'Scrapes that could not read the dispatcher state (answered with HTTP 503/500), by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of COLLECTION_ERROR_REASONS) errors.inc({ reason }, 0);
  return { registry, collectionError: (reason) => errors.inc({ reason }, 1) };
}
