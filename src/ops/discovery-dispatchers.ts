/**
 * Listener discovery and the dispatchers of a bpffs. `discovery enable`
 * upgrades every loaded dispatcher in place (bpf_link_update, as `upgrade`
 * does) to a program that uses discovery's pinned maps, and registers the
 * addresses of its targets; `discovery disable` upgrades them back to
 * private maps, so that nothing keeps discovery's maps — or the sockets in
 * its SOCKHASH — alive. Each dispatcher is changed under its own writers'
 * lock, taken while discovery's lock is held (the only order in which the
 * two are ever held together).
 *
 * Dispatchers are found by name: every `<inode>_manifold` directory and
 * every `<inode>_manifold_lock` (a load in progress holds it: waiting for it
 * catches a dispatcher loaded while discovery changes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MANIFOLD_ABI } from '../core/layout.js';
import { lockDirectory } from '../state/lock.js';
import { lockDirName, stateDirName, type ResolvedTarget } from '../state/paths.js';
import { inspectState, State } from '../state/state.js';
import { netnsPathOf, replaceProgram } from './lifecycle.js';
import { syncTargets } from './targets-sync.js';

/** What happened to one dispatcher. */
export interface DispatcherRelink {
  stateDir: string;
  netnsIno: number;
  /** A path to its namespace (null: none found, its targets could not be registered). */
  netns: string | null;
  /** The program now uses discovery's maps. */
  discovery: boolean;
  /** Target addresses of the namespace registered in discovery. */
  targets: number;
  /** Why it was left as it was, or null. */
  error: string | null;
}

function inodesOf(bpffs: string): number[] {
  const inos = new Set<number>();
  for (const name of fs.readdirSync(bpffs)) {
    const m = /^(\d+)_manifold(?:_lock)?$/.exec(name);
    if (m) inos.add(Number(m[1]));
  }
  return [...inos].sort((a, b) => a - b);
}

/** Replace the program of every dispatcher on `bpffs` (see the top of this file). */
export function relinkDispatchers(bpffs: string, lockTimeoutMs: number): DispatcherRelink[] {
  const out: DispatcherRelink[] = [];
  for (const ino of inodesOf(bpffs)) {
    const stateDir = path.join(bpffs, stateDirName(ino));
    const entry: DispatcherRelink = { stateDir, netnsIno: ino, netns: null, discovery: false, targets: 0, error: null };
    let lock: { close(): void } | null = null;
    try {
      lock = lockDirectory(path.join(bpffs, lockDirName(ino)), bpffs, lockTimeoutMs, 'this state');
      if (!fs.existsSync(stateDir)) {
        // Nothing to protect (a failed load's leftover): the lock goes too, as everywhere.
        fs.rmSync(path.join(bpffs, lockDirName(ino)), { recursive: true, force: true });
        continue;
      }
      const health = inspectState(stateDir, ino, false, true);
      if (!health.ok) {
        entry.error = `left as it is: ${health.reason}`;
      } else if (health.meta.abi !== MANIFOLD_ABI) {
        entry.error = `left as it is: map ABI ${health.meta.abi}; "manifold upgrade" in its namespace updates it (and then uses discovery as it is)`;
      } else {
        entry.netns = netnsPathOf(ino);
        const target: ResolvedTarget = { netns: entry.netns ?? '', bpffs, netnsIno: ino, netnsDev: 0n, stateDir };
        const state = State.openLocked(target);
        try {
          entry.discovery = replaceProgram(state);
          if (entry.discovery && entry.netns !== null) {
            const registry = state.targetRegistry();
            if (registry) {
              syncTargets(state.maps, registry, [state.maps.destInfo(state.maps.activeGen())], [], 'exact');
              entry.targets = registry.registered().length;
            }
          } else if (entry.discovery) {
            entry.error = 'no process or /run/netns entry is in its namespace: its target addresses are registered by "manifold upgrade" there';
          }
        } finally {
          state.close();
        }
      }
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
    } finally {
      lock?.close();
    }
    out.push(entry);
  }
  return out;
}
