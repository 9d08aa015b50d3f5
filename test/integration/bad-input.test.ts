/**
 * Every class of bad input gets a stable error code, a non-zero exit and
 * changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;
let before: string;

function snapshot(): string {
  return ctx.env.ok(['status', '--json']).stdout;
}

function expectError(args: string[], code: string, exit: number, what: string): void {
  const r = ctx.env.cli([...args, '--json']);
  assert.is(r.code, exit, `${what}: exit code (stderr: ${r.stderr.trim()})`);
  assert.is((r.json as { error?: { code?: string } } | null)?.error?.code, code, `${what}: error code`);
  assert.ok(r.stderr.trim().length > 0 && r.stderr.trim().split('\n').length <= 2, `${what}: a short error on stderr`);
  assert.not.match(r.stderr, /at .*\.js:\d+/, `${what}: no stack trace`);
  assert.is(snapshot(), before, `${what}: state unchanged`);
}

test.before(async () => {
  ctx = await setup('badin');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-badin-'));
  ctx.env.ok(['bind', 'keep', 'tcp', '192.0.2.1', '80']);
  before = snapshot();
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bind: protocol, port, prefix, label', () => {
  expectError(['bind', 'x', 'sctp', '192.0.2.0/24', '80'], 'ERR_INVALID_PROTOCOL', 2, 'unknown protocol');
  expectError(['bind', 'x', 'tcp', '192.0.2.0/24', '65536'], 'ERR_INVALID_PORT', 2, 'port out of range');
  expectError(['bind', 'x', 'tcp', '192.0.2.0/24', '-1'], 'ERR_INVALID_PORT', 2, 'negative port');
  expectError(['bind', 'x', 'tcp', '192.0.2.0/24', '1-5000'], 'ERR_INVALID_PORT', 2, 'range too long');
  expectError(['bind', 'x', 'tcp', '192.0.2.0/33', '80'], 'ERR_INVALID_PREFIX', 2, 'prefix too long');
  expectError(['bind', 'x', 'tcp', '192.0.2', '80'], 'ERR_INVALID_PREFIX', 2, 'malformed prefix');
  expectError(['bind', 'x', 'tcp', '::ffff:192.0.2.1', '80'], 'ERR_INVALID_PREFIX', 2, 'v4-mapped prefix');
  expectError(['bind', 'x', 'tcp', '::ffff:c000:201/128', '80'], 'ERR_INVALID_PREFIX', 2, 'v4-mapped prefix in hex');
  expectError(['bind', '', 'tcp', '192.0.2.0/24', '80'], 'ERR_INVALID_LABEL', 2, 'empty label');
  expectError(['bind', 'a'.repeat(256), 'tcp', '192.0.2.0/24', '80'], 'ERR_INVALID_LABEL', 2, 'over-long label');
  expectError(['bind', 'a b', 'tcp', '192.0.2.0/24', '80'], 'ERR_INVALID_LABEL', 2, 'label with a space');
  expectError(['bind', 'a:b', 'tcp', '192.0.2.0/24', '80'], 'ERR_INVALID_LABEL', 2, 'label with a colon');
  expectError(['bind', 'x', 'tcp', '192.0.2.0/24'], 'ERR_USAGE', 2, 'missing argument');
  expectError(['frobnicate'], 'ERR_USAGE', 2, 'unknown command');
});

test('apply: missing, malformed and invalid files', () => {
  const write = (name: string, content: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const entry = (e: Record<string, unknown>): string => JSON.stringify({ bindings: [{ label: 'ok', prefix: '10.0.0.0/8', port: 1, protocol: 'tcp' }, e] });
  expectError(['apply', path.join(dir, 'nope.json')], 'ERR_FILE_NOT_FOUND', 1, 'missing file');
  expectError(['apply', write('bad.json', '{"bindings": [')], 'ERR_INVALID_FILE', 1, 'malformed JSON');
  expectError(['apply', write('shape.json', '{"bindings": {}}')], 'ERR_INVALID_FILE', 1, 'wrong shape');
  expectError(['apply', write('noprefix.json', entry({ label: 'x', port: 80 }))], 'ERR_INVALID_FILE', 1, 'missing prefix');
  expectError(['apply', write('emptylabel.json', entry({ label: '', prefix: '10.0.0.1', port: 80 }))], 'ERR_INVALID_LABEL', 2, 'empty label');
  expectError(['apply', write('badport.json', entry({ label: 'x', prefix: '10.0.0.1', port: 70000 }))], 'ERR_INVALID_PORT', 2, 'bad port');
  expectError(['apply', write('badproto.json', entry({ label: 'x', prefix: '10.0.0.1', port: 80, protocol: 'icmp' }))], 'ERR_INVALID_PROTOCOL', 2, 'bad protocol');
  expectError(['apply', write('mapped.json', entry({ label: 'x', prefix: '::ffff:10.0.0.1', port: 80 }))], 'ERR_INVALID_PREFIX', 2, 'v4-mapped');
  expectError(['apply', write('extra.json', entry({ label: 'x', prefix: '10.0.0.1', port: 80, colour: 'red' }))], 'ERR_INVALID_FILE', 1, 'unknown key');
  expectError(
    ['apply', write('dup.json', JSON.stringify({ bindings: [{ label: 'a', prefix: '10.0.0.1', port: 80 }, { label: 'b', prefix: '10.0.0.1/32', port: 80, protocol: 'udp' }] }))],
    'ERR_INVALID_FILE', 1, 'duplicate with a different label',
  );
  expectError(['apply', dir], 'ERR_INVALID_FILE', 1, 'a directory');
  expectError(['apply', '/dev/zero'], 'ERR_INVALID_FILE', 1, 'a device, not a file');
});

test('register-pid and unregister: bad pids and arguments', () => {
  expectError(['register-pid', '999999999', 'x', 'tcp', '127.0.0.1', '80'], 'ERR_INVALID_PID', 2, 'pid out of range');
  expectError(['register-pid', 'abc', 'x', 'tcp', '127.0.0.1', '80'], 'ERR_INVALID_PID', 2, 'not a pid');
  fs.writeFileSync(path.join(dir, 'garbage.pid'), 'hello\n');
  expectError(['register-pid', path.join(dir, 'garbage.pid'), 'x', 'tcp', '127.0.0.1', '80'], 'ERR_INVALID_PID', 2, 'garbage pid file');
  expectError(['register-pid', '4000000', 'x', 'tcp', '127.0.0.1', '80'], 'ERR_NO_SUCH_PROCESS', 1, 'no such process');
  expectError(['register-pid', '/dev/zero', 'x', 'tcp', '127.0.0.1', '80'], 'ERR_INVALID_PID', 2, 'a device as pid file');
  expectError(['register-pid', '0', 'x', 'tcp', '127.0.0.1', '80'], 'ERR_INVALID_PID', 2, 'pid 0');
  expectError(['register-pid', String(ctx.agent.pid), 'x', 'tcp', '127.0.0.1/8', '80'], 'ERR_INVALID_PREFIX', 2, 'prefix instead of ip');
  expectError(['register-pid', String(ctx.agent.pid), 'x', 'tcp', '::ffff:127.0.0.1', '80'], 'ERR_INVALID_PREFIX', 2, 'v4-mapped ip');
  expectError(['register-pid', String(ctx.agent.pid), 'x', 'tcp', '127.0.0.1', '0'], 'ERR_INVALID_PORT', 2, 'port 0');
  expectError(['register-pid', String(ctx.agent.pid), 'x', 'tcp', '127.0.0.1', '1'], 'ERR_NO_MATCHING_SOCKET', 1, 'nothing listens');
  expectError(['register-pid', String(process.pid), 'x', 'tcp', '127.0.0.1', '80'], 'ERR_WRONG_NETNS', 1, 'process in another namespace');
  expectError(['unregister', 'nosuch', 'ipv4', 'tcp'], 'ERR_NOT_FOUND', 1, 'unknown destination');
  expectError(['unregister', 'keep', 'ipv5', 'tcp'], 'ERR_USAGE', 2, 'bad family');
});

test('global options: bad --netns, --bpffs and lock timeout', () => {
  const r1 = ctx.env.cli(['status', '--json', '--netns', '/etc/passwd', '--bpffs', ctx.env.bpffs], { global: false });
  assert.is(r1.code, 2);
  assert.is((r1.json as { error: { code: string } }).error.code, 'ERR_USAGE');
  const r2 = ctx.env.cli(['status', '--json', '--netns', ctx.env.netnsPath, '--bpffs', dir], { global: false });
  assert.is(r2.code, 2);
  assert.match(r2.stderr, /not a bpf filesystem/);
  const r3 = ctx.env.cli(['status', '--json', '--netns', '/nonexistent', '--bpffs', ctx.env.bpffs], { global: false });
  assert.is(r3.code, 2);
  assert.is(snapshot(), before);
});


test("--bpffs inside manifold's own state is refused: no second dispatcher nested in the first", () => {
  const start = snapshot();
  const stateDir = fs.readdirSync(ctx.env.bpffs).find((n) => /^\d+_manifold$/.test(n));
  assert.ok(stateDir, 'the state directory');
  for (const inside of [path.join(ctx.env.bpffs, stateDir), path.join(ctx.env.bpffs, `${stateDir}_lock`)]) {
    const made = !fs.existsSync(inside);
    if (made) fs.mkdirSync(inside);
    for (const cmd of [['load'], ['status'], ['bind', 'web', 'tcp', '192.0.2.9', '80']]) {
      const r = ctx.env.cli([...cmd, '--netns', ctx.env.netnsPath, '--bpffs', inside], { global: false });
      assert.is(r.code, 2, `${cmd[0]} ${inside}: ${r.stderr}`);
      assert.match(r.stderr, `--bpffs ${inside}: is inside manifold's own state (${path.basename(inside)}): give the bpffs mount that holds it`);
    }
    if (made) fs.rmdirSync(inside);
  }
  assert.is(fs.readdirSync(path.join(ctx.env.bpffs, stateDir)).filter((n) => /_manifold/.test(n)).length, 0, 'nothing nested');
  assert.is(snapshot(), start);
});

test("a manifold_discovery directory another user made (or an empty one) is not discovery: writers go on", () => {
  const fake = path.join(ctx.env.bpffs, 'manifold_discovery');
  fs.mkdirSync(fake);
  try {
    // Owned by another user, then by root but empty (no marker map): neither is discovery state.
    for (const owner of [65534, 0]) {
      fs.chownSync(fake, owner, owner);
      for (const args of [['upgrade'], ['policy', 'explicit-first', 'on'], ['policy', 'explicit-first', 'off'], ['untarget', 'fake']]) {
        const r = ctx.env.cli(args);
        assert.ok(r.code === 0 || (args[0] === 'untarget' && r.code === 1 && /has no address target/.test(r.stderr)), `${args.join(' ')} (owner ${owner}): exit ${r.code}: ${r.stderr}`);
        assert.not.match(r.stderr, /disc_meta|ENOENT/, `${args.join(' ')} (owner ${owner})`);
      }
      const t = ctx.env.cli(['target', 'fake', '127.0.0.9']);
      assert.is(t.code, 0, t.stderr);
      assert.match(t.stderr, /listener discovery is not enabled/, `target (owner ${owner}): ${t.stderr}`);
      assert.not.match(t.stderr, /disc_meta|ENOENT/);
      ctx.env.ok(['untarget', 'fake']);
    }
  } finally {
    fs.rmdirSync(fake);
  }
});

test.run();
