/**
 * Lock-free consistent reads of the live state (readers never lock, so a
 * reader can never block a writer). A writer only changes a generation
 * after marking it DIRTY in gen_state and marks it clean with a new content
 * version when done; a reader reads the live generation's gen_state before
 * and after reading its content and retries when they differ (a seqlock).
 */
import type { BindingList } from '../core/binding-list.js';
import { ManifoldError } from '../errors.js';
import { idsInUse, type DestInfo, type DestRecord, type DispatcherMaps, type Gen, type GenState } from '../state/maps.js';

/** A consistent view of the live generation. */
export interface LiveSnapshot {
  gen: Gen;
  state: GenState;
  /** Tags are destination ids (empty unless asked for). */
  bindings: BindingList | null;
  info: DestInfo[];
  destinations: DestRecord[];
  /** gen_meta.flags of the generation (the policy). */
  flags: number;
}

/** Attempts before giving up on a state that keeps changing. */
const ATTEMPTS = 50;

function sameState(a: GenState, b: GenState): boolean {
  return a.seq === b.seq && a.flags === b.flags && a.txid === b.txid;
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Read the live generation consistently; ERR_BUSY if writers kept changing it. */
export function readLive(maps: DispatcherMaps, opts: { bindings: boolean }): LiveSnapshot {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const gen = maps.activeGen();
    const before = maps.genState(gen);
    if (before.flags === 0) {
      const bindings = opts.bindings ? maps.readBindings(gen) : null;
      const destinations = maps.destinations();
      const info = maps.destInfo(gen, idsInUse(destinations));
      const flags = maps.genMeta(gen).flags;
      const after = maps.genState(gen);
      if (sameState(before, after)) return { gen, state: before, bindings, info, destinations, flags };
    }
    pause(Math.min(2 ** attempt, 50));
  }
  throw new ManifoldError('ERR_BUSY', 'the dispatcher state kept changing while it was being read (writes in progress); try again');
}
