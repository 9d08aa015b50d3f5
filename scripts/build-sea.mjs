#!/usr/bin/env node
// Builds manifold's single executable (make build; packaging/README.md, "The single executable"):
//
//   OUTDIR/manifold              this Node binary (process.execPath), stripped, with a start-up
//                                snapshot of the CLI and the generator injected (Node SEA)
//   OUTDIR/manifold-generator    symlink to manifold: started under that name it is the generator
//   OUTDIR/manifold.cjs          the esbuild CommonJS bundle the snapshot is built from
//   OUTDIR/lib/<package>.cjs     bundles of the large packages only some commands use
//                                (prom-client, for metrics): not in the snapshot, which
//                                deserialises faster the smaller it is; loaded from here on use
//   OUTDIR/bundle-meta.json      esbuild metafile of all of them (for the package's copyright file)
//   OUTDIR/manifold.blob         the SEA preparation blob (snapshot) injected into manifold
//
// The bundle's entry is src/entry/sea.ts (TypeScript sources, no tsc run needed). koffi, a
// native addon, is not in it: src/sys/ffi.ts loads it after start-up from node_modules/
// beside or above the executable (the checkout's, or the package's /usr/lib/manifold/).
//
// Reproducible: the same sources, the same Node binary and the same directory give the same
// bytes (see "The snapshot" below); when the blob and the Node binary are unchanged the
// executable is not rewritten.
// Usage: build-sea.mjs [--outdir DIR]
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outdir = path.resolve(opt('--outdir') ?? path.join(root, 'build', 'sea'));
const node = process.execPath;
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const t0 = Date.now();

function fail(msg) {
  console.error(`build-sea: ${msg}`);
  process.exit(1);
}

// Node >= 20.12 builds SEA blobs with a snapshot; the binary must carry the SEA fuse.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) fail(`Node.js >= 20.12 is needed to build the single executable, this is ${node} ${process.version}`);
if (!fs.readFileSync(node).includes(FUSE)) fail(`${node} has no single-executable fuse (${FUSE}): use an official or NodeSource Node.js build`);

let esbuild;
let postject;
try {
  esbuild = await import('esbuild');
  postject = createRequire(import.meta.url)('postject');
} catch {
  fail('esbuild and postject are needed (run `npm ci` or `make deps`)');
}

/** Node's own modules, with and without `node:`. */
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Replace `from` by `to` in `text`; throws when `from` is missing (the package changed). */
function patch(file, text, from, to) {
  if (!text.includes(from)) throw new Error(`${file}: "${from}" not found; update the snapshot patches in scripts/build-sea.mjs`);
  return text.split(from).join(to);
}

/**
 * What a V8 startup snapshot cannot hold, fixed at load time:
 * - string-width creates an Intl.Segmenter when its module is evaluated (ICU objects cannot be
 *   serialised): created on first use instead. Its first use costs ~40 ms (ICU break-iterator
 *   data), and yargs renders a command's help (with cliui → string-width) on every run: printable
 *   ASCII, all of manifold's help text, gets the width string-width >= 8 computes for it without
 *   a segmenter (its own fast path), so no segmenter is created at all.
 * - yargs' ESM shim reads process.stdout.columns when evaluated: read when used instead (the
 *   CLI sets the width itself; see src/cli/main.ts). It imports node:assert for two internal
 *   sanity checks, which run on every parse: the comparison is made here (assert.strictEqual
 *   is Object.is), and node:assert is loaded only to throw its error when one fails (the
 *   module is a sizeable part of a snapshot, which deserialises faster the smaller it is,
 *   and costs ~1 ms to load at run time).
 * - src/ modules that make a `require` with createRequire: esbuild's own (bundled) require is
 *   used instead (packages are then bundled, and still evaluated on first use).
 */
const snapshotPatches = {
  name: 'snapshot-patches',
  setup(build) {
    build.onLoad({ filter: /\/node_modules\/(.*\/)?string-width\/index\.js$/ }, (a) => {
      let text = fs.readFileSync(a.path, 'utf8');
      text = patch(a.path, text, 'const segmenter = new Intl.Segmenter();',
        'let lazySegmenter;\nconst segmenter = {segment: (s) => (lazySegmenter ??= new Intl.Segmenter()).segment(s)};');
      // string-width >= 8 has the fast path; 7 (cliui's, wrap-ansi's) gets it.
      if (!text.includes('// Fast path: printable ASCII')) {
        text = patch(a.path, text, 'export default function stringWidth(string, options = {}) {',
          'export default function stringWidth(string, options = {}) {\n\tif (typeof string === \'string\' && /^[\\x20-\\x7E]*$/.test(string)) return string.length;');
      }
      return { contents: text, loader: 'js' };
    });
    build.onLoad({ filter: /\/node_modules\/yargs\/lib\/platform-shims\/esm\.mjs$/ }, (a) => {
      let text = patch(a.path, fs.readFileSync(a.path, 'utf8'),
        "stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null",
        "get stdColumns() { return typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null }");
      text = patch(a.path, text, "import { notStrictEqual, strictEqual } from 'assert'",
        "const notStrictEqual = (a, b, m) => { if (Object.is(a, b)) require('node:assert').notStrictEqual(a, b, m); };\nconst strictEqual = (a, b, m) => { if (!Object.is(a, b)) require('node:assert').strictEqual(a, b, m); };");
      return { contents: text, loader: 'js' };
    });
    build.onLoad({ filter: /\/src\/.*\.ts$/ }, (a) => {
      let text = fs.readFileSync(a.path, 'utf8');
      text = text.replace(/^const require = createRequire\((import\.meta\.url|'\/')\);$/m, '// (bundle: esbuild\'s require)');
      if (/\bcreateRequire\(/.test(text) && !a.path.endsWith('/src/locate.ts')) {
        throw new Error(`${a.path}: createRequire in an unexpected form; update scripts/build-sea.mjs`);
      }
      // import.meta.url means nothing in the bundle (see `define` below): files are found from
      // the program directory (src/locate.ts, the only module allowed to read it).
      if (/\bimport\.meta\b/.test(text.replace(/^\s*(\/\/|\*).*$/gm, '')) && !a.path.endsWith('/src/locate.ts')) {
        throw new Error(`${a.path}: uses import.meta, which has no meaning in the single executable: find files with src/locate.ts`);
      }
      return { contents: text, loader: 'ts' };
    });
  },
};

/**
 * Packages kept out of the snapshot: `import … from 'prom-client'` (or a `require`) in the
 * bundle become a require of OUTDIR/lib/<name>.cjs from the program directory (src/locate.ts),
 * evaluated when first used.
 */
const LAZY_PACKAGES = ['prom-client'];
const locate = path.join(root, 'src', 'locate.ts');
const lazyPackages = {
  name: 'lazy-packages',
  setup(build) {
    build.onResolve({ filter: new RegExp(`^(${LAZY_PACKAGES.join('|')})$`) }, (a) => ({ path: a.path, namespace: 'lazy-package' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (a) => ({
      contents: `module.exports = require(${JSON.stringify(locate)}).programRequire()(${JSON.stringify(`./lib/${a.path}.cjs`)});`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  legalComments: 'none', // licences are in the package's copyright file
  metafile: true,
  absWorkingDir: root,
  // Smaller source, smaller snapshot; names are kept (stack traces, error names).
  minifyWhitespace: true,
  minifySyntax: true,
};

fs.rmSync(path.join(outdir, 'lib'), { recursive: true, force: true });
fs.mkdirSync(path.join(outdir, 'lib'), { recursive: true });
const bundle = path.join(outdir, 'manifold.cjs');
const result = await esbuild.build({
  ...common,
  entryPoints: [path.join(root, 'src', 'entry', 'sea.ts')],
  outfile: bundle,
  // import.meta has no meaning in a bundle: yargs' shim takes its directory from it (its
  // locale files, which are not shipped: messages are English, as in the package before).
  // Its locale directory becomes /proc/manifold/locales, which cannot exist (y18n wants ENOENT).
  // manifold's own files are found with src/locate.ts.
  define: { 'import.meta.url': '"file:///proc/manifold/node_modules/yargs/index.mjs"', 'import.meta.resolve': 'undefined' },
  plugins: [snapshotPatches, lazyPackages],
});
const metas = [result.metafile];

/**
 * esbuild turns `import fs from 'node:fs'` into `__toESM(require("node:fs"), 1)` in each
 * importing module, and its __toESM copies every property of the module as a getter: one
 * closure and accessor per property per import site (about 4,400 of each for 60 imports of
 * fs, path and os), all kept in the snapshot, which deserialises slower the larger it is.
 * The replacement returns an object whose prototype is the module itself and whose own
 * `default` is the module (Node mode: every call here passes 1): reads of a named import
 * or of `default` give the same values, with no copies. The namespace is not enumerated
 * anywhere (Object.keys of it would differ); the generic copy is kept for the other case.
 */
const TO_ESM = 'var __toESM=(mod,isNodeMode,target2)=>(target2=mod!=null?__create(__getProtoOf(mod)):{},';
const TO_ESM_LEAN = 'var __toESM=(mod,isNodeMode,target2)=>isNodeMode&&mod!=null&&(typeof mod=="object"||typeof mod=="function")?__create(mod,{default:{value:mod,enumerable:!0}}):(target2=mod!=null?__create(__getProtoOf(mod)):{},';
{
  const text = fs.readFileSync(bundle, 'utf8');
  const at = text.indexOf(TO_ESM);
  if (at < 0 || text.indexOf(TO_ESM, at + 1) >= 0) fail(`${bundle}: esbuild's __toESM helper is not in the expected form (esbuild changed?): update TO_ESM in scripts/build-sea.mjs`);
  fs.writeFileSync(bundle, text.replace(TO_ESM, TO_ESM_LEAN));
}
const used = new Set(Object.values(result.metafile.outputs).flatMap((o) => Object.keys(o.inputs)).filter((i) => i.startsWith('lazy-package:')).map((i) => i.slice('lazy-package:'.length)));
for (const name of LAZY_PACKAGES.filter((n) => used.has(n))) {
  const lib = await esbuild.build({
    ...common,
    stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: root, sourcefile: `lib/${name}.cjs`, loader: 'js' },
    outfile: path.join(outdir, 'lib', `${name}.cjs`),
  });
  metas.push(lib.metafile);
}

// Nothing but Node's own modules may be loaded at run time (koffi goes through locate.ts).
const problems = [];
for (const meta of metas) {
  for (const [file, o] of Object.entries(meta.outputs)) {
    for (const imp of o.imports) if (imp.external && !builtins.has(imp.path)) problems.push(`${file}: loads ${imp.path} at run time`);
    for (const input of Object.keys(o.inputs)) if (/node_modules\/koffi/.test(input)) problems.push(`${file}: contains ${input}`);
  }
}
if (problems.length) fail(`the bundle is not self-contained:\n  ${problems.join('\n  ')}`);
const merged = { inputs: Object.assign({}, ...metas.map((m) => m.inputs)), outputs: Object.assign({}, ...metas.map((m) => m.outputs)) };
fs.writeFileSync(path.join(outdir, 'bundle-meta.json'), JSON.stringify(merged));

// The snapshot, built by this Node in OUTDIR (its warm-up runs the generator in OUTDIR/warm-up).
// V8 and Node keep a few process details in it: the
// addresses of its heap (no address-space randomisation: setarch -R, and --predictable for
// single-threaded, repeatable GC), its pid (a new pid namespace: always the same), Math.random
// (--random-seed), the environment and stdio (fixed here), the build directory (the same for
// every build of a checkout). With that, two builds of the same tree are byte-identical.
const blob = path.join(outdir, 'manifold.blob');
const seaConfig = path.join(outdir, 'sea-config.json');
fs.writeFileSync(seaConfig, `${JSON.stringify({ main: 'manifold.cjs', output: 'manifold.blob', disableExperimentalSEAWarning: true, useSnapshot: true }, null, 2)}\n`);
const nodeArgs = ['--random-seed=1', '--predictable', '--experimental-sea-config', 'sea-config.json'];
const ok = (cmd, argv) => spawnSync(cmd, [...argv, 'true'], { stdio: 'ignore' }).status === 0;
const isolation = ok('unshare', ['--user', '--map-root-user', '--pid', '--fork']) ? ['unshare', '--user', '--map-root-user', '--pid', '--fork']
  : ok('unshare', ['--pid', '--fork']) ? ['unshare', '--pid', '--fork'] : [];
const norandom = ok('setarch', ['-R']) ? ['setarch', '-R'] : [];
if (!isolation.length || !norandom.length) console.warn('build-sea: no pid namespace or setarch -R here: the snapshot will not be reproducible');
const [cmd, ...cmdArgs] = [...norandom, ...isolation, node, ...nodeArgs];
fs.rmSync(blob, { force: true });
const gen = spawnSync(cmd, cmdArgs, {
  cwd: outdir,
  env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
const genErr = gen.stderr.split('\n').filter((l) => l && !/Wrote single executable preparation blob/.test(l)).join('\n');
if (gen.status !== 0 || !fs.existsSync(blob) || /warm-up|Error/.test(genErr)) fail(`${node} --experimental-sea-config failed (${gen.status}):\n${genErr}${gen.stdout}`);

/**
 * Node 20 reads the variable NODE_EXTRA_CA_CERTS when it starts and, if it is set, parses its
 * bundled root certificates and the file named there before any JavaScript runs: about 75 ms
 * on the reference machine, whose environment sets it machine-wide, paid by every command.
 * manifold makes no TLS connections, so the executable's copy of Node asks for another name:
 * the C string node.cc passes to getenv is renamed in place (same length). The name's only
 * other copy is a string in V8's built-in snapshot (`node --help` text), which a heap string's
 * length (19, 32 bits little-endian) precedes: it is left alone. A Node without the C string
 * (one that loads certificates lazily) is copied unchanged; two C strings stop the build.
 */
const CA_ENV = Buffer.from('\0NODE_EXTRA_CA_CERTS\0', 'latin1');
const CA_ENV_RENAMED = Buffer.from('MANIFOLD_NO_CA_CERT', 'latin1');
const CA_PATCH = 'ca-env-1';
function dropExtraCaCerts(file) {
  const bin = fs.readFileSync(file);
  const at = [];
  for (let i = bin.indexOf(CA_ENV); i >= 0; i = bin.indexOf(CA_ENV, i + 1)) if (i < 3 || bin.readUInt32LE(i - 3) !== CA_ENV_RENAMED.length) at.push(i);
  if (at.length > 1) fail(`${node} has ${at.length} C strings NODE_EXTRA_CA_CERTS (expected one): update dropExtraCaCerts in scripts/build-sea.mjs`);
  if (at.length === 0) return false;
  CA_ENV_RENAMED.copy(bin, (at[0] ?? 0) + 1);
  fs.writeFileSync(file, bin);
  return true;
}

// The executable: a stripped copy of this Node with the blob injected. Rewritten only when the
// blob or the Node binary changed (postject rewrites ~100 MB: seconds).
const exe = path.join(outdir, 'manifold');
const stamp = path.join(outdir, 'manifold.stamp');
const hash = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const want = `${hash(blob)} ${hash(node)} ${CA_PATCH}\n`;
const have = fs.existsSync(exe) && fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8') : '';
if (have !== want) {
  const tmp = `${exe}.tmp`;
  fs.rmSync(stamp, { force: true });
  fs.copyFileSync(node, tmp);
  fs.chmodSync(tmp, 0o755);
  const strip = spawnSync('strip', ['--strip-all', tmp], { encoding: 'utf8' });
  if (strip.status !== 0) fail(`strip ${tmp}: ${strip.error?.message ?? strip.stderr}`);
  dropExtraCaCerts(tmp);
  // postject prints LIEF warnings about the notes it rewrites: not errors.
  const warn = console.warn;
  console.warn = () => {};
  try {
    await postject.inject(tmp, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: FUSE });
  } finally {
    console.warn = warn;
  }
  fs.renameSync(tmp, exe);
  fs.writeFileSync(stamp, want);
}
const link = path.join(outdir, 'manifold-generator');
fs.rmSync(link, { force: true });
fs.symlinkSync('manifold', link);

// It must start: version (no BPF needed) from the executable itself.
const check = spawnSync(exe, ['version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
if (check.status !== 0 || !/^manifold \S+ \(BPF ABI \d+\)$/.test(check.stdout.trim())) {
  fail(`${exe} version: exit ${check.status}: ${check.stdout}${check.stderr}`);
}
// And it must not read NODE_EXTRA_CA_CERTS (Node warns when the file it names cannot be read).
const ca = spawnSync(exe, ['version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_EXTRA_CA_CERTS: '/nonexistent/manifold-build-check.pem' } });
if (ca.status !== 0 || /extra certs/i.test(ca.stderr)) fail(`${exe} still reads NODE_EXTRA_CA_CERTS (exit ${ca.status}): ${ca.stderr.trim()}`);
const mib = (f) => `${(fs.statSync(f).size / 1048576).toFixed(1)} MiB`;
console.log(`build-sea: ${path.relative(root, exe)} (${mib(exe)}, snapshot ${mib(blob)}, Node ${process.version}) in ${((Date.now() - t0) / 1000).toFixed(1)} s${have === want ? ', executable unchanged' : ''}`);
