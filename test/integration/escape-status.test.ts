/**
 * An unprivileged service cannot reach root's terminal through manifold's
 * output: a process whose name (comm) is a terminal escape sequence is
 * registered with register-pid, and `status` shows the name escaped — no
 * raw control byte on stdout or stderr; `status --json` keeps the exact
 * name as JSON escapes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let child: ChildProcess | undefined;
/** 15 bytes, the most a comm holds: set the window title, ring the bell, return, clear the screen. */
const COMM = '\x1b]0;pwned\x07\r\x1b[2J';
const PORT = 9561;

/** Any byte a terminal may act on, except the newlines that separate lines. */
function rawControl(text: string): string | null {
  const m = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/.exec(text);
  return m ? `U+${(m[0].codePointAt(0) ?? 0).toString(16)} at ${m.index}` : null;
}

test.before(async () => {
  ctx = await setup('esc');
  const script = `
    require('fs').writeFileSync('/proc/self/comm', ${JSON.stringify(COMM)});
    const s = require('net').createServer((c) => c.end('x')).listen(${PORT}, '127.0.0.1', () => process.stdout.write('ready\\n'));
    process.stdin.on('end', () => process.exit(0)).resume();
  `;
  child = ctx.env.spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child?.stdout?.once('data', () => resolve());
    child?.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
});

test.after(() => {
  child?.kill('SIGKILL');
  teardown(ctx);
});

test('the name really is the escape sequence', async () => {
  const fs = await import('node:fs');
  assert.is(fs.readFileSync(`/proc/${child?.pid}/comm`, 'utf8'), `${COMM}\n`);
});

test('status prints the owner\'s name escaped', () => {
  ctx.env.ok(['bind', 'evil', 'tcp', '192.0.2.50', '80']);
  const reg = ctx.env.cli(['register-pid', String(child?.pid), 'evil', 'tcp', '127.0.0.1', String(PORT)]);
  assert.is(reg.code, 0, reg.stderr);
  const s = ctx.env.cli(['status']);
  assert.is(s.code, 0, s.stderr);
  assert.is(rawControl(s.stdout), null, JSON.stringify(s.stdout));
  assert.is(rawControl(s.stderr), null, JSON.stringify(s.stderr));
  assert.match(s.stdout, `owner=${child?.pid}(\\x1b]0;pwned\\x07\\x0d\\x1b[2J)`);
  const filtered = ctx.env.cli(['status', 'evil']);
  assert.is(rawControl(filtered.stdout), null);
});

test('status --json keeps the exact name, as JSON escapes', () => {
  const s = ctx.env.cli(['status', '--json']);
  assert.is(s.code, 0, s.stderr);
  assert.is(rawControl(s.stdout), null, JSON.stringify(s.stdout));
  const d = (s.json as { destinations: { label: string; owner: { comm: string } | null }[] }).destinations.find((x) => x.label === 'evil');
  assert.is(d?.owner?.comm, COMM);
  assert.match(s.stdout, '"comm": "\\u001b]0;pwned\\u0007\\r\\u001b[2J"');
});

test.run();
