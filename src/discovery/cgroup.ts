/**
 * cgroup v2: finding the mount, resolving the cgroup discovery attaches to,
 * and the processes below it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { parseMountinfo } from '../core/mountinfo.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * The mount point of the cgroup v2 hierarchy in a mountinfo text, preferring
 * a mount of its root ("/"); null when none.
 */
export function cgroup2FromMountinfo(text: string): string | null {
  const mounts = parseMountinfo(text).filter((m) => m.fsType === 'cgroup2');
  return (mounts.find((m) => m.root === '/') ?? mounts[0])?.mountPoint ?? null;
}

/** The cgroup v2 mount of this process (from /proc/self/mountinfo). */
export function cgroup2Mount(): string | null {
  try {
    return cgroup2FromMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return null;
  }
}

/** A resolved cgroup. */
export interface Cgroup {
  /** Absolute path of its directory. */
  path: string;
  /** The cgroup id (the directory's inode number on cgroup2). */
  id: bigint;
  /** The root of the hierarchy: every socket of the machine is below it. */
  isRoot: boolean;
}

/**
 * The cgroup at `given` (must be a directory on a cgroup v2 mount), or the
 * root of the cgroup v2 mount.
 */
export function resolveCgroup(given: string | undefined, mount: string | null = cgroup2Mount()): Cgroup {
  if (given !== undefined && (given === '' || given.includes('\0'))) throw new ManifoldError('ERR_USAGE', 'invalid --cgroup: empty path');
  const dir = given === undefined ? mount : path.resolve(given);
  if (dir === null) throw new ManifoldError('ERR_INCOMPATIBLE', 'no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)');
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(dir, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ManifoldError('ERR_NOT_FOUND', `cgroup ${dir}: no such directory`);
    if (code === 'EACCES' || code === 'EPERM') throw new ManifoldError('ERR_PERMISSION', `cgroup ${dir}: permission denied`);
    throw new ManifoldError('ERR_USAGE', `invalid --cgroup ${dir}: ${code ?? 'cannot inspect it'}`);
  }
  if (!st.isDirectory()) throw new ManifoldError('ERR_USAGE', `cgroup ${dir}: not a directory`);
  let magic: number;
  try {
    magic = Number(fs.statfsSync(dir).type);
  } catch {
    throw new ManifoldError('ERR_NOT_FOUND', `cgroup ${dir}: cannot inspect it`);
  }
  if (magic !== CGROUP2_SUPER_MAGIC) throw new ManifoldError('ERR_USAGE', `cgroup ${dir}: not on a cgroup v2 mount`);
  // The root cgroup has no cgroup.type; a cgroup namespace's root has one.
  const isRoot = !fs.existsSync(path.join(dir, 'cgroup.type'));
  return { path: dir, id: st.ino, isRoot };
}

/** Every process in the cgroup and its descendants (bounded walk). */
export function cgroupPids(dir: string, limit = 1_000_000): number[] {
  const pids: number[] = [];
  const stack = [dir];
  while (stack.length > 0 && pids.length < limit) {
    const d = stack.pop()!;
    try {
      for (const line of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) {
        if (/^\d+$/.test(line)) pids.push(Number(line));
      }
    } catch {
      /* gone, or a threaded cgroup without procs */
    }
    try {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) stack.push(path.join(d, e.name));
    } catch {
      /* gone */
    }
  }
  return pids;
}
