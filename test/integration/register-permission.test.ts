/**
 * register-pid without the right to inspect the target process fails with
 * ERR_PERMISSION (exit 4), distinct from "no such process".
 */
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';
import { QUICK_MS } from '../helpers/wait.js';

let ctx: Ctx;
test.before(async () => {
  ctx = await setup('regperm');
});
test.after(() => teardown(ctx));

test('a process of another user, without CAP_SYS_PTRACE: permission denied', async () => {
  const nc = ctx.env.spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'nc', '-k', '-l', '127.0.0.1', '9876'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      const ss = spawnSync('nsenter', [`--net=${ctx.env.netnsPath}`, 'ss', '-Hltn', 'sport = :9876'], { encoding: 'utf8', timeout: QUICK_MS });
      if (ss.stdout.trim()) break;
      spawnSync('sleep', ['0.1'], { timeout: QUICK_MS });
    }
    const r = spawnSync(
      'setpriv',
      ['--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', '--', BIN, 'register-pid', String(nc.pid), 'web', 'tcp', '127.0.0.1', '9876', '--json', '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.is(r.status, 4, r.stderr);
    assert.is((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ERR_PERMISSION');
    assert.match(r.stderr, /permission denied/);
    const ok = ctx.env.cli(['register-pid', String(nc.pid), 'web', 'tcp', '127.0.0.1', '9876']);
    assert.is(ok.code, 0, `root with CAP_SYS_PTRACE can: ${ok.stderr}`);
  } finally {
    nc.kill('SIGKILL');
  }
});

test.run();
