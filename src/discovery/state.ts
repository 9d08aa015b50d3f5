/**
 * Opening the pinned discovery state: its maps, its health, its lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { isTrustedUid } from '../core/users.js';
import { cgroupLinkInfo, LINK_TYPE_CGROUP, mapLookup, mapUpdate, objGet } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { SysError } from '../sys/errno.js';
import { AttachType } from '../sys/bpf.js';
import {
  DISC_ABI, DISC_CONFIG_SIZE, DISC_MAGIC, DISC_META_SIZE, decodeConfig, decodeMeta, encodeMeta, type DiscConfig, type DiscMeta,
} from './codec.js';
import { CGROUP_PROGRAMS, checkBpffs, discoveryDir, type DiscMapName } from './paths.js';

const ZERO = Buffer.alloc(4);

/** What inspecting a state directory found. */
export interface Health {
  ok: boolean;
  /** Why it is not healthy. */
  reason: string | null;
  meta: DiscMeta | null;
  config: DiscConfig | null;
  links: LinkHealth[];
}

/** One cgroup link of the state. */
export interface LinkHealth {
  pin: string;
  program: string;
  id: number | null;
  attached: boolean;
}

function readPinned(dir: string, name: string, size: number): Buffer | null {
  let fd: number;
  try {
    fd = objGet(path.join(dir, name), true);
  } catch {
    return null;
  }
  try {
    return mapLookup(fd, ZERO, size);
  } finally {
    closeFd(fd);
  }
}

/** Inspect a state directory without changing it. `links` needs root (link pins cannot be opened read-only). */
export function inspectDir(dir: string, links = true): Health {
  const metaBuf = readPinned(dir, 'disc_meta', DISC_META_SIZE);
  const cfgBuf = readPinned(dir, 'disc_config', DISC_CONFIG_SIZE);
  const meta = metaBuf ? decodeMeta(metaBuf) : null;
  const config = cfgBuf ? decodeConfig(cfgBuf) : null;
  const bad = (reason: string, l: LinkHealth[] = []): Health => ({ ok: false, reason, meta, config, links: l });
  if (!meta || !config) return bad('its maps are missing');
  if (meta.magic !== DISC_MAGIC) return bad('it is not manifold discovery state');
  if (meta.abi !== DISC_ABI) return bad(`it has map ABI ${meta.abi}, this manifold uses ${DISC_ABI}`);
  const out: LinkHealth[] = [];
  if (links) {
    for (const p of CGROUP_PROGRAMS) {
      const h: LinkHealth = { pin: p.pin, program: p.prog, id: null, attached: false };
      out.push(h);
      let fd: number;
      try {
        fd = objGet(path.join(dir, p.pin));
      } catch {
        continue;
      }
      try {
        const info = cgroupLinkInfo(fd);
        h.id = info.id;
        h.attached = info.type === LINK_TYPE_CGROUP && info.cgroupId === config.cgroupId && info.cgroupId !== 0n
          && info.attachType === AttachType[p.attach];
      } finally {
        closeFd(fd);
      }
    }
    const missing = out.filter((l) => !l.attached);
    if (missing.length) return bad(`${missing.map((l) => l.program).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not attached to cgroup id ${config.cgroupId}`, out);
  }
  return { ok: true, reason: null, meta, config, links: out };
}

/** The not-enabled error. */
export function notEnabled(bpffs: string): ManifoldError {
  return new ManifoldError('ERR_NOT_LOADED', `listener discovery is not enabled on ${bpffs} (run "manifold discovery enable")`);
}

/** An opened discovery state. */
export class DiscoveryState {
  readonly dir: string;
  readonly bpffs: string;
  readonly write: boolean;
  private readonly dirFd: number;
  private readonly fds = new Map<string, number>();

  private constructor(bpffs: string, dir: string, dirFd: number, write: boolean) {
    this.bpffs = bpffs;
    this.dir = dir;
    this.dirFd = dirFd;
    this.write = write;
  }

  /** Open the state of a bpffs (writers must hold discovery's writers' lock). */
  static open(bpffs: string, write: boolean, _lockTimeoutMs?: number): DiscoveryState {
    checkBpffs(bpffs);
    const dir = discoveryDir(bpffs);
    let dirFd: number;
    try {
      dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notEnabled(bpffs);
      if (code === 'EACCES' || code === 'EPERM') throw new ManifoldError('ERR_PERMISSION', `cannot open ${dir}: permission denied`);
      throw err;
    }
    try {
      // Readers take no lock (nobody can block a writer); writers hold discovery's writers' lock
      // (withRootLock in lifecycle.ts) before opening. disable renames the directory away before removing it.
      const now = fs.statSync(dir);
      const locked = fs.fstatSync(dirFd);
      if (now.ino !== locked.ino) throw notEnabled(bpffs);
    } catch (err) {
      fs.closeSync(dirFd);
      if (err instanceof Error && 'code' in err && (err as NodeJS.ErrnoException).code === 'ENOENT') throw notEnabled(bpffs);
      throw err;
    }
    // Made by someone else (a bpffs others can write to): not manifold's state, whatever it holds.
    const owner = fs.fstatSync(dirFd).uid;
    if (!isTrustedUid(owner)) {
      fs.closeSync(dirFd);
      throw new ManifoldError('ERR_STALE_STATE', `${dir} was made by another user (uid ${owner}), not by manifold: remove it, and let only root write to ${bpffs}`);
    }
    const state = new DiscoveryState(bpffs, dir, dirFd, write);
    let meta: ReturnType<DiscoveryState['meta']>;
    try {
      meta = state.meta();
    } catch (err) {
      // No marker map (an empty directory of that name): not usable state.
      if (!(err instanceof SysError && err.errno === 2)) {
        state.close();
        throw err;
      }
      meta = null;
    }
    if (!meta || meta.magic !== DISC_MAGIC) {
      state.close();
      throw new ManifoldError('ERR_STALE_STATE', `${dir} is not usable discovery state: run "manifold discovery disable", then enable`);
    }
    if (meta.abi !== DISC_ABI) {
      state.close();
      throw new ManifoldError('ERR_INCOMPATIBLE', `${dir} has discovery map ABI ${meta.abi}, this manifold uses ${DISC_ABI}: disable and enable again`);
    }
    return state;
  }

  /** fd of a pinned map (read-only unless opened for writing). */
  map(name: DiscMapName): number {
    let fd = this.fds.get(name);
    if (fd === undefined) {
      try {
        fd = objGet(path.join(this.dir, name), !this.write);
      } catch (err) {
        if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) throw new ManifoldError('ERR_PERMISSION', `cannot open ${path.join(this.dir, name)}: permission denied`);
        throw err;
      }
      this.fds.set(name, fd);
    }
    return fd;
  }

  /** fd of a pinned program or link (needs write access). */
  pinned(name: string): number {
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = objGet(path.join(this.dir, name));
      this.fds.set(name, fd);
    }
    return fd;
  }

  /** disc_meta[0]. */
  meta(): DiscMeta | null {
    const b = mapLookup(this.map('disc_meta'), ZERO, DISC_META_SIZE);
    return b ? decodeMeta(b) : null;
  }

  /** disc_config[0]. */
  config(): DiscConfig | null {
    const b = mapLookup(this.map('disc_config'), ZERO, DISC_CONFIG_SIZE);
    return b ? decodeConfig(b) : null;
  }

  /** Set disc_meta.active. */
  setActive(active: boolean): void {
    const m = this.meta();
    if (!m) return;
    mapUpdate(this.map('disc_meta'), ZERO, encodeMeta({ ...m, active: active ? 1 : 0 }));
  }

  /** Close every fd and release the lock. */
  close(): void {
    for (const fd of this.fds.values()) closeFd(fd);
    this.fds.clear();
    try {
      fs.closeSync(this.dirFd);
    } catch {
      /* closed */
    }
  }
}
