/**
 * Escaping of control characters in human-readable output
 * (src/core/escape.ts) and its use by every text sink: CLI lines, error
 * messages, config problems, journal MESSAGE=, sd_notify STATUS= and the
 * generator's log. The CLI is run for real on hostile arguments (it fails
 * before touching any state: --bpffs names a directory that is no bpffs).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeCodeUnit, escapeControls, escapeJson, hasUnsafeCharacters } from '../../src/core/escape.js';
import { configError, formatProblem } from '../../src/config/types.js';
import { journalFields, prefixedStderrLines } from '../../src/log/journal.js';
import { notifyState, statusText } from '../../src/log/notify.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');

/** Every code unit that must never reach output raw. */
function unsafeUnits(): number[] {
  const out: number[] = [];
  for (let c = 0; c <= 0x1f; c++) out.push(c);
  for (let c = 0x7f; c <= 0x9f; c++) out.push(c);
  out.push(0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069);
  return out;
}

/** True when the text holds a raw unsafe character (the same definition, written independently). */
function rawUnsafe(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || [0x061c, 0x200e, 0x200f].includes(c) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return true;
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = text.charCodeAt(i + 1);
      if (n >= 0xdc00 && n <= 0xdfff) i++;
      else return true;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

test('each C0, DEL, C1, bidi and separator character is escaped as \\xHH or \\uHHHH', () => {
  for (const c of unsafeUnits()) {
    const s = String.fromCharCode(c);
    const want = c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
    assert.is(escapeControls(`a${s}b`), `a${want}b`, `U+${c.toString(16)}`);
    assert.is(escapeCodeUnit(c), want);
    assert.ok(hasUnsafeCharacters(s));
  }
});

test('ESC sequences, BEL, CR and backspace become visible text', () => {
  assert.is(escapeControls('\x1b]0;pwned\x07'), '\\x1b]0;pwned\\x07');
  assert.is(escapeControls('\x1b[2J\x1b[H'), '\\x1b[2J\\x1b[H');
  assert.is(escapeControls('ok\rFAKE'), 'ok\\x0dFAKE');
  assert.is(escapeControls('abc\b\b\bxyz'), 'abc\\x08\\x08\\x08xyz');
  assert.is(escapeControls('\u009b31m'), '\\x9b31m', '8-bit CSI');
  assert.is(escapeControls('user\u202etxt.exe'), 'user\\u202etxt.exe', 'RLO');
});

test('TAB and LF are kept only when asked', () => {
  assert.is(escapeControls('a\tb\nc'), 'a\\x09b\\x0ac');
  assert.is(escapeControls('a\tb\nc', '\t'), 'a\tb\\x0ac');
  assert.is(escapeControls('a\tb\nc', '\n'), 'a\\x09b\nc');
  assert.is(escapeControls('a\tb\nc\r', '\t\n'), 'a\tb\nc\\x0d');
});

test('unpaired surrogates are escaped, pairs and ordinary text are not', () => {
  assert.is(escapeControls('\ud800'), '\\ud800');
  assert.is(escapeControls('x\udc00y'), 'x\\udc00y');
  assert.is(escapeControls('\udc00\ud800'), '\\udc00\\ud800');
  assert.is(escapeControls('😀'), '😀');
  assert.is(escapeControls('\ud83d\ude00\ud83d'), '😀\\ud83d');
  for (const s of ['plain', 'ünïcödé 日本', 'back\\slash', '\\x1b literal', 'zero\u200bwidth', '']) assert.is(escapeControls(s), s);
});

test('property: the result holds no raw unsafe character, is idempotent and reversible', () => {
  const unsafe = fc.constantFrom(...unsafeUnits().map((c) => String.fromCharCode(c)), '\ud800', '\udfff');
  const text = fc.array(fc.oneof(fc.string({ unit: 'binary' }), unsafe), { maxLength: 20 }).map((xs) => xs.join(''));
  fc.assert(
    fc.property(text, (s) => {
      const e = escapeControls(s);
      assert.not.ok(rawUnsafe(e), JSON.stringify(e));
      assert.is(escapeControls(e), e, 'idempotent');
      assert.ok(e.length <= s.length * 6, 'bounded');
      // Every escape decodes back to its character (backslashes in the input aside).
      if (!s.includes('\\')) {
        const back = e.replace(/\\x([0-9a-f]{2})|\\u([0-9a-f]{4})/g, (_m, x?: string, u?: string) => String.fromCharCode(parseInt((x ?? u) as string, 16)));
        assert.is(back, s);
      }
    }),
    { numRuns: 2000 },
  );
});

test('escapeJson: the same JSON value, no raw DEL, C1, bidi or separators', () => {
  const value = { comm: '\x1b]0;pwned\x07', c1: '\u009b\u0085', bidi: 'a\u202eb\u2066c', sep: 'x\u2028y', del: '\x7f', lone: '\ud800' };
  const text = escapeJson(JSON.stringify(value));
  assert.not.ok(rawUnsafe(text), text);
  assert.equal(JSON.parse(text), value);
  fc.assert(
    fc.property(fc.jsonValue(), fc.string({ unit: 'binary' }), (v, s) => {
      const t = escapeJson(JSON.stringify({ v, s }));
      assert.not.ok(rawUnsafe(t));
      assert.equal(JSON.parse(t), JSON.parse(JSON.stringify({ v, s })));
    }),
    { numRuns: 500 },
  );
});

test('config problems: one escaped line each; configError keeps its structure', () => {
  const p = { file: '/etc/manifold/a\nb.conf', line: 2, message: 'bad "\x1b[31m"' };
  assert.is(formatProblem(p), '/etc/manifold/a\\x0ab.conf:2: bad "\\x1b[31m"');
  const e = configError([p, { file: '/x.conf', line: 0, message: 'worse\r' }]);
  assert.is(e.message, 'invalid configuration (2 problems):\n  /etc/manifold/a\\x0ab.conf:2: bad "\\x1b[31m"\n  /x.conf: worse\\x0d');
});

test('journal MESSAGE= and the stderr stream fallback are escaped (LF and TAB kept)', () => {
  const items = journalFields('error', 3, 'x\x1b[2Jy\n\tz\u202e', { CODE: 'ERR_X' });
  assert.is(items[0], 'MESSAGE=x\\x1b[2Jy\n\tz\\u202e');
  assert.is(prefixedStderrLines(3, 'a\x07\nb\r'), '<3>a\\x07\n<3>b\\x0d\n');
});

test('sd_notify STATUS= is one escaped line', () => {
  assert.is(statusText('err\x1b]0;x\x07\nREADY=1'), 'err\\x1b]0;x\\x07 READY=1');
  assert.is(notifyState({ STATUS: 'a\nMAINPID=1', ERRNO: 5 }), 'STATUS=a MAINPID=1\nERRNO=5');
});

test('the generator log escapes messages', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-escape-test-'));
  try {
    fs.mkdirSync(path.join(dir, 'etc'));
    fs.writeFileSync(path.join(dir, 'etc', 'bad.conf'), '[Label]\nBind=tcp \x1b]0;pwned\x07 80\n', { mode: 0o644 });
    const r = spawnSync(path.join(ROOT, 'generators', 'manifold-generator'), ['--dry-run'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', MANIFOLD_CONFIG_DIRS: path.join(dir, 'etc'), SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0' },
    });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stderr, 'invalid prefix "\\u001b]0;pwned\\u0007" in Bind=', 'quoted as JSON');
    assert.not.ok(rawUnsafe(r.stderr.replace(/\n/g, '')), r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Run the CLI so that it fails before any state is touched. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const notBpf = os.tmpdir();
  const r = spawnSync(BIN, [...args, '--bpffs', notBpf], { encoding: 'utf8', env: { ...process.env, MANIFOLD_JOURNAL: '0', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: hostile arguments and file contents reach stderr and JSON escaped', () => {
  const evil = '\x1b]0;pwned\x07\x1b[2J\r\u009b\u202e\ud800';
  const cases: string[][] = [
    ['status', '--netns', `/nonexistent/${evil}`],
    ['bind', evil, 'tcp', '192.0.2.1', '80'],
    ['bind', 'web', evil, '192.0.2.1', '80'],
    ['bind', 'web', 'tcp', evil, '80'],
    ['bind', 'web', 'tcp', '192.0.2.1', evil],
    ['load', '--group', evil],
    ['register-pid', evil, 'web', 'tcp', '127.0.0.1', '80'],
    [`stat${evil}us`],
    ['status', `--x${evil}`],
  ];
  for (const args of cases) {
    for (const json of [false, true]) {
      const r = cli(json ? [...args, '--json'] : args);
      assert.is(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.not.ok(rawUnsafe(r.stderr.replace(/\n/g, '')), `stderr of ${JSON.stringify(args)}: ${JSON.stringify(r.stderr)}`);
      assert.not.ok(rawUnsafe(r.stdout.replace(/\n/g, '')), `stdout of ${JSON.stringify(args)}: ${JSON.stringify(r.stdout)}`);
      assert.match(r.stderr, /\\x1b|\\u001b/, 'ESC is shown escaped');
      if (json) assert.is((JSON.parse(r.stdout) as { error: { code: string } }).error.code.startsWith('ERR_'), true);
    }
  }
});

test('CLI: an apply file and a config file with escape sequences', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-escape-test-'));
  try {
    const apply = path.join(dir, 'b.json');
    fs.writeFileSync(apply, '{"bindings": [\x1b]0;pwned\x07\n\u009b\r]}');
    const conf = path.join(dir, 'c.conf');
    fs.writeFileSync(conf, '[Label]\nName=\x1b[31mred\nBind=tcp 10.0.0.0/8 \u202e80\n', { mode: 0o644 });
    for (const args of [['apply', apply, '--dry-run'], ['verify', conf], ['verify', conf, '--json']]) {
      const r = cli(args, { MANIFOLD_CONFIG_DIRS: dir });
      assert.ok(r.code === 1 || r.code === 2, `${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.not.ok(rawUnsafe(r.stderr.replace(/\n/g, '')), JSON.stringify(r.stderr));
      assert.not.ok(rawUnsafe(r.stdout.replace(/\n/g, '')), JSON.stringify(r.stdout));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
