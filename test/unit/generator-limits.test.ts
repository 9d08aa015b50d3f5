/**
 * The generator at its limits: kernel log records cut by UTF-8 bytes (and a
 * refused record not ending the log), output directories that are not
 * absolute, a config file with a huge number of problems next to good ones,
 * and file names a unit file cannot carry. Runs the compiled generator
 * (build/src/generator/main.js) with node, not the single executable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GeneratorLog, type KmsgDevice, Level, MAX_RECORD_BYTES, truncateUtf8 } from '../../src/generator/log.js';

process.umask(0o022);

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/generator/main.js');

function withDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-gen-limits-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function generate(args: string[], env: Record<string, string>, cwd?: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    cwd,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', MANIFOLD_GENERATOR_LOG: 'stderr', SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0', MANIFOLD_SYSTEMD_VERSION: '252', ...env },
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

/** Every file under dir, relative. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

// ---------------------------------------------------------------- /dev/kmsg

/** A /dev/kmsg that refuses (EINVAL) records over `limit` bytes, like the kernel. */
function fakeKmsg(limit: number): KmsgDevice & { records: string[]; refused: number; closed: boolean } {
  const dev = {
    records: [] as string[],
    refused: 0,
    closed: false,
    open: () => 42,
    write: (_fd: number, record: string) => {
      if (Buffer.byteLength(record, 'utf8') > limit) {
        dev.refused++;
        throw Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
      }
      dev.records.push(record);
    },
    close: () => {
      dev.closed = true;
    },
  };
  return dev;
}

test('kmsg: a line of 600 "é" (1200 bytes) is cut by bytes to fit a record, and later lines are still logged', () => {
  const dev = fakeKmsg(1024);
  const log = new GeneratorLog('kmsg', 'manifold-generator', dev);
  log.log(Level.err, 'é'.repeat(600));
  log.log(Level.info, 'after');
  log.close();
  assert.is(dev.refused, 0);
  assert.is(dev.records.length, 2);
  const first = dev.records[0] as string;
  assert.ok(Buffer.byteLength(first, 'utf8') <= MAX_RECORD_BYTES, `${Buffer.byteLength(first, 'utf8')} bytes`);
  assert.ok(Buffer.byteLength(first, 'utf8') > MAX_RECORD_BYTES - 4, 'cut no shorter than needed');
  assert.match(first, /^<27>manifold-generator\[\d+\]: (é)+…\n$/);
  assert.match(dev.records[1] ?? '', /^<30>manifold-generator\[\d+\]: after\n$/);
  assert.ok(dev.closed);
});

test('kmsg: a line break or escape in a message (a file name) is escaped, never a space: a record is one line', () => {
  const dev = fakeKmsg(1024);
  const log = new GeneratorLog('kmsg', 'manifold-generator', dev);
  log.log(Level.err, '/etc/manifold/nl\nx.conf: bad\r\x1b[2J');
  log.log(Level.err, '/etc/manifold/nl x.conf: bad');
  log.close();
  assert.equal(dev.records, ['<27>manifold-generator[' + process.pid + ']: /etc/manifold/nl\\x0ax.conf: bad\\x0d\\x1b[2J\n', '<27>manifold-generator[' + process.pid + ']: /etc/manifold/nl x.conf: bad\n']);
});

test('kmsg: a record the kernel still refuses is retried shorter; one never accepted is dropped, not the log', () => {
  const small = fakeKmsg(300);
  const log = new GeneratorLog('kmsg', 'manifold-generator', small);
  log.log(Level.err, `${'x'.repeat(2000)}`);
  log.log(Level.err, 'next');
  assert.is(small.records.length, 2);
  assert.ok(Buffer.byteLength(small.records[0] ?? '', 'utf8') <= 300);
  assert.match(small.records[0] ?? '', /x…\n$/);
  assert.ok(small.refused >= 1 && small.refused <= 5, `${small.refused} refusals`);
  const none = fakeKmsg(10);
  const log2 = new GeneratorLog('kmsg', 'manifold-generator', none);
  log2.log(Level.err, 'x'.repeat(5000));
  log2.log(Level.err, 'y');
  assert.is(none.records.length, 0);
  assert.ok(none.refused <= 12, `${none.refused} writes tried`);
  // Another error than EINVAL (the device is gone) ends logging to it, as before.
  let writes = 0;
  const broken: KmsgDevice = {
    open: () => 1,
    write: () => {
      writes++;
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    },
    close: () => undefined,
  };
  const log3 = new GeneratorLog('kmsg', 'manifold-generator', broken);
  log3.log(Level.err, 'a');
  log3.log(Level.err, 'b');
  assert.is(writes, 1);
});

test('kmsg: every record fits in MAX_RECORD_BYTES, whole code points, for any text', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 1500 }), fc.integer({ min: 0, max: 7 }), (text, level) => {
      const dev = fakeKmsg(MAX_RECORD_BYTES);
      new GeneratorLog('kmsg', 'manifold-generator', dev).log(level, text);
      assert.is(dev.records.length, 1);
      const rec = dev.records[0] as string;
      assert.ok(Buffer.byteLength(rec, 'utf8') <= MAX_RECORD_BYTES);
      assert.is(Buffer.from(rec, 'utf8').toString('utf8'), rec, 'no broken code point');
      assert.ok(rec.endsWith('\n') && rec.indexOf('\n') === rec.length - 1);
    }),
  );
});

test('truncateUtf8: at most N bytes, a prefix at a code point boundary, "…" only when cut', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer({ min: 3, max: 400 }), (text, max) => {
      const out = truncateUtf8(text, max);
      assert.ok(Buffer.byteLength(out, 'utf8') <= max);
      if (Buffer.byteLength(text, 'utf8') <= max) assert.is(out, text);
      else {
        assert.ok(out.endsWith('…'));
        const kept = out.slice(0, -1);
        assert.ok(text.startsWith(kept));
        assert.ok(!/[\ud800-\udbff]$/.test(kept), 'no half of a surrogate pair');
        const next = String.fromCodePoint(text.codePointAt(kept.length) as number);
        assert.ok(Buffer.byteLength(kept + next, 'utf8') > max - 3, 'cut no earlier than needed');
      }
    }),
  );
  assert.is(truncateUtf8('é'.repeat(10), 9), 'ééé…');
  assert.is(truncateUtf8('😀😀', 7), '😀…');
  assert.is(truncateUtf8('😀😀', 6), '…');
});

// ---------------------------------------------------------------- output directories

test('output directories that are not absolute ("" or relative) are refused: exit 1, nothing written anywhere', () => {
  withDir((root) => {
    const etc = path.join(root, 'etc');
    const cwd = path.join(root, 'cwd');
    fs.mkdirSync(etc);
    fs.mkdirSync(cwd);
    fs.writeFileSync(path.join(etc, 'web.conf'), '[Label]\nSocket=web.socket\nBind=tcp 192.0.2.0/24 80\n');
    const abs = path.join(root, 'out');
    for (const args of [[''], ['out2'], ['out2', abs, abs], [abs, 'early', abs], ['', '', ''], ['--dry-run', 'out2'], ['./out2']]) {
      const r = generate(args, { MANIFOLD_CONFIG_DIRS: etc }, cwd);
      assert.is(r.status, 1, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, /^<27>manifold-generator\[\d+\]: output directories must be absolute paths, got ".*"; nothing generated$/m);
      assert.equal(fs.readdirSync(cwd), [], JSON.stringify(args));
      assert.not.ok(fs.existsSync(abs), JSON.stringify(args));
    }
    const ok = generate([abs, abs, abs], { MANIFOLD_CONFIG_DIRS: etc }, cwd);
    assert.is(ok.status, 0, ok.stderr);
    assert.equal(tree(abs), ['manifold-register@web.service.d/50-manifold.conf', 'web.socket.d/50-manifold.conf']);
  });
});

// ---------------------------------------------------------------- bad config files

test('a file of 130,000 bad lines is skipped and logged with its count; the good file is still generated', () => {
  withDir((root) => {
    const etc = path.join(root, 'etc');
    const out = path.join(root, 'out');
    fs.mkdirSync(etc);
    fs.writeFileSync(path.join(etc, 'bad.conf'), 'x\n'.repeat(130_000));
    fs.writeFileSync(path.join(etc, 'good.conf'), '[Label]\nSocket=good.socket\nBind=tcp 192.0.2.0/24 80\n');
    const r = generate([out, out, out], { MANIFOLD_CONFIG_DIRS: etc });
    assert.is(r.status, 0, r.stderr);
    assert.not.match(r.stderr, /internal error/);
    assert.match(r.stderr, /^<27>manifold-generator\[\d+\]: \S+\/bad\.conf:1: missing '=' in "x" \(file skipped; 129999 more problems, run "manifold verify"\)$/m);
    assert.equal(tree(out), ['good.socket.d/50-manifold.conf', 'manifold-register@good.service.d/50-manifold.conf']);
  });
});

test('a config file name with C1 or bidi characters is skipped, logged escaped; nothing of it reaches a unit file', () => {
  withDir((root) => {
    const etc = path.join(root, 'etc');
    const out = path.join(root, 'out');
    fs.mkdirSync(etc);
    fs.writeFileSync(path.join(etc, 'a\u202eb.conf'), '[Label]\nName=ab\nSocket=ab.socket\nBind=tcp 192.0.2.0/24 80\n');
    fs.writeFileSync(path.join(etc, 'c\u009b2J.conf'), '[Label]\nName=c\nSocket=c.socket\nBind=tcp 192.0.2.0/24 81\n');
    fs.writeFileSync(path.join(etc, 'd\u2028.conf'), '[Label]\nName=d\nSocket=d.socket\nBind=tcp 192.0.2.0/24 82\n');
    fs.writeFileSync(path.join(etc, 'good.conf'), '[Label]\nSocket=good.socket\nBind=tcp 192.0.2.0/24 83\n');
    const r = generate([out, out, out], { MANIFOLD_CONFIG_DIRS: etc });
    assert.is(r.status, 0, r.stderr);
    assert.equal(tree(out), ['good.socket.d/50-manifold.conf', 'manifold-register@good.service.d/50-manifold.conf']);
    assert.ok(r.stderr.includes('a\\u202eb.conf: the path contains control'), r.stderr);
    assert.ok(r.stderr.includes('c\\x9b2J.conf: the path contains control'), r.stderr);
    assert.ok(r.stderr.includes('d\\u2028.conf: the path contains control'), r.stderr);
    assert.not.match(r.stderr, /[\u0080-\u009f\u202e\u2028]/);
  });
});

test.run();
