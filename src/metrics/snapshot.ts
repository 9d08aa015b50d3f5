/**
 * One read of the dispatcher state for a scrape: opened read-only (readers
 * take no lock; the read is made consistent by the generation seqlock, see
 * src/ops/read.ts), read, closed. Nothing is held between scrapes.
 */
import { withState, type OpenOptions } from '../state/state.js';
import { gatherDestinations, type Capacity, type DestinationCounters, type NamespaceStatus } from '../ops/status.js';

/** What one scrape reads. */
export interface MetricsSnapshot {
  /** Version of the loaded dispatcher (from its marker). */
  dispatcherVersion: string;
  destinations: DestinationCounters[];
  /** Used vs maximum bindings, destinations and sockets. */
  capacity: Capacity;
  /** Kernel memory locked by the state's maps, in bytes (null when unknown). */
  memoryBytes: number | null;
  /** The namespace's policy and deferred counter. */
  namespace: NamespaceStatus;
}

/** Read a snapshot (throws ManifoldError when the state cannot be read). */
export function readSnapshot(target: Omit<OpenOptions, 'write'>): MetricsSnapshot {
  return withState({ ...target, write: false }, (state) => {
    const g = gatherDestinations(state.maps);
    return { dispatcherVersion: state.meta.version, destinations: g.destinations, capacity: g.capacity, memoryBytes: state.maps.memory()?.total ?? null, namespace: g.namespace };
  });
}

/**
 * Reads the state at most once per scrape and shares the result with every
 * collector of that scrape (collectors run in one tick, see registry.ts).
 */
export class SnapshotSource {
  private readonly read: () => MetricsSnapshot;
  private current: { ok: true; value: MetricsSnapshot } | { ok: false; error: unknown } | null = null;

  constructor(read: () => MetricsSnapshot) {
    this.read = read;
  }

  /** Forget the previous scrape's snapshot. */
  begin(): void {
    this.current = null;
  }

  /** This scrape's snapshot (read on first use); throws the read's error. */
  get(): MetricsSnapshot {
    if (this.current === null) {
      try {
        this.current = { ok: true, value: this.read() };
      } catch (error) {
        this.current = { ok: false, error };
      }
    }
    if (!this.current.ok) throw this.current.error;
    return this.current.value;
  }

  /** Drop the snapshot once the scrape is answered. */
  end(): void {
    this.current = null;
  }
}
