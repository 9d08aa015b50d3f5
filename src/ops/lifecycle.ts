/**
 * load, unload and upgrade of the dispatcher, each under the writers' lock.
 *
 * load builds the whole state in a temporary directory next to the final
 * one and renames it into place, so a state directory is complete or
 * absent; unload detaches first (traffic is back to normal socket lookup at
 * once), then renames the directory away and removes it; upgrade replaces
 * the program with bpf_link_update against the program the link really
 * runs. Leftovers of an interrupted load or unload are removed by the next
 * lifecycle command.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MANIFOLD_ABI } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import { linkInfo, linkUpdate, mapUpdate, objGet, progFdById } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { manifoldVersion } from '../version.js';
import { encodeMeta, u32, type Meta } from '../state/kernel-codec.js';
import { MapPins } from '../state/kernel-maps.js';
import { lockWriters, removeLockDir } from '../state/lock.js';
import { buildState, destroyStateDir, detachPinnedLink, limitsFor, loadDispatcher } from '../state/loader.js';
import { migrateAbi1 } from '../state/migrate.js';
import { leftoverPrefix, ObjectPins, resolveTarget, type ResolvedTarget, type Target } from '../state/paths.js';
import { inspectState, notLoaded, State } from '../state/state.js';
import type { Limits } from '../state/maps.js';
import { execute } from './executor.js';
import { emptyPlan } from './plan.js';

/** Options of load. */
export interface LoadOptions extends Target {
  lockTimeoutMs: number;
  /** Group owning the state (read-only access); default: the caller's gid. */
  gid?: number | undefined;
  /** Load-time maximum of destinations (default 1024). */
  maxDestinations?: number | undefined;
  /** Load-time maximum of bindings per generation (default 2,097,152). */
  maxBindings?: number | undefined;
}

/** Result of load. */
export interface LoadResult {
  stateDir: string;
  netnsIno: number;
  alreadyLoaded: boolean;
  /** Why an old state directory was replaced, when it was. */
  replacedStale: string | null;
  /** A lock directory made by someone else that was replaced. */
  replacedLock: string | null;
  limits: Limits;
}

function leftovers(target: ResolvedTarget): string[] {
  const prefix = leftoverPrefix(target.netnsIno);
  return fs.readdirSync(target.bpffs).filter((n) => n.startsWith(prefix)).map((n) => path.join(target.bpffs, n));
}

function cleanLeftovers(target: ResolvedTarget): number {
  const list = leftovers(target);
  for (const dir of list) destroyStateDir(dir);
  return list.length;
}

/** Load the dispatcher into a namespace (idempotent). */
export function load(opts: LoadOptions): LoadResult {
  const target = resolveTarget(opts);
  const limits = limitsFor(opts.maxDestinations, opts.maxBindings);
  const lock = lockWriters(target, opts.lockTimeoutMs);
  try {
    let replacedStale: string | null = null;
    cleanLeftovers(target);
    if (fs.existsSync(target.stateDir) || isSymlink(target.stateDir)) {
      const health = inspectState(target.stateDir, target.netnsIno, false, true);
      if (health.ok) {
        if (health.meta.abi !== MANIFOLD_ABI) {
          throw new ManifoldError('ERR_INCOMPATIBLE', `already loaded with map ABI ${health.meta.abi} (manifold ${health.meta.version}): run "manifold upgrade" to migrate it in place (bindings, sockets and counters are kept)`);
        }
        const st = State.openLocked(target);
        const have = st.maps.limits;
        st.close();
        return { stateDir: target.stateDir, netnsIno: target.netnsIno, alreadyLoaded: true, replacedStale: null, replacedLock: lock.replaced, limits: have };
      }
      replacedStale = health.reason;
      const away = path.join(target.bpffs, `${leftoverPrefix(target.netnsIno)}stale-${process.pid}`);
      fs.renameSync(target.stateDir, away);
      destroyStateDir(away);
    }
    const tmp = path.join(target.bpffs, `${leftoverPrefix(target.netnsIno)}tmp-${process.pid}`);
    fs.mkdirSync(tmp, { mode: 0o700 });
    try {
      const owner = { uid: process.geteuid?.() ?? 0, gid: opts.gid ?? process.getegid?.() ?? 0 };
      buildState(tmp, target, owner, limits);
      fs.renameSync(tmp, target.stateDir);
    } catch (err) {
      destroyStateDir(tmp);
      throw err;
    }
    return { stateDir: target.stateDir, netnsIno: target.netnsIno, alreadyLoaded: false, replacedStale, replacedLock: lock.replaced, limits };
  } finally {
    lock.close();
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Result of unload. */
export interface UnloadResult {
  stateDir: string;
  /** Nothing was loaded (unload is idempotent). */
  wasLoaded: boolean;
  /** The state was stale (not attached to this namespace). */
  stale: boolean;
  /** Leftovers of interrupted loads/unloads removed. */
  leftovers: number;
}

/** Detach the dispatcher and remove its state; nothing to do when not loaded. */
export function unload(opts: Target & { lockTimeoutMs: number }): UnloadResult {
  const target = resolveTarget(opts);
  const lock = lockWriters(target, opts.lockTimeoutMs);
  try {
    const removed = cleanLeftovers(target);
    if (!fs.existsSync(target.stateDir) && !isSymlink(target.stateDir)) {
      removeLockDir(target);
      return { stateDir: target.stateDir, wasLoaded: false, stale: false, leftovers: removed };
    }
    const health = inspectState(target.stateDir, target.netnsIno, false, true);
    // Detach first: from here traffic takes the normal socket lookup, whatever happens next.
    detachPinnedLink(target.stateDir);
    const gone = path.join(target.bpffs, `${leftoverPrefix(target.netnsIno)}gone-${process.pid}`);
    fs.renameSync(target.stateDir, gone);
    destroyStateDir(gone);
    removeLockDir(target);
    return { stateDir: target.stateDir, wasLoaded: true, stale: !health.ok, leftovers: removed };
  } finally {
    lock.close();
  }
}

/** Result of upgrade. */
export interface UpgradeResult {
  stateDir: string;
  previousVersion: string;
  version: string;
  /** Map ABI before (a migration ran when it differs from the current one). */
  previousAbi: number;
  abi: number;
}

/**
 * Replace the running program in place (bpf_link_update with
 * BPF_F_REPLACE against the program the link runs now), keeping every map:
 * bindings, sockets and counters survive, and no connection sees a moment
 * without a program. A state of map ABI 1 is migrated in place first.
 */
export function upgrade(opts: Target & { lockTimeoutMs: number }): UpgradeResult {
  const target = resolveTarget(opts);
  const lock = lockWriters(target, opts.lockTimeoutMs);
  try {
    cleanLeftovers(target);
    if (!fs.existsSync(target.stateDir)) throw notLoaded(target);
    const health = inspectState(target.stateDir, target.netnsIno, false, true);
    if (!health.ok) throw new ManifoldError('ERR_STALE_STATE', `the state directory ${target.stateDir} is stale: ${health.reason}. "manifold load" replaces it`);
    const previous = health.meta;
    const migrated = previous.abi === 1;
    if (migrated) {
      migrateAbi1(target, previous);
      writeMarker(target, { ...previous, abi: MANIFOLD_ABI });
    } else if (previous.abi !== MANIFOLD_ABI) {
      throw new ManifoldError('ERR_INCOMPATIBLE', `the loaded dispatcher uses map ABI ${previous.abi}, which this manifold (ABI ${MANIFOLD_ABI}) cannot upgrade`);
    }
    const state = State.openLocked(target);
    try {
      if (!migrated) replaceProgram(state);
      const version = manifoldVersion();
      writeMarker(target, { ...state.meta, abi: MANIFOLD_ABI, version });
      state.dir.normalize();
      // Bring the other generation in sync (after a migration it is stale): the live one then uses the fast paths.
      execute(state.maps, emptyPlan());
      return { stateDir: target.stateDir, previousVersion: previous.version, version, previousAbi: previous.abi, abi: MANIFOLD_ABI };
    } finally {
      state.close();
    }
  } finally {
    lock.close();
  }
}

function writeMarker(target: ResolvedTarget, meta: Meta): void {
  const fd = objGet(path.join(target.stateDir, MapPins.meta));
  try {
    mapUpdate(fd, u32(0), encodeMeta(meta));
  } finally {
    closeFd(fd);
  }
}

/** Load the current object reusing every map and swap it in. */
function replaceProgram(state: State): void {
  const reuse = new Map<string, number>();
  for (const name of Object.values(MapPins)) reuse.set(name, state.maps.fd(keyOf(name)));
  const object = loadDispatcher(state.maps.limits, reuse);
  let linkFd = -1;
  let oldProg = -1;
  try {
    linkFd = state.dir.openObject(ObjectPins.link);
    // The program the link runs now (not the pin: an interrupted upgrade may have left it behind).
    oldProg = progFdById(linkInfo(linkFd).progId);
    linkUpdate(linkFd, object.progFd, oldProg);
    state.dir.pin(object.progFd, ObjectPins.program);
  } finally {
    if (linkFd >= 0) closeFd(linkFd);
    if (oldProg >= 0) closeFd(oldProg);
    object.close();
  }
}

function keyOf(name: string): keyof typeof MapPins {
  const k = (Object.keys(MapPins) as (keyof typeof MapPins)[]).find((x) => MapPins[x] === name);
  if (!k) throw new Error(`unknown map ${name}`);
  return k;
}
