/**
 * Phase 4, generator: run time of the systemd generator
 * (generators/manifold-generator) against `node -e 0`, with an empty config
 * directory and with a fixture of 20 config files. Skipped, with a "not
 * present" row, when the generator or its compiled code is missing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { benchTmpDir, ROOT } from './lib/paths.js';
import { cpuNote, interleave, nodeFloor, timeRun, type Cmd, type Samples } from './lib/proc.js';
import { ciNote, fmt, pairedDelta, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';

const GENERATOR = path.join(ROOT, 'generators', 'manifold-generator');
const COMPILED = path.join(ROOT, 'build', 'src', 'generator', 'main.js');
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
export function generatorPhase(o: { samples: number; bundle: string | null }): { rows: Row[]; description: string } {
  if (!fs.existsSync(GENERATOR) || !fs.existsSync(COMPILED)) {
    const missing = !fs.existsSync(GENERATOR) ? 'generators/manifold-generator' : 'build/src/generator/main.js';
    return {
      rows: [row({ section: 'generator', figure: 'generator run time', unit: 'ms', value: null, floor: null, target: null, note: `not present (${missing} missing): not measured` })],
      description: 'The generator was not present; nothing was measured.',
    };
  }
  const tmp = benchTmpDir('gen');
  try {
    const empty = path.join(tmp, 'conf-empty');
    const fixture = path.join(tmp, 'conf-fixture');
    const outDir = path.join(tmp, 'out');
    for (const d of [empty, fixture, outDir]) fs.mkdirSync(d);
    writeFixture(fixture);
    const gen = (confDir: string, entry = GENERATOR) => (): Cmd => ({
      file: process.execPath,
      args: [entry, outDir, outDir, outDir],
      env: { ...process.env, MANIFOLD_CONFIG_DIRS: confDir, MANIFOLD_GENERATOR_LOG: 'stderr' },
    });
    // One checked run each: exit status, problems reported, files written.
    const notes: Record<string, string> = {};
    for (const [name, dir] of [['empty', empty], ['fixture', fixture]] as const) {
      const r = timeRun(gen(dir)());
      const written = fs.readdirSync(outDir).length;
      notes[name] = `exit ${r.code}, ${written} entries in the output dir${r.stderr.trim() ? `, stderr: ${r.stderr.trim().split('\n')[0]}` : ''}`;
      fs.rmSync(outDir, { recursive: true, force: true });
      fs.mkdirSync(outDir);
    }
    const bundled: Record<string, () => Cmd> = o.bundle ? { emptyB: gen(empty, o.bundle), fixtureB: gen(fixture, o.bundle) } : {};
    const s = interleave({ floor: nodeFloor, empty: gen(empty), fixture: gen(fixture), ...bundled }, o.samples);
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
        ...(o.bundle ? [
          mk('generator (bundle), empty config dir', s.emptyB, ''),
          mk(`generator (bundle), ${FIXTURE_FILES} config files`, s.fixtureB, ''),
        ] : []),
      ],
      description: `\`node generators/manifold-generator OUT OUT OUT\` with MANIFOLD_CONFIG_DIRS pointing at an empty directory and at ${FIXTURE_FILES} config files (each a [Label] with two Bind= lines and a Socket= or Service=+Listen=), MANIFOLD_GENERATOR_LOG=stderr; ${o.samples} rounds round-robin with \`node -e 0\`; "floor + X" is the median of per-round differences.${o.bundle ? ' Rows marked (bundle) run build/bench/dist/manifold-generator.mjs, the esbuild bundle the package ships, in the same rounds.' : ''}`,
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
