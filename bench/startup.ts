/**
 * CLI start-up breakdown (information, no targets): where the time of a
 * trivial CLI call goes — node itself, the module graph, yargs, koffi and
 * libbpf — each as a separate process against `node -e 0`.
 */
import path from 'node:path';
import { CLI, ROOT } from './lib/paths.js';
import { cpuNote, interleave, nodeFloor, type Cmd } from './lib/proc.js';
import { fmt, pairedDelta, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';

function esm(code: string): () => Cmd {
  return () => ({ file: process.execPath, args: ['--input-type=module', '-e', code] });
}

function cjs(code: string): () => Cmd {
  return () => ({ file: process.execPath, args: ['-e', code] });
}

/** Run the start-up breakdown. */
export function startupPhase(o: { samples: number; bundleCli: string | null }): { rows: Row[]; description: string } {
  const main = path.join(ROOT, 'build', 'src', 'cli', 'main.js');
  const cmds: Record<string, () => Cmd> = {
    floor: nodeFloor,
    'ESM entry, no imports': esm('0'),
    'import yargs': esm("await import('yargs'); await import('yargs/helpers')"),
    "require('koffi')": cjs(`require(${JSON.stringify(path.join(ROOT, 'node_modules', 'koffi'))})`),
    "require('koffi') + load libbpf.so.1 + libc.so.6": cjs(`const k = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'koffi'))}); k.load('libbpf.so.1'); k.load('libc.so.6')`),
    'import the CLI module graph (build/src/cli/main.js)': esm(`await import(${JSON.stringify(main)})`),
    'manifold --version (yargs, no BPF)': () => ({ file: process.execPath, args: [CLI, '--version'] }),
  };
  if (o.bundleCli) cmds['manifold --version, esbuild bundle'] = () => ({ file: process.execPath, args: [o.bundleCli ?? '', '--version'] });
  const s = interleave(cmds, o.samples);
  const fl = summarize(s.floor?.ms ?? []);
  const rows: Row[] = [row({ section: 'startup', figure: 'node -e 0 (floor)', unit: 'ms', value: fl, floor: null, target: null, detail: true })];
  for (const name of Object.keys(cmds)) {
    if (name === 'floor') continue;
    const v = summarize(s[name]?.ms ?? []);
    const over = pairedDelta(s[name]?.ms ?? [], s.floor?.ms ?? []);
    rows.push(row({ section: 'startup', figure: name, unit: 'ms', value: v, floor: { name: 'node -e 0', value: fl }, target: null, compare: `floor + ${fmt(over.median)} ms`, note: cpuNote(s[name], s.floor) }));
  }
  return { rows, description: `Each line is a separate node process, ${o.samples} rounds round-robin with \`node -e 0\`; "floor + X" (median of per-round differences) is what that step adds to bare node start-up.` };
}
