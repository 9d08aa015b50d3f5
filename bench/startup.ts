/**
 * CLI start-up breakdown (information, no targets): where the time of a
 * trivial CLI call goes, each as a separate process against `node -e 0` —
 * the single executable itself, through the checkout's bin/manifold and as
 * the package installs it (both symlinks); for comparison the tsc module tree it replaced,
 * and what its parts (yargs, the module graph, koffi + libbpf) cost there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { extraCaCerts } from './lib/machine.js';
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
export function startupPhase(o: { samples: number; packageCli: string | null }): { rows: Row[]; description: string } {
  const main = path.join(ROOT, 'build', 'src', 'cli', 'main.js');
  const sea = path.join(ROOT, 'build', 'sea', 'manifold');
  const koffi = JSON.stringify(path.join(ROOT, 'node_modules', 'koffi'));
  const cmds: Record<string, () => Cmd> = {
    floor: nodeFloor,
    'manifold version: build/sea/manifold (the single executable)': () => ({ file: sea, args: ['version'] }),
    'manifold version: bin/manifold (symlink to the single executable)': () => ({ file: CLI, args: ['version'] }),
    ...(o.packageCli ? { 'manifold version: package usr/bin/manifold (symlink to the single executable)': () => ({ file: o.packageCli ?? '', args: ['version'] }) } : {}),
    'manifold version: the tsc module tree under node (before the single executable)': esm(`const { main } = await import(${JSON.stringify(main)}); process.exitCode = await main(['version'])`),
    'tsc tree: ESM entry, no imports': esm('0'),
    'tsc tree: import yargs': esm("await import('yargs'); await import('yargs/helpers')"),
    'tsc tree: import the CLI module graph (build/src/cli/main.js)': esm(`await import(${JSON.stringify(main)})`),
    "require('koffi')": cjs(`require(${koffi})`),
    "require('koffi') + load libbpf.so.1 + libc.so.6": cjs(`const k = require(${koffi}); k.load('libbpf.so.1'); k.load('libc.so.6')`),
  };
  // What NODE_EXTRA_CA_CERTS costs a node process, and that the executable does not pay it
  // (the run removed it from the environment: lib/machine.ts). The Debian CA bundle unless the
  // environment named another file.
  const bundle = extraCaCerts() ?? '/etc/ssl/certs/ca-certificates.crt';
  if (fs.existsSync(bundle)) {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: bundle };
    cmds['node -e 0 with NODE_EXTRA_CA_CERTS set'] = () => ({ ...nodeFloor(), env });
    cmds['manifold version: build/sea/manifold with NODE_EXTRA_CA_CERTS set (not read)'] = () => ({ file: sea, args: ['version'], env });
  }
  const s = interleave(cmds, o.samples);
  const fl = summarize(s.floor?.ms ?? []);
  const rows: Row[] = [row({ section: 'startup', figure: 'node -e 0 (floor)', unit: 'ms', value: fl, floor: null, target: null, detail: true })];
  for (const name of Object.keys(cmds)) {
    if (name === 'floor') continue;
    const v = summarize(s[name]?.ms ?? []);
    const over = pairedDelta(s[name]?.ms ?? [], s.floor?.ms ?? []);
    rows.push(row({ section: 'startup', figure: name, unit: 'ms', value: v, floor: { name: 'node -e 0', value: fl }, target: null, compare: `floor + ${fmt(over.median)} ms`, note: cpuNote(s[name], s.floor) }));
  }
  return { rows, description: `Each line is a separate process, ${o.samples} rounds round-robin with \`node -e 0\`; "floor + X" (median of per-round differences) is what it adds to bare node start-up. The single executable (scripts/build-sea.mjs) is this machine's node with a start-up snapshot of the CLI; the "tsc tree" lines run node on the compiled module tree (build/src), the way bin/manifold ran before, for comparison. The lines "with NODE_EXTRA_CA_CERTS set" set it to ${bundle} for that process only (every other process runs without it): node then parses a CA bundle before any JavaScript runs; the executable is built not to read the variable (it makes no TLS connections).` };
}
