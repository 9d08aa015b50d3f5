/**
 * threadGroupOf (src/ops/procfs.ts): a thread id names its process, so
 * register-pid can refuse a thread id with the process id to give instead.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { threadGroupOf } from '../../src/ops/procfs.js';
import { ManifoldError } from '../../src/errors.js';

test('a process is its own group; each of its threads names it', () => {
  assert.is(threadGroupOf(process.pid), process.pid);
  const threads = fs.readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
  assert.ok(threads.length > 0, 'node runs more than one thread');
  for (const t of threads) assert.is(threadGroupOf(t), process.pid, `thread ${t}`);
});

test('a task that does not exist: ERR_NO_SUCH_PROCESS', () => {
  try {
    threadGroupOf(2 ** 22 + 12345);
    assert.unreachable('expected a failure');
  } catch (err) {
    assert.instance(err, ManifoldError);
    assert.is((err as ManifoldError).code, 'ERR_NO_SUCH_PROCESS');
  }
});

test.run();
