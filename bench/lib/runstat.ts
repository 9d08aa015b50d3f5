/**
 * bench/lib/runstat.c, compiled on first use into build/bench/runstat with the
 * C compiler `make test` installs (gcc): it runs one command and reports its
 * wall time, CPU time and peak RSS from wait4(2), for any executable alike.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_BUILD, BENCH_SRC } from './paths.js';

let built: string | undefined;

/** Path of the runstat helper, compiled if missing or older than its source. */
export function runstat(): string {
  if (built) return built;
  const src = path.join(BENCH_SRC, 'lib', 'runstat.c');
  const exe = path.join(BENCH_BUILD, 'runstat');
  if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < fs.statSync(src).mtimeMs) {
    fs.mkdirSync(BENCH_BUILD, { recursive: true });
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', `${exe}.tmp`, src], { stdio: ['ignore', 'inherit', 'inherit'] });
    fs.renameSync(`${exe}.tmp`, exe);
  }
  built = exe;
  return exe;
}

/** What runstat measured. */
export interface RunStat {
  /** Wall time, fork to wait4, in ms. */
  ms: number;
  /** User + system CPU time in ms. */
  cpuMs: number;
  /** Peak RSS (ru_maxrss) in MiB. */
  rssMiB: number;
}

/** Parse runstat's output file. */
export function readRunStat(file: string): RunStat | null {
  const parts = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isFinite(n))) return null;
  const [ns, user, sys, kib] = parts as [number, number, number, number];
  return { ms: ns / 1e6, cpuMs: (user + sys) / 1000, rssMiB: kib / 1024 };
}
