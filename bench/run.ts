/**
 * `make bench`: runs every benchmark phase and writes bench/results.md and
 * bench/results.json.
 *
 * Needs root. Re-executes itself under `unshare --mount --propagation
 * private` so the bpffs mounts and /run/netns bind mounts it makes vanish
 * with it; every namespace it creates is named mf-bench-<pid>-* and is
 * deleted at the end, also on failure or Ctrl-C. The root namespace and
 * /sys/fs/bpf are never touched.
 *
 * Environment: MF_BENCH_PHASES=dataplane,connrate,cli,startup,generator,load,memory,discovery
 * (subset to run; results then hold only those), MF_BENCH_QUICK=1 (fewer
 * samples, for development; not for published figures), MF_BENCH_TIMEOUT=SECONDS
 * (the whole run is stopped after this long; default 3600).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackage, type Package } from './lib/package.js';
import { extraCaCerts, machineFacts } from './lib/machine.js';
import { destroyAll, removeStale } from './lib/netns.js';
import { benchTmpDir, ROOT } from './lib/paths.js';
import { row, type Row } from './lib/types.js';
import { consoleTable, writeResults, type BenchResults } from './report.js';
import { dataplanePhase } from './dataplane.js';
import { connratePhase } from './connrate.js';
import { cliPhase } from './cli.js';
import { startupPhase } from './startup.js';
import { generatorPhase } from './generator.js';
import { loadPhase } from './load.js';
import { discoveryPhase } from './discovery.js';
import { memoryPhase } from './memory.js';

const INNER = 'MF_BENCH_INNER';

/** A phase: its name and how to run it. */
interface Phase {
  name: string;
  run: () => Promise<{ rows: Row[]; description: string }> | { rows: Row[]; description: string };
}

function phases(quick: boolean, logDir: string, pkg: Package): Phase[] {
  const q = (full: number, fast: number): number => (quick ? fast : full);
  const packageCli = 'cli' in pkg ? pkg.cli : null;
  const packageGen = 'generator' in pkg ? pkg.generator : null;
  return [
    { name: 'dataplane', run: () => dataplanePhase({ rounds: q(31, 5), repeat: q(100_000, 20_000) }) },
    { name: 'connrate', run: () => connratePhase({ rounds: q(24, 2), roundMs: q(1000, 1000), concurrency: 4, logDir }) },
    { name: 'cli', run: () => cliPhase({ samples: q(15, 3), bigSamples: q(7, 1), bigBudgetMs: q(60_000, 10_000), bigSize: 200_000, hugeSize: q(1_000_000, 0), logDir, packageCli }) },
    { name: 'startup', run: () => startupPhase({ samples: q(11, 3), packageCli }) },
    { name: 'generator', run: () => generatorPhase({ samples: q(15, 3), packageGenerator: packageGen }) },
    { name: 'load', run: () => loadPhase({ durationMs: q(20_000, 5000), rate: 1000, others: 2000, logDir }) },
    { name: 'memory', run: () => memoryPhase() },
    { name: 'discovery', run: () => discoveryPhase({ rounds: q(31, 5), repeat: q(100_000, 20_000) }) },
  ];
}

async function inner(): Promise<number> {
  extraCaCerts(); // before any process is started (lib/machine.ts)
  const stale = removeStale();
  if (stale.length) process.stderr.write(`bench: removed stale namespaces ${stale.join(', ')}\n`);
  const quick = process.env.MF_BENCH_QUICK === '1';
  const only = process.env.MF_BENCH_PHASES?.split(',').filter(Boolean);
  const logDir = benchTmpDir('logs');
  const results: BenchResults = { machine: machineFacts(), methods: {}, phaseSeconds: {}, errors: {}, rows: [] };
  const t0 = Date.now();
  // The package is only measured by the phases that run a command.
  const needPackage = !only || only.some((p) => ['cli', 'startup', 'generator'].includes(p));
  const pkg: Package = needPackage ? buildPackage() : { error: 'not needed by the phases run' };
  results.methods.package = 'error' in pkg
    ? `no package measured: ${pkg.error}`
    : `the .deb (${path.basename(pkg.deb)}) was built fresh from this tree at the start of the run (scripts/packaging-bundle.mjs + packaging-deb.sh, as make deb) and unpacked with dpkg-deb -x; rows marked (package) run its usr/bin/manifold and usr/lib/systemd/system-generators/manifold-generator, the files apt install puts in /usr (symlinks to the single executable /usr/lib/manifold/manifold).`;
  for (const p of phases(quick, logDir, pkg)) {
    if (only && !only.includes(p.name)) continue;
    process.stderr.write(`bench: ${p.name}\n`);
    const start = Date.now();
    try {
      const r = await p.run();
      results.rows.push(...r.rows);
      results.methods[p.name] = r.description;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      process.stderr.write(`bench: phase ${p.name} failed: ${err instanceof Error ? err.stack : msg}\n`);
      results.errors[p.name] = msg;
      results.rows.push(row({ section: p.name, figure: `${p.name} (phase failed)`, unit: 'ms', value: null, floor: null, target: null, note: msg }));
    } finally {
      destroyAll();
    }
    results.phaseSeconds[p.name] = (Date.now() - start) / 1000;
  }
  results.machine.loadAvgEnd = os.loadavg()[0] ?? 0;
  results.phaseSeconds.total = (Date.now() - t0) / 1000;
  if (quick) results.methods.note = 'MF_BENCH_QUICK=1: reduced sample counts, development run only.';
  const files = writeResults(results);
  process.stdout.write(`\n${consoleTable(results.rows)}\n\n`);
  const failed = Object.keys(results.errors).length > 0;
  if (!failed) fs.rmSync(logDir, { recursive: true, force: true });
  process.stdout.write(`bench: wrote ${path.relative(ROOT, files.md)} and ${path.relative(ROOT, files.json)} in ${Math.round(results.phaseSeconds.total)} s${failed ? ` (worker logs: ${logDir})` : ''}\n`);
  return failed ? 1 : 0;
}

function outer(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (network namespaces, bpffs, BPF programs)\n');
    return Promise.resolve(1);
  }
  const self = fileURLToPath(import.meta.url);
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, self], {
    stdio: 'inherit',
    env: { ...process.env, [INNER]: '1' },
  });
  // The child cleans up on SIGINT/SIGTERM (once its current command ends);
  // forward them and wait for it. Whatever it could not delete (it was
  // killed outright) is removed here: its mounts died with its mount
  // namespace, its namespaces are named after its pid.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  // A run that hangs is stopped like Ctrl-C would (SIGTERM), then killed.
  const limitS = Number(process.env.MF_BENCH_TIMEOUT ?? 3600);
  let kill: NodeJS.Timeout | undefined;
  const limit = setTimeout(() => {
    process.stderr.write(`bench: still running after ${limitS} s (MF_BENCH_TIMEOUT), stopping it\n`);
    child.kill('SIGTERM');
    kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  }, (Number.isFinite(limitS) && limitS > 0 ? limitS : 3600) * 1000);
  return new Promise((resolve) => child.once('exit', (code, signal) => {
    clearTimeout(limit);
    clearTimeout(kill);
    const left = removeStale();
    if (left.length) process.stderr.write(`bench: removed namespaces left behind: ${left.join(', ')}\n`);
    resolve(code ?? (signal ? 1 : 0));
  }));
}

if (process.env[INNER] === '1') {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig}, cleaning up\n`);
      destroyAll();
      process.exit(130);
    });
  }
  process.on('exit', destroyAll);
  inner().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    destroyAll();
    process.exit(1);
  });
} else {
  outer().then((code) => process.exit(code));
}
