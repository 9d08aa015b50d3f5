/**
 * The socket-activation environment (src/ops/listen-fds.ts): each bad value
 * is refused with its own code and a message that names it, before any fd
 * is touched.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { takeListenFds } from '../../src/ops/listen-fds.js';
import { ManifoldError } from '../../src/errors.js';

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

test.run();
