/**
 * An opened dispatcher state: the locked state directory and fds of its
 * pinned maps. Every command opens one, works, and closes it (no daemon).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { SysError } from '../sys/errno.js';
import { BPF_SK_LOOKUP, linkInfo, mapFdById, mapInfo, mapLookup, mapUpdate, objGet, objPin } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { decodeMeta, MANIFOLD_ABI, MANIFOLD_MAGIC, META_SIZE, u32, type Meta } from '../core/codec.js';
import { lockFd } from './lock.js';
import { Pins, resolveTarget, triePin, type ResolvedTarget, type Target } from './paths.js';

/** Options for opening the state. */
export interface OpenOptions extends Target {
  /** Exclusive (write) or shared (read) lock. */
  write: boolean;
  lockTimeoutMs: number;
}

type MapKey = 'meta' | 'bindings' | 'activeGen' | 'genMeta' | 'portBits' | 'destinations' | 'sockets' | 'metrics';

/** Translate failures to open pins into user-facing errors. */
export function pinError(err: unknown, what: string): Error {
  if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
    return new ManifoldError('ERR_PERMISSION', `permission denied opening ${what}: run as root, or as a member of the state's group for read-only commands`);
  }
  if (err instanceof SysError && err.errno === 2) {
    return new ManifoldError('ERR_STALE_STATE', `${what} is missing: the state directory is incomplete; run "manifold unload" then "manifold load"`);
  }
  return err as Error;
}

/** What `inspect` found in a state directory. */
export type Health = { ok: true; meta: Meta } | { ok: false; reason: string };

/**
 * Check that a state directory belongs to a live dispatcher of this ABI in
 * this namespace: the ABI marker in manifold_meta, and the pinned link still
 * attached (sk_lookup) to the namespace with this inode. A namespace that
 * died has its link detached, so a recycled inode is recognised as stale.
 */
export function inspectState(dir: string, netnsIno: number, readOnly: boolean): Health {
  let metaFd = -1;
  let linkFd = -1;
  try {
    try {
      metaFd = objGet(path.join(dir, Pins.meta), readOnly);
    } catch (err) {
      if (err instanceof SysError && err.errno === 2) return { ok: false, reason: 'it has no manifold_meta marker' };
      throw pinError(err, 'the state marker');
    }
    const raw = mapLookup(metaFd, u32(0), META_SIZE);
    const meta = raw ? decodeMeta(raw) : null;
    if (!meta || meta.magic !== MANIFOLD_MAGIC) return { ok: false, reason: 'its marker is not a manifold marker' };
    if (meta.abi !== MANIFOLD_ABI) {
      throw new ManifoldError('ERR_INCOMPATIBLE', `the loaded dispatcher uses map ABI ${meta.abi}, this manifold uses ABI ${MANIFOLD_ABI}: run "manifold unload" and "manifold load" (bindings and registrations are lost)`);
    }
    try {
      // Links cannot be opened read-only (BPF_F_RDONLY is for maps).
      linkFd = objGet(path.join(dir, Pins.link));
    } catch (err) {
      if (err instanceof SysError && err.errno === 2) return { ok: false, reason: 'it has no pinned link' };
      // A read-only user may not open the link: trust the marker instead.
      if (readOnly && err instanceof SysError && (err.errno === 13 || err.errno === 1)) {
        return meta.netnsIno === netnsIno ? { ok: true, meta } : { ok: false, reason: `it was loaded into network namespace ${meta.netnsIno}` };
      }
      throw pinError(err, 'the dispatcher link');
    }
    const info = linkInfo(linkFd);
    if (info.attachType !== BPF_SK_LOOKUP || info.netnsIno === 0) {
      return { ok: false, reason: 'its link is detached (the network namespace it was loaded into is gone)' };
    }
    if (info.netnsIno !== netnsIno || meta.netnsIno !== netnsIno) {
      return { ok: false, reason: `its link is attached to network namespace ${info.netnsIno}, not ${netnsIno}` };
    }
    return { ok: true, meta };
  } finally {
    if (metaFd >= 0) closeFd(metaFd);
    if (linkFd >= 0) closeFd(linkFd);
  }
}

/** An open, locked dispatcher state. */
export class State {
  readonly target: ResolvedTarget;
  readonly write: boolean;
  readonly meta: Meta;
  private readonly dirFd: number;
  private readonly fds = new Map<MapKey, number>();
  private trieFds = new Map<number, number>();

  private constructor(target: ResolvedTarget, write: boolean, dirFd: number, meta: Meta) {
    this.target = target;
    this.write = write;
    this.dirFd = dirFd;
    this.meta = meta;
  }

  /** Open and lock the state of a namespace. */
  static open(opts: OpenOptions): State {
    const target = resolveTarget(opts);
    const dir = target.stateDir;
    let dirFd: number;
    try {
      dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notLoaded(target);
      if (code === 'EACCES' || code === 'EPERM') {
        throw new ManifoldError('ERR_PERMISSION', `permission denied opening the state directory ${dir}: run as root, or as a member of its group for read-only commands (the bpffs mount must also be searchable: chmod o+x ${target.bpffs})`);
      }
      throw err;
    }
    try {
      lockFd(dirFd, opts.write, opts.lockTimeoutMs, dir);
      // unload renames the directory away before removing it: make sure the
      // directory we locked is still the one at the path.
      const locked = fs.fstatSync(dirFd);
      let current: fs.Stats | null = null;
      try {
        current = fs.statSync(dir);
      } catch {
        current = null;
      }
      if (!current || current.ino !== locked.ino) throw notLoaded(target);
      const health = inspectState(dir, target.netnsIno, !opts.write);
      if (!health.ok) {
        throw new ManifoldError('ERR_STALE_STATE', `the state directory ${dir} is stale: ${health.reason}. "manifold load" replaces it; "manifold unload" removes it`);
      }
      const state = new State(target, opts.write, dirFd, health.meta);
      return state;
    } catch (err) {
      fs.closeSync(dirFd);
      throw err;
    }
  }

  /** fd of a pinned map (opened on first use; read-only in read mode). */
  fd(key: MapKey): number {
    let fd = this.fds.get(key);
    if (fd !== undefined) return fd;
    const pin = Pins[key];
    try {
      fd = objGet(path.join(this.target.stateDir, pin), !this.write);
    } catch (err) {
      throw pinError(err, `the pinned map ${pin}`);
    }
    this.fds.set(key, fd);
    return fd;
  }

  /** The live generation (0 or 1). */
  activeGen(): number {
    const v = mapLookup(this.fd('activeGen'), u32(0), 4);
    return v ? v.readUInt32LE(0) & 1 : 0;
  }

  /** Id of the trie in slot `gen` of the outer map (0 when empty). */
  trieIdInSlot(gen: number): number {
    const v = mapLookup(this.fd('bindings'), u32(gen), 4);
    return v ? v.readUInt32LE(0) : 0;
  }

  /**
   * fd of generation `gen`'s binding trie. The pin is checked against the
   * outer map; a pin left behind by an interrupted writer is repaired (in
   * write mode) or bypassed by id when allowed.
   */
  trieFd(gen: number): number {
    const cached = this.trieFds.get(gen);
    if (cached !== undefined) return cached;
    const wantId = this.trieIdInSlot(gen);
    const pinPath = path.join(this.target.stateDir, triePin(gen));
    let fd = -1;
    try {
      fd = objGet(pinPath, !this.write);
    } catch (err) {
      if (!(err instanceof SysError && err.errno === 2)) throw pinError(err, `the pinned map ${triePin(gen)}`);
    }
    if (fd >= 0 && wantId !== 0 && mapInfo(fd).id !== wantId) {
      closeFd(fd);
      fd = -1;
    }
    if (fd < 0) {
      if (wantId === 0) throw new ManifoldError('ERR_STALE_STATE', `generation ${gen} has no binding table`);
      try {
        fd = mapFdById(wantId);
      } catch (err) {
        throw new ManifoldError('ERR_STALE_STATE', `the binding table pin for generation ${gen} is out of date (an earlier write was interrupted); run any write command as root to repair it (${(err as Error).message})`);
      }
      if (this.write) {
        try {
          fs.rmSync(pinPath, { force: true });
        } catch {
          /* repaired below or next time */
        }
        objPin(fd, pinPath);
      }
    }
    this.trieFds.set(gen, fd);
    return fd;
  }

  /** Replace generation `gen`'s trie (outer slot and pin) with `fd`. */
  installTrie(gen: number, fd: number): void {
    mapUpdate(this.fd('bindings'), u32(gen), u32(fd));
    const pinPath = path.join(this.target.stateDir, triePin(gen));
    const tmp = `${pinPath}-new`;
    fs.rmSync(tmp, { force: true });
    objPin(fd, tmp);
    fs.renameSync(tmp, pinPath);
    const old = this.trieFds.get(gen);
    if (old !== undefined && old !== fd) closeFd(old);
    this.trieFds.set(gen, fd);
  }

  /** Release the lock and every fd. */
  close(): void {
    for (const fd of this.fds.values()) closeFd(fd);
    for (const fd of this.trieFds.values()) closeFd(fd);
    this.fds.clear();
    this.trieFds.clear();
    try {
      fs.closeSync(this.dirFd);
    } catch {
      /* already closed */
    }
  }
}

/** The "not loaded" error for a target. */
export function notLoaded(target: ResolvedTarget): ManifoldError {
  return new ManifoldError('ERR_NOT_LOADED', `the dispatcher is not loaded in network namespace ${target.netnsIno} (${target.netns}) under ${target.bpffs}: run "manifold load" first`);
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
