/**
 * The shipped manifold-metrics.socket/.service under a real systemd: the
 * first scrape activates the exporter, which runs as an unprivileged
 * dynamic user in the group "manifold" (no capabilities) and serves exact
 * counters from the container's private bpffs. Root only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootSystemd, type Container } from './harness.js';
import { parsePromText, sampleValue } from '../helpers/promtext.js';

let c: Container | undefined;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

const FETCH = `fetch(process.argv[1]).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { process.stdout.write(JSON.stringify({ status: -1, body: String(e.cause ?? e) })); });`;

async function scrape(url = 'http://127.0.0.1:9733/metrics'): Promise<{ status: number; body: string }> {
  const r = await box().exec([box().nodePath, '-e', FETCH, url], { timeoutMs: 30_000 });
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; body: string };
}

async function manifold(...args: string[]): Promise<string> {
  const r = await box().exec([path.join(box().workTree, 'bin', 'manifold'), ...args], { timeoutMs: 60_000 });
  assert.is(r.code, 0, `manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The shipped unit with ExecStart= pointed at this checkout. */
function unit(name: string): string {
  const text = fs.readFileSync(path.join(box().workTree, 'units', name), 'utf8');
  // The checkout may live under /tmp (a CI clone), which PrivateTmp= (implied
  // by DynamicUser=) hides from the service: bind it in explicitly.
  return text
    .replace(/^ExecStart=\/usr\/bin\/manifold /m, `ExecStart=${path.join(box().workTree, 'bin', 'manifold')} `)
    .replace(/^\[Service\]$/m, `[Service]\nBindReadOnlyPaths=${box().workTree}`);
}

async function mainPidStatus(): Promise<string> {
  const pid = (await box().systemctl('show', '-p', 'MainPID', '--value', 'manifold-metrics.service')).stdout.trim();
  assert.ok(Number(pid) > 0, `MainPID ${pid}`);
  return box().readFile(`/proc/${pid}/status`);
}

function field(status: string, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
}

test.before(async () => {
  c = await bootSystemd({ name: 'metrics' });
  const s = await c.waitForSystemRunning();
  assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
});

test.after(async () => {
  if (c) await c.shutdown();
});

test('socket activation: the first scrape starts the unprivileged exporter; exact counters', async () => {
  assert.is((await box().exec(['groupadd', '--system', 'manifold'])).code, 0);
  // systemd mounted the container's private bpffs 0700: let others search it.
  assert.is((await box().exec(['chmod', 'o+x', '/sys/fs/bpf'])).code, 0);
  await manifold('load', '--group', 'manifold');
  await manifold('bind', 'sd', 'tcp', '127.0.0.2', '80');
  const refused = await box().exec(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.2/80'], { timeoutMs: 10_000 });
  assert.not.equal(refused.code, 0, 'no socket: connection refused');

  await box().writeFile('/etc/systemd/system/manifold-metrics.socket', unit('manifold-metrics.socket'));
  await box().writeFile('/etc/systemd/system/manifold-metrics.service', unit('manifold-metrics.service'));
  assert.is((await box().systemctl('daemon-reload')).code, 0);
  const start = await box().systemctl('start', 'manifold-metrics.socket');
  assert.is(start.code, 0, start.stderr);
  assert.is((await box().systemctl('is-active', 'manifold-metrics.service')).stdout.trim(), 'inactive');

  const r = await scrape();
  assert.is(r.status, 200, r.body);
  const m = parsePromText(r.body);
  const sd = { label: 'sd', domain: 'ipv4', protocol: 'tcp' };
  assert.is(sampleValue(m, 'manifold_misses_total', sd), 1);
  assert.is(sampleValue(m, 'manifold_lookups_total', sd), 1, 'the refused connection matched the binding: a lookup, and a miss');
  assert.is(sampleValue(m, 'manifold_bindings', sd), 1);
  assert.is(sampleValue(m, 'manifold_destination_has_socket', sd), 0);
  assert.is(m.get('manifold_build_info')?.samples.length, 1);
  assert.is((await box().systemctl('is-active', 'manifold-metrics.service')).stdout.trim(), 'active');

  const st = await mainPidStatus();
  const [ruid] = field(st, 'Uid').split(/\s+/);
  assert.not.equal(ruid, '0', 'runs as a non-root user');
  const gid = (await box().exec(['getent', 'group', 'manifold'])).stdout.split(':')[2];
  assert.ok(field(st, 'Groups').split(/\s+/).includes(gid ?? 'x'), `in group manifold (${gid}): ${field(st, 'Groups')}`);
  assert.is(field(st, 'CapEff'), '0000000000000000', 'no capabilities');
  assert.is(field(st, 'NoNewPrivs'), '1');
  const journal = (await box().journalctl('-u', 'manifold-metrics.service', '-o', 'cat')).stdout;
  assert.match(journal, /serving metrics on http:\/\/127\.0\.0\.1:9733\/metrics \(fd 3\)/);
});

test('a scrape without state answers 503 and the reason is in the journal', async () => {
  await manifold('unload');
  const r = await scrape();
  assert.is(r.status, 503);
  assert.match(r.body, 'ERR_NOT_LOADED');
  await manifold('load', '--group', 'manifold');
  assert.is((await scrape()).status, 200);
  const journal = (await box().journalctl('-u', 'manifold-metrics.service', '-o', 'cat')).stdout;
  assert.match(journal, /scrape failed \(HTTP 503, ERR_NOT_LOADED\)/);
});

test('with AmbientCapabilities=CAP_BPF (older kernels) NoNewPrivileges=yes still works', async () => {
  await box().writeFile('/etc/systemd/system/manifold-metrics.service.d/50-cap-bpf.conf', '[Service]\nCapabilityBoundingSet=CAP_BPF\nAmbientCapabilities=CAP_BPF\n');
  await box().systemctl('daemon-reload');
  assert.is((await box().systemctl('restart', 'manifold-metrics.service')).code, 0);
  assert.is((await scrape()).status, 200);
  const st = await mainPidStatus();
  const capBpf = 1n << 39n;
  assert.is(BigInt(`0x${field(st, 'CapAmb')}`), capBpf, `CapAmb ${field(st, 'CapAmb')}`);
  assert.is(BigInt(`0x${field(st, 'CapEff')}`), capBpf, `CapEff ${field(st, 'CapEff')}`);
  assert.is(field(st, 'NoNewPrivs'), '1');
});

test('systemctl stop: the exporter exits 0 (SIGTERM), the socket keeps listening', async () => {
  const stop = await box().systemctl('stop', 'manifold-metrics.service');
  assert.is(stop.code, 0, stop.stderr);
  const show = (await box().systemctl('show', '-p', 'Result,ExecMainStatus,ExecMainCode', 'manifold-metrics.service')).stdout;
  assert.match(show, 'Result=success');
  assert.match(show, 'ExecMainStatus=0');
  assert.is((await box().systemctl('is-active', 'manifold-metrics.socket')).stdout.trim(), 'active');
  assert.is((await scrape()).status, 200, 'activated again by the next scrape');
  const root = await scrape('http://127.0.0.1:9733/');
  assert.is(root.status, 200);
  assert.match(root.body, '/metrics');
});

test.run();
