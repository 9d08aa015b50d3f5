/**
 * fsReason (src/errors.ts): a failed file-system call in words with its
 * errno name, without Node's "CODE: words, syscall 'path'" wrapping, so a
 * message names its path once and leaks no call names.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsReason } from '../../src/errors.js';

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

test('real failures of open, scandir, read and mkdir', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-fsreason-'));
  try {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const cases: [() => unknown, string][] = [
      [() => fs.openSync(path.join(dir, 'missing'), 'r'), 'no such file or directory (ENOENT)'],
      [() => fs.readdirSync(file), 'not a directory (ENOTDIR)'],
      [() => fs.readFileSync(dir), 'illegal operation on a directory (EISDIR)'],
      [() => fs.mkdirSync(path.join(dir, 'missing', 'x')), 'no such file or directory (ENOENT)'],
      [() => fs.openSync(path.join(file, 'x'), 'r'), 'not a directory (ENOTDIR)'],
    ];
    for (const [f, want] of cases) {
      const err = thrown(f);
      assert.is(fsReason(err), want, (err as Error).message);
      assert.not.match(fsReason(err), dir);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('anything else is its message', () => {
  assert.is(fsReason(new Error('plain words')), 'plain words');
  assert.is(fsReason('a string'), 'a string');
  const odd = Object.assign(new Error('ELOOP: too many symbolic links encountered, stat \'/x\''), { code: 'ELOOP' });
  assert.is(fsReason(odd), 'too many symbolic links encountered (ELOOP)');
});

test.run();
