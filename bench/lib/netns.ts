/**
 * Scratch network namespaces for the benchmark: named "mf-bench-<pid>-<tag>",
 * loopback up, a private bpffs mount, and torn down even when a phase fails.
 * Never touches the root namespace or /sys/fs/bpf.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Name prefix of every namespace the benchmark creates. */
export const NS_PREFIX = 'mf-bench-';

const live = new Set<BenchNs>();
/** Limit of the quick host commands (ip, mount, sysctl) run synchronously. */
const HOST_MS = 30_000;

/** A namespace + bpffs owned by this benchmark process. */
export class BenchNs {
  readonly name: string;
  readonly netnsPath: string;
  readonly bpffs: string;
  private readonly pids = new Set<number>();
  private destroyed = false;

  private constructor(name: string, bpffs: string) {
    this.name = name;
    this.netnsPath = `/run/netns/${name}`;
    this.bpffs = bpffs;
  }

  /** Create a namespace named mf-bench-<pid>-<tag> with lo up and a bpffs. */
  static create(tag: string): BenchNs {
    const name = `${NS_PREFIX}${process.pid}-${tag}`;
    execFileSync('ip', ['netns', 'add', name], { timeout: HOST_MS });
    const bpffs = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-bpffs-`));
    const ns = new BenchNs(name, bpffs);
    live.add(ns);
    try {
      ns.ip('link', 'set', 'lo', 'up');
      execFileSync('mount', ['-t', 'bpf', 'bpf', bpffs], { timeout: HOST_MS });
    } catch (err) {
      ns.destroy();
      throw err;
    }
    return ns;
  }

  /** Run `ip -n NAME ...`. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', timeout: HOST_MS });
  }

  /** Set a sysctl inside the namespace (per-namespace net.* keys only). */
  sysctl(key: string, value: string): void {
    execFileSync('nsenter', [`--net=${this.netnsPath}`, '--', 'sysctl', '-q', '-w', `${key}=${value}`], { timeout: HOST_MS });
  }

  /** Spawn a process inside the namespace (nsenter --net; no /sys remount). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('nsenter', [`--net=${this.netnsPath}`, '--', cmd, ...args], opts);
    if (child.pid) this.pids.add(child.pid);
    return child;
  }

  /** Remember a pid to kill at teardown. */
  track(pid: number): void {
    this.pids.add(pid);
  }

  /** Kill this namespace's processes, unmount its bpffs, delete it. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.pids.clear();
    spawnSync('umount', [this.bpffs], { stdio: 'ignore', timeout: HOST_MS });
    try {
      fs.rmdirSync(this.bpffs);
    } catch {
      /* gone or not empty */
    }
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore', timeout: HOST_MS });
  }
}

/** Destroy every namespace this process still owns (exit / signal path). */
export function destroyAll(): void {
  for (const ns of [...live]) ns.destroy();
}

function deadOwner(name: string): boolean {
  const m = /^mf-bench-(\d+)-/.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !fs.existsSync(`/proc/${pid}`);
}

/**
 * Delete namespaces and temporary directories left by earlier benchmark
 * runs whose process is gone (names carry the creating pid; their bpffs
 * mounts died with their mount namespace). Those of live runs are left
 * alone. Returns the namespaces removed.
 */
export function removeStale(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync('/run/netns');
  } catch {
    names = [];
  }
  for (const name of names.filter(deadOwner)) {
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: HOST_MS });
    removed.push(name);
  }
  const tmpDev = fs.statSync(os.tmpdir()).dev;
  for (const name of fs.readdirSync(os.tmpdir()).filter(deadOwner)) {
    const p = path.join(os.tmpdir(), name);
    // Never recurse into something mounted here (a bpffs still mounted in this namespace).
    if (fs.statSync(p).dev !== tmpDev) continue;
    fs.rmSync(p, { recursive: true, force: true });
  }
  return removed;
}
