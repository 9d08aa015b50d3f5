/**
 * The maps a dispatcher shares with listener discovery
 * (DISPATCHER_SHARED_MAPS, bpf/discovery.h): the pinned ones while
 * discovery is enabled on the bpffs, else none — the dispatcher's loader
 * then gives the program private one-entry maps whose marker says
 * "inactive", so it behaves as if discovery did not exist.
 */
import path from 'node:path';
import { mapLookup, objGet } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { decodeMeta, DISC_ABI, DISC_MAGIC, DISC_META_SIZE } from './codec.js';
import { discoveryDir, DISPATCHER_SHARED_MAPS } from './paths.js';

/**
 * fds of the pinned shared maps when discovery is enabled on `bpffs` (its
 * marker is valid: `disable` clears it first), else null. The caller closes them.
 */
export function openSharedMaps(bpffs: string): Map<string, number> | null {
  const dir = discoveryDir(bpffs);
  const fds = new Map<string, number>();
  try {
    for (const name of DISPATCHER_SHARED_MAPS) fds.set(name, objGet(path.join(dir, name)));
    const raw = mapLookup(fds.get('disc_meta') as number, Buffer.alloc(4), DISC_META_SIZE);
    const meta = raw ? decodeMeta(raw) : null;
    if (meta && meta.magic === DISC_MAGIC && meta.abi === DISC_ABI) return fds;
  } catch {
    /* not enabled, or being disabled */
  }
  for (const fd of fds.values()) closeFd(fd);
  return null;
}
