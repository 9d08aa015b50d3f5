/**
 * apply --config with ownership, on the real kernel with real traffic
 * (manifold.conf(5), "RELOADING"): labels the config files define are
 * replaced, bindings made by hand are kept (--prune removes them), a removed
 * file's label is removed, a file with problems keeps its label's last
 * applied bindings while the rest is applied and the command exits 1, and
 * status --json tells configured destinations apart. Config files live in a
 * temporary directory given through MANIFOLD_CONFIG_DIRS.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inspectTestState, invariantProblems } from '../helpers/inspect.js';
import { serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';
import type { CliResult } from '../helpers/env.js';

process.umask(0o022);
let ctx: Ctx;
let dir: string;

const WEB = '[Label]\nBind=tcp 192.0.2.0/24 80\n';
const API = '[Label]\nBind=tcp 198.51.100.0/24 0\n';

test.before(async () => {
  ctx = await setup('applycfg');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-applycfg-'));
  fs.chmodSync(dir, 0o755);
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9201);
  await serve(ctx, 'api', 'tcp', '127.0.0.1', 9202);
  await serve(ctx, 'manual', 'tcp', '127.0.0.1', 9203);
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

function conf(name: string, text: string | null): void {
  const p = path.join(dir, `${name}.conf`);
  if (text === null) fs.rmSync(p, { force: true });
  else fs.writeFileSync(p, text, { mode: 0o644 });
}

function cfg(...args: string[]): CliResult {
  return ctx.env.cli(['apply', '--config', ...args], { env: { MANIFOLD_CONFIG_DIRS: dir, MANIFOLD_JOURNAL: '0' } });
}

function listed(): string[] {
  return status(ctx).bindings.map((b) => `${b.label} ${b.protocol} ${b.prefix} ${b.port}`).sort();
}

function configuredLabels(): string[] {
  const doc = ctx.env.ok(['status', '--json']).json as { destinations: { label: string; configured: boolean }[] };
  return doc.destinations.filter((d) => d.configured).map((d) => d.label).sort();
}

function repaired(what: string): void {
  assert.equal(invariantProblems(inspectTestState(ctx.env)), [], what);
}

test('apply --config applies the labels of the files and keeps bindings made by hand', async () => {
  ctx.env.ok(['bind', 'manual', 'tcp', '192.0.2.99', '8080']);
  conf('web', WEB);
  conf('api', API);
  const dry = cfg('--dry-run', '--json');
  assert.is(dry.code, 0, dry.stderr);
  const d = dry.json as { added: unknown[]; removed: unknown[]; kept: { byHand: Record<string, number> }; configuredLabels: string[] };
  assert.is(d.added.length, 2);
  assert.equal(d.removed, []);
  assert.equal(d.kept.byHand, { manual: 1 });
  assert.equal(d.configuredLabels, ['api', 'web']);
  assert.equal(listed(), ['manual tcp 192.0.2.99/32 8080'], 'dry run changed nothing');

  const r = cfg();
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, 'manifold: kept 1 binding(s) made by hand, of labels no config file defines: manual (1); --prune removes them');
  assert.equal(listed(), ['api tcp 198.51.100.0/24 0', 'manual tcp 192.0.2.99/32 8080', 'web tcp 192.0.2.0/24 80']);
  assert.equal(configuredLabels(), ['api', 'web']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.99', 8080), 'manual');
  assert.is(await ctx.agent.who('tcp', '192.0.2.5', 80), 'web');
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 443), 'api');
  repaired('after apply --config');
});

test('a configured label is the files\': bindings added to it by hand go; a removed file\'s label goes', async () => {
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.7', '9999']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.7', 9999), 'web');
  conf('api', null);
  const r = cfg('--json');
  assert.is(r.code, 0, r.stderr);
  const doc = r.json as { removed: { label: string; prefix: string }[] };
  assert.equal(doc.removed.map((b) => `${b.label} ${b.prefix}`).sort(), ['api 198.51.100.0/24', 'web 192.0.2.7/32']);
  assert.equal(listed(), ['manual tcp 192.0.2.99/32 8080', 'web tcp 192.0.2.0/24 80']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.7', 9999), '!ECONNREFUSED');
  assert.is(await ctx.agent.who('tcp', '198.51.100.9', 443), '!ECONNREFUSED');
  assert.is(await ctx.agent.who('tcp', '192.0.2.99', 8080), 'manual');
  assert.equal(configuredLabels(), ['web']);
});

test('a file with problems: without --skip-invalid nothing changes; with it the rest is applied, its label keeps its bindings, exit 1', async () => {
  conf('api', API);
  assert.is(cfg().code, 0);
  const before = listed();
  // web.conf breaks (host bits set); api.conf changes; both at once.
  conf('web', '[Label]\nBind=tcp 192.0.2.1/24 443\n');
  conf('api', '[Label]\nBind=tcp 198.51.100.0/25 0\n');
  const strict = cfg('--json');
  assert.is(strict.code, 1, strict.stderr);
  assert.is((strict.json as { error: { code: string } }).error.code, 'ERR_INVALID_CONFIG');
  assert.equal(listed(), before, 'refused as a whole');

  const r = cfg('--skip-invalid', '--json');
  assert.is(r.code, 1, r.stderr);
  const doc = r.json as { error: { code: string; message: string }; problems: { file: string; line: number }[]; kept: { configured: Record<string, number>; byHand: Record<string, number> }; configuredLabels: string[] };
  assert.is(doc.error.code, 'ERR_INVALID_CONFIG');
  assert.equal(doc.problems.map((p) => `${path.basename(p.file)}:${p.line}`), ['web.conf:2']);
  assert.equal(doc.kept.configured, { web: 1 });
  assert.equal(doc.kept.byHand, { manual: 1 });
  assert.equal(doc.configuredLabels, ['api', 'web']);
  assert.match(r.stderr, /^manifold: error: \S+\/web\.conf:2: prefix "192\.0\.2\.1\/24" in Bind= has host bits set; did you mean 192\.0\.2\.0\/24\? \(file skipped\)$/m);
  assert.match(r.stderr, /^manifold: error: 1 problem in the configuration: the files with problems were left out, the rest was applied, and labels applied from the configuration before keep their bindings \(manifold verify\):$/m);
  assert.equal(listed(), ['api tcp 198.51.100.0/25 0', 'manual tcp 192.0.2.99/32 8080', 'web tcp 192.0.2.0/24 80']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.5', 80), 'web', 'the broken file\'s label still steered');
  assert.is(await ctx.agent.who('tcp', '198.51.100.5', 80), 'api');
  assert.is(await ctx.agent.who('tcp', '198.51.100.200', 80), '!ECONNREFUSED', 'the valid change applied');

  // While a file has problems, no configured label is removed: it might be that file's.
  conf('api', null);
  assert.is(cfg('--skip-invalid').code, 1);
  assert.is(await ctx.agent.who('tcp', '198.51.100.5', 80), 'api');
  // Fixed: the removed file's label goes now, web takes its new Bind=.
  conf('web', '[Label]\nBind=tcp 192.0.2.0/24 443\n');
  const fixed = cfg();
  assert.is(fixed.code, 0, fixed.stderr);
  assert.equal(listed(), ['manual tcp 192.0.2.99/32 8080', 'web tcp 192.0.2.0/24 443']);
  assert.is(await ctx.agent.who('tcp', '198.51.100.5', 80), '!ECONNREFUSED');
  assert.is(await ctx.agent.who('tcp', '192.0.2.5', 443), 'web');
  repaired('after the fix');
});

test('a key a config file binds is taken from a binding made by hand, with a warning; --prune removes the rest', async () => {
  ctx.env.ok(['bind', 'manual', 'tcp', '192.0.2.50', '7000']);
  conf('web', '[Label]\nBind=tcp 192.0.2.0/24 443\nBind=tcp 192.0.2.50 7000\n');
  const r = cfg();
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, 'manifold: warning: 1 binding(s) not from the configuration are now bound by a config file to its label: tcp 192.0.2.50/32 7000 (was manual)');
  assert.match(r.stdout, /^~ tcp 192\.0\.2\.50\/32 7000 -> web \(was manual\)$/m);
  assert.is(await ctx.agent.who('tcp', '192.0.2.50', 7000), 'web');
  const p = cfg('--prune');
  assert.is(p.code, 0, p.stderr);
  assert.match(p.stdout, /^- tcp 192\.0\.2\.99\/32 8080 -> manual$/m);
  assert.equal(listed(), ['web tcp 192.0.2.0/24 443', 'web tcp 192.0.2.50/32 7000']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.99', 8080), '!ECONNREFUSED');
});

test('--prune and --skip-invalid go with --config only', () => {
  for (const opt of ['--prune', '--skip-invalid']) {
    const r = ctx.env.cli(['apply', '-', opt], { input: '{"bindings":[]}' });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, `${opt} goes with --config`);
  }
});

test('a label whose socket a systemd unit registers (Socket=, Service=) is awaited, not warned about', () => {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  conf('sock', '[Label]\nBind=tcp 203.0.113.0/24 80\nSocket=sock.socket\n');
  conf('svc', '[Label]\nBind=udp 203.0.113.0/24 53\nService=svc.service\nListen=udp 127.0.0.1 5353\n');
  conf('bare', '[Label]\nBind=tcp 203.0.113.0/24 81\n');
  const r = cfg();
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^manifold: ipv4:tcp:sock has no socket yet: sock\.socket registers it when it starts \(until then its 1 binding\(s\) refuse traffic\)$/m);
  assert.match(r.stderr, /^manifold: ipv4:udp:svc has no socket yet: svc\.service registers it when it starts/m);
  assert.match(r.stderr, /^manifold: warning: ipv4:tcp:bare has no socket: its 1 binding\(s\)/m, 'a label without a unit is still a warning');
  assert.not.match(r.stderr, /warning: ipv4:(tcp|udp):(sock|svc)/);
  for (const f of ['sock', 'svc', 'bare']) conf(f, null);
  assert.is(cfg().code, 0);
});

test.run();
