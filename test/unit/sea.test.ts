/**
 * The single executable (build/sea/manifold, scripts/build-sea.mjs; run `make build` first):
 * it prints exactly what the tsc module tree prints, and everything that depends on the
 * process is read when it runs, never taken from the build that made its snapshot — the
 * version file beside the executable (also reached through a symlink), the environment,
 * the terminal width, the name it was started under (the generator). No root needed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SEA = path.join(ROOT, 'build', 'sea', 'manifold');
const BIN = path.join(ROOT, 'bin', 'manifold');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-sea-test-'));
/** Runs the CLI of the tsc module tree (what bin/manifold ran before the single executable). */
const TREE = path.join(tmp, 'tree.mjs');
fs.writeFileSync(TREE, `import { main } from ${JSON.stringify(path.join(ROOT, 'build', 'src', 'cli', 'main.js'))};
main(process.argv.slice(2)).then((code) => process.stdout.write('', () => process.exit(code)));
`);

const ENV = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' };

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string> = {}, argv0?: string): Run {
  const r = spawnSync(file, args, { encoding: 'utf8', env: { ...ENV, ...env }, timeout: 60_000, ...(argv0 ? { argv0 } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tree(args: string[], env: Record<string, string> = {}): Run {
  return run(process.execPath, [TREE, ...args], env);
}

test.after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('built: build/sea/manifold and its generator name exist', () => {
  assert.ok(fs.existsSync(SEA), `${SEA} (make build)`);
  assert.is(fs.readlinkSync(path.join(ROOT, 'build', 'sea', 'manifold-generator')), 'manifold');
});

test('NODE_EXTRA_CA_CERTS is not read (no CA bundle parsed at start-up): node warns about a missing file, the executable does not', () => {
  const env = { NODE_EXTRA_CA_CERTS: path.join(tmp, 'missing-ca.pem') };
  const plain = run(process.execPath, ['-e', '0'], env);
  assert.match(plain.stderr, /extra certs/i, 'this node reads the variable (else the check below proves nothing)');
  const sea = run(SEA, ['version'], env);
  assert.is(sea.status, 0);
  assert.is(sea.stderr, '');
  assert.match(sea.stdout, /^manifold \S+ \(BPF ABI \d+\)\n$/);
});

test('the same output and exit status as the tsc module tree: help, version, usage errors', () => {
  const lines = [
    ['--help'], ['bind', '--help'], ['status', '--help'], ['register-pid', '--help'], ['apply', '--help'], ['metrics', '--help'],
    ['version'], ['version', '--json'], ['--version'],
    [], ['bogus'], ['bind', 'x'], ['--json', 'bind'], ['status', '--lock-timeout', 'x'], ['unregister', 'web', 'ipv5', 'tcp'],
    ['register-pid', 'abc', 'web', 'tcp', '127.0.0.1', '80'], ['bind', 'web', 'tcp', '1.2.3.4/33', '80', '--json'],
    ['verify', path.join(ROOT, 'packaging', 'examples', 'web.conf')], ['verify', '--json', path.join(ROOT, 'packaging', 'examples', 'dns.conf')],
    ['status', '--netns', '/nonexistent/netns', '--json'],
    // argumentRules (src/cli/args.ts) reads the argument list of the run, also with the prepared parser
    ['bind', 'web', 'tcp', '192.0.2.1', '80', '--label', 'x'], ['status', '--label', 'x'], ['status', '--no-json', '--json', '--netns', '/nonexistent/netns'],
    ['bind', 'web', 'tcp', '192.0.2.1', '80', '--netns', '/a', '--netns', '/nonexistent/netns'], ['--lock-timeout', '5', '--lock-timeout', 'x', 'status'],
  ];
  for (const args of lines) {
    const a = run(BIN, args);
    const b = tree(args);
    assert.equal(a, b, `manifold ${args.join(' ')}`);
  }
});

test('the version comes from the program directory when it runs: VERSION beside the executable, through a symlink too', () => {
  assert.is(run(SEA, ['version']).stdout, tree(['version']).stdout, 'a checkout prints package.json\'s version');
  const dir = path.join(tmp, 'lib');
  fs.mkdirSync(dir);
  fs.copyFileSync(SEA, path.join(dir, 'manifold'));
  fs.chmodSync(path.join(dir, 'manifold'), 0o755);
  fs.writeFileSync(path.join(dir, 'VERSION'), '9.8.7~test\n');
  assert.match(run(path.join(dir, 'manifold'), ['version']).stdout, /^manifold 9\.8\.7~test \(BPF ABI \d+\)\n$/);
  assert.is(run(path.join(dir, 'manifold'), ['--version']).stdout, '9.8.7~test\n');
  fs.mkdirSync(path.join(tmp, 'bin'));
  fs.symlinkSync('../lib/manifold', path.join(tmp, 'bin', 'manifold'));
  assert.match(run(path.join(tmp, 'bin', 'manifold'), ['version', '--json']).stdout, /"version": "9\.8\.7~test"/);
  assert.match(run(SEA, ['version'], { MANIFOLD_VERSION_OVERRIDE: '1.2.3-env' }).stdout, /^manifold 1\.2\.3-env /, 'the environment of the run');
});

test('help is wrapped at the terminal\'s width when stdout is one', () => {
  const r = spawnSync('script', ['-qec', `stty cols 64; ${BIN} --help`, '/dev/null'], { encoding: 'utf8', env: ENV, timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  const width = Math.max(...r.stdout.split(/\r?\n/).map((l) => l.length));
  assert.ok(width <= 64 && width > 40, `help lines at most 64 columns, got ${width}`);
  const t = spawnSync('script', ['-qec', `stty cols 64; ${process.execPath} ${TREE} --help`, '/dev/null'], { encoding: 'utf8', env: ENV, timeout: 60_000 });
  assert.is(r.stdout, t.stdout);
});

test('started as manifold-generator, it is the generator (and prints what the generator module prints)', () => {
  const env = { MANIFOLD_CONFIG_DIRS: path.join(ROOT, 'packaging', 'examples'), MANIFOLD_GENERATOR_LOG: 'stderr', SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0', MANIFOLD_SYSTEMD_VERSION: '252' };
  const viaLink = run(path.join(ROOT, 'build', 'sea', 'manifold-generator'), ['--dry-run'], env);
  assert.is(viaLink.status, 0, viaLink.stderr);
  assert.match(viaLink.stdout, /^# would write web\.socket\.d\/50-manifold\.conf$/m);
  const byName = run(SEA, ['--dry-run'], env, '/anywhere/manifold-generator');
  assert.equal(byName, viaLink, 'the name it was started under decides, not the file');
  const script = path.join(tmp, 'gen.mjs');
  fs.writeFileSync(script, `import { run } from ${JSON.stringify(path.join(ROOT, 'build', 'src', 'generator', 'run.js'))};\nprocess.exitCode = run(process.argv.slice(2));\n`);
  assert.equal(run(process.execPath, [script, '--dry-run'], env), viaLink);
  const cli = run(SEA, ['--dry-run'], env);
  assert.is(cli.status, 2, 'under its own name it is the CLI');
  assert.match(cli.stderr, /^manifold: error: missing command/);
});

test('yargs messages are English whatever the locale (its locale files are not shipped), so usage errors are explained', () => {
  const de = { LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' };
  // src/cli/usage.ts rewrites yargs' English messages: these only come out when yargs spoke English.
  assert.match(run(SEA, ['bind', 'web'], de).stderr, /^manifold: error: missing arguments PROTOCOL PREFIX PORT of "bind"/m);
  assert.match(run(SEA, ['status', '--bogus'], de).stderr, /^manifold: error: unknown option --bogus for "status"/m);
});

test.run();
