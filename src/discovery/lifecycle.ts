/**
 * discovery enable / disable.
 *
 * enable loads bpf/discovery.bpf.o, pins its maps and iterator programs,
 * attaches the four cgroup programs with pinned links — all in a temporary
 * directory renamed into place — then seeds the sockets that already exist
 * and only then marks the index active (disc_meta.active), so a dispatcher
 * never trusts a half-built index. enable and disable serialise with each
 * other on discovery's own writers' lock directory (see withRootLock).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { AttachType, linkCreate, linkDetach, mapUpdate, objGet, objPin } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { loadObjectAll, type LoadedMultiObject } from '../sys/object.js';
import { lockDirectory } from '../state/lock.js';
import { manifoldVersion } from '../version.js';
import { DISC_ABI, DISC_MAGIC, encodeConfig, encodeMeta } from './codec.js';
import { cgroup2Mount, resolveCgroup, type Cgroup } from './cgroup.js';
import { kernelChecks, machineFacts, requireKernel } from './kernel.js';
import {
  CGROUP_PROGRAMS, checkBpffs, DISC_DIR, DISC_LOCK, DISC_MAPS, discoveryDir, discoveryObjectPath, ITER_PROGRAMS,
} from './paths.js';
import { namespacesOf, seed, seedMethod, type SeedSummary } from './seed.js';
import { DiscoveryState, inspectDir, notEnabled } from './state.js';
import { relinkDispatchers, type DispatcherRelink } from '../ops/discovery-dispatchers.js';

/** Options of enable. */
export interface EnableOptions {
  bpffs: string;
  /** cgroup directory; default: the root of the cgroup v2 mount. */
  cgroup?: string | undefined;
  /** Namespaces to seed besides those of the cgroup's processes. */
  seedNetns: string[];
  lockTimeoutMs: number;
}

/** Result of enable. */
export interface EnableResult {
  stateDir: string;
  cgroup: Cgroup;
  alreadyEnabled: boolean;
  /** Why a broken state directory was replaced. */
  replaced: string | null;
  seed: SeedSummary;
  /** The dispatchers of the bpffs, now using discovery's maps (with their target addresses registered). */
  dispatchers: DispatcherRelink[];
}

const ZERO = Buffer.alloc(4);

/** Run `fn` holding discovery's writers' lock (a 0700 directory only root can open: nobody else can block it). */
function withRootLock<T>(bpffs: string, timeoutMs: number, fn: () => T): T {
  const lock = lockDirectory(path.join(bpffs, DISC_LOCK), bpffs, timeoutMs, 'listener discovery');
  try {
    return fn();
  } finally {
    // No discovery state left (disabled, or never enabled): the lock goes too, so nothing stays pinned.
    if (!fs.existsSync(discoveryDir(bpffs))) fs.rmSync(path.join(bpffs, DISC_LOCK), { recursive: true, force: true });
    lock.close();
  }
}

/** Zero the marker: inactive for dispatchers, not discovery state for loaders. */
function clearMarker(dir: string): void {
  try {
    const meta = objGet(path.join(dir, 'disc_meta'));
    try {
      mapUpdate(meta, ZERO, Buffer.alloc(64));
    } finally {
      closeFd(meta);
    }
  } catch {
    /* no meta pinned */
  }
}

/** Mark inactive, detach every link pinned in `dir`, remove it. Returns the links detached. */
function destroyDir(dir: string): string[] {
  const detached: string[] = [];
  clearMarker(dir);
  for (const p of CGROUP_PROGRAMS) {
    let fd: number;
    try {
      fd = objGet(path.join(dir, p.pin));
    } catch {
      continue;
    }
    try {
      linkDetach(fd);
      detached.push(p.prog);
    } catch {
      /* already detached */
    } finally {
      closeFd(fd);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return detached;
}

function leftovers(bpffs: string): string[] {
  return fs.readdirSync(bpffs).filter((n) => n.startsWith(`${DISC_DIR}-`)).map((n) => path.join(bpffs, n));
}

function permissions(dir: string): void {
  fs.chmodSync(dir, 0o750);
  for (const name of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, name), 0o640);
}

/** Build the state in `tmp`: load, configure, pin, attach. */
function build(tmp: string, cg: Cgroup): void {
  let object: LoadedMultiObject | null = null;
  const fds: number[] = [];
  try {
    object = loadObjectAll(discoveryObjectPath(), 'listener discovery programs');
    mapUpdate(object.mapFd('disc_config'), ZERO, encodeConfig({ cgroupId: cg.id, scopeAll: cg.isRoot, cgroupPath: cg.path }));
    mapUpdate(object.mapFd('disc_meta'), ZERO, encodeMeta({
      magic: DISC_MAGIC, abi: DISC_ABI, active: 0, cgroupId: cg.id, enabledAt: Date.now(), version: manifoldVersion(),
    }));
    for (const name of DISC_MAPS) objPin(object.mapFd(name), path.join(tmp, name));
    for (const p of ITER_PROGRAMS) objPin(object.progFd(p.prog), path.join(tmp, p.pin));
    const cgFd = fs.openSync(cg.path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      for (const p of CGROUP_PROGRAMS) {
        const link = linkCreate(object.progFd(p.prog), cgFd, AttachType[p.attach], `cannot attach ${p.prog} to cgroup ${cg.path}`);
        fds.push(link);
        objPin(link, path.join(tmp, p.pin));
      }
    } finally {
      fs.closeSync(cgFd);
    }
    permissions(tmp);
  } finally {
    for (const fd of fds) closeFd(fd);
    object?.close();
  }
}

/** Run seeding on an opened state and mark it active. */
function seedAndActivate(state: DiscoveryState, cg: Cgroup, seedNetns: string[]): SeedSummary {
  const method = seedMethod();
  const namespaces = method === 'iterators' ? namespacesOf(cg.path, seedNetns) : [];
  const summary = seed({ tcp: state.pinned('prog_iter_tcp'), udp: state.pinned('prog_iter_udp'), file: state.pinned('prog_iter_file') }, namespaces, method);
  state.setActive(true);
  return summary;
}

/** Enable discovery (idempotent: an enabled state is re-seeded, nothing else changes). */
export function enable(opts: EnableOptions): EnableResult {
  const mount = cgroup2Mount();
  requireKernel(kernelChecks(machineFacts(mount)));
  checkBpffs(opts.bpffs);
  for (const ns of opts.seedNetns) {
    if (!fs.existsSync(ns)) throw new ManifoldError('ERR_NOT_FOUND', `network namespace ${ns}: no such file`);
  }
  const cg = resolveCgroup(opts.cgroup, mount);
  const dir = discoveryDir(opts.bpffs);
  return withRootLock(opts.bpffs, opts.lockTimeoutMs, () => {
    for (const d of leftovers(opts.bpffs)) destroyDir(d);
    let replaced: string | null = null;
    if (fs.existsSync(dir)) {
      const health = inspectDir(dir);
      if (health.ok && health.config) {
        if (health.config.cgroupId !== cg.id) {
          throw new ManifoldError('ERR_ALREADY_LOADED', `listener discovery is already enabled on cgroup ${health.config.cgroupPath || String(health.config.cgroupId)}: run "manifold discovery disable" first`);
        }
        const state = DiscoveryState.open(opts.bpffs, true, opts.lockTimeoutMs);
        let seeded: SeedSummary;
        try {
          seeded = seedAndActivate(state, cg, opts.seedNetns);
        } finally {
          state.close();
        }
        return { stateDir: dir, cgroup: cg, alreadyEnabled: true, replaced: null, seed: seeded, dispatchers: relinkDispatchers(opts.bpffs, opts.lockTimeoutMs) };
      }
      replaced = health.reason;
      destroyDir(dir);
    }
    const tmp = path.join(opts.bpffs, `${DISC_DIR}-tmp-${process.pid}`);
    fs.mkdirSync(tmp, { mode: 0o700 });
    try {
      build(tmp, cg);
      fs.renameSync(tmp, dir);
    } catch (err) {
      destroyDir(tmp);
      if (err instanceof SysError && err.errno === 1) throw new ManifoldError('ERR_PERMISSION', `cannot enable listener discovery: ${err.message}`);
      throw err;
    }
    let state: DiscoveryState | null = null;
    let summary: SeedSummary;
    try {
      state = DiscoveryState.open(opts.bpffs, true, opts.lockTimeoutMs);
      summary = seedAndActivate(state, cg, opts.seedNetns);
    } catch (err) {
      state?.close();
      state = null;
      destroyDir(dir);
      throw err;
    } finally {
      state?.close();
    }
    // Active and seeded: the dispatchers switch to the shared maps and register their targets.
    return { stateDir: dir, cgroup: cg, alreadyEnabled: false, replaced, seed: summary, dispatchers: relinkDispatchers(opts.bpffs, opts.lockTimeoutMs) };
  });
}

/** Result of disable. */
export interface DisableResult {
  stateDir: string;
  cgroupPath: string | null;
  /** Programs detached. */
  detached: string[];
  /** The dispatchers of the bpffs, back on private maps. */
  dispatchers: DispatcherRelink[];
}

/** Detach everything and remove every pin (also of a broken state). */
export function disable(opts: { bpffs: string; cgroup?: string | undefined; lockTimeoutMs: number }): DisableResult {
  checkBpffs(opts.bpffs);
  const dir = discoveryDir(opts.bpffs);
  return withRootLock(opts.bpffs, opts.lockTimeoutMs, () => {
    const extra = leftovers(opts.bpffs);
    for (const d of extra) destroyDir(d);
    if (!fs.existsSync(dir)) throw notEnabled(opts.bpffs);
    const health = inspectDir(dir);
    if (opts.cgroup !== undefined && health.config) {
      const cg = resolveCgroup(opts.cgroup);
      if (cg.id !== health.config.cgroupId) {
        throw new ManifoldError('ERR_USAGE', `listener discovery is enabled on cgroup ${health.config.cgroupPath}, not on ${cg.path}`);
      }
    }
    // Clear the marker first: dispatchers stop using the index at once, and loaders no longer pick the maps up.
    clearMarker(dir);
    // Dispatchers back on private maps: nothing keeps discovery's maps (or its target sockets) alive.
    const dispatchers = relinkDispatchers(opts.bpffs, opts.lockTimeoutMs);
    // Writers hold the lock; readers take none. Move the state away so nobody opens it again, then detach and unpin.
    const gone = path.join(opts.bpffs, `${DISC_DIR}-disable-${process.pid}`);
    fs.renameSync(dir, gone);
    return { stateDir: dir, cgroupPath: health.config?.cgroupPath ?? null, detached: destroyDir(gone), dispatchers };
  });
}
