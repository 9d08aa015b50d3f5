/**
 * The esbuild bundles the package ships (scripts/packaging-bundle.mjs, as
 * `make bundle` runs it), built fresh from src/ into build/bench/dist so
 * the benchmark can measure the CLI and the generator in both forms.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_BUILD, ROOT } from './paths.js';

/** Paths of the bundled entry points, or why there are none. */
export type Bundle = { cli: string; generator: string } | { error: string };

/** Build the bundles (about a second); never throws. */
export function buildBundle(): Bundle {
  const script = path.join(ROOT, 'scripts', 'packaging-bundle.mjs');
  if (!fs.existsSync(script)) return { error: 'scripts/packaging-bundle.mjs not present' };
  const outdir = path.join(BENCH_BUILD, 'dist');
  const r = spawnSync(process.execPath, [script, '--outdir', outdir, '--version', 'bench'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return { error: `packaging-bundle.mjs failed: ${(r.stderr || String(r.error)).trim().split('\n')[0] ?? ''}` };
  const cli = path.join(outdir, 'manifold.mjs');
  const generator = path.join(outdir, 'manifold-generator.mjs');
  if (!fs.existsSync(cli) || !fs.existsSync(generator)) return { error: 'packaging-bundle.mjs did not write manifold.mjs and manifold-generator.mjs' };
  return { cli, generator };
}
