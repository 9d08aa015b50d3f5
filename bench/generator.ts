/**
 * Phase 4, generator: run time of the systemd generator against `node -e 0`,
 * with an empty config directory and with a fixture of 20 config files: the
 * checkout's generators/manifold-generator (a symlink to the single
 * executable under the generator's name) and the package's (a symlink to it). Skipped, with a "not
 * present" row, when the single executable is missing (make build).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchTmpDir, ROOT } from './lib/paths.js';
import { cpuNote, interleave, nodeFloor, timeRun, type Cmd, type Samples } from './lib/proc.js';
import { ciNote, fmt, pairedDelta, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';

const GENERATOR = path.join(ROOT, 'generators', 'manifold-generator');
const COMPILED = path.join(ROOT, 'build', 'sea', 'manifold-generator');
const LIMIT_MS = 10;
const FIXTURE_FILES = 20;

function writeFixture(dir: string): void {
  for (let i = 0; i < FIXTURE_FILES; i++) {
    const lines = ['[Label]', `Name=web${i}`, `Bind=tcp 10.${i}.0.0/16 443`, `Bind=any 10.${100 + i}.1.0/24 8000-8010`];
    if (i % 2 === 0) lines.push(`Socket=web${i}.socket`);
    else lines.push(`Service=web${i}.service`, `Listen=tcp 127.0.0.1 ${9000 + i}`);
    fs.writeFileSync(path.join(dir, `web${i}.conf`), `${lines.join('\n')}\n`);
  }
}

/** Run the generator phase. */
export function generatorPhase(o: { samples: number; packageGenerator: string | null }): { rows: Row[]; description: string } {
  if (!fs.existsSync(GENERATOR) || !fs.existsSync(COMPILED)) {
    const missing = !fs.existsSync(GENERATOR) ? 'generators/manifold-generator' : 'build/sea/manifold-generator';
    return {
      rows: [row({ section: 'generator', figure: 'generator run time', unit: 'ms', value: null, floor: null, target: null, note: `not present (${missing} missing): not measured` })],
      description: 'The generator was not present; nothing was measured.',
    };
  }
  const tmp = benchTmpDir('gen');
  // systemd runs generators with their output directories on tmpfs (/run/systemd/generator*):
  // so is this one (the benchmark runs in a private mount namespace; see run.ts).
  const outDir = path.join(tmp, 'out');
  fs.mkdirSync(outDir);
  const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=16m', 'tmpfs', outDir]).status === 0;
  try {
    const empty = path.join(tmp, 'conf-empty');
    const fixture = path.join(tmp, 'conf-fixture');
    for (const d of [empty, fixture]) fs.mkdirSync(d);
    writeFixture(fixture);
    const gen = (confDir: string, entry = GENERATOR) => (): Cmd => ({
      file: entry,
      args: [outDir, outDir, outDir],
      env: { ...process.env, MANIFOLD_CONFIG_DIRS: confDir, MANIFOLD_GENERATOR_LOG: 'stderr' },
    });
    // One checked run each: exit status, problems reported, files written.
    const notes: Record<string, string> = {};
    for (const [name, dir] of [['empty', empty], ['fixture', fixture]] as const) {
      const r = timeRun(gen(dir)());
      const written = fs.readdirSync(outDir).length;
      notes[name] = `exit ${r.code}, ${written} entries in the output dir${r.stderr.trim() ? `, stderr: ${r.stderr.trim().split('\n')[0]}` : ''}`;
      for (const e of fs.readdirSync(outDir)) fs.rmSync(path.join(outDir, e), { recursive: true, force: true });
    }
    const pkg = o.packageGenerator;
    const packaged: Record<string, () => Cmd> = pkg ? { emptyP: gen(empty, pkg), fixtureP: gen(fixture, pkg) } : {};
    // Each run starts from an empty output directory, as at boot.
    const clear = (): void => {
      for (const e of fs.readdirSync(outDir)) fs.rmSync(path.join(outDir, e), { recursive: true, force: true });
    };
    const s = interleave({ floor: nodeFloor, empty: gen(empty), fixture: gen(fixture), ...packaged }, o.samples, { before: clear });
    const fl = summarize(s.floor?.ms ?? []);
    const mk = (figure: string, samples: Samples | undefined, check: string): Row => {
      const v = summarize(samples?.ms ?? []);
      const over = pairedDelta(samples?.ms ?? [], s.floor?.ms ?? []);
      const note = [check, ciNote(over.samples, LIMIT_MS), cpuNote(samples, s.floor)].filter(Boolean).join('; ');
      return row({
        section: 'generator', figure, unit: 'ms', value: v, floor: { name: 'node -e 0', value: fl },
        target: { text: `≤ floor + ${LIMIT_MS} ms`, measured: `floor + ${fmt(over.median)} ms (p10–p90 ${fmt(over.p10)}–${fmt(over.p90)})`, pass: over.median <= LIMIT_MS }, note,
      });
    };
    return {
      rows: [
        mk('generator, empty config dir', s.empty, notes.empty ?? ''),
        mk(`generator, ${FIXTURE_FILES} config files`, s.fixture, notes.fixture ?? ''),
        ...(pkg ? [
          mk('generator (package), empty config dir', s.emptyP, ''),
          mk(`generator (package), ${FIXTURE_FILES} config files`, s.fixtureP, ''),
        ] : []),
      ],
      description: `\`generators/manifold-generator OUT OUT OUT\` (the checkout's symlink to build/sea/manifold-generator, the single executable under the generator's name) with MANIFOLD_CONFIG_DIRS pointing at an empty directory and at ${FIXTURE_FILES} config files (each a [Label] with two Bind= lines and a Socket= or Service=+Listen=), MANIFOLD_GENERATOR_LOG=stderr, OUT on a tmpfs${tmpfs ? '' : ' (mounting it failed: here on the disk)'} as systemd's generator directories are, emptied (untimed) before each run; ${o.samples} rounds round-robin with \`node -e 0\`; "floor + X" is the median of per-round differences.${pkg ? ' Rows marked (package) run the unpacked package\'s usr/lib/systemd/system-generators/manifold-generator (a symlink to the single executable), in the same rounds.' : ''}`,
    };
  } finally {
    if (tmpfs) spawnSync('umount', [outDir]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
