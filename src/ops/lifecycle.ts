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
import { GEN_STALE, MANIFOLD_ABI } from '../core/layout.js';
import { isTrustedUid } from '../core/users.js';
import { ManifoldError } from '../errors.js';
import { linkInfo, linkUpdate, mapUpdate, objGet, progFdById } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { SysError } from '../sys/errno.js';
import { manifoldVersion } from '../version.js';
import { encodeMeta, u32, type Meta } from '../state/kernel-codec.js';
import { MapPins } from '../state/kernel-maps.js';
import { lockWriters, removeLockDir } from '../state/lock.js';
import { buildState, destroyStateDir, detachPinnedLink, limitsFor, loadDispatcher } from '../state/loader.js';
import { migrateAbi1, migrateAbi2 } from '../state/migrate.js';
import { leftoverPrefix, ObjectPins, resolveTarget, type ResolvedTarget, type Target } from '../state/paths.js';
import { inspectState, notLoaded, State } from '../state/state.js';
import type { Limits } from '../state/maps.js';
import { execute } from './executor.js';
import { emptyPlan } from './plan.js';
import { step } from './faults.js';
import { syncTargets } from './targets-sync.js';
import { DISPATCHER_NAME, skLookupLinks, type SkLookupLink } from './netns-links.js';

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

/**
 * Directories of the namespace's interrupted loads, unloads and upgrades.
 * Only manifold's own count (made by root or by this user): the bpffs may
 * let others create names there, and what they made is not removed as root
 * (it may be a tree thousands deep, or change while it is walked).
 */
function leftovers(target: ResolvedTarget): string[] {
  const prefix = leftoverPrefix(target.netnsIno);
  return fs
    .readdirSync(target.bpffs)
    .filter((n) => n.startsWith(prefix))
    .map((n) => path.join(target.bpffs, n))
    .filter((p) => ownDirectory(p));
}

/** A directory (not a symlink) owned by root or by the effective user. */
function ownDirectory(p: string): boolean {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st || !st.isDirectory()) return false;
  return isTrustedUid(st.uid);
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
      const ours = ownDirectory(target.stateDir);
      fs.renameSync(target.stateDir, away);
      // Someone else's directory in the way is moved aside, not walked and removed as root.
      if (ours) destroyStateDir(away);
      else replacedStale = `${health.reason} (made by another user: moved aside as ${away}, not removed)`;
    }
    refuseSecondDispatcher(target);
    const tmp = path.join(target.bpffs, `${leftoverPrefix(target.netnsIno)}tmp-${process.pid}`);
    step('load-begin');
    fs.mkdirSync(tmp, { mode: 0o700 });
    try {
      const owner = { uid: process.geteuid?.() ?? 0, gid: opts.gid ?? process.getegid?.() ?? 0 };
      buildState(tmp, target, owner, limits);
      step('load-built');
      fs.renameSync(tmp, target.stateDir);
      step('load-done');
    } catch (err) {
      destroyStateDir(tmp);
      throw err;
    }
    return { stateDir: target.stateDir, netnsIno: target.netnsIno, alreadyLoaded: false, replacedStale, replacedLock: lock.replaced, limits };
  } finally {
    // A failed load leaves no state: nor its lock directory.
    if (!fs.existsSync(target.stateDir)) removeLockDir(target);
    lock.close();
  }
}

/**
 * Refuse to attach while a manifold dispatcher is already attached to the
 * namespace: its state is under another bpffs (this one has none, or only
 * the stale one just removed), and two dispatchers would both steer every
 * lookup. Not checked when the links cannot be listed (no CAP_SYS_ADMIN:
 * the load then fails anyway).
 */
function refuseSecondDispatcher(target: ResolvedTarget): void {
  let links: SkLookupLink[];
  try {
    links = skLookupLinks(target.netnsIno);
  } catch (err) {
    if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) return;
    throw err;
  }
  const other = links.find((l) => l.program.startsWith(DISPATCHER_NAME));
  if (other) {
    throw new ManifoldError('ERR_ALREADY_LOADED', `a manifold dispatcher is already attached to network namespace ${target.netnsIno} (link ${other.linkId}), with its state under another bpffs than ${target.bpffs}: give that --bpffs, or unload it there first (two dispatchers would both steer every lookup; "manifold doctor" shows the links)`);
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
    step('unload-begin');
    // Detach first: from here traffic takes the normal socket lookup, whatever happens next.
    detachPinnedLink(target.stateDir);
    step('unload-detached');
    const gone = path.join(target.bpffs, `${leftoverPrefix(target.netnsIno)}gone-${process.pid}`);
    fs.renameSync(target.stateDir, gone);
    step('unload-renamed');
    destroyStateDir(gone);
    step('unload-removed');
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
    const migrated = previous.abi === 1 || previous.abi === 2;
    if (previous.abi === 1) migrateAbi1(target, previous);
    else if (previous.abi === 2) migrateAbi2(target, previous);
    if (migrated) {
      step('migrate-done');
      writeMarker(target, { ...previous, abi: MANIFOLD_ABI });
    } else if (previous.abi !== MANIFOLD_ABI) {
      throw new ManifoldError('ERR_INCOMPATIBLE', `the loaded dispatcher uses map ABI ${previous.abi}, which this manifold (ABI ${MANIFOLD_ABI}) cannot upgrade`);
    }
    step('upgrade-begin');
    const state = State.openLocked(target);
    try {
      if (!migrated) replaceProgram(state);
      step('upgrade-replaced');
      const version = manifoldVersion();
      writeMarker(target, { ...state.meta, abi: MANIFOLD_ABI, version });
      step('upgrade-marked');
      state.dir.normalize();
      // Bring the other generation in sync (after a migration it is stale): the live one then uses the fast paths.
      execute(state.maps, emptyPlan());
      // Listener discovery's target addresses follow the targets (repairs any drift).
      const registry = state.maps.targetRegistry();
      if (registry) syncTargets(state.maps, registry, [state.maps.destInfo(state.maps.activeGen())], [], 'exact');
      if (previous.abi === 1) {
        // The generation that was live through the migration still has ABI 1's layout (both tries one trie):
        // rebuild it too, so that both generations are in the current layout.
        const other = (state.maps.activeGen() ^ 1) as 0 | 1;
        state.maps.setGenState(other, { ...state.maps.genState(other), flags: GEN_STALE });
        execute(state.maps, emptyPlan());
      }
      return { stateDir: target.stateDir, previousVersion: previous.version, version, previousAbi: previous.abi, abi: MANIFOLD_ABI };
    } finally {
      state.close();
    }
  } finally {
    if (!fs.existsSync(target.stateDir)) removeLockDir(target);
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

/**
 * Load the current object reusing every map and swap it in (upgrade, and
 * discovery enable/disable: listener discovery's shared maps are the pinned
 * ones while discovery is enabled, else private). Returns whether the new
 * program uses discovery's maps.
 */
export function replaceProgram(state: State): boolean {
  const reuse = new Map<string, number>();
  for (const name of Object.values(MapPins)) reuse.set(name, state.maps.fd(keyOf(name)));
  const object = loadDispatcher(state.maps.limits, reuse, undefined, state.target.bpffs);
  let linkFd = -1;
  let oldProg = -1;
  try {
    linkFd = state.dir.openObject(ObjectPins.link);
    // The program the link runs now (not the pin: an interrupted upgrade may have left it behind).
    oldProg = progFdById(linkInfo(linkFd).progId);
    step('upgrade-loaded');
    linkUpdate(linkFd, object.progFd, oldProg);
    step('upgrade-switched');
    state.dir.pin(object.progFd, ObjectPins.program);
    return object.discovery;
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

/** The result of upgrading one of every state. */
export interface UpgradeAllEntry {
  stateDir: string;
  netnsIno: number;
  /** Path used for the namespace, or null when no process or /run/netns entry is in it. */
  netns: string | null;
  result: UpgradeResult | null;
  error: Error | null;
}

/** A path to the network namespace with inode `ino`: /run/netns/NAME, or /proc/PID/ns/net. */
export function netnsPathOf(ino: number): string | null {
  const candidates: string[] = [];
  try {
    for (const n of fs.readdirSync('/run/netns')) candidates.push(path.join('/run/netns', n));
  } catch {
    /* none */
  }
  try {
    for (const n of fs.readdirSync('/proc')) if (/^\d+$/.test(n)) candidates.push(`/proc/${n}/ns/net`);
  } catch {
    /* none */
  }
  for (const c of candidates) {
    try {
      if (Number(fs.statSync(c).ino) === ino) return c;
    } catch {
      /* gone */
    }
  }
  return null;
}

/**
 * Upgrade every state on a bpffs (the package's upgrade path): each
 * `<inode>_manifold` directory whose network namespace still exists.
 * One failing state does not stop the others.
 */
export function upgradeAll(opts: { bpffs: string; lockTimeoutMs: number }): UpgradeAllEntry[] {
  const out: UpgradeAllEntry[] = [];
  for (const name of fs.readdirSync(opts.bpffs).sort()) {
    const m = /^(\d+)_manifold$/.exec(name);
    if (!m) continue;
    const ino = Number(m[1]);
    const netns = netnsPathOf(ino);
    const entry: UpgradeAllEntry = { stateDir: path.join(opts.bpffs, name), netnsIno: ino, netns, result: null, error: null };
    if (netns === null) {
      entry.error = new ManifoldError('ERR_STALE_STATE', `no process or /run/netns entry is in network namespace ${ino}: its state is left as it is ("manifold load" in that namespace replaces it)`);
    } else {
      try {
        entry.result = upgrade({ netns, bpffs: opts.bpffs, lockTimeoutMs: opts.lockTimeoutMs });
      } catch (err) {
        entry.error = err as Error;
      }
    }
    out.push(entry);
  }
  return out;
}
