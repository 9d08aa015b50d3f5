/**
 * Running commands for the benchmark: wall time of one run, peak RSS and
 * CPU time (through bench/lib/runstat.c), and
 * the interleaved "floor, command, floor, command" sampling that cancels
 * slow drift in machine load.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pairedDelta, summarize } from './stats.js';
import { benchTmpDir } from './paths.js';
import { readRunStat, runstat } from './runstat.js';

/** A command line. */
export interface Cmd {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Run it in this network namespace (runstat joins it before the fork; needs `probe`). */
  netns?: string;
  /** Pass it a listening TCP socket as fd 3 with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES (needs `probe`). */
  listenTcp?: { address: string; port: number; name: string };
}

/** Result of one run. */
export interface RunResult {
  /** Wall time: fork to exit (runstat) for probed runs, else spawn to exit. */
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Peak RSS (ru_maxrss) in MiB, for probed runs. */
  rssMiB?: number;
  /** User + system CPU time (wait4 rusage) in ms, for probed runs. */
  cpuMs?: number;
}

let probeDir: string | null = null;

function probeOut(): string {
  if (!probeDir) {
    probeDir = benchTmpDir('probe');
    const dir = probeDir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return path.join(probeDir, 'out');
}

/** How wall time, peak RSS and CPU time are measured (for the report). */
export function probeMethod(): string {
  return 'every timed run, floor included, is started by bench/lib/runstat.c (fork + exec, then wait4): wall time from fork to exit, CPU time (user + system) and peak RSS (ru_maxrss) from wait4\'s rusage of the process; nothing is loaded into the measured process';
}

/**
 * Run a command to completion and time it. With `probe`, it runs under
 * runstat: wall time from fork to exit, and CPU time and peak RSS come back too.
 */
export function timeRun(cmd: Cmd, timeoutMs = 120_000, probe = false): RunResult {
  let file = cmd.file;
  let args = cmd.args;
  let out: string | null = null;
  if (probe) {
    out = probeOut();
    fs.rmSync(out, { force: true });
    const l = cmd.listenTcp;
    args = [out, ...(cmd.netns ? ['--netns', cmd.netns] : []), ...(l ? ['--listen-tcp', l.address, String(l.port), l.name] : []), file, ...args];
    file = runstat();
  } else if (cmd.netns || cmd.listenTcp) {
    throw new Error(`${cmd.file}: netns and listenTcp need a probed run`);
  }
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    env: cmd.env ?? process.env,
    input: cmd.input ?? '',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  const res: RunResult = { ms, code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  const stat = out && fs.existsSync(out) ? readRunStat(out) : null;
  if (stat) {
    res.ms = stat.ms;
    res.rssMiB = stat.rssMiB;
    res.cpuMs = stat.cpuMs;
  }
  return res;
}

/** Run a command and throw unless it exits 0. */
export function mustRun(cmd: Cmd, timeoutMs = 120_000, probe = false): RunResult {
  const r = timeRun(cmd, timeoutMs, probe);
  if (r.code !== 0) {
    throw new Error(`${cmd.file} ${cmd.args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(0, 2000)}`);
  }
  return r;
}

/** `node -e 0`: the start-up floor every CLI figure is compared with. */
export function nodeFloor(): Cmd {
  return { file: process.execPath, args: ['-e', '0'] };
}

/** Samples of one command from interleave(). */
export interface Samples {
  ms: number[];
  /** Peak RSS per run (MiB). */
  rss: number[];
  /** User + system CPU ms per run. */
  cpu: number[];
}

/**
 * Sample several commands round-robin, `n` rounds, rotating the order each
 * round so slow drift in machine load affects all alike. `before(name, i)`
 * runs untimed before each timed run (e.g. to reset state). With `warmup`,
 * round -1 runs everything once untimed. With `budgetMs`, no new round
 * starts once that much time has passed and `minRounds` are done. Every run
 * is probed (runstat) for wall time, peak RSS and CPU time. A failing run
 * throws.
 */
export function interleave(
  cmds: Record<string, (i: number) => Cmd>,
  n: number,
  opts: { before?: (name: string, i: number) => void; warmup?: boolean; budgetMs?: number; minRounds?: number } = {},
): Record<string, Samples> {
  const t0 = Date.now();
  const names = Object.keys(cmds);
  const out: Record<string, Samples> = {};
  for (const name of names) out[name] = { ms: [], rss: [], cpu: [] };
  for (let i = opts.warmup === false ? 0 : -1; i < n; i++) {
    // A time budget ends sampling early (but never below minRounds) on a slow or busy machine.
    if (opts.budgetMs !== undefined && i >= (opts.minRounds ?? 3) && Date.now() - t0 > opts.budgetMs) break;
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + Math.max(i, 0)) % names.length]!;
      opts.before?.(name, i);
      const r = mustRun(cmds[name]!(i), 300_000, true);
      if (i < 0) continue;
      out[name]!.ms.push(r.ms);
      if (r.rssMiB !== undefined) out[name]!.rss.push(r.rssMiB);
      if (r.cpuMs !== undefined) out[name]!.cpu.push(r.cpuMs);
    }
  }
  return out;
}

/**
 * "CPU (user+sys) X ms vs floor Y ms, +Z ms paired": CPU time is far less
 * sensitive than wall time to other work on the machine.
 */
export function cpuNote(s: Samples | undefined, floor: Samples | undefined, floorName = 'floor'): string {
  if (!s?.cpu.length || !floor?.cpu.length) return '';
  const d = pairedDelta(s.cpu, floor.cpu);
  return `CPU (user+sys) ${summarize(s.cpu).median.toFixed(1)} ms vs ${floorName} ${summarize(floor.cpu).median.toFixed(1)} ms (+${d.median.toFixed(1)} ms paired, p10–p90 ${d.p10.toFixed(1)}–${d.p90.toFixed(1)})`;
}
