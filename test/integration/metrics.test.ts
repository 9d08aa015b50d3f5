/**
 * `manifold metrics`: exact counters after real traffic in a test
 * namespace, the Prometheus text format, the HTTP surface, failures as
 * 503/500, socket activation, clean shutdown; counters zeroed on id reuse
 * and kept across re-registration and upgrade.
 */
import { test } from 'uvu';
import { MANIFOLD_ABI } from '../../src/core/layout.js';
import * as assert from 'uvu/assert';
import { dest, serve, setup, status, teardown, type Ctx } from '../helpers/suite.js';
import { Exporter, httpIn } from '../helpers/exporter.js';
import { BIN } from '../helpers/env.js';
import { parsePromText, sampleValue, type PromFamily } from '../helpers/promtext.js';
import { sleep, waitExit } from '../helpers/wait.js';

let ctx: Ctx;
let exp: Exporter;

test.before(async () => {
  ctx = await setup('metr');
  exp = await Exporter.start(ctx.env);
});
test.after(async () => {
  if (exp) await exp.stop('SIGKILL').catch(() => undefined);
  teardown(ctx);
});

async function scrape(e: Exporter = exp): Promise<Map<string, PromFamily>> {
  const r = await e.get();
  assert.is(r.status, 200, `scrape: ${r.body}`);
  assert.match(r.contentType, /^text\/plain; version=0\.0\.4/);
  return parsePromText(r.body);
}

function d(label: string, protocol = 'tcp', domain = 'ipv4'): Record<string, string> {
  return { label, domain, protocol };
}

test('a scrape after real traffic shows exact lookups, misses and bad_socket errors', async () => {
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.80', '80']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), '!ECONNREFUSED', 'no socket yet: a miss');
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9080);
  for (let i = 0; i < 3; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'web');

  const udp = await serve(ctx, 'dns', 'udp', '127.0.0.1', 9053);
  ctx.env.ok(['bind', 'dns', 'udp', '192.0.2.53', '53']);
  assert.is(await ctx.agent.who('udp', '192.0.2.53', 53), 'dns');
  // The server socket connect()s after registration: bpf_sk_assign refuses it.
  await ctx.agent.call('udp-connect', { handle: udp.handle, host: '127.0.0.1', port: 9 });
  for (let i = 0; i < 2; i++) {
    const r = await ctx.agent.connect('udp', '192.0.2.53', 53, { timeoutMs: 300 });
    assert.is(r.code, 'TIMEOUT', 'datagram to a connected socket is dropped');
  }

  const m = await scrape();
  // lookups: every lookup that matched a binding (tubular's meaning): 1 miss + 3 steered.
  assert.is(sampleValue(m, 'manifold_lookups_total', d('web')), 4);
  assert.is(sampleValue(m, 'manifold_misses_total', d('web')), 1);
  for (const reason of ['bad_socket', 'wrong_family', 'wrong_protocol', 'other']) {
    assert.is(sampleValue(m, 'manifold_errors_total', { ...d('web'), reason }), 0, `web ${reason}`);
  }
  assert.is(sampleValue(m, 'manifold_bindings', d('web')), 1);
  assert.is(sampleValue(m, 'manifold_destination_has_socket', d('web')), 1);
  assert.is(sampleValue(m, 'manifold_lookups_total', d('dns', 'udp')), 3, '1 steered + 2 refused by bpf_sk_assign');
  assert.is(sampleValue(m, 'manifold_misses_total', d('dns', 'udp')), 0);
  assert.is(sampleValue(m, 'manifold_errors_total', { ...d('dns', 'udp'), reason: 'bad_socket' }), 2);
  assert.is(sampleValue(m, 'manifold_errors_total', { ...d('dns', 'udp'), reason: 'other' }), 0);
  assert.is(sampleValue(m, 'manifold_destination_has_socket', d('dns', 'udp')), 1, 'a connected socket stays in the sockmap');
  assert.is(m.get('manifold_lookups_total')?.type, 'counter');
  assert.is(m.get('manifold_bindings')?.type, 'gauge');
  const build = m.get('manifold_build_info')?.samples ?? [];
  assert.is(build.length, 1);
  assert.is(build[0]?.labels.abi, String(MANIFOLD_ABI));
  assert.ok(build[0]?.labels.version, 'version label');
  assert.is(build[0]?.value, 1);
  for (const name of ['manifold_lookups_total', 'manifold_misses_total', 'manifold_errors_total', 'manifold_bindings', 'manifold_destination_has_socket', 'manifold_collection_errors_total']) {
    assert.ok(m.get(name)?.help, `${name} has HELP`);
  }
  assert.is(sampleValue(m, 'manifold_collection_errors_total', { reason: 'not_loaded' }), 0);

  // status --json tells the same numbers.
  const s = status(ctx);
  const web = dest(s, 'web');
  const dns = dest(s, 'dns', 'ipv4', 'udp') as (ReturnType<typeof dest> & { errorsByReason: Record<string, number> }) | undefined;
  assert.is(web?.lookups, 4);
  assert.is(web?.misses, 1);
  assert.is(dns?.errors, 2);
  assert.is(dns?.errorsByReason.bad_socket, 2);
});

test('exposition passes the strict text-format validator with awkward label values', async () => {
  ctx.env.ok(['bind', 'a.b@c+d=e-f_g', 'tcp', '192.0.2.99', '99']);
  const r = await exp.get();
  const m = parsePromText(r.body);
  assert.is(sampleValue(m, 'manifold_bindings', d('a.b@c+d=e-f_g')), 1);
  assert.is(sampleValue(m, 'manifold_destination_has_socket', d('a.b@c+d=e-f_g')), 0);
  ctx.env.ok(['unbind', 'a.b@c+d=e-f_g', 'tcp', '192.0.2.99', '99']);
  // The validator itself rejects what Prometheus rejects.
  assert.throws(() => parsePromText('a{b="c\\x"} 1\n'), /invalid escape/);
  assert.throws(() => parsePromText('# TYPE a counter\na -1\n'), /negative/);
  assert.throws(() => parsePromText('a 1\nb 1\na{x="y"} 2\n'), /split apart/);
  assert.throws(() => parsePromText('a 1\na 2\n'), /duplicate series/);
  assert.throws(() => parsePromText('a 1'), /newline/);
});

test('HTTP: / points to /metrics, other paths 404, other methods 405, HEAD has no body', async () => {
  const root = await exp.get('/');
  assert.is(root.status, 200);
  assert.match(root.contentType, /^text\/html/);
  assert.match(root.body, 'href="/metrics"');
  for (const p of ['/nope', '/metrics/x', '/favicon.ico', '/metricsx']) assert.is((await exp.get(p)).status, 404, p);
  assert.is((await exp.get('/metrics', 'POST')).status, 405);
  const head = await exp.get('/metrics', 'HEAD');
  assert.is(head.status, 200);
  assert.is(head.body, '');
  assert.is((await exp.get('/metrics?x=1')).status, 200, 'query strings are ignored');
});

test('counters are zeroed when a destination id is given to a new destination', async () => {
  ctx.env.ok(['bind', 'old', 'tcp', '198.51.100.10', '10']);
  for (let i = 0; i < 2; i++) assert.is(await ctx.agent.who('tcp', '198.51.100.10', 10), '!ECONNREFUSED');
  const old = dest(status(ctx), 'old');
  assert.is(old?.misses, 2);
  ctx.env.ok(['unbind', 'old', 'tcp', '198.51.100.10', '10']);
  assert.is(dest(status(ctx), 'old'), undefined, 'garbage destination removed');
  ctx.env.ok(['bind', 'new', 'tcp', '198.51.100.11', '11']);
  const fresh = dest(status(ctx), 'new');
  assert.is(fresh?.id, old?.id, 'the freed id is reused');
  assert.is(fresh?.misses, 0);
  assert.is(fresh?.lookups, 0);
  const m = await scrape();
  assert.is(sampleValue(m, 'manifold_misses_total', d('new')), 0);
  assert.is(sampleValue(m, 'manifold_misses_total', d('old')), undefined, 'the old destination is gone from the metrics');
  assert.is(await ctx.agent.who('tcp', '198.51.100.11', 11), '!ECONNREFUSED');
  assert.is(sampleValue(await scrape(), 'manifold_misses_total', d('new')), 1);
});

test('counters survive re-registration, socket close and upgrade', async () => {
  const before = await scrape();
  const lookups = sampleValue(before, 'manifold_lookups_total', d('web')) ?? -1;
  const misses = sampleValue(before, 'manifold_misses_total', d('web')) ?? -1;
  // Replace the socket.
  const second = await serve(ctx, 'web', 'tcp', '127.0.0.1', 9081);
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'web');
  let m = await scrape();
  assert.is(sampleValue(m, 'manifold_lookups_total', d('web')), lookups + 1, 'replaced socket: counters kept');
  // Close it: the kernel removes it from the sockmap; traffic is refused and counted as a miss.
  await ctx.agent.call('close', { handle: second.handle });
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), '!ECONNREFUSED');
  m = await scrape();
  assert.is(sampleValue(m, 'manifold_destination_has_socket', d('web')), 0);
  assert.is(sampleValue(m, 'manifold_misses_total', d('web')), misses + 1);
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9082);
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'web');
  // Upgrade the program in place.
  ctx.env.ok(['upgrade'], { env: { MANIFOLD_VERSION_OVERRIDE: '9.9.9-metrics-test' } });
  assert.is(await ctx.agent.who('tcp', '192.0.2.80', 80), 'web');
  m = await scrape();
  assert.is(sampleValue(m, 'manifold_lookups_total', d('web')), lookups + 4, 'counters kept across upgrade (3 steered, 1 miss)');
  assert.is(sampleValue(m, 'manifold_misses_total', d('web')), misses + 1);
  assert.is(sampleValue(m, 'manifold_errors_total', { ...d('dns', 'udp'), reason: 'bad_socket' }), 2);
  assert.is(sampleValue(m, 'manifold_dispatcher_info', { version: '9.9.9-metrics-test' }), 1, 'dispatcher version after upgrade');
});

test('a scrape without state answers 503 with a text body, logs why, and is counted', async () => {
  ctx.env.ok(['unload']);
  const r = await exp.get();
  assert.is(r.status, 503);
  assert.match(r.contentType, /^text\/plain/);
  assert.match(r.body, 'ERR_NOT_LOADED');
  assert.match(exp.stderr, /scrape failed \(HTTP 503, ERR_NOT_LOADED\)/);
  const again = await exp.get();
  assert.is(again.status, 503);
  assert.is(exp.stderr.match(/scrape failed/g)?.length, 1, 'the same failure is not logged twice in a row');
  ctx.env.ok(['load']);
  const m = await scrape();
  assert.is(sampleValue(m, 'manifold_collection_errors_total', { reason: 'not_loaded' }), 2);
  assert.is(m.get('manifold_lookups_total')?.samples.length, 0, 'fresh load: no destinations');
  assert.match(exp.stderr, 'read the state again');
});

test('SIGTERM stops the exporter cleanly with exit 0; SIGINT too', async () => {
  const r = await exp.stop('SIGTERM');
  assert.is(r.code, 0, exp.stderr);
  assert.ok(r.ms < 3000, `took ${r.ms} ms`);
  assert.match(exp.stderr, 'metrics exporter stopped (SIGTERM)');
  const other = await Exporter.start(ctx.env);
  assert.is((await other.get()).status, 200);
  const r2 = await other.stop('SIGINT');
  assert.is(r2.code, 0, other.stderr);
  exp = other;
});

test('socket activation: serves on the passed fd; address arguments are then refused', async () => {
  const port = 9733;
  // systemd-socket-activate execs manifold on the first connection, with the listening socket as fd 3.
  const act = await Exporter.start(ctx.env, { wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`], listenArgs: [], knownPort: port, ready: /Listening on/ });
  try {
    const m = await scrape(act);
    assert.ok(m.has('manifold_build_info'));
    assert.match(act.stderr, /serving metrics on http:\/\/127\.0\.0\.1:9733\/metrics \(fd 3\)/);
  } finally {
    assert.is((await act.stop()).code, 0, act.stderr);
  }
  const both = ctx.env.spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, BIN, 'metrics', '127.0.0.1', '1', '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = waitExit(both, 60_000, 'systemd-socket-activate running manifold metrics with an address and a socket');
  let err = '';
  both.stderr?.setEncoding('utf8').on('data', (x: string) => (err += x));
  for (let i = 0; i < 100 && !err.includes('Listening on'); i++) await sleep(50);
  void httpIn(ctx.env.netnsPath, `http://127.0.0.1:${port}/`).catch(() => undefined);
  const { code } = await exited.catch((e: Error) => {
    both.kill('SIGKILL');
    throw new Error(`${e.message}: ${err}`);
  });
  assert.is(code, 2, err);
  assert.match(err, 'sockets were passed by systemd');
  const none = ctx.env.cli(['metrics']);
  assert.is(none.code, 2);
  assert.match(none.stderr, 'give an address and a port');
});

test.run();
