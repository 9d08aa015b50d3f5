/**
 * The Debian package, built fresh from this tree at the start of a run
 * (scripts/packaging-bundle.mjs and packaging-deb.sh, as `make deb` runs
 * them) and unpacked with dpkg-deb -x into build/bench/pkgroot: its
 * usr/bin/manifold and usr/lib/systemd/system-generators/manifold-generator
 * are the files `apt install ./manifold_*.deb` puts in /usr (symlinks to the
 * single executable), so the benchmark measures the installed artifact next
 * to the checkout's bin/manifold.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_BUILD, ROOT } from './paths.js';

/** The unpacked package, or why there is none. */
export type Package = { deb: string; root: string; cli: string; generator: string } | { error: string };

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
  return { ok: r.status === 0, out: r.status === 0 ? r.stdout : `${cmd} ${args.join(' ')}: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' ')}` };
}

/** Build, then unpack, the package (tens of seconds); never throws. */
export function buildPackage(): Package {
  const dist = path.join(BENCH_BUILD, 'dist');
  const out = path.join(BENCH_BUILD, 'deb');
  const stage = path.join(BENCH_BUILD, 'deb-stage');
  const root = path.join(BENCH_BUILD, 'pkgroot');
  const b = run(process.execPath, [path.join(ROOT, 'scripts', 'packaging-bundle.mjs'), '--outdir', dist, '--version', '0.0.0~bench']);
  if (!b.ok) return { error: b.out };
  fs.rmSync(out, { recursive: true, force: true });
  const d = run(path.join(ROOT, 'scripts', 'packaging-deb.sh'), [], { ...process.env, DIST: dist, DEB_OUTDIR: out, DEB_STAGE: stage });
  if (!d.ok) return { error: d.out };
  const deb = d.out.trim().split('\n').pop() ?? '';
  fs.rmSync(stage, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
  const x = run('dpkg-deb', ['-x', deb, root]);
  if (!x.ok) return { error: x.out };
  const cli = path.join(root, 'usr', 'bin', 'manifold');
  const generator = path.join(root, 'usr', 'lib', 'systemd', 'system-generators', 'manifold-generator');
  if (!fs.existsSync(cli) || !fs.existsSync(generator)) return { error: `${path.basename(deb)} has no usr/bin/manifold or generator` };
  return { deb, root, cli, generator };
}
