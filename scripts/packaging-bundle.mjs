#!/usr/bin/env node
// Bundles the CLI and the systemd generator with esbuild (make bundle):
//
//   OUTDIR/manifold.mjs            the CLI (entry: bin/manifold), koffi external
//   OUTDIR/manifold-generator.mjs  the generator (entry: generators/manifold-generator),
//                                  no koffi, no yargs, no import.meta
//   OUTDIR/VERSION                 the version `manifold version` prints
//   OUTDIR/manifold.bpf.o          copy of the committed dispatcher object
//   OUTDIR/discovery.bpf.o         copy of the committed listener discovery object
//   OUTDIR/node_modules/           koffi + its platform package (only what loads)
//   OUTDIR/bundle-meta.json        esbuild metafile of the CLI (for the copyright file)
//
// The entries are the committed shims, which import ../build/src/*.js (tsc
// output); the bundle takes the TypeScript sources src/*.ts instead, so it needs
// no `tsc` run. Usage: packaging-bundle.mjs [--outdir DIR] [--version V]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outdir = path.resolve(opt('--outdir') ?? path.join(root, 'build', 'dist'));
const version = opt('--version') ?? run(path.join(root, 'scripts', 'packaging-version.sh'), []);

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('packaging-bundle: esbuild is not installed (run `make deps` or `npm ci`)');
  process.exit(1);
}

/** Node's own modules, with and without `node:`. */
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * Maps the shims' `../build/src/X.js` imports to `src/X.ts`, and loads the
 * extension-less shims as JavaScript without their `#!` line.
 */
const checkoutShims = {
  name: 'checkout-shims',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/build\/src\// }, (a) => ({
      path: path.join(root, 'src', a.path.slice('../build/src/'.length).replace(/\.js$/, '.ts')),
    }));
    build.onLoad({ filter: /\/(bin\/manifold|generators\/manifold-generator)$/ }, (a) => ({
      contents: fs.readFileSync(a.path, 'utf8').replace(/^#!.*\n/, ''),
      loader: 'js',
    }));
  },
};

/**
 * src/ loads some packages lazily through `const require = createRequire(import.meta.url)`
 * (koffi). esbuild does not follow a local `require`: dropping that line makes
 * those calls the free `require` esbuild resolves; koffi, external, goes through
 * the banner's `require` at run time.
 */
const REQUIRE_LINE = /^const require = createRequire\(import\.meta\.url\);$/m;
const rewritten = [];
const lazyRequire = {
  name: 'lazy-require',
  setup(build) {
    build.onLoad({ filter: /\/src\/.*\.ts$/ }, (a) => {
      let text = fs.readFileSync(a.path, 'utf8');
      if (text.includes('createRequire(import.meta.url)')) {
        if (!REQUIRE_LINE.test(text)) {
          throw new Error(`${a.path}: createRequire(import.meta.url) in an unexpected form; update ${path.basename(fileURLToPath(import.meta.url))}`);
        }
        text = text.replace(REQUIRE_LINE, '// (bundle: the module-level `require` of the banner is used)');
        rewritten.push(path.relative(root, a.path));
      }
      return { contents: text, loader: 'ts' };
    });
  },
};

const nodeCheck = (what, hint) =>
  `if (Number(process.versions.node.split('.')[0]) < 20) { process.stderr.write(\`${what}: Node.js >= 20 is needed, this is \${process.execPath} \${process.version}${hint}\\n\`); process.exit(1); }`;

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  logLevel: 'warning',
  legalComments: 'none', // licences are in the package's copyright file
  metafile: true,
  absWorkingDir: root,
  plugins: [checkoutShims, lazyRequire],
};

fs.rmSync(outdir, { recursive: true, force: true });
fs.mkdirSync(outdir, { recursive: true });

const cli = await esbuild.build({
  ...common,
  entryPoints: { manifold: path.join(root, 'bin', 'manifold') },
  outdir,
  outExtension: { '.js': '.mjs' },
  external: ['koffi'],
  banner: {
    js: [
      '// manifold command line (bundle; see packaging/README.md)',
      "import { createRequire as __manifoldCreateRequire } from 'node:module';",
      'const require = __manifoldCreateRequire(import.meta.url);',
      nodeCheck('manifold', ' (set MANIFOLD_NODE to the path of a newer one)'),
    ].join('\n'),
  },
});
const gen = await esbuild.build({
  ...common,
  entryPoints: { 'manifold-generator': path.join(root, 'generators', 'manifold-generator') },
  outdir,
  outExtension: { '.js': '.mjs' },
  banner: { js: ['// manifold systemd generator (bundle; see packaging/README.md)', nodeCheck('manifold-generator', '')].join('\n') },
});

/** Every module left to be loaded at run time must be Node's own (or koffi, for the CLI). */
function checkExternals(result, allowed, forbiddenInputs) {
  const problems = [];
  for (const [file, o] of Object.entries(result.metafile.outputs)) {
    for (const imp of o.imports) {
      if (imp.external && !builtins.has(imp.path) && !allowed.includes(imp.path)) problems.push(`${file}: loads ${imp.path} at run time`);
    }
    for (const input of Object.keys(o.inputs)) {
      if (forbiddenInputs.some((re) => re.test(input))) problems.push(`${file}: contains ${input}`);
    }
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const m of text.matchAll(/\b__require\("([^"]+)"\)/g)) {
      if (!builtins.has(m[1]) && !allowed.includes(m[1])) problems.push(`${file}: __require("${m[1]}")`);
    }
  }
  return problems;
}
const problems = [
  ...checkExternals(cli, ['koffi'], []),
  ...checkExternals(gen, [], [/node_modules\/(koffi|yargs)/, /src\/sys\//]),
];
const genText = fs.readFileSync(path.join(outdir, 'manifold-generator.mjs'), 'utf8');
if (genText.includes('import.meta')) problems.push('manifold-generator.mjs uses import.meta (costs the generator ~1 ms per run)');
if (problems.length) {
  console.error(`packaging-bundle: the bundles are not self-contained:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

fs.writeFileSync(path.join(outdir, 'VERSION'), `${version}\n`);
fs.copyFileSync(path.join(root, 'bpf', 'manifold.bpf.o'), path.join(outdir, 'manifold.bpf.o'));
fs.copyFileSync(path.join(root, 'bpf', 'discovery.bpf.o'), path.join(outdir, 'discovery.bpf.o'));
fs.writeFileSync(path.join(outdir, 'bundle-meta.json'), JSON.stringify(cli.metafile));

// koffi: only the files its CommonJS entry loads, and the glibc binary of this platform.
const nm = path.join(root, 'node_modules');
const platformPkg = `@koromix/koffi-${process.platform}-${process.arch}`;
const libcDir = { x64: 'linux_x64', arm64: 'linux_arm64', ia32: 'linux_ia32', arm: 'linux_armhf', riscv64: 'linux_riscv64d' }[process.arch];
const koffiFiles = [
  // (its licence goes into the package's copyright file)
  'koffi/package.json', 'koffi/index.cjs',
  'koffi/src/koffi/index.cjs', 'koffi/src/koffi/src/static.cjs',
  `${platformPkg}/package.json`, `${platformPkg}/index.js`,
];
for (const f of koffiFiles) {
  if (!fs.existsSync(path.join(nm, f))) {
    console.error(`packaging-bundle: node_modules/${f} is missing (npm ci without --omit=optional?)`);
    process.exit(1);
  }
}
const binaries = fs.readdirSync(path.join(nm, platformPkg)).filter((d) => fs.existsSync(path.join(nm, platformPkg, d, 'koffi.node')));
const binary = binaries.find((d) => d === libcDir) ?? binaries.find((d) => !d.startsWith('musl'));
if (!binary) {
  console.error(`packaging-bundle: no glibc koffi.node in node_modules/${platformPkg}`);
  process.exit(1);
}
for (const f of [...koffiFiles, `${platformPkg}/${binary}/koffi.node`]) {
  const dst = path.join(outdir, 'node_modules', f);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(path.join(nm, f), dst);
}

const size = (f) => `${(fs.statSync(path.join(outdir, f)).size / 1024).toFixed(0)} KiB`;
console.log(`packaging-bundle: ${path.relative(root, outdir)}/manifold.mjs (${size('manifold.mjs')}), manifold-generator.mjs (${size('manifold-generator.mjs')}), koffi ${platformPkg}/${binary}, version ${version}`);
