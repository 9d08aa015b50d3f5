/**
 * Read-only access for a group: `load --group G` makes the state readable
 * by G; a non-root member of G (no capabilities at all on this kernel) can
 * run status, bindings and the metrics exporter; a non-member gets
 * ERR_PERMISSION (exit 4); the group cannot write. Uses throw-away system
 * users and a group, removed at the end even on failure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ownedName, type CliResult } from '../helpers/env.js';
import { QUICK_MS } from '../helpers/wait.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import { Exporter } from '../helpers/exporter.js';
import { parsePromText, sampleValue } from '../helpers/promtext.js';

// Named so test/run.mjs removes them if this file is killed before its own cleanup.
const GROUP = ownedName('ro');
const MEMBER = ownedName('rom');
const OTHER = ownedName('roo');
let ctx: Ctx;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: QUICK_MS });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
}

function removeAccounts(): void {
  spawnSync('userdel', [MEMBER], { stdio: 'ignore', timeout: QUICK_MS });
  spawnSync('userdel', [OTHER], { stdio: 'ignore', timeout: QUICK_MS });
  spawnSync('groupdel', [GROUP], { stdio: 'ignore', timeout: QUICK_MS });
}

/** setpriv prefix running a command as `user` (its groups from /etc/group), optionally with ambient caps. */
function asUser(user: string, caps: string[] = []): string[] {
  const capArgs = caps.length ? ['--inh-caps', caps.map((c) => `+${c}`).join(','), '--ambient-caps', caps.map((c) => `+${c}`).join(',')] : [];
  return ['setpriv', ...capArgs, '--reuid', user, '--regid', user === MEMBER ? GROUP : user, '--init-groups', '--'];
}

/** Run the CLI as `user` against the test's namespace and bpffs. */
function cliAs(user: string, args: string[], caps: string[] = []): CliResult {
  return ctx.env.cli(args, { wrap: asUser(user, caps), timeoutMs: 60_000 });
}

function errorCode(r: CliResult): string | undefined {
  return (r.json as { error?: { code?: string } } | null)?.error?.code;
}

test.before(async () => {
  process.once('exit', removeAccounts);
  sh('groupadd', ['--system', GROUP]);
  sh('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--gid', GROUP, MEMBER]);
  sh('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', OTHER]);
  ctx = await setup('ro', { load: false });
  // systemd mounts /sys/fs/bpf with mode 0700: start from the same.
  fs.chmodSync(ctx.env.bpffs, 0o700);
  ctx.env.ok(['load', '--group', GROUP]);
  ctx.env.ok(['bind', 'ro', 'tcp', '192.0.2.10', '80']);
  await serve(ctx, 'ro', 'tcp', '127.0.0.1', 9600);
  for (let i = 0; i < 2; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.10', 80), 'ro');
});

test.after(() => {
  teardown(ctx);
  removeAccounts();
});

test('the state directory and pins belong to the group: 0750 and 0640', () => {
  const dir = fs.readdirSync(ctx.env.bpffs).find((n) => n.endsWith('_manifold'));
  assert.ok(dir);
  const st = fs.statSync(`${ctx.env.bpffs}/${dir}`);
  const gid = Number(spawnSync('getent', ['group', GROUP], { encoding: 'utf8', timeout: QUICK_MS }).stdout.split(':')[2]);
  assert.is(st.gid, gid);
  assert.is(st.mode & 0o777, 0o750);
  for (const pin of fs.readdirSync(`${ctx.env.bpffs}/${dir}`)) {
    const p = fs.statSync(`${ctx.env.bpffs}/${dir}/${pin}`);
    assert.is(p.mode & 0o777, 0o640, pin);
    assert.is(p.gid, gid, pin);
  }
});

test('with the bpffs at 0700 even a member is refused, with a hint to chmod o+x', () => {
  const r = cliAs(MEMBER, ['status', '--json']);
  assert.is(r.code, 4, r.stderr);
  assert.is(errorCode(r), 'ERR_PERMISSION');
  assert.match(r.stderr, `chmod o+x ${ctx.env.bpffs}`);
  fs.chmodSync(ctx.env.bpffs, 0o701);
});

test('a member without any capability runs status and bindings', () => {
  const s = cliAs(MEMBER, ['status', '--json']);
  assert.is(s.code, 0, s.stderr);
  const doc = s.json as { destinations: { label: string; lookups: number; alive: boolean; owner: unknown }[] };
  const d = doc.destinations.find((x) => x.label === 'ro');
  assert.is(d?.lookups, 2);
  assert.is(d?.alive, true);
  assert.is(d?.owner, null, 'a non-root reader cannot look into root\'s processes: owner unknown, not an error');
  const b = cliAs(MEMBER, ['bindings', '--json']);
  assert.is(b.code, 0, b.stderr);
  assert.equal((b.json as { prefix: string }[]).map((x) => x.prefix), ['192.0.2.10/32']);
  const withCap = cliAs(MEMBER, ['status', '--json'], ['bpf']);
  assert.is(withCap.code, 0, `with CAP_BPF too: ${withCap.stderr}`);
});

test('a member scrapes the metrics exporter', async () => {
  const e = await Exporter.start(ctx.env, { wrap: asUser(MEMBER) });
  try {
    const r = await e.get();
    assert.is(r.status, 200, r.body);
    const m = parsePromText(r.body);
    assert.is(sampleValue(m, 'manifold_lookups_total', { label: 'ro', domain: 'ipv4', protocol: 'tcp' }), 2);
    assert.is(sampleValue(m, 'manifold_destination_has_socket', { label: 'ro', domain: 'ipv4', protocol: 'tcp' }), 1);
  } finally {
    assert.is((await e.stop()).code, 0, e.stderr);
  }
});

test('a non-member gets ERR_PERMISSION (exit 4) from status and bindings, and HTTP 500 from the exporter', async () => {
  for (const cmd of [['status'], ['bindings']]) {
    const r = cliAs(OTHER, [...cmd, '--json']);
    assert.is(r.code, 4, `${cmd.join(' ')}: ${r.stderr}`);
    assert.is(errorCode(r), 'ERR_PERMISSION');
    assert.match(r.stderr, 'permission denied');
  }
  const e = await Exporter.start(ctx.env, { wrap: asUser(OTHER) });
  try {
    const r = await e.get();
    assert.is(r.status, 500);
    assert.match(r.body, 'ERR_PERMISSION');
    assert.match(e.stderr, /scrape failed \(HTTP 500, ERR_PERMISSION\)/);
  } finally {
    assert.is((await e.stop()).code, 0, e.stderr);
  }
});

test('the group cannot write: every write command fails with ERR_PERMISSION and changes nothing', () => {
  const before = ctx.env.ok(['status', '--json']).json as { bindings: unknown[]; destinations: { socket: string | null }[] };
  const file = path.join(os.tmpdir(), `${GROUP}.json`);
  fs.writeFileSync(file, JSON.stringify({ bindings: [] }), { mode: 0o644 });
  const writes: string[][] = [
    ['apply', file],
    ['register-pid', String(ctx.agent.pid), 'ro', 'tcp', '127.0.0.1', '9600'],
    ['bind', 'ro', 'tcp', '192.0.2.11', '80'],
    ['unbind', 'ro', 'tcp', '192.0.2.10', '80'],
    ['unregister', 'ro', 'ipv4', 'tcp'],
    ['upgrade'],
    ['unload'],
    ['load'],
  ];
  for (const args of writes) {
    for (const caps of [[], ['bpf']]) {
      const r = cliAs(MEMBER, [...args, '--json'], caps);
      assert.is(r.code, 4, `${args.join(' ')} ${caps.join(',')}: exit ${r.code} ${r.stderr}`);
      assert.is(errorCode(r), 'ERR_PERMISSION', `${args.join(' ')}: ${r.stdout}`);
    }
  }
  // lookup copies the attached program: root only, and the message says so (not "be in the group").
  const lk = cliAs(MEMBER, ['lookup', 'tcp', '192.0.2.10', '80']);
  assert.is(lk.code, 4, lk.stderr);
  assert.match(lk.stderr, "run as root (a pinned program or link cannot be opened read-only, so the state's group does not help)");
  // upgrade --all: each state's failure is a permission one, so the command's too (exit 4).
  const all = cliAs(MEMBER, ['upgrade', '--all']);
  assert.is(all.code, 4, `upgrade --all: exit ${all.code} ${all.stderr}`);
  assert.match(all.stderr, /permission denied/);
  fs.rmSync(file, { force: true });
  const after = ctx.env.ok(['status', '--json']).json as typeof before;
  assert.equal(after.bindings, before.bindings);
  assert.equal(after.destinations.map((d) => d.socket), before.destinations.map((d) => d.socket));
});

test.run();
