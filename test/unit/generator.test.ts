/**
 * The systemd generator: escaping (against the real systemd-escape), the
 * kernel command line switch, rendering, and golden tests that run the real
 * generators/manifold-generator script on the fixture trees under
 * test/fixtures/generator/<case>/ (etc/manifold, run/manifold, usr/lib/manifold
 * as config dirs; optional env.json with extra environment) and compare its
 * output tree byte for byte with <case>/expected/ and its log with
 * <case>/expected.log (absent = empty). The case directory's path is written
 * as @ROOT@ and the pid as [PID] in the expected files. Cases render for
 * systemd 252 (MANIFOLD_SYSTEMD_VERSION) unless env.json says otherwise: the
 * *-pass-fds cases render Socket= for systemd >= 256.
 *
 * Regenerate the expected files after an intended change with:
 *   MANIFOLD_UPDATE_GOLDEN=1 node node_modules/uvu/bin.js build/test/unit generator
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { QUICK_MS } from '../helpers/wait.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerUnitFor, systemdEscape, systemdUnescape, unitNameProblem } from '../../src/config/unit-name.js';
import { generatorSwitch, kernelCommandLine, splitCmdline } from '../../src/generator/cmdline.js';
import fc from 'fast-check';
import { quoteExecWord, renderDropIns } from '../../src/generator/render.js';
import { PASS_FDS_TO_EXEC_SINCE, passesFdsToExec, runningSystemdVersion, versionFromMaps } from '../../src/generator/systemd-version.js';
import { dropInPathProblem } from '../../src/generator/write.js';
import { parseConfigText, verifyConfig } from '../../src/config/load.js';
import type { LabelConfig } from '../../src/config/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = path.join(ROOT, 'generators', 'manifold-generator');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'generator');
const UPDATE = process.env['MANIFOLD_UPDATE_GOLDEN'] === '1';
const CONFIG_SUBDIRS = ['etc/manifold', 'run/manifold', 'usr/lib/manifold'];

// Config files must be writable only by root (or the user running the
// test): the fixtures are copied out of the checkout, which may belong to
// anyone, into fresh directories with ordinary modes.
process.umask(0o022);

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-gen-test-'));
}

const COPIES = tmpdir();
process.once('exit', () => fs.rmSync(COPIES, { recursive: true, force: true }));
let copies = 0;

/** A copy of fixture case `name` (symlinks kept, modes 0755/0644) in a new directory; removed at exit. */
function copyFixture(name: string): string {
  const dest = path.join(COPIES, String(copies++), name);
  fs.cpSync(path.join(FIXTURES, name), dest, { recursive: true, verbatimSymlinks: true });
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dest);
  return dest;
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runGenerator(args: string[], env: Record<string, string>): RunResult {
  const r = spawnSync(SCRIPT, args, {
    encoding: 'utf8',
    // systemd 252 unless a case says otherwise (env.json): the output must not depend on the host's systemd.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', MANIFOLD_GENERATOR_LOG: 'stderr', SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0', MANIFOLD_SYSTEMD_VERSION: '252', ...env },
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file (content) and symlink ("-> target") under dir, by relative path. */
function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const full = path.join(dir, rel);
    for (const e of fs.readdirSync(full, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) out.set(r, `-> ${fs.readlinkSync(path.join(dir, r))}`);
      else out.set(r, fs.readFileSync(path.join(dir, r), 'utf8'));
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

function normalize(text: string, caseDir: string): string {
  return text.split(caseDir).join('@ROOT@').replace(/\[\d+\]/g, '[PID]');
}

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8', timeout: QUICK_MS }).status === 0;
}

// ---------------------------------------------------------------- escaping

const TRICKY = ['web', 'foo-bar', '.hidden', 'a/b', '/', 'x/', '-x', 'a\\b', 'a\\x2db', 'web@8080', 'x:y_z.w', 'a b', 'ünïcödé', '日本', 'tab\there', 'per%cent', 'a.b.c', '..', 'semi;colon', 'quote"s', "apos'", 'A-Z_0-9', '~tilde', 'x='];

test('systemdEscape matches the systemd-escape binary', () => {
  // make deps installs systemd (APT_PACKAGES in the Makefile): its absence is a failure, not a skip.
  assert.ok(has('systemd-escape'), 'systemd-escape is installed (package systemd)');
  const r = spawnSync('systemd-escape', ['--', ...TRICKY], { encoding: 'utf8', timeout: QUICK_MS });
  assert.is(r.status, 0, r.stderr);
  const expected = r.stdout.replace(/\n$/, '').split(' ');
  assert.equal(TRICKY.map(systemdEscape), expected);
});

test('registerUnitFor: the socket stem verbatim, which Sockets=%i.socket maps back', () => {
  for (const stem of ['web', 'foo-bar', 'web@8080', 'a\\x2db', 'x:y_z', 'dns-tcp', '.x', 'a.b-c']) {
    const unit = registerUnitFor(`${stem}.socket`);
    assert.is(unit, `manifold-register@${stem}.service`);
    const instance = unit.slice('manifold-register@'.length, -'.service'.length);
    assert.is(`${instance}.socket`, `${stem}.socket`, '%i.socket is the socket');
    assert.is(unitNameProblem(unit, 'service'), null, unit);
  }
});

test('systemdUnescape round-trips systemdEscape', () => {
  for (const s of ['web', 'foo-bar', 'web@8080', 'a\\x2db', 'x:y_z', 'ünï', '.x']) assert.is(systemdUnescape(systemdEscape(s)), s);
  assert.ok(has('systemd-escape'), 'systemd-escape is installed (package systemd)');
  for (const s of TRICKY) {
    const esc = systemdEscape(s);
    const r = spawnSync('systemd-escape', ['--unescape', '--', esc], { encoding: 'utf8', timeout: QUICK_MS });
    assert.is(r.status, 0, r.stderr);
    assert.is(systemdUnescape(esc), r.stdout.replace(/\n$/, ''), esc);
  }
});

test('unitNameProblem', () => {
  assert.is(unitNameProblem('web.socket', 'socket'), null);
  assert.is(unitNameProblem('web@8080.socket', 'socket'), null);
  assert.is(unitNameProblem('a\\x2db.socket', 'socket'), null);
  assert.ok(unitNameProblem('web.service', 'socket'));
  assert.ok(unitNameProblem('.socket', 'socket'));
  assert.match(unitNameProblem('web@.socket', 'socket') ?? '', /template/);
  assert.ok(unitNameProblem('@x.socket', 'socket'));
  assert.ok(unitNameProblem('we b.socket', 'socket'));
  assert.ok(unitNameProblem('wéb.service', 'service'));
  assert.ok(unitNameProblem(`${'a'.repeat(250)}.service`, 'service'));
  assert.is(unitNameProblem(`${'a'.repeat(247)}.service`, 'service'), null);
});

// ---------------------------------------------------------------- kernel command line

test('splitCmdline removes quotes', () => {
  assert.equal(splitCmdline(' a  b="c d"\te\'f g\' "h" \n'), ['a', 'b=c d', 'ef g', 'h']);
  assert.equal(splitCmdline(''), []);
});

test('kernelCommandLine: the override, else in a container PID 1\'s arguments (the kernel\'s are the host\'s), else /proc/cmdline', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-cmdline-'));
  try {
    fs.mkdirSync(path.join(root, 'proc', '1'), { recursive: true });
    fs.mkdirSync(path.join(root, 'run', 'systemd'), { recursive: true });
    fs.writeFileSync(path.join(root, 'proc', 'cmdline'), 'BOOT_IMAGE=/vmlinuz quiet manifold.generator=0\n');
    fs.writeFileSync(path.join(root, 'proc', '1', 'cmdline'), '/sbin/init\0manifold.generator=1\0');
    const r = `${root}/`;
    assert.is(kernelCommandLine({ SYSTEMD_PROC_CMDLINE: 'x=1' }, r), 'x=1');
    assert.is(kernelCommandLine({}, r), 'BOOT_IMAGE=/vmlinuz quiet manifold.generator=0\n');
    assert.is(kernelCommandLine({ SYSTEMD_VIRTUALIZATION: 'vm:kvm' }, r), 'BOOT_IMAGE=/vmlinuz quiet manifold.generator=0\n');
    assert.is(kernelCommandLine({ SYSTEMD_VIRTUALIZATION: 'container:systemd-nspawn' }, r), '/sbin/init manifold.generator=1');
    assert.is(generatorSwitch(kernelCommandLine({ SYSTEMD_VIRTUALIZATION: 'container:docker' }, r), false).enabled, true, 'the host\'s switch does not reach the container');
    assert.is(kernelCommandLine({}, r), 'BOOT_IMAGE=/vmlinuz quiet manifold.generator=0\n', 'no marker file yet');
    fs.writeFileSync(path.join(root, 'run', 'systemd', 'container'), 'lxc\n');
    assert.is(kernelCommandLine({}, r), '/sbin/init manifold.generator=1', 'systemd\'s marker file without the variable');
    fs.rmSync(path.join(root, 'proc', '1', 'cmdline'));
    assert.is(kernelCommandLine({ SYSTEMD_VIRTUALIZATION: 'container:lxc' }, r), '', 'unreadable: empty (the generator runs)');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('generatorSwitch', () => {
  assert.is(generatorSwitch('', false).enabled, true);
  assert.is(generatorSwitch('quiet manifold.generator=0', false).enabled, false);
  assert.is(generatorSwitch('manifold.generator=off manifold.generator', false).enabled, true);
  assert.is(generatorSwitch('manifold.generator=no', false).word, 'manifold.generator=no');
  assert.is(generatorSwitch('"manifold.generator=false"', false).enabled, false);
  assert.is(generatorSwitch('rd.manifold.generator=0', false).enabled, true);
  assert.is(generatorSwitch('rd.manifold.generator=0', true).enabled, false);
  assert.is(generatorSwitch('manifold.generatorx=0 xmanifold.generator=0', false).enabled, true);
  const bad = generatorSwitch('manifold.generator=maybe', false);
  assert.is(bad.enabled, true);
  assert.equal(bad.invalid, ['manifold.generator=maybe']);
});

// ---------------------------------------------------------------- rendering

function unit(text: string, file = '/etc/manifold/x.conf'): LabelConfig {
  const r = parseConfigText(text, file);
  assert.equal(r.problems, []);
  return r.unit as LabelConfig;
}

test('quoteExecWord', () => {
  assert.is(quoteExecWord('/usr/bin/manifold'), '/usr/bin/manifold');
  assert.is(quoteExecWord('/opt/a b/manifold'), '"/opt/a b/manifold"');
  assert.is(quoteExecWord('/opt/%n/$X/"q"\\'), '"/opt/%%n/$$X/\\"q\\"\\\\"');
});

test('render: Registration= picks the ExecStartPost= prefix', () => {
  const req = renderDropIns([unit('[Label]\nService=s.service\nListen=tcp 127.0.0.1 1\n')], { manifoldBin: '/usr/bin/manifold' });
  assert.match(req[0]?.content ?? '', /\nExecStartPost=\+\/usr\/bin\/manifold register-pid \$MAINPID x tcp 127\.0\.0\.1 1\n/);
  const opt = renderDropIns([unit('[Label]\nService=s.service\nListen=tcp 127.0.0.1 1\nRegistration=optional\n')], { manifoldBin: '/usr/bin/manifold' });
  assert.match(opt[0]?.content ?? '', /\nExecStartPost=-\+\/usr\/bin\/manifold /);
});

test('render: SourcePath escapes %, IPv6 is canonical, labels without sources give nothing', () => {
  const files = renderDropIns([unit('[Label]\nName=x\nService=s.service\nListen=udp 2001:DB8:0:0::1 53\n', '/etc/manifold/50%.conf')], { manifoldBin: '/b' });
  assert.match(files[0]?.content ?? '', /SourcePath=\/etc\/manifold\/50%%\.conf\n/);
  assert.match(files[0]?.content ?? '', / udp 2001:db8::1 53\n/);
  assert.equal(renderDropIns([unit('[Label]\nBind=tcp 10.0.0.0/8 0\n')], { manifoldBin: '/b' }), []);
});

test('render: Socket= as the register template (default) or PassFileDescriptorsToExec= (systemd >= 256)', () => {
  const u = unit('[Label]\nName=web\nSocket=web.socket\n');
  const old = renderDropIns([u], { manifoldBin: '/usr/bin/manifold' });
  assert.equal(old.map((f) => f.path), ['manifold-register@web.service.d/50-manifold.conf', 'web.socket.d/50-manifold.conf']);
  assert.equal(renderDropIns([u], { manifoldBin: '/usr/bin/manifold', socketForm: 'register-template' }), old);
  const pass = renderDropIns([u], { manifoldBin: '/usr/bin/manifold', socketForm: 'pass-fds' });
  assert.equal(pass.map((f) => f.path), ['web.socket.d/50-manifold.conf']);
  assert.match(pass[0]?.content ?? '', /\n\[Socket\]\nPassFileDescriptorsToExec=yes\nExecStartPost=-\+\/usr\/bin\/manifold register web\n$/);
  assert.match(pass[0]?.content ?? '', /\nWants=manifold\.service\nAfter=manifold\.service\n/);
  assert.not.match(pass[0]?.content ?? '', /manifold-register@/);
});

// ---------------------------------------------------------------- systemd version

const DEBIAN_MAPS = `55d0c0a4a000-55d0c0a4e000 r--p 00000000 fe:01 1310841                    /usr/lib/systemd/systemd
7f7b5e0c8000-7f7b5e133000 r--p 00000000 00:29 1550419                    /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so
7f7b5e200000-7f7b5e233000 r--p 00000000 00:29 1550420                    /usr/lib/x86_64-linux-gnu/libc.so.6
`;

test('versionFromMaps: the libsystemd-shared-<version>.so PID 1 maps', () => {
  assert.is(versionFromMaps(DEBIAN_MAPS), 257);
  assert.is(versionFromMaps('7f-7f r-xp 0 0:1 2 /usr/lib/systemd/libsystemd-shared-252.so (deleted)\n'), 252);
  assert.is(versionFromMaps('7f-7f r-xp 0 0:1 2 /usr/lib64/systemd/libsystemd-shared-256.11-1.fc41.so\n'), 256);
  assert.is(versionFromMaps('7f-7f r-xp 0 0:1 2 /usr/lib/libc.so.6\n7f-7f r-xp 0 0:1 2 /sbin/init\n'), null);
  assert.is(versionFromMaps('7f-7f r-xp 0 0:1 2 /usr/lib/libsystemd-shared-.so\n'), null);
  assert.is(versionFromMaps(''), null);
});

test('runningSystemdVersion: $MANIFOLD_SYSTEMD_VERSION, else /proc/1/maps; unknown when unreadable', () => {
  const never = (): string => { throw new Error('must not read maps'); };
  assert.equal(runningSystemdVersion({ MANIFOLD_SYSTEMD_VERSION: '256' }, never), { version: 256, source: 'MANIFOLD_SYSTEMD_VERSION' });
  assert.equal(runningSystemdVersion({}, () => DEBIAN_MAPS), { version: 257, source: '/proc/1/maps' });
  const bad = runningSystemdVersion({ MANIFOLD_SYSTEMD_VERSION: '25x' }, () => DEBIAN_MAPS);
  assert.is(bad.version, 257);
  assert.match(bad.warning ?? '', /^ignoring MANIFOLD_SYSTEMD_VERSION="25x": not a version number$/);
  const eacces = runningSystemdVersion({}, () => { throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }); });
  assert.equal(eacces, { version: null, source: 'cannot read /proc/1/maps (EACCES)' });
  assert.is(runningSystemdVersion({}, () => 'nothing\n').version, null);
  assert.is(PASS_FDS_TO_EXEC_SINCE, 256);
  assert.is(passesFdsToExec({ version: 255, source: '' }), false);
  assert.is(passesFdsToExec({ version: 256, source: '' }), true);
  assert.is(passesFdsToExec({ version: null, source: '' }), false);
});

test('the script picks the rendering from the systemd version: 255 template, 256 pass-fds; a bad override is logged', () => {
  const out = tmpdir();
  try {
    for (const [v, wantPass] of [['255', false], ['256', true], ['999', true], ['252', false]] as const) {
      const dir = path.join(out, v);
      fs.mkdirSync(dir);
      const r = runGenerator([dir], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated'), MANIFOLD_SYSTEMD_VERSION: v });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stderr, '', v);
      const web = fs.readFileSync(path.join(dir, 'web.socket.d/50-manifold.conf'), 'utf8');
      assert.is(web.includes('PassFileDescriptorsToExec=yes\nExecStartPost=-+/usr/bin/manifold register web\n'), wantPass, v);
      assert.is(web.includes('Wants=manifold-register@web.service\n'), !wantPass, v);
      assert.is(fs.existsSync(path.join(dir, 'manifold-register@web.service.d')), !wantPass, v);
    }
    const r = runGenerator(['--dry-run'], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated'), MANIFOLD_SYSTEMD_VERSION: 'new' });
    assert.is(r.status, 0);
    assert.match(r.stderr, /^<28>manifold-generator\[\d+\]: ignoring MANIFOLD_SYSTEMD_VERSION="new": not a version number$/m);
    assert.ok(r.stdout.includes('web.socket.d/50-manifold.conf'));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- golden tests

const cases = fs.readdirSync(FIXTURES).filter((c) => fs.statSync(path.join(FIXTURES, c)).isDirectory()).sort();

for (const name of cases) {
  test(`golden: ${name}`, () => {
    const source = path.join(FIXTURES, name);
    const caseDir = copyFixture(name);
    const out = tmpdir();
    try {
      const envFile = path.join(caseDir, 'env.json');
      const extra = fs.existsSync(envFile) ? (JSON.parse(fs.readFileSync(envFile, 'utf8')) as Record<string, string>) : {};
      const dirs = CONFIG_SUBDIRS.map((d) => path.join(caseDir, d)).join(':');
      const normal = path.join(out, 'normal');
      const early = path.join(out, 'early');
      const late = path.join(out, 'late');
      for (const d of [normal, early, late]) fs.mkdirSync(d);
      const r = runGenerator([normal, early, late], { MANIFOLD_CONFIG_DIRS: dirs, ...extra });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stdout, '');
      const actual = new Map([...readTree(normal)].map(([k, v]) => [k, normalize(v, caseDir)]));
      const log = normalize(r.stderr, caseDir);
      const expectedDir = path.join(source, 'expected');
      const logFile = path.join(source, 'expected.log');
      if (UPDATE) {
        fs.rmSync(expectedDir, { recursive: true, force: true });
        for (const [rel, content] of actual) {
          fs.mkdirSync(path.dirname(path.join(expectedDir, rel)), { recursive: true });
          fs.writeFileSync(path.join(expectedDir, rel), content);
        }
        if (log) fs.writeFileSync(logFile, log);
        else fs.rmSync(logFile, { force: true });
      }
      const expected = readTree(expectedDir);
      assert.equal([...actual.keys()].sort(), [...expected.keys()].sort(), 'same files');
      for (const [rel, content] of expected) assert.fixture(actual.get(rel) ?? '', content, rel);
      assert.fixture(log, fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '', 'log');
      assert.equal(readTree(early).size + readTree(late).size, 0, 'nothing in the early and late dirs');
      assert.equal([...actual.keys()].filter((k) => /(^|\/)\.#/.test(k)), [], 'no temporary files left');
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
}

// ---------------------------------------------------------------- behaviour of the script

function fixtureDirs(name: string): string {
  const copy = copyFixture(name);
  return CONFIG_SUBDIRS.map((d) => path.join(copy, d)).join(':');
}

test('a bad file is logged with file:line and the others are still generated', () => {
  const out = tmpdir();
  try {
    const r = runGenerator([out, out, out], { MANIFOLD_CONFIG_DIRS: fixtureDirs('bad-file') });
    assert.is(r.status, 0);
    assert.match(r.stderr, /^<27>manifold-generator\[\d+\]: \S+\/broken\.conf:2: Bind= expects/m);
    assert.match(r.stderr, /zz-conflict\.conf:3: Bind= tcp 192\.0\.2\.0\/24 70-90 conflicts with tcp 192\.0\.2\.0\/24 80 of label "good"/);
    assert.ok(fs.existsSync(path.join(out, 'good.socket.d/50-manifold.conf')));
    assert.ok(fs.existsSync(path.join(out, 'other.service.d/50-manifold-other.conf')));
    assert.not.ok(fs.existsSync(path.join(out, 'broken.socket.d')));
    assert.not.ok(fs.existsSync(path.join(out, 'conflict.socket.d')));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('manifold.generator=0 on the kernel command line: nothing written, one line logged, exit 0', () => {
  const out = tmpdir();
  try {
    const r = runGenerator([out, out, out], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated'), SYSTEMD_PROC_CMDLINE: 'quiet manifold.generator=0 splash' });
    assert.is(r.status, 0);
    assert.is(fs.readdirSync(out).length, 0);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.is(lines.length, 1);
    assert.match(lines[0] ?? '', /^<30>manifold-generator\[\d+\]: disabled by "manifold\.generator=0"/);
    const rd = runGenerator([out, out, out], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated'), SYSTEMD_PROC_CMDLINE: 'rd.manifold.generator=0' });
    assert.is(rd.status, 0);
    assert.ok(fs.readdirSync(out).length > 0, 'rd. only applies in the initrd');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('--dry-run prints paths and contents and writes nothing', () => {
  const out = tmpdir();
  try {
    const r = runGenerator(['--dry-run', out, out, out], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated') });
    assert.is(r.status, 0, r.stderr);
    assert.is(fs.readdirSync(out).length, 0);
    assert.ok(r.stdout.includes(`# would write ${out}/web.socket.d/50-manifold.conf\n# Automatically generated by manifold-generator`));
    assert.ok(r.stdout.includes('Wants=manifold-register@dns-tcp.service\n'));
    const none = runGenerator(['--dry-run'], { MANIFOLD_CONFIG_DIRS: fixtureDirs('empty') });
    assert.is(none.status, 0);
    assert.is(none.stdout, '# nothing to write\n');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('usage errors and unwritable output exit 1; rerunning replaces files atomically', () => {
  const out = tmpdir();
  try {
    assert.is(runGenerator([], {}).status, 1);
    assert.is(runGenerator([out, out], {}).status, 1);
    assert.is(runGenerator(['--frobnicate', out], {}).status, 1);
    assert.is(runGenerator([out], { MANIFOLD_BIN: 'manifold', MANIFOLD_CONFIG_DIRS: fixtureDirs('empty') }).status, 1);
    // A newline would start a new directive in the unit file.
    const nl = runGenerator([out], { MANIFOLD_BIN: '/usr/bin/manifold\nExecStartPost=/bin/evil', MANIFOLD_CONFIG_DIRS: fixtureDirs('notify-service') });
    assert.is(nl.status, 1);
    assert.match(nl.stderr, 'MANIFOLD_BIN must be an absolute path without control characters, got "/usr/bin/manifold\\nExecStartPost=/bin/evil"');
    assert.equal(fs.readdirSync(out), []);
    const asFile = path.join(out, 'file');
    fs.writeFileSync(asFile, '');
    const bad = runGenerator([asFile], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated') });
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /cannot write/);
    const normal = path.join(out, 'n');
    fs.mkdirSync(path.join(normal, 'web.socket.d'), { recursive: true });
    fs.writeFileSync(path.join(normal, 'web.socket.d/50-manifold.conf'), 'stale');
    assert.is(runGenerator([normal], { MANIFOLD_CONFIG_DIRS: fixtureDirs('socket-activated') }).status, 0);
    assert.match(fs.readFileSync(path.join(normal, 'web.socket.d/50-manifold.conf'), 'utf8'), /Wants=manifold-register@web\.service/);
    assert.equal(fs.readdirSync(path.join(normal, 'web.socket.d')), ['50-manifold.conf']);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- what verify accepts, the generator writes

/** Run the real generator on one config file; returns its result, the files written and verify's problems. */
function generateOne(text: string, fileName = 'x.conf'): { r: RunResult; files: string[]; problems: string[] } {
  const root = tmpdir();
  try {
    const etc = path.join(root, 'etc');
    const out = path.join(root, 'out');
    fs.mkdirSync(etc);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(etc, fileName), text, { mode: 0o644 });
    const r = runGenerator([out, out, out], { MANIFOLD_CONFIG_DIRS: etc, MANIFOLD_BIN: '/usr/bin/manifold' });
    const problems = verifyConfig([path.join(etc, fileName)]).map((p) => p.message);
    return { r, files: [...readTree(out).keys()].sort(), problems };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Config texts at both sides of each NAME_MAX boundary, with the number of files the generator writes when valid. */
function boundaryCases(): Array<{ what: string; text: string; valid: boolean; files: number }> {
  const out: Array<{ what: string; text: string; valid: boolean; files: number }> = [];
  // "manifold-register@STEM.service.d" ≤ 255 bytes: STEM ≤ 227.
  for (const n of [227, 228]) out.push({ what: `socket stem of ${n}`, text: `[Label]\nName=web\nSocket=${'s'.repeat(n)}.socket\n`, valid: n <= 227, files: 2 });
  // "SERVICE.d" ≤ 255 bytes: SERVICE ≤ 253 characters.
  for (const n of [245, 246]) out.push({ what: `service of ${n + 8}`, text: `[Label]\nName=web\nService=${'v'.repeat(n)}.service\nListen=tcp 127.0.0.1 80\n`, valid: n + 8 <= 253, files: 1 });
  // "50-manifold-LABEL.conf" ≤ 255 bytes: LABEL ≤ 238.
  for (const n of [238, 239]) out.push({ what: `label of ${n} with Service=`, text: `[Label]\nName=${'l'.repeat(n)}\nService=api.service\nListen=tcp 127.0.0.1 80\n`, valid: n <= 238, files: 1 });
  // Without Service= a label may have all 255 bytes.
  out.push({ what: 'label of 255 with Socket=', text: `[Label]\nName=${'l'.repeat(255)}\nSocket=web.socket\n`, valid: true, files: 2 });
  return out;
}

test('output and config directories given with "//", "/./" or a trailing "/" give the same files and messages', () => {
  const out = tmpdir();
  try {
    const plain = path.join(out, 'plain');
    const odd = path.join(out, 'odd');
    fs.mkdirSync(plain);
    fs.mkdirSync(odd);
    const conf = fixtureDirs('socket-activated');
    assert.is(runGenerator([plain], { MANIFOLD_CONFIG_DIRS: conf }).status, 0);
    const oddConf = conf.split(':').map((d) => `${d.replace(/^\//, '//').replace(/\/([^/]+)$/, '/./$1')}/`).join(':');
    assert.is(runGenerator([`${odd.replace(/^\//, '//')}/./`], { MANIFOLD_CONFIG_DIRS: oddConf }).status, 0);
    const tree = (d: string): string[] => (fs.readdirSync(d, { recursive: true }) as string[]).sort();
    assert.ok(tree(plain).length > 0);
    assert.equal(tree(odd), tree(plain));
    for (const f of tree(plain)) if (fs.statSync(path.join(plain, f)).isFile()) assert.is(fs.readFileSync(path.join(odd, f), 'utf8'), fs.readFileSync(path.join(plain, f), 'utf8'), f);
    // A failure names the normalised path.
    const blocked = path.join(out, 'blocked');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'web.socket.d'), '');
    const r = runGenerator([`${blocked}//`], { MANIFOLD_CONFIG_DIRS: conf });
    assert.is(r.status, 1);
    assert.match(r.stderr, `cannot write ${blocked}/web.socket.d/`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('NAME_MAX boundaries: verify accepts exactly what the generator writes, all of a label or nothing', () => {
  for (const c of boundaryCases()) {
    const { r, files, problems } = generateOne(c.text);
    assert.is(r.status, 0, `${c.what}: ${r.stderr}`);
    if (c.valid) {
      assert.equal(problems, [], c.what);
      assert.is(files.length, c.files, `${c.what}: ${files.join(' ')}`);
      assert.is(r.stderr, '', c.what);
    } else {
      assert.is(problems.length, 1, `${c.what}: ${problems.join('; ')}`);
      assert.match(problems[0] ?? '', /would be 256 bytes long; file names may have at most 255/);
      assert.equal(files, [], `${c.what}: nothing written`);
      assert.match(r.stderr, /would be 256 bytes long.*\(file skipped\)/, c.what);
    }
  }
});

test('a write that fails part-way leaves none of the label\'s drop-ins', () => {
  const root = tmpdir();
  try {
    const etc = path.join(root, 'etc');
    const out = path.join(root, 'out');
    fs.mkdirSync(etc);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(etc, 'web.conf'), '[Label]\nSocket=web.socket\n', { mode: 0o644 });
    fs.writeFileSync(path.join(etc, 'dns.conf'), '[Label]\nSocket=dns.socket\n', { mode: 0o644 });
    // The register unit's drop-in directory cannot be created: a file has its name.
    fs.writeFileSync(path.join(out, 'manifold-register@web.service.d'), 'in the way');
    const r = runGenerator([out], { MANIFOLD_CONFIG_DIRS: etc });
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /web\.conf: label "web" skipped, none of its drop-ins written: cannot write \S+manifold-register@web\.service\.d\/50-manifold\.conf/);
    const tree = [...readTree(out).keys()].sort();
    assert.equal(tree, ['dns.socket.d/50-manifold.conf', 'manifold-register@dns.service.d/50-manifold.conf', 'manifold-register@web.service.d'], 'the other label is written; web.socket.d holds nothing');
    assert.equal(fs.readdirSync(path.join(out, 'web.socket.d')), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('property: verify refuses a label for its length exactly when the generator could not write it', () => {
  const stem = fc
    .tuple(fc.constantFrom('a', 'Z', '0', '_'), fc.string({ unit: fc.constantFrom('a', 'b', '-', '.', ':', '_', '@', '\\x2d'), minLength: 190, maxLength: 250 }))
    .map(([h, t]) => `${h}${t}`);
  const label = fc
    .tuple(fc.constantFrom('a', 'Z', '9', '_'), fc.string({ unit: fc.constantFrom('a', '-', '.', '@', '+', '='), minLength: 200, maxLength: 254 }))
    .map(([h, t]) => `${h}${t}`);
  const listen = (parseConfigText('[Label]\nService=s.service\nListen=udp ::1 53\n', '/x.conf').unit as LabelConfig).listens;
  fc.assert(
    fc.property(label, stem, fc.boolean(), (l, st, viaSocket) => {
      const unitName = `${st}.${viaSocket ? 'socket' : 'service'}`;
      const text = viaSocket ? `[Label]\nName=${l}\nSocket=${unitName}\n` : `[Label]\nName=${l}\nService=${unitName}\nListen=udp ::1 53\n`;
      const parsed = parseConfigText(text, '/etc/manifold/p.conf');
      // The same label rendered without any validation.
      const raw: LabelConfig = {
        name: l, file: '/etc/manifold/p.conf', nameLine: 2, binds: [], registration: 'required',
        sockets: viaSocket ? [{ unit: unitName, line: 3 }] : [],
        service: viaSocket ? null : { unit: unitName, line: 3 },
        listens: viaSocket ? [] : listen, targets: [],
      };
      const writable = renderDropIns([raw], { manifoldBin: '/usr/bin/manifold' }).every((f) => dropInPathProblem(f) === null);
      const lengthProblems = parsed.problems.filter((p) => /would be \d+ bytes long; file names may have at most 255/.test(p.message));
      if (parsed.problems.length === 0) assert.ok(writable, `verify accepts ${text}`);
      if (!writable) assert.ok(parsed.problems.length > 0, `verify must refuse ${text}`);
      if (lengthProblems.length > 0 && lengthProblems.length === parsed.problems.length) assert.not.ok(writable, `refused only for length but writable: ${text}`);
    }),
    { numRuns: 3000 },
  );
});

test('the generator imports nothing heavy: no koffi, yargs, ipaddr.js, src/sys or src/cli', () => {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4] ?? '';
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else bare.add(spec);
    }
  };
  visit(path.join(ROOT, 'build/src/generator/main.js'));
  const files = [...seen].map((f) => path.relative(ROOT, f));
  assert.equal(files.filter((f) => /src\/(sys|cli)\//.test(f)), []);
  assert.equal([...bare].filter((s) => !s.startsWith('node:')), [], 'only node: builtins');
  assert.ok(files.length < 25, `${files.length} modules`);
});

test.run();
