/**
 * `bindings [protocol] [prefix] [port]`: tubectl's filters, against a real
 * dispatcher. The cases are tubular's TestBindings (cmd/tubectl/binding_test.go):
 * `any` matches both protocols, a prefix keeps the bindings it overlaps
 * (either way), a port keeps its own and the all-ports bindings. The same
 * filters as options (`--protocol`, `--prefix`, `--port`, the form before)
 * give the same answers; on a terminal an empty result says so.
 */
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;

const BINDINGS: [string, string, string, string][] = [
  ['foo', 'tcp', '::1', '80'],
  ['bar', 'tcp', '1::', '443'],
  ['baz', 'udp', '127.0.1.0/24', '443'],
  ['boo', 'udp', '::1', '443'],
  ['wild', 'udp', '2::1', '0'],
];

/** tubular's cases: arguments, and the labels listed. */
const CASES: [string[], string[]][] = [
  [[], ['bar', 'baz', 'boo', 'foo', 'wild']],
  [['tcp', '::/0'], ['bar', 'foo']],
  [['tcp', '::/16'], ['foo']],
  [['tcp', '::/0', '443'], ['bar']],
  [['udp', '0.0.0.0/0'], ['baz']],
  [['any', '::/0', '443'], ['bar', 'boo', 'wild']],
  [['udp', '2::1', '443'], ['wild']],
];

function labels(args: string[]): string[] {
  const rows = ctx.env.ok(['bindings', ...args, '--json']).json as { label: string }[];
  return rows.map((r) => r.label).sort();
}

test.before(async () => {
  ctx = await setup('bfilter');
  for (const [label, proto, prefix, port] of BINDINGS) ctx.env.ok(['bind', label, proto, prefix, port]);
});
test.after(() => teardown(ctx));

test('tubectl\'s bindings filters: protocol (any), overlapping prefix, port (exact or all ports)', () => {
  for (const [args, want] of CASES) assert.equal(labels(args), want, `bindings ${args.join(' ')}`);
  // A prefix overlaps both ways: a wide filter lists narrower bindings, an address lists the wider ones.
  assert.equal(labels(['udp', '127.0.1.9']), ['baz'], 'an address inside a binding\'s prefix');
  assert.equal(labels(['udp', '127.0.0.0/16']), ['baz'], 'a prefix around a binding\'s prefix');
  assert.equal(labels(['tcp', '10.0.0.0/8']), [], 'nothing matched: an empty list');
});

test('the same filters as options (the form before), also mixed with the positional form', () => {
  for (const [args, want] of CASES) {
    const [proto, prefix, port] = args;
    const opts = [...(proto ? ['--protocol', proto] : []), ...(prefix ? ['--prefix', prefix] : []), ...(port ? ['--port', port] : [])];
    assert.equal(labels(opts), want, `bindings ${opts.join(' ')}`);
  }
  assert.equal(labels(['any', '--port', '443']), ['bar', 'baz', 'boo', 'wild']);
  assert.equal(labels(['--label', 'wild', 'udp']), ['wild']);
});

test('bad filters are usage errors naming the value', () => {
  for (const [args, message] of [
    [['sctp'], 'invalid protocol "sctp": expected tcp, udp or any'],
    [['tcp', '::/129'], 'invalid'],
    [['tcp', '::/0', '80-81'], 'invalid port "80-81": expected a single port'],
    [['tcp', '::/0', '80', 'extra'], 'unexpected argument "extra"'],
  ] as const) {
    const r = ctx.env.cli(['bindings', ...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('on a terminal an empty result says "no bindings matched"; in a pipe it prints nothing', () => {
  const cmd = [BIN, 'bindings', 'tcp', '10.0.0.0/8', '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs].map((a) => `'${a}'`).join(' ');
  const tty = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  assert.is(tty.status, 0, tty.stdout);
  assert.is(tty.stdout.replace(/\r\n/g, '\n').trim(), 'no bindings matched');
  const pipe = ctx.env.ok(['bindings', 'tcp', '10.0.0.0/8']);
  assert.is(pipe.stdout, '');
});

test.run();
