/**
 * Seeding: finding the sockets that existed before discovery was enabled
 * (or before an address became a target) by running the object's
 * iterators.
 *
 * - iter/tcp and iter/udp walk one network namespace (the one the iterator
 *   is created in): kernel >= 6.5, where they hold lock_sock and may insert
 *   into the SOCKHASH. They are run in every namespace a process of the
 *   cgroup subtree is in, plus the namespaces the caller names.
 * - iter/task_file walks the open files of every process of the machine
 *   (or of one process: the UDP registrar) in one pass and needs no setns:
 *   the only seeding on kernels < 6.5, and a second pass everywhere for
 *   sockets held by processes outside those namespaces.
 *
 * Every insertion is idempotent (claims by socket cookie), so seeding twice,
 * or concurrently with the programs on the cgroup, indexes a socket once.
 */
import fs from 'node:fs';
import os from 'node:os';
import { ManifoldError } from '../errors.js';
import { closeFd } from '../sys/libc.js';
import { iterCreate, iterLinkCreate } from '../sys/bpf.js';
import { inNetns } from '../sys/netns.js';
import { SysError } from '../sys/errno.js';
import { decodeSeedRecords, SeedBits, type SeedRecord } from './codec.js';
import { atLeast, ITER_SEED_KERNEL, TASK_PID_ITER_KERNEL } from './kernel.js';
import { cgroupPids } from './cgroup.js';

/** How existing sockets are found. */
export type SeedMethod = 'iterators' | 'task_file';

/** What seeding did. */
export interface SeedSummary {
  method: SeedMethod;
  /** Namespaces walked with iter/tcp and iter/udp. */
  namespaces: number;
  indexed: { tcp: number; udp: number };
  /** Sockets newly put into the target SOCKHASH. */
  targets: number;
  /** Sockets ignored because they were created outside the cgroup. */
  outOfScope: number;
  /** Seeded listeners whose shutdown() will not be seen (kernel < 6.10, or task_file). */
  noStateCb: number;
  /** Sockets that could not be indexed (a map is full). */
  failed: number;
}

/** The seeding method for a kernel release; $MANIFOLD_DISCOVERY_SEED=task_file forces the fallback (tests). */
export function seedMethod(release: string = os.release(), env: string | undefined = process.env.MANIFOLD_DISCOVERY_SEED): SeedMethod {
  const canIter = atLeast(release, ITER_SEED_KERNEL[0], ITER_SEED_KERNEL[1]);
  if (env === 'task_file') return 'task_file';
  if (env === 'iterators' && !canIter) {
    throw new ManifoldError('ERR_INCOMPATIBLE', `MANIFOLD_DISCOVERY_SEED=iterators needs Linux >= ${ITER_SEED_KERNEL.join('.')} (found ${release})`);
  }
  if (env !== undefined && env !== '' && env !== 'iterators') {
    throw new ManifoldError('ERR_INVALID_ENV', `MANIFOLD_DISCOVERY_SEED=${env}: expected "iterators" or "task_file"`);
  }
  return canIter ? 'iterators' : 'task_file';
}

/** Read an iterator to its end (this runs the program over every element). */
function readIterator(iterFd: number): Buffer {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(iterFd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EINTR') continue;
      throw new ManifoldError('ERR_SYSTEM', `reading a discovery iterator failed: ${(err as Error).message}`);
    }
    if (n === 0) break;
    parts.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(parts);
}

/** Create an iterator instance of a pinned iterator program (in the current namespace). */
function openIterator(progFd: number, pid?: number): number {
  const linkFd = iterLinkCreate(progFd, pid);
  try {
    return iterCreate(linkFd);
  } finally {
    closeFd(linkFd);
  }
}

/** Run an iterator program; with `netns`, its namespace-bound iterator is created inside that namespace. */
export function runIterator(progFd: number, opts: { netns?: string; pid?: number } = {}): SeedRecord[] {
  const iterFd = opts.netns === undefined ? openIterator(progFd, opts.pid) : inNetns(opts.netns, () => openIterator(progFd, opts.pid));
  try {
    return decodeSeedRecords(readIterator(iterFd));
  } finally {
    closeFd(iterFd);
  }
}

/** An empty summary. */
export function emptySummary(method: SeedMethod): SeedSummary {
  return { method, namespaces: 0, indexed: { tcp: 0, udp: 0 }, targets: 0, outOfScope: 0, noStateCb: 0, failed: 0 };
}

/** Add iterator records to a summary. A socket seen by two passes counts once (the second finds it claimed). */
export function addRecords(s: SeedSummary, records: SeedRecord[], outOfScope: Set<bigint>): void {
  for (const r of records) {
    if (r.what & SeedBits.INDEXED) {
      if (r.proto === 6) s.indexed.tcp++;
      else s.indexed.udp++;
    }
    if (r.what & SeedBits.TARGET) s.targets++;
    if (r.what & SeedBits.NO_STATECB) s.noStateCb++;
    if (r.what & SeedBits.FAILED) s.failed++;
    if (r.what & SeedBits.OUT_OF_SCOPE && !outOfScope.has(r.cookie)) {
      outOfScope.add(r.cookie);
      s.outOfScope++;
    }
  }
}

/**
 * One path per distinct network namespace among the processes of a cgroup
 * subtree, plus `extra` paths (deduplicated by the nsfs inode).
 */
export function namespacesOf(cgroupDir: string, extra: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (p: string): void => {
    try {
      const st = fs.statSync(p, { bigint: true });
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) return;
      seen.add(id);
      out.push(p);
    } catch {
      /* gone */
    }
  };
  for (const p of extra) add(p);
  for (const pid of cgroupPids(cgroupDir)) add(`/proc/${pid}/ns/net`);
  return out;
}

/** Iterator program fds needed for seeding. */
export interface SeedPrograms {
  tcp: number;
  udp: number;
  file: number;
}

/**
 * Seed: namespace iterators (kernel >= 6.5) over `namespaces`, then one pass
 * over the files of every process. Namespaces that vanish meanwhile are
 * skipped.
 */
export function seed(progs: SeedPrograms, namespaces: string[], method: SeedMethod): SeedSummary {
  const s = emptySummary(method);
  const outOfScope = new Set<bigint>();
  if (method === 'iterators') {
    for (const ns of namespaces) {
      let records: SeedRecord[];
      try {
        records = [...runIterator(progs.tcp, { netns: ns }), ...runIterator(progs.udp, { netns: ns })];
      } catch (err) {
        if (namespaceGone(err)) continue;
        throw err;
      }
      s.namespaces++;
      addRecords(s, records, outOfScope);
    }
  }
  addRecords(s, runIterator(progs.file), outOfScope);
  return s;
}

/**
 * Register the sockets of one process (the UDP registrar): a task iterator
 * limited to `pid` on kernels >= 6.1, every process otherwise.
 */
export function seedProcess(fileProg: number, pid: number, release: string = os.release()): SeedSummary {
  const s = emptySummary('task_file');
  const perPid = atLeast(release, TASK_PID_ITER_KERNEL[0], TASK_PID_ITER_KERNEL[1]);
  let records: SeedRecord[];
  try {
    records = runIterator(fileProg, perPid ? { pid } : {});
  } catch (err) {
    // The process exited (ESRCH/ENOENT): nothing of it to register.
    if (err instanceof SysError && (err.errno === 3 || err.errno === 2)) return s;
    throw err;
  }
  addRecords(s, records, new Set());
  return s;
}

function namespaceGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH' || (err instanceof SysError && (err.errno === 2 || err.errno === 3));
}
