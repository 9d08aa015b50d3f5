/**
 * Where discovery's state lives on bpffs, and where its object is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { findUp } from '../locate.js';

/** Directory under the bpffs root (bpffs refuses dots in names). */
export const DISC_DIR = 'manifold_discovery';
/** Name of discovery's writers' lock directory on the bpffs. */
export const DISC_LOCK = 'manifold_discovery_lock';

/** Maps of the object, pinned by name. */
export const DISC_MAPS = [
  'disc_index', 'disc_filter', 'disc_overflow', 'disc_target_socks', 'disc_meta',
  'disc_socks', 'disc_targets', 'disc_target_ck', 'disc_events', 'disc_counters', 'disc_config',
] as const;
/** A pinned map's name. */
export type DiscMapName = (typeof DISC_MAPS)[number];

/** The maps a dispatcher that includes bpf/discovery.h must reuse. */
export const DISPATCHER_SHARED_MAPS = ['disc_index', 'disc_filter', 'disc_overflow', 'disc_target_socks', 'disc_meta'] as const;

/** Programs attached to the cgroup: program name, attach type key, link pin. */
export const CGROUP_PROGRAMS = [
  { prog: 'disc_sockops', attach: 'CGROUP_SOCK_OPS', pin: 'link_sockops' },
  { prog: 'disc_bind4', attach: 'CGROUP_INET4_POST_BIND', pin: 'link_bind4' },
  { prog: 'disc_bind6', attach: 'CGROUP_INET6_POST_BIND', pin: 'link_bind6' },
  { prog: 'disc_release', attach: 'CGROUP_INET_SOCK_RELEASE', pin: 'link_release' },
] as const;

/** Iterator programs, pinned so that other processes (the watcher) can run them. */
export const ITER_PROGRAMS = [
  { prog: 'disc_iter_tcp', pin: 'prog_iter_tcp' },
  { prog: 'disc_iter_udp', pin: 'prog_iter_udp' },
  { prog: 'disc_iter_file', pin: 'prog_iter_file' },
] as const;

/** The state directory for a bpffs root. */
export function discoveryDir(bpffs: string): string {
  return path.join(bpffs, DISC_DIR);
}

/** Path of the compiled discovery object (bpf/discovery.bpf.o, next to an installed bundle, or $MANIFOLD_DISCOVERY_OBJECT). */
export function discoveryObjectPath(): string {
  const env = process.env.MANIFOLD_DISCOVERY_OBJECT;
  if (env) {
    if (!fs.existsSync(env)) throw new ManifoldError('ERR_BPF_OBJECT', `MANIFOLD_DISCOVERY_OBJECT=${env}: no such file`);
    return env;
  }
  // From the program's directory up (src/locate.ts): the checkout's bpf/, or beside the executable.
  const found = findUp([path.join('bpf', 'discovery.bpf.o'), 'discovery.bpf.o']);
  if (found) return found;
  throw new ManifoldError('ERR_BPF_OBJECT', 'cannot find discovery.bpf.o (set MANIFOLD_DISCOVERY_OBJECT to its path)');
}

const BPF_FS_MAGIC = 0xcafe4a11;

/** Check that `bpffs` is a bpffs mount point directory. */
export function checkBpffs(bpffs: string): void {
  let magic: number;
  try {
    if (!fs.statSync(bpffs).isDirectory()) throw new Error('not a directory');
    magic = Number(fs.statfsSync(bpffs).type);
  } catch {
    throw new ManifoldError('ERR_NOT_FOUND', `bpffs ${bpffs}: no such directory`);
  }
  if (magic !== BPF_FS_MAGIC) throw new ManifoldError('ERR_USAGE', `--bpffs ${bpffs}: not a bpf filesystem (mount -t bpf bpf ${bpffs})`);
}
