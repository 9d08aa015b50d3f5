/**
 * Phase memory: kernel memory a namespace's state locks (the maps'
 * memlock, as `manifold status --json` reports it) with the default limits
 * at 0 and 100 destinations and with --max-destinations 16384 at 0 and
 * 16,384 destinations in use; the map types (a per-CPU map would make the
 * figure grow with the CPU count) give the formula by CPU count.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchNs } from './lib/netns.js';
import { benchTmpDir, ROOT } from './lib/paths.js';
import { summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';

const CLI = path.join(ROOT, 'bin', 'manifold');
const KIB = 1024;
/** Targets of issue 16. */
const EMPTY_LIMIT = 512 * KIB;
const HUNDRED_ON_64_LIMIT = 1024 * KIB;
/** tubular's figure quoted by issue 16 (1,024 ids, 64 CPUs): not measured here. */
const TUBULAR_64 = '≈ 1.5 MB on 64 CPUs (tubular, 1,024 ids; figure quoted in issue 16, not measured here)';
const PERCPU_TYPES = new Set(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);

interface Memory {
  total: number;
  byMap: Record<string, number>;
}

function cli(ns: BenchNs, args: string[], input?: string): string {
  return execFileSync(CLI, [...args, '--netns', ns.netnsPath, '--bpffs', ns.bpffs], { encoding: 'utf8', timeout: 120_000, input, maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'pipe'] });
}

function memory(ns: BenchNs): Memory {
  const s = JSON.parse(cli(ns, ['status', '--json'])) as { kernelMemory: Memory | null; capacity: { destinations: { used: number } } };
  if (!s.kernelMemory) throw new Error('status --json reported no kernel memory');
  return s.kernelMemory;
}

function applyDestinations(ns: BenchNs, n: number, dir: string): void {
  const file = path.join(dir, `dests-${n}.json`);
  const bindings = Array.from({ length: n }, (_, i) => ({ label: `d${i}`, protocol: 'tcp', prefix: `10.${(i >> 8) & 255}.${i & 255}.1/32`, port: 80 }));
  fs.writeFileSync(file, JSON.stringify({ bindings }));
  cli(ns, ['apply', file]);
}

/** Map types of the pinned maps of the state (bpftool). */
function perCpuMaps(ns: BenchNs): string[] {
  const dir = fs.readdirSync(ns.bpffs).map((d) => path.join(ns.bpffs, d)).find((d) => d.endsWith('_manifold'));
  if (!dir) throw new Error('no state directory found');
  const out: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    let info: { type?: string };
    try {
      info = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'pinned', p], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] })) as { type?: string };
    } catch {
      continue; // not a map (the program, the link, the marker)
    }
    if (info.type && PERCPU_TYPES.has(info.type)) out.push(`${name} (${info.type})`);
  }
  return out;
}

const kib = (b: number): string => `${(b / KIB).toFixed(0)} KiB`;

/** Run the memory phase. */
export function memoryPhase(): { rows: Row[]; description: string } {
  const ns = BenchNs.create('mem');
  const tmp = benchTmpDir('mem');
  try {
    cli(ns, ['load']);
    const empty = memory(ns);
    const perCpu = perCpuMaps(ns);
    applyDestinations(ns, 100, tmp);
    const hundred = memory(ns);
    cli(ns, ['unload']);
    cli(ns, ['load', '--max-destinations', '16384']);
    const bigEmpty = memory(ns);
    applyDestinations(ns, 16_384, tmp);
    const bigFull = memory(ns);
    cli(ns, ['unload']);
    const cpuFree = perCpu.length === 0;
    const formula = cpuFree
      ? 'no per-CPU maps: the same on any CPU count'
      : `per-CPU maps ${perCpu.join(', ')}: grows with the CPU count`;
    const top = (m: Memory): string => Object.entries(m.byMap).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${kib(v)}`).join(', ');
    const mk = (figure: string, m: Memory, target: { text: string; limit: number } | null, note: string): Row => row({
      section: 'memory', figure, unit: 'KiB', value: summarize([Math.round(m.total / KIB)]), floor: null,
      target: target ? { text: target.text, measured: `${kib(m.total)} (${formula})`, pass: cpuFree && m.total <= target.limit } : null,
      note: `${note}largest maps: ${top(m)}`, compare: TUBULAR_64,
    });
    return {
      rows: [
        mk('kernel memory, empty namespace, default limits', empty, { text: '≤ 512 KiB on any CPU count', limit: EMPTY_LIMIT }, ''),
        mk('kernel memory, 100 destinations, default limits', hundred, { text: '≤ 1 MiB on 64 CPUs', limit: HUNDRED_ON_64_LIMIT }, ''),
        mk('kernel memory, empty namespace, --max-destinations 16384', bigEmpty, null, ''),
        mk('kernel memory, 16,384 destinations, --max-destinations 16384', bigFull, null, ''),
      ],
      description: `A scratch namespace: \`manifold load\` (default limits), \`status --json\` kernelMemory (the sum of the pinned maps' memlock from /proc/self/fdinfo, each map counted once); \`apply\` of 100 labels with one binding each; then \`unload\`, \`load --max-destinations 16384\`, empty and with 16,384 labels applied. Map types read with bpftool: ${formula}, so the figures measured here on ${summarizeCpus()} hold for 64 or 128 CPUs. One measurement each (memlock is deterministic).`,
    };
  } finally {
    ns.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function summarizeCpus(): string {
  const n = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
  return `${n} CPU${n === 1 ? '' : 's'}`;
}
