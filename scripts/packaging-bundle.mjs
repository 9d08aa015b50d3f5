#!/usr/bin/env node
// Assembles what the package ships (make bundle), from the single executable
// (scripts/build-sea.mjs, run here: it rebuilds only what changed):
//
//   OUTDIR/manifold              the single executable: Node with the CLI's and the
//                                generator's start-up snapshot (the generator is the same
//                                file started as manifold-generator, a symlink)
//   OUTDIR/lib/*.cjs             prom-client, loaded on use (metrics)
//   OUTDIR/VERSION               the version `manifold version` prints
//   OUTDIR/manifold.bpf.o        copy of the committed dispatcher object
//   OUTDIR/discovery.bpf.o       copy of the committed listener discovery object
//   OUTDIR/node_modules/         koffi's glibc binary for this platform and its loader
//   OUTDIR/bundle-meta.json      esbuild metafile of the bundles (for the copyright file)
//   OUTDIR/node.json             the embedded Node: version and licence file (copyright file)
//
// Usage: packaging-bundle.mjs [--outdir DIR] [--version V]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outdir = path.resolve(opt('--outdir') ?? path.join(root, 'build', 'dist'));
const sea = path.join(root, 'build', 'sea');

function fail(msg) {
  console.error(`packaging-bundle: ${msg}`);
  process.exit(1);
}

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

const version = opt('--version') ?? run(path.join(root, 'scripts', 'packaging-version.sh'), []);
run(process.execPath, [path.join(root, 'scripts', 'build-sea.mjs'), '--outdir', sea]);

// The licence of the Node binary the executable is made of: Debian and NodeSource packages
// keep it in /usr/share/doc/nodejs, official tarballs next to bin/ ($NODE_LICENSE overrides).
const prefix = path.dirname(path.dirname(process.execPath));
const licence = [process.env.NODE_LICENSE, path.join(prefix, 'share', 'doc', 'nodejs', 'LICENSE'), path.join(prefix, 'LICENSE')]
  .find((f) => f && fs.existsSync(f));
if (!licence) fail(`cannot find the licence file of ${process.execPath} (set NODE_LICENSE to its path)`);

fs.rmSync(outdir, { recursive: true, force: true });
fs.mkdirSync(path.join(outdir, 'lib'), { recursive: true });
fs.copyFileSync(path.join(sea, 'manifold'), path.join(outdir, 'manifold'));
fs.chmodSync(path.join(outdir, 'manifold'), 0o755);
for (const f of fs.readdirSync(path.join(sea, 'lib'))) fs.copyFileSync(path.join(sea, 'lib', f), path.join(outdir, 'lib', f));
fs.copyFileSync(path.join(sea, 'bundle-meta.json'), path.join(outdir, 'bundle-meta.json'));
fs.writeFileSync(path.join(outdir, 'VERSION'), `${version}\n`);
fs.copyFileSync(path.join(root, 'bpf', 'manifold.bpf.o'), path.join(outdir, 'manifold.bpf.o'));
fs.copyFileSync(path.join(root, 'bpf', 'discovery.bpf.o'), path.join(outdir, 'discovery.bpf.o'));
fs.writeFileSync(path.join(outdir, 'node.json'), `${JSON.stringify({ version: process.version, license: licence })}\n`);

// koffi: its glibc binary for this platform (what src/sys/ffi.ts loads) and the files its
// own loader needs (the fallback), nothing else (no musl binary, sources or docs).
const nm = path.join(root, 'node_modules');
const platformPkg = `@koromix/koffi-${process.platform}-${process.arch}`;
const abi = { x64: 'x64', arm64: 'arm64', ia32: 'ia32', arm: 'armhf', riscv64: 'riscv64d' }[process.arch];
const koffiFiles = [
  // (its licence goes into the package's copyright file)
  'koffi/package.json', 'koffi/index.cjs',
  'koffi/src/koffi/index.cjs', 'koffi/src/koffi/src/static.cjs',
  `${platformPkg}/package.json`, `${platformPkg}/index.js`,
  `${platformPkg}/${process.platform}_${abi}/koffi.node`,
];
for (const f of koffiFiles) {
  if (!fs.existsSync(path.join(nm, f))) fail(`node_modules/${f} is missing (npm ci without --omit=optional?)`);
  const dst = path.join(outdir, 'node_modules', f);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(path.join(nm, f), dst);
}

const mib = (f) => `${(fs.statSync(path.join(outdir, f)).size / 1048576).toFixed(1)} MiB`;
console.log(`packaging-bundle: ${path.relative(root, outdir)}/manifold (${mib('manifold')}, Node ${process.version}), koffi ${platformPkg}, version ${version}`);
