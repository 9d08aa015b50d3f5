/**
 * Kernel requirements of listener discovery, as data (pure functions of the
 * release string and a few facts, so they are unit-tested without root).
 */
import fs from 'node:fs';
import os from 'node:os';
import { ManifoldError } from '../errors.js';

/** A requirement and whether this kernel meets it. */
export interface KernelCheck {
  name: string;
  ok: boolean;
  /** What is needed, in words. */
  needs: string;
  /** What this machine has. */
  found: string;
  /** Whether discovery cannot work at all without it. */
  fatal: boolean;
}

/** Facts the checks are computed from. */
export interface KernelFacts {
  release: string;
  btf: boolean;
  cgroup2: string | null;
}

/** Major, minor and patch of a release string like "6.18.44-fc"; null when unreadable. */
export function parseRelease(release: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** release >= major.minor. */
export function atLeast(release: string, major: number, minor: number): boolean {
  const v = parseRelease(release);
  if (!v) return false;
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

/** Minimum kernel for discovery (bpf_get_netns_cookie in sock_ops). */
export const MIN_KERNEL = [5, 15] as const;
/** Minimum kernel for seeding with iter/tcp and iter/udp (the iterators hold lock_sock). */
export const ITER_SEED_KERNEL = [6, 5] as const;
/** Minimum kernel for enabling STATE_CB on seeded listeners (TCP_BPF_SOCK_OPS_CB_FLAGS). */
export const SEED_STATECB_KERNEL = [6, 10] as const;
/** Minimum kernel for a task iterator limited to one process. */
export const TASK_PID_ITER_KERNEL = [6, 1] as const;

/** The checks for a set of facts. */
export function kernelChecks(f: KernelFacts): KernelCheck[] {
  const v = (k: readonly [number, number]): string => `Linux >= ${k[0]}.${k[1]}`;
  return [
    {
      name: 'kernel', ok: atLeast(f.release, MIN_KERNEL[0], MIN_KERNEL[1]), needs: `${v(MIN_KERNEL)} (netns cookies in sock_ops, UDP post_bind/sock_release, ring buffers)`,
      found: f.release, fatal: true,
    },
    {
      name: 'btf', ok: f.btf, needs: 'kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), for CO-RE and iterators',
      found: f.btf ? 'present' : 'missing', fatal: true,
    },
    {
      name: 'cgroup2', ok: f.cgroup2 !== null, needs: 'a mounted cgroup v2 hierarchy', found: f.cgroup2 ?? 'not mounted', fatal: true,
    },
    {
      name: 'iterator-seeding', ok: atLeast(f.release, ITER_SEED_KERNEL[0], ITER_SEED_KERNEL[1]),
      needs: `${v(ITER_SEED_KERNEL)} to seed existing sockets with iter/tcp and iter/udp (older kernels: seeding through the files of every process only)`,
      found: f.release, fatal: false,
    },
    {
      name: 'seeded-shutdown', ok: atLeast(f.release, SEED_STATECB_KERNEL[0], SEED_STATECB_KERNEL[1]),
      needs: `${v(SEED_STATECB_KERNEL)} to see shutdown() of listeners that existed before enable (older kernels: only their close())`,
      found: f.release, fatal: false,
    },
  ];
}

/** The facts of this machine. */
export function machineFacts(cgroup2: string | null): KernelFacts {
  return { release: os.release(), btf: fs.existsSync('/sys/kernel/btf/vmlinux'), cgroup2 };
}

/** Throw ERR_INCOMPATIBLE naming every fatal check that fails. */
export function requireKernel(checks: KernelCheck[]): void {
  const bad = checks.filter((c) => c.fatal && !c.ok);
  if (bad.length === 0) return;
  throw new ManifoldError(
    'ERR_INCOMPATIBLE',
    `listener discovery cannot run here: ${bad.map((c) => `needs ${c.needs}, found ${c.found}`).join('; ')}`,
  );
}
