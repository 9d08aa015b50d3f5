/**
 * inspectSocket's refusals say what the fd is instead (src/ops/socket-info.ts):
 * a file, a pipe, a closed fd.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setProgramDir } from '../../src/locate.js';
import { inspectSocket } from '../../src/ops/socket-info.js';
import { ManifoldError } from '../../src/errors.js';

// koffi is found from the program directory (the checkout's node_modules).
setProgramDir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sea'));

function refusal(fd: number): string {
  try {
    inspectSocket(fd, `fd ${fd}`);
  } catch (err) {
    assert.instance(err, ManifoldError);
    assert.is((err as ManifoldError).code, 'ERR_BAD_SOCKET');
    return (err as Error).message;
  }
  throw new Error(`fd ${fd} was taken for a socket`);
}

test('a file, a closed fd: named', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-sockinfo-'));
  const file = path.join(dir, 'not\u001b[31m-a-socket');
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r');
  try {
    assert.is(refusal(fd), `fd ${fd} is not a socket (it is ${path.join(dir, 'not\\x1b[31m-a-socket')})`);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.is(refusal(fd), `fd ${fd} is not an open file descriptor`);
});

test.run();
