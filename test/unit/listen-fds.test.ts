/**
 * The socket-activation environment (src/ops/listen-fds.ts): each bad value
 * is refused with its own code and a message that names it, before any fd
 * is touched.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { takeListenFds } from '../../src/ops/listen-fds.js';
import { ManifoldError } from '../../src/errors.js';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', 'bin', 'manifold');

function refusal(env: NodeJS.ProcessEnv): ManifoldError {
  try {
    takeListenFds(env, 1234);
  } catch (err) {
    assert.instance(err, ManifoldError);
    return err as ManifoldError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

test('bad socket-activation variables: code and message', () => {
  const cases: [NodeJS.ProcessEnv, string, string][] = [
    [{}, 'ERR_NO_FDS', 'LISTEN_FDS is not set'],
    [{ LISTEN_FDS: 'two' }, 'ERR_INVALID_ENV', 'LISTEN_FDS="two" is not a valid count'],
    [{ LISTEN_PID: '', LISTEN_FDS: '0' }, 'ERR_NO_FDS', 'LISTEN_FDS=0'],
    [{ LISTEN_PID: 'x' }, 'ERR_INVALID_ENV', 'LISTEN_PID="x" is not a process id'],
    [{ LISTEN_PID: '99' }, 'ERR_INVALID_ENV', 'LISTEN_PID=99 but this process is 1234'],
    [{ LISTEN_PID: '1234' }, 'ERR_NO_FDS', 'LISTEN_FDS is not set'],
    [{ LISTEN_PID: '1234', LISTEN_FDS: '-1' }, 'ERR_INVALID_ENV', 'LISTEN_FDS="-1" is not a valid count'],
    [{ LISTEN_PID: '1234', LISTEN_FDS: '5000' }, 'ERR_INVALID_ENV', 'LISTEN_FDS="5000" is not a valid count'],
    [{ LISTEN_PID: '1234', LISTEN_FDS: '0' }, 'ERR_NO_FDS', 'LISTEN_FDS=0: no sockets were passed'],
    [{ LISTEN_PID: '1234', LISTEN_FDS: '2', LISTEN_FDNAMES: 'web' }, 'ERR_INVALID_ENV', 'LISTEN_FDNAMES has 1 name but LISTEN_FDS=2'],
    [{ LISTEN_PID: '1234', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b:c' }, 'ERR_INVALID_ENV', 'LISTEN_FDNAMES has 3 names but LISTEN_FDS=1'],
  ];
  for (const [env, code, message] of cases) {
    const e = refusal(env);
    assert.is(e.code, code, JSON.stringify(env));
    assert.match(e.message, message, JSON.stringify(env));
  }
});

test('LISTEN_FDS counting fds that were never passed: the error says so (fd 3 is then manifold\'s own), and clips a long name', () => {
  const run = (env: NodeJS.ProcessEnv): { code: number | null; doc: { error: { code: string; message: string } } } => {
    // No fd 3 is passed: in the child it is its runtime's own. --bpffs is not a bpffs: nothing is opened before the fds are checked.
    const r = spawnSync(BIN, ['register', '--json', '--bpffs', os.tmpdir()], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0', ...env } });
    return { code: r.status, doc: JSON.parse(r.stdout) as { error: { code: string; message: string } } };
  };
  const r = run({ LISTEN_FDS: '1', MANIFOLD_LABEL: 'web' });
  assert.is(r.code, 1);
  assert.is(r.doc.error.code, 'ERR_BAD_SOCKET');
  assert.match(r.doc.error.message, /^fd 3 is not a socket \(it is anon_inode:\[[a-z]+\]\): fewer fds were passed than LISTEN_FDS says \(this one is manifold's own\)$/);
  const long = run({ LISTEN_FDS: '1', LISTEN_FDNAMES: 'x'.repeat(5000) });
  assert.is(long.doc.error.code, 'ERR_INVALID_LABEL');
  assert.ok(long.doc.error.message.length < 300, `${long.doc.error.message.length} characters`);
});

test.run();
