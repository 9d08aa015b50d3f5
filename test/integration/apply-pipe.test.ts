/**
 * apply's inputs, in test namespaces with real traffic: `bindings --json`
 * of one state piped into `apply -` of another reproduces the set exactly
 * (and applying it again changes nothing); standard input is bounded
 * (MAX_APPLY_BYTES), read to its end however slowly it arrives, and an
 * unreadable or empty one is refused with nothing changed; tubular's own
 * bindings JSON (test/fixtures/tubular, unchanged) applies as it is, with
 * the bindings tubular's test expects, and its invalid file is refused with
 * every bad entry located by line and column.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN, ROOT, type TestEnv } from '../helpers/env.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import { MAX_APPLY_BYTES } from '../../src/ops/apply.js';

let a: Ctx;
let b: Ctx;
let dir: string;
const TUBULAR = path.join(ROOT, 'test', 'fixtures', 'tubular');

test.before(async () => {
  a = await setup('pipea');
  b = await setup('pipeb');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-pipe-'));
  for (const ctx of [a, b]) {
    await serve(ctx, 'web', 'tcp', '127.0.0.1', 9401);
    await serve(ctx, 'dns', 'udp', '127.0.0.1', 9402);
    await serve(ctx, 'v6', 'tcp', '::1', 9403);
  }
});
test.after(() => {
  teardown(a);
  teardown(b);
  fs.rmSync(dir, { recursive: true, force: true });
});

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The CLI's command line for a namespace, for a shell pipeline. */
function cmd(env: TestEnv, args: string[]): string {
  return [BIN, ...args, '--netns', env.netnsPath, '--bpffs', env.bpffs].map(sh).join(' ');
}

/** Run a shell pipeline; its exit status is that of the last command (pipefail: any failure). */
function pipeline(line: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', line], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  assert.not.ok(r.error, `${line}: ${r.error?.message}`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function listed(ctx: Ctx): string[] {
  return (ctx.env.ok(['bindings', '--json']).json as { label: string; protocol: string; prefix: string; port: number }[]).map((x) => `${x.label} ${x.protocol} ${x.prefix} ${x.port}`);
}

test('bindings --json | apply -: the other state gets the same set, traffic follows; again: nothing changes', async () => {
  const binds: string[][] = [
    ['web', 'tcp', '192.0.2.0/24', '80'],
    ['web', 'tcp', '192.0.2.128/25', '8000-8003'],
    ['web', 'tcp', '198.51.100.7', '0'],
    ['dns', 'udp', '192.0.2.53', '53'],
    ['dns', 'udp', '198.51.100.0/24', '5353'],
    ['v6', 'tcp', '2001:db8:1::/48', '443'],
    ['v6', 'tcp', 'fd00::1', '0'],
  ];
  for (const x of binds) a.env.ok(['bind', ...x]);
  // b has a set of its own, replaced entirely.
  b.env.ok(['bind', 'web', 'tcp', '198.51.100.9', '22']);
  const want = listed(a);
  assert.is(want.length, 10);

  const r = pipeline(`${cmd(a.env, ['bindings', '--json'])} | ${cmd(b.env, ['apply', '-'])}`);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, 'added 10, removed 1, relabelled 0, unchanged 0');
  assert.equal(listed(b), want, 'same bindings, same order');
  assert.equal(b.env.ok(['bindings', '--json']).stdout, a.env.ok(['bindings', '--json']).stdout, 'byte for byte');
  assert.is(await b.agent.who('tcp', '192.0.2.200', 8002), 'web');
  assert.is(await b.agent.who('tcp', '192.0.2.1', 80), 'web');
  assert.is(await b.agent.who('tcp', '198.51.100.7', 1234), 'web');
  assert.is(await b.agent.who('udp', '192.0.2.53', 53), 'dns');
  assert.is(await b.agent.who('tcp', '2001:db8:1::9', 443), 'v6');
  assert.is(await b.agent.who('tcp', 'fd00::1', 7), 'v6');
  assert.is(await b.agent.who('tcp', '198.51.100.9', 22), '!ECONNREFUSED', 'b\'s own binding went');

  // Its own output applied to itself: nothing to do.
  const again = pipeline(`${cmd(b.env, ['bindings', '--json'])} | ${cmd(b.env, ['apply', '-', '--json'])}`);
  assert.is(again.code, 0, again.stderr);
  const doc = JSON.parse(again.stdout) as { added: unknown[]; removed: unknown[]; relabelled: unknown[]; unchanged: number };
  assert.equal([doc.added.length, doc.removed.length, doc.relabelled.length, doc.unchanged], [0, 0, 0, 10]);
  // A filtered listing is a valid input too: only web's bindings are kept.
  const web = pipeline(`${cmd(b.env, ['bindings', '--json', '--label', 'web'])} | ${cmd(b.env, ['apply', '-'])}`);
  assert.is(web.code, 0, web.stderr);
  assert.equal(listed(b), want.filter((l) => l.startsWith('web ')));
});

test('standard input: bounded, read to its end however it arrives; unreadable or empty refused, nothing changed', () => {
  const before = listed(b);
  const over = pipeline(`head -c ${MAX_APPLY_BYTES + 1} /dev/zero | ${cmd(b.env, ['apply', '-', '--json'])}`);
  assert.is(over.code, 1, over.stderr);
  assert.match(over.stderr, `standard input is larger than the ${MAX_APPLY_BYTES} bytes an apply input may have`);
  assert.is((JSON.parse(over.stdout) as { error: { code: string } }).error.code, 'ERR_INVALID_FILE');
  // A file is refused from its size, before reading.
  const big = path.join(dir, 'big.json');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, MAX_APPLY_BYTES + 1);
  const file = b.env.cli(['apply', big]);
  assert.is(file.code, 1, file.stderr);
  assert.match(file.stderr, `${big} is ${MAX_APPLY_BYTES + 1} bytes, more than the ${MAX_APPLY_BYTES} an apply file may have`);
  fs.rmSync(big);

  for (const [input, why] of [
    ['< /dev/null', /<stdin>:1:1: malformed JSON: .*end of the file/],
    ['< /', /cannot read standard input: it is a directory/],
    [`<<< '{"bindings":[{"label":"web","prefix":"192.0.2.0/24","port":80}'`, /<stdin>:\d+:\d+: malformed JSON: .*end of the file/],
  ] as const) {
    const r = pipeline(`${cmd(b.env, ['apply', '-'])} ${input}`);
    assert.is(r.code, 1, `${input}: ${r.stderr}`);
    assert.match(r.stderr, why, input);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.equal(listed(b), before, 'nothing changed');

  // Slowly, in pieces (the reader waits for the end, then takes the lock).
  const slow = pipeline(`{ printf '{"bindings":['; sleep 1; printf '{"label":"dns","prefix":"192.0.2.53","port":53,"protocol":"udp"}'; sleep 1; printf ']}'; } | ${cmd(b.env, ['apply', '-'])}`);
  assert.is(slow.code, 0, slow.stderr);
  assert.equal(listed(b), ['dns udp 192.0.2.53/32 53']);
});

test('tubular\'s bindings JSON applies as it is: both protocols, prefixes masked, traffic steered', async () => {
  await serve(a, 'foo', 'tcp', '127.0.0.1', 9411);
  await serve(a, 'foo-port', 'tcp', '127.0.0.1', 9412);
  await serve(a, 'bar', 'tcp', '::1', 9413);
  const r = a.env.cli(['apply', path.join(TUBULAR, 'bindings.json')]);
  assert.is(r.code, 0, r.stderr);
  // What tubular's TestLoadBindings expects of `tubectl load-bindings testdata/bindings.json`.
  assert.equal(listed(a).sort(), [
    'bar tcp ::/64 0', 'bar udp ::/64 0',
    'bar-port tcp 1::/64 53', 'bar-port udp 1::/64 53',
    'foo tcp 127.0.0.1/32 0', 'foo udp 127.0.0.1/32 0',
    'foo-port tcp 127.0.0.2/32 53', 'foo-port udp 127.0.0.2/32 53',
  ]);
  assert.match(r.stderr, 'added 8, removed 10, relabelled 0, unchanged 0');
  assert.is(await a.agent.who('tcp', '127.0.0.1', 31337), 'foo');
  assert.is(await a.agent.who('tcp', '127.0.0.2', 53), 'foo-port');
  assert.is(await a.agent.who('tcp', '::1', 31337), 'bar');
  assert.is(await a.agent.who('tcp', '127.0.0.2', 54), '!ECONNREFUSED');
  // Through standard input, the same.
  const p = pipeline(`${cmd(a.env, ['apply', '-', '--json'])} < ${sh(path.join(TUBULAR, 'bindings.json'))}`);
  assert.is(p.code, 0, p.stderr);
  assert.is((JSON.parse(p.stdout) as { unchanged: number }).unchanged, 8);
});

test('tubular\'s invalid bindings JSON: refused, every bad entry located, nothing changed', () => {
  const before = listed(a);
  const file = path.join(TUBULAR, 'invalid-bindings.json');
  const r = a.env.cli(['apply', file]);
  assert.is(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0] ?? '', `${file}: 3 problems (nothing was changed):`, r.stderr);
  // Entry 0 has an unknown key (located at the key), entry 1 a port beyond 65535 and entry 2 no port
  // (located at the entry); tubular refuses each of them too.
  assert.match(r.stderr, new RegExp(`${file}:6:4: bindings\\[0\\]: unknown key "bogus"`));
  assert.match(r.stderr, new RegExp(`${file}:8:3: bindings\\[1\\]: invalid port 99999999`), r.stderr);
  assert.match(r.stderr, new RegExp(`${file}:13:3: bindings\\[2\\]: missing "port"`));
  assert.equal(listed(a), before);
  const j = a.env.cli(['apply', file, '--json']);
  assert.is(j.code, 1);
  const err = (j.json as { error: { code: string; details?: { problems?: { where: string }[] } } }).error;
  assert.is(err.code, 'ERR_INVALID_FILE');
  assert.equal(err.details?.problems?.map((p) => p.where.slice(file.length)), [':6:4: bindings[0]', ':8:3: bindings[1]', ':13:3: bindings[2]'], JSON.stringify(j.json));
});

test.run();
