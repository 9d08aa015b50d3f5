/**
 * Recognising `ip netns exec NAME manifold …`. iproute2 runs the command in
 * a new mount namespace where it mounts a fresh sysfs on /sys, with the
 * namespace's NAME as the mount's source. Whatever is under /sys there —
 * /sys/fs/bpf above all — belongs to that mount namespace and disappears
 * when the command exits: pins made there vanish, and a pinned link with
 * them, which detaches the dispatcher. A bpffs mounted elsewhere (outside
 * /sys) is the host's and works.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { parseMountinfo } from '../core/mountinfo.js';

/** The source of the sysfs mounted last (topmost) on /sys in a mountinfo text, or null. */
export function sysfsSourceAtSys(mountinfo: string): string | null {
  const top = parseMountinfo(mountinfo).filter((m) => m.mountPoint === '/sys').pop();
  return top && top.fsType === 'sysfs' && top.source !== '' ? top.source : null;
}

/** Whether any named network namespace exists (else the mount table need not be read: most hosts). */
function namedNetnsExist(): boolean {
  try {
    return fs.readdirSync('/run/netns').length > 0;
  } catch {
    return false;
  }
}

/**
 * The NAME when this process runs inside `ip netns exec NAME`: /sys is a
 * sysfs whose source is NAME, and /run/netns/NAME is the network namespace
 * this process is in. Null otherwise (or when it cannot be told).
 */
export function netnsExecName(mountinfo?: string): string | null {
  let text = mountinfo;
  if (text === undefined && !namedNetnsExist()) return null;
  try {
    text ??= fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  const name = sysfsSourceAtSys(text);
  if (name === null || name === '' || name.includes('/') || name === 'sysfs' || name === 'none') return null;
  try {
    const named = fs.statSync(path.join('/run/netns', name), { bigint: true });
    const own = fs.statSync('/proc/self/ns/net', { bigint: true });
    return named.ino === own.ino && named.dev === own.dev ? name : null;
  } catch {
    return null;
  }
}

/** True when `p` (made absolute) is /sys or below it. */
export function underSys(p: string): boolean {
  const abs = path.resolve(p);
  return abs === '/sys' || abs.startsWith('/sys/');
}

/** The error for using a bpffs under the private /sys of `ip netns exec NAME`. */
export function netnsExecError(name: string, bpffs: string): ManifoldError {
  return new ManifoldError(
    'ERR_USAGE',
    `running inside "ip netns exec ${name}": its /sys is a private mount that ends with this command, so state under ${bpffs} would vanish `
      + `(and a loaded dispatcher be detached) when manifold exits. Run manifold outside it: manifold --netns /run/netns/${name} …`
      + ' (or give --bpffs PATH of a bpffs mounted outside /sys)',
    { netns: `/run/netns/${name}` },
  );
}

/** Refuse a bpffs under /sys inside `ip netns exec` (see the module comment). */
export function refuseNetnsExecBpffs(bpffs: string, mountinfo?: string): void {
  if (!underSys(bpffs)) return;
  const name = netnsExecName(mountinfo);
  if (name !== null) throw netnsExecError(name, bpffs);
}
