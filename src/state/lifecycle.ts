/**
 * load, unload and upgrade of the dispatcher.
 *
 * load builds the whole state in a temporary directory next to the final
 * one and renames it into place, so a state directory is either complete or
 * absent. load and unload serialise on an exclusive lock of the bpffs root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import {
  BPF_F_NO_PREALLOC, BPF_SK_LOOKUP, linkCreate, linkDetach, linkUpdate, mapCreate, mapUpdate, MapType, objGet, objPin,
} from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { loadObject, type LoadedObject } from '../sys/object.js';
import {
  BINDING_KEY_SIZE, BINDING_VALUE_SIZE, encodeMeta, MANIFOLD_ABI, MANIFOLD_MAGIC, MAX_BINDINGS, u32,
} from '../core/codec.js';
import { manifoldVersion } from '../version.js';
import { lockFd } from './lock.js';
import { dispatcherObjectPath } from './object-path.js';
import { MAP_NAMES, Pins, resolveTarget, triePin, type ResolvedTarget, type Target } from './paths.js';
import { inspectState, notLoaded, State } from './state.js';

/** Name of the sk_lookup program in the object. */
export const PROGRAM_NAME = 'manifold_dispatch';

/** Options of load. */
export interface LoadOptions extends Target {
  lockTimeoutMs: number;
  /** Group owning the state (read-only access); default: the caller's gid. */
  gid?: number;
}

/** Result of load. */
export interface LoadResult {
  stateDir: string;
  netnsIno: number;
  alreadyLoaded: boolean;
  /** Why an old state directory was replaced, when it was stale. */
  replacedStale: string | null;
}

function withRootLock<T>(target: ResolvedTarget, timeoutMs: number, fn: () => T): T {
  const fd = fs.openSync(target.bpffs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    lockFd(fd, true, timeoutMs, target.bpffs);
    return fn();
  } finally {
    fs.closeSync(fd);
  }
}

/** Remove a state or temporary directory, detaching its link first. */
function destroyDir(dir: string): void {
  try {
    const linkFd = objGet(path.join(dir, Pins.link));
    try {
      linkDetach(linkFd);
    } catch {
      /* already detached */
    } finally {
      closeFd(linkFd);
    }
  } catch {
    /* no link pinned */
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

function leftoverDirs(target: ResolvedTarget): string[] {
  const prefix = `${target.netnsIno}_manifold-`;
  return fs.readdirSync(target.bpffs).filter((n) => n.startsWith(prefix)).map((n) => path.join(target.bpffs, n));
}

function createTrie(): number {
  return mapCreate(MapType.LPM_TRIE, 'manifold_trie', BINDING_KEY_SIZE, BINDING_VALUE_SIZE, MAX_BINDINGS, { flags: BPF_F_NO_PREALLOC });
}

/** Create a fresh, empty binding trie (for apply). */
export { createTrie };

function permissionsFor(dir: string, uid: number, gid: number): void {
  fs.chmodSync(dir, 0o750);
  fs.chownSync(dir, uid, gid);
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    fs.chmodSync(p, 0o640);
    fs.chownSync(p, uid, gid);
  }
}

/** Load the dispatcher into a namespace (idempotent). */
export function load(opts: LoadOptions): LoadResult {
  const target = resolveTarget(opts);
  return withRootLock(target, opts.lockTimeoutMs, () => {
    let replacedStale: string | null = null;
    if (fs.existsSync(target.stateDir)) {
      const health = inspectState(target.stateDir, target.netnsIno, false);
      if (health.ok) return { stateDir: target.stateDir, netnsIno: target.netnsIno, alreadyLoaded: true, replacedStale: null };
      replacedStale = health.reason;
      destroyDir(target.stateDir);
    }
    for (const dir of leftoverDirs(target)) destroyDir(dir);

    const tmp = path.join(target.bpffs, `${target.netnsIno}_manifold-tmp-${process.pid}`);
    fs.mkdirSync(tmp, { mode: 0o700 });
    let object: LoadedObject | null = null;
    const fds: number[] = [];
    try {
      object = loadObject(dispatcherObjectPath(), PROGRAM_NAME);
      const uid = process.getuid?.() ?? 0;
      const gid = opts.gid ?? process.getgid?.() ?? 0;
      const meta = encodeMeta({
        magic: MANIFOLD_MAGIC, abi: MANIFOLD_ABI, netnsIno: target.netnsIno, netnsDev: target.netnsDev,
        loadedAt: Date.now(), ownerUid: uid, ownerGid: gid, version: manifoldVersion(),
      });
      mapUpdate(object.mapFd('manifold_meta'), u32(0), meta);
      for (const gen of [0, 1]) {
        const trie = createTrie();
        fds.push(trie);
        mapUpdate(object.mapFd('bindings'), u32(gen), u32(trie));
        objPin(trie, path.join(tmp, triePin(gen)));
      }
      for (const name of MAP_NAMES) objPin(object.mapFd(name), path.join(tmp, name));
      objPin(object.progFd, path.join(tmp, Pins.program));
      const netnsFd = fs.openSync(target.netns, 'r');
      try {
        const linkFd = linkCreate(object.progFd, netnsFd, BPF_SK_LOOKUP);
        fds.push(linkFd);
        objPin(linkFd, path.join(tmp, Pins.link));
      } finally {
        fs.closeSync(netnsFd);
      }
      permissionsFor(tmp, uid, gid);
      fs.renameSync(tmp, target.stateDir);
    } catch (err) {
      destroyDir(tmp);
      if (err instanceof SysError && err.errno === 1) {
        throw new ManifoldError('ERR_PERMISSION', `cannot load the dispatcher: ${err.message}`);
      }
      throw err;
    } finally {
      for (const fd of fds) closeFd(fd);
      object?.close();
    }
    return { stateDir: target.stateDir, netnsIno: target.netnsIno, alreadyLoaded: false, replacedStale };
  });
}

/** Result of unload. */
export interface UnloadResult {
  stateDir: string;
  stale: boolean;
}

/** Detach the dispatcher and remove its state. */
export function unload(opts: Target & { lockTimeoutMs: number }): UnloadResult {
  const target = resolveTarget(opts);
  return withRootLock(target, opts.lockTimeoutMs, () => {
    for (const dir of leftoverDirs(target)) destroyDir(dir);
    if (!fs.existsSync(target.stateDir)) throw notLoaded(target);
    const health = inspectState(target.stateDir, target.netnsIno, false);
    // Wait for writers and readers to finish, then move the directory away
    // so nobody opens it again, and detach.
    const dirFd = fs.openSync(target.stateDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      lockFd(dirFd, true, opts.lockTimeoutMs, target.stateDir);
      const gone = path.join(target.bpffs, `${target.netnsIno}_manifold-unload-${process.pid}`);
      fs.renameSync(target.stateDir, gone);
      destroyDir(gone);
    } finally {
      fs.closeSync(dirFd);
    }
    return { stateDir: target.stateDir, stale: !health.ok };
  });
}

/** Result of upgrade. */
export interface UpgradeResult {
  stateDir: string;
  previousVersion: string;
  version: string;
}

/**
 * Replace the running program in place (bpf_link_update with BPF_F_REPLACE),
 * keeping every map: bindings, sockets and counters survive, and no
 * connection sees a moment without a program.
 */
export function upgrade(opts: Target & { lockTimeoutMs: number }): UpgradeResult {
  const state = State.open({ ...opts, write: true });
  let object: LoadedObject | null = null;
  const fds: number[] = [];
  try {
    const dir = state.target.stateDir;
    const reuse = new Map<string, number>();
    for (const name of MAP_NAMES) {
      const fd = objGet(path.join(dir, name));
      fds.push(fd);
      reuse.set(name, fd);
    }
    object = loadObject(dispatcherObjectPath(), PROGRAM_NAME, reuse);
    const oldProg = objGet(path.join(dir, Pins.program));
    fds.push(oldProg);
    const link = objGet(path.join(dir, Pins.link));
    fds.push(link);
    linkUpdate(link, object.progFd, oldProg);
    const tmpPin = path.join(dir, `${Pins.program}-new`);
    fs.rmSync(tmpPin, { force: true });
    objPin(object.progFd, tmpPin);
    fs.chmodSync(tmpPin, 0o640);
    fs.chownSync(tmpPin, state.meta.ownerUid, state.meta.ownerGid);
    fs.renameSync(tmpPin, path.join(dir, Pins.program));
    const version = manifoldVersion();
    mapUpdate(state.fd('meta'), u32(0), encodeMeta({ ...state.meta, version }));
    return { stateDir: dir, previousVersion: state.meta.version, version };
  } finally {
    for (const fd of fds) closeFd(fd);
    object?.close();
    state.close();
  }
}
