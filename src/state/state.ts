/**
 * Opening a namespace's dispatcher state: resolve the target, take the
 * writers' lock (writers only), check that the state directory is a healthy
 * manifold state of this map ABI in this namespace, and hand out its maps.
 * Every command opens one, works, and closes it (no daemon).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MANIFOLD_ABI, MANIFOLD_MAGIC, Sizes } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import { BPF_SK_LOOKUP, linkInfo, mapLookup, objGet } from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';
import { closeFd } from '../sys/libc.js';
import { decodeConfig, decodeConfigCookie, decodeMeta, u32, type Meta } from './kernel-codec.js';
import { openRegistry, type DiscoveryRegistry } from '../discovery/registry.js';
import { checkMapShape, KernelMaps, MapPins, mapShapeProblem } from './kernel-maps.js';
import { lockWriters, removeLockDir, type WriterLock } from './lock.js';
import type { Limits } from './maps.js';
import { ObjectPins, resolveTarget, type ResolvedTarget, type Target } from './paths.js';
import { pinError, PinDir } from './pins.js';

/** Options for opening the state. */
export interface OpenOptions extends Target {
  /** A writer (takes the writers' lock, opens maps read-write) or a reader. */
  write: boolean;
  lockTimeoutMs: number;
}

/** What `inspectState` found in a state directory. */
export type Health = { ok: true; meta: Meta } | { ok: false; reason: string; detached?: boolean };

/** The ABI marker of a state directory, or why there is none. */
export function readMarker(dir: string, readOnly: boolean): Meta | string {
  let fd: number;
  try {
    fd = objGet(path.join(dir, MapPins.meta), readOnly);
  } catch (err) {
    if (err instanceof SysError && err.errno === 2) return 'it has no manifold_meta marker';
    throw pinError(err, 'the state marker');
  }
  try {
    const shape = mapShapeProblem(fd, 'meta');
    if (shape) return shape;
    const raw = mapLookup(fd, u32(0), Sizes.meta);
    const meta = raw ? decodeMeta(raw) : null;
    if (!meta || meta.magic !== MANIFOLD_MAGIC) return 'its marker is not a manifold marker';
    return meta;
  } finally {
    closeFd(fd);
  }
}

/**
 * Check that a state directory belongs to a live dispatcher in this
 * namespace: a real directory owned by the user who loaded it, the ABI
 * marker, and the pinned link still attached (sk_lookup) to the namespace
 * with this inode. A namespace that died has its link detached, so a
 * recycled inode is recognised as stale. A marker of another map ABI is
 * reported (ERR_INCOMPATIBLE) unless `anyAbi`.
 */
export function inspectState(dir: string, netnsIno: number, readOnly: boolean, anyAbi = false): Health {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return { ok: false, reason: 'it does not exist' };
  }
  if (!st.isDirectory()) return { ok: false, reason: 'it is not a directory' };
  const marker = readMarker(dir, readOnly);
  if (typeof marker === 'string') return { ok: false, reason: marker };
  if (st.uid !== marker.ownerUid) return { ok: false, reason: `it is owned by uid ${st.uid}, not by uid ${marker.ownerUid} that loaded it` };
  if ((st.mode & 0o022) !== 0) return { ok: false, reason: `it is writable by others (mode ${(st.mode & 0o777).toString(8)})` };
  if (marker.abi !== MANIFOLD_ABI && !anyAbi) {
    if (marker.abi < MANIFOLD_ABI) {
      throw new ManifoldError('ERR_INCOMPATIBLE', `the loaded dispatcher uses map ABI ${marker.abi} (manifold ${marker.version}); run "manifold upgrade" to migrate it to ABI ${MANIFOLD_ABI} in place (bindings, sockets and counters are kept)`);
    }
    throw new ManifoldError('ERR_INCOMPATIBLE', `the loaded dispatcher uses map ABI ${marker.abi} (manifold ${marker.version}), newer than this manifold's ABI ${MANIFOLD_ABI}: use a newer manifold`);
  }
  let linkFd = -1;
  try {
    try {
      // Links cannot be opened read-only (BPF_F_RDONLY is for maps).
      linkFd = objGet(path.join(dir, ObjectPins.link));
    } catch (err) {
      if (err instanceof SysError && err.errno === 2) return { ok: false, reason: 'it has no pinned link' };
      // A read-only user may not open the link: trust the marker instead.
      if (readOnly && err instanceof SysError && (err.errno === 13 || err.errno === 1)) {
        return marker.netnsIno === netnsIno ? { ok: true, meta: marker } : { ok: false, reason: `it was loaded into network namespace ${marker.netnsIno}` };
      }
      throw pinError(err, 'the dispatcher link');
    }
    const info = linkInfo(linkFd);
    if (info.attachType !== BPF_SK_LOOKUP || info.netnsIno === 0) {
      return { ok: false, reason: 'its link is detached (it was unloaded, or the network namespace it was loaded into is gone)', detached: true };
    }
    if (info.netnsIno !== netnsIno || marker.netnsIno !== netnsIno) {
      return { ok: false, reason: `its link is attached to network namespace ${info.netnsIno}, not ${netnsIno}` };
    }
    return { ok: true, meta: marker };
  } finally {
    if (linkFd >= 0) closeFd(linkFd);
  }
}

/** At most this many other namespaces are named in the "not loaded" error. */
const OTHERS_NAMED = 3;

/**
 * The network namespaces other than `netnsIno` that have a dispatcher state
 * on `bpffs`, in inode order (none when the directory cannot be read).
 */
function otherLoadedNamespaces(bpffs: string, netnsIno: number): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(bpffs);
  } catch {
    return [];
  }
  const inos: number[] = [];
  for (const name of names) {
    const m = /^(\d+)_manifold$/.exec(name);
    if (m && Number(m[1]) !== netnsIno) inos.push(Number(m[1]));
  }
  return inos.sort((a, b) => a - b);
}

/**
 * The "not loaded" error for a target. When the bpffs holds the dispatcher
 * of another namespace, the error says so: the usual cause is a command run
 * in a namespace of its own (a unit with PrivateNetwork=, an `ip netns exec`
 * shell) that meant the host's.
 */
export function notLoaded(target: ResolvedTarget): ManifoldError {
  const base = `the dispatcher is not loaded in network namespace ${target.netnsIno} (${target.netns}) under ${target.bpffs}`;
  const others = otherLoadedNamespaces(target.bpffs, target.netnsIno);
  if (others.length === 0) return new ManifoldError('ERR_NOT_LOADED', `${base}: run "manifold load" first`);
  const named = others.slice(0, OTHERS_NAMED).join(', ') + (others.length > OTHERS_NAMED ? ` and ${others.length - OTHERS_NAMED} more` : '');
  return new ManifoldError(
    'ERR_NOT_LOADED',
    `${base}, only in network namespace${others.length > 1 ? 's' : ''} ${named}: this command runs in a namespace of its own ` +
      '(a service with PrivateNetwork= or NetworkNamespacePath=?); use --netns to act on another namespace, or run "manifold load" to load one here',
  );
}

/** An open dispatcher state. */
export class State {
  readonly target: ResolvedTarget;
  readonly write: boolean;
  readonly meta: Meta;
  readonly dir: PinDir;
  readonly maps: KernelMaps;
  readonly lock: WriterLock | null;
  /** The namespace cookie stored at load (0: unknown). */
  readonly netnsCookie: bigint;
  private registry: DiscoveryRegistry | null | undefined;

  private constructor(target: ResolvedTarget, write: boolean, meta: Meta, lock: WriterLock | null) {
    this.target = target;
    this.write = write;
    this.meta = meta;
    this.lock = lock;
    this.dir = new PinDir(target.stateDir, write, { uid: meta.ownerUid, gid: meta.ownerGid });
    let limits: Limits;
    const cfgFd = this.dir.openMap(MapPins.config);
    try {
      checkMapShape(cfgFd, 'config', target.stateDir);
      const raw = mapLookup(cfgFd, u32(0), Sizes.config);
      if (!raw) throw new ManifoldError('ERR_STALE_STATE', `the state ${target.stateDir} has no configuration: run "manifold load" to replace it`);
      limits = decodeConfig(raw);
      this.netnsCookie = decodeConfigCookie(raw);
    } finally {
      closeFd(cfgFd);
    }
    this.maps = new KernelMaps(this.dir, limits, () => this.targetRegistry());
  }

  /**
   * Listener discovery's target addresses of this namespace, for writers,
   * while discovery is enabled on the bpffs (null otherwise). Opened on first use.
   */
  targetRegistry(): DiscoveryRegistry | null {
    if (this.registry === undefined) this.registry = this.write ? openRegistry(this.target.bpffs, this.netnsCookie, this.target.netns) : null;
    return this.registry;
  }

  /** Open (and, for writers, lock) the state of a namespace. */
  static open(opts: OpenOptions): State {
    const target = resolveTarget(opts);
    const lock = opts.write ? lockWriters(target, opts.lockTimeoutMs) : null;
    try {
      try {
        fs.lstatSync(target.stateDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          // Not loaded: a writer's lock directory has nothing to protect; do not leave it behind.
          if (lock) removeLockDir(target);
          throw notLoaded(target);
        }
        throw err;
      }
      const health = inspectState(target.stateDir, target.netnsIno, !opts.write);
      if (!health.ok && health.detached) {
        // Nothing is attached: for traffic this is "not loaded" (an interrupted unload, or a dead namespace's leftover).
        throw new ManifoldError('ERR_NOT_LOADED', `the dispatcher is not loaded in network namespace ${target.netnsIno}: ${target.stateDir} is left over and not attached (an interrupted unload, or a namespace that is gone); "manifold load" replaces it, "manifold unload" removes it`);
      }
      if (!health.ok) {
        throw new ManifoldError('ERR_STALE_STATE', `the state directory ${target.stateDir} is stale: ${health.reason}. "manifold load" replaces it; "manifold unload" removes it`);
      }
      return new State(target, opts.write, health.meta, lock);
    } catch (err) {
      lock?.close();
      if (err instanceof ManifoldError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EACCES' || e.code === 'EPERM') {
        throw new ManifoldError('ERR_PERMISSION', `permission denied opening the state directory ${target.stateDir}: run as root, or as a member of its group for read-only commands (the bpffs mount must also be searchable: chmod o+x ${target.bpffs})`);
      }
      throw err;
    }
  }

  /** Open for writing while the caller already holds the writers' lock. */
  static openLocked(target: ResolvedTarget): State {
    const health = inspectState(target.stateDir, target.netnsIno, false);
    if (!health.ok) throw new ManifoldError('ERR_STALE_STATE', `the state directory ${target.stateDir} is stale: ${health.reason}`);
    return new State(target, true, health.meta, null);
  }

  /** Release the lock and every fd. */
  close(): void {
    this.maps.close();
    this.registry?.close();
    this.registry = undefined;
    this.lock?.close();
  }
}

/** Open, run `fn`, always close. */
export function withState<T>(opts: OpenOptions, fn: (s: State) => T): T {
  const s = State.open(opts);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}
