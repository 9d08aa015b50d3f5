/**
 * Facts about the machine a benchmark ran on.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { ROOT } from './paths.js';
import { clangVersion } from './bpfbuild.js';

/** Machine and run facts recorded with every result. */
export interface MachineFacts {
  date: string;
  kernel: string;
  cpuModel: string;
  nproc: number;
  memTotalMiB: number;
  node: string;
  clang: string;
  gitCommit: string;
  gitDirty: boolean;
  /** 1-minute load average at the start and the end of the run (other work on the machine). */
  loadAvgStart: number;
  loadAvgEnd?: number;
  /** NODE_EXTRA_CA_CERTS as the run found it (removed for every measured process; see bench/run.ts). */
  extraCaCerts: string | null;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).trim();
  } catch {
    return '';
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    /* fall through */
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

let extraCa: { value: string | null } | undefined;

/**
 * NODE_EXTRA_CA_CERTS of the environment the run started in. The first call removes it from
 * this process's environment, so from every process a phase starts: Node 20 parses a CA bundle
 * at start-up when it is set (about 75 ms here), which would make every floor that much slower
 * (manifold's executable does not read it: scripts/build-sea.mjs). The start-up phase measures
 * both with it set again, to show what it costs.
 */
export function extraCaCerts(): string | null {
  if (!extraCa) {
    extraCa = { value: process.env.NODE_EXTRA_CA_CERTS ?? null };
    delete process.env.NODE_EXTRA_CA_CERTS;
  }
  return extraCa.value;
}

/** Collect the facts (at the start of a run). */
export function machineFacts(): MachineFacts {
  return {
    date: new Date().toISOString(),
    kernel: `${os.release()} (${os.version()})`,
    cpuModel: cpuModel(),
    nproc: os.availableParallelism(),
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    clang: clangVersion(),
    gitCommit: git(['rev-parse', '--short', 'HEAD']) || 'unknown',
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAvgStart: os.loadavg()[0] ?? 0,
    extraCaCerts: extraCaCerts(),
  };
}
