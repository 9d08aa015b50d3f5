/**
 * Where state lives: <bpffs>/<netns inode>_manifold/, and how the
 * --netns and --bpffs arguments are checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsReason, ManifoldError } from '../errors.js';
import { CLONE_NEWNET, namespaceType, NamespaceTypes } from '../sys/libc.js';
import { SysError } from '../sys/errno.js';

const NSFS_MAGIC = 0x6e736673;
const BPF_FS_MAGIC = 0xcafe4a11;

/** Global options every command takes. */
export interface Target {
  /** Path of a network namespace file (default /proc/self/ns/net). */
  netns: string;
  /** Mount point of a bpffs (default /sys/fs/bpf). */
  bpffs: string;
}

/** A resolved target: the namespace's identity and the state directory. */
export interface ResolvedTarget extends Target {
  netnsIno: number;
  netnsDev: bigint;
  stateDir: string;
}

/** Pins of the program and its attachment in the state directory. */
export const ObjectPins = { link: 'link', program: 'program' } as const;

/** Name of the state directory of a namespace (bpffs refuses dots in names). */
export function stateDirName(netnsIno: number): string {
  return `${netnsIno}_manifold`;
}

/** Name of the writers' lock directory of a namespace (root only, 0700: readers cannot lock it). */
export function lockDirName(netnsIno: number): string {
  return `${netnsIno}_manifold_lock`;
}

/** Prefix of leftover directories (interrupted load/unload) of a namespace. */
export function leftoverPrefix(netnsIno: number): string {
  return `${netnsIno}_manifold-`;
}

function fsError(err: unknown, what: string, argument: string): ManifoldError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new ManifoldError('ERR_USAGE', `${argument} ${what}: no such file`);
  if (e.code === 'EACCES' || e.code === 'EPERM') return new ManifoldError('ERR_PERMISSION', `${argument} ${what}: permission denied`);
  return new ManifoldError('ERR_USAGE', `${argument} ${what}: ${fsReason(err)}`);
}

/**
 * Refuse an nsfs file of another kind of namespace (mnt, user, pid, …):
 * NS_GET_NSTYPE on an fd of it must say CLONE_NEWNET, and the fd must be the
 * file `st` describes (the path did not change in between).
 */
function checkNetworkNamespace(file: string, st: fs.BigIntStats): void {
  const notNetns = (why: string): ManifoldError =>
    new ManifoldError('ERR_USAGE', `--netns ${file}: not a network namespace${why} (expected e.g. /proc/PID/ns/net or /run/netns/NAME)`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw fsError(err, file, '--netns');
  }
  try {
    const now = fs.fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev) throw notNetns(' (the file changed while it was checked)');
    let type: number;
    try {
      type = namespaceType(fd);
    } catch (err) {
      // Only the ioctl's own refusal says what the file is; anything else (koffi missing) is reported as it is.
      if (err instanceof SysError) throw notNetns(' file');
      throw err;
    }
    if (type !== CLONE_NEWNET) throw notNetns(` but ${NamespaceTypes[type] ?? `an unknown (type ${type})`} namespace`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Check the target and compute the state directory. */
export function resolveTarget(target: Target): ResolvedTarget {
  let st: fs.BigIntStats;
  let sfs: fs.StatsFs;
  try {
    st = fs.statSync(target.netns, { bigint: true });
    sfs = fs.statfsSync(target.netns);
  } catch (err) {
    throw fsError(err, target.netns, '--netns');
  }
  if (sfs.type !== NSFS_MAGIC) {
    throw new ManifoldError('ERR_USAGE', `--netns ${target.netns}: not a network namespace file (expected e.g. /proc/PID/ns/net or /run/netns/NAME)`);
  }
  checkNetworkNamespace(target.netns, st);
  let bfs: fs.StatsFs;
  try {
    bfs = fs.statfsSync(target.bpffs);
  } catch (err) {
    throw fsError(err, target.bpffs, '--bpffs');
  }
  if (bfs.type !== BPF_FS_MAGIC) {
    // Only a directory can have one mounted on it.
    const dir = fs.statSync(target.bpffs, { throwIfNoEntry: false })?.isDirectory() === true;
    throw new ManifoldError('ERR_USAGE', `--bpffs ${target.bpffs}: not a bpf filesystem${dir ? ` (mount one with: mount -t bpf bpf ${target.bpffs})` : ' (it is not even a directory: give the directory a bpffs is mounted on, e.g. /sys/fs/bpf)'}`);
  }
  // A directory of manifold's own state (a namespace's state, its lock, listener discovery's)
  // is not a place for another state: a load there nested a second dispatcher in the first.
  const own = path.resolve(target.bpffs).split('/').find((c) => /^\d+_manifold/.test(c) || c === 'manifold_discovery');
  if (own !== undefined) {
    throw new ManifoldError('ERR_USAGE', `--bpffs ${target.bpffs}: is inside manifold's own state (${own}): give the bpffs mount that holds it (e.g. /sys/fs/bpf)`);
  }
  const netnsIno = Number(st.ino);
  return { ...target, netnsIno, netnsDev: st.dev, stateDir: path.join(target.bpffs, stateDirName(netnsIno)) };
}
