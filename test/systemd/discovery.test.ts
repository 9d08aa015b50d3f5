/**
 * The shipped manifold-discovery.service under a real systemd (PID 1 of a
 * throw-away container whose cgroup is a test cgroup, never the machine's
 * root): ExecStartPre enables discovery on the container's root cgroup and
 * seeds the sockets already open, the watcher becomes ready (Type=notify),
 * registers a UDP socket bound later on a target address (journal event),
 * and exits by itself when discovery is disabled. Root only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootSystemd, type Container } from './harness.js';
import { EventIds } from '../../src/log/events.js';

let c: Container | undefined;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

async function manifold(...args: string[]): Promise<string> {
  const r = await box().exec([path.join(box().workTree, 'bin', 'manifold'), ...args], { timeoutMs: 60_000 });
  assert.is(r.code, 0, `manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The shipped unit with its commands pointed at this checkout. */
function unit(): string {
  const text = fs.readFileSync(path.join(box().workTree, 'units', 'manifold-discovery.service'), 'utf8');
  return text
    .replace(/^(Exec[A-Za-z]*=)\/usr\/bin\/manifold /gm, `$1${path.join(box().workTree, 'bin', 'manifold')} `)
    .replace(/^\[Service\]$/m, `[Service]\nBindReadOnlyPaths=${box().workTree}`);
}

/** A UDP server in its own transient unit (inside the container's cgroup tree). */
async function udpServer(unitName: string, host: string, port: number): Promise<void> {
  const js = `require('dgram').createSocket('udp4').bind(${port}, '${host}')`;
  const r = await box().exec(['systemd-run', `--unit=${unitName}`, '--service-type=simple', box().nodePath, '-e', js]);
  assert.is(r.code, 0, r.stderr);
  for (let i = 0; i < 100; i++) {
    const ss = await box().exec(['ss', '-Hlnu', `src ${host}:${port}`]);
    if (ss.stdout.includes(`${host}:${port}`)) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.unreachable(`${unitName} did not bind ${host}:${port}`);
}

interface Status {
  enabled: boolean;
  active: boolean;
  cgroup: { path: string } | null;
  links: { attached: boolean }[];
  counters: Record<string, number>;
  targets: { protocol: string; address: string; sockets: { port: number; registered: boolean }[] }[];
}

async function status(): Promise<Status> {
  return JSON.parse(await manifold('discovery', 'status', '--json')) as Status;
}

test.before(async () => {
  c = await bootSystemd({ name: 'disc' });
  const s = await c.waitForSystemRunning();
  assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
});

test.after(async () => {
  if (c) await c.shutdown();
});

test('start: enable on the root cgroup (the container\'s), seed, and READY from the watcher', async () => {
  await udpServer('mf-udp-before', '127.0.0.5', 5353);
  await box().writeFile('/etc/systemd/system/manifold-discovery.service', unit());
  assert.is((await box().systemctl('daemon-reload')).code, 0);
  const start = await box().systemctl('start', 'manifold-discovery.service');
  assert.is(start.code, 0, `${start.stderr}\n${(await box().journalctl('-u', 'manifold-discovery.service', '-o', 'cat')).stdout}`);
  assert.is((await box().systemctl('is-active', 'manifold-discovery.service')).stdout.trim(), 'active');
  const d = await status();
  assert.ok(d.enabled && d.active);
  assert.is(d.cgroup?.path, '/sys/fs/cgroup', 'the root of the container\'s cgroup v2 mount');
  assert.ok(d.links.length === 4 && d.links.every((l) => l.attached));
  assert.ok((d.counters.seeded ?? 0) >= 1, `the UDP socket bound before start was seeded: ${JSON.stringify(d.counters)}`);
  const journal = (await box().journalctl('-u', 'manifold-discovery.service', '-o', 'cat')).stdout;
  assert.match(journal, /enabled listener discovery on cgroup \/sys\/fs\/cgroup/);
  assert.match(journal, /watching UDP binds on target addresses/);
});

test('a UDP socket bound later on a target address is registered by the service, with a journal event', async () => {
  const lib = path.join(box().workTree, 'build', 'src');
  const js = `
    const { DiscoveryState } = await import('${lib}/discovery/state.js');
    const { addTarget } = await import('${lib}/discovery/targets.js');
    const { currentNetnsCookie } = await import('${lib}/sys/netns.js');
    const s = DiscoveryState.open('/sys/fs/bpf', true, 10000);
    const r = addTarget(s, { netns: currentNetnsCookie(), proto: 17, addr: Uint8Array.from([127, 0, 0, 5]) }, '/proc/self/ns/net');
    s.close();
    process.stdout.write(JSON.stringify(r.registered));`;
  const add = await box().exec([box().nodePath, '--input-type=module', '-e', js]);
  assert.is(add.code, 0, add.stderr);
  assert.is((JSON.parse(add.stdout) as { targets: number }).targets, 1, 'the socket bound before is registered when the target is added');
  await udpServer('mf-udp-after', '127.0.0.5', 5354);
  let registered = false;
  for (let i = 0; i < 100 && !registered; i++) {
    const t = (await status()).targets.find((x) => x.protocol === 'udp' && x.address === '127.0.0.5');
    registered = t?.sockets.some((s) => s.port === 5354 && s.registered) ?? false;
    if (!registered) await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(registered, 'registered by the watcher');
  const r = await box().journalctl('-o', 'json', `MESSAGE_ID=${EventIds['discovery-register']}`, 'MANIFOLD_PORT=5354');
  const e = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
  assert.is(e.length, 1, r.stdout);
  assert.match(e[0]!.MESSAGE ?? '', /^registered target socket udp 127\.0\.0\.5:5354/);
  assert.is(e[0]!._SYSTEMD_UNIT, 'manifold-discovery.service');
});

test('disable: nothing left attached or pinned, and the watcher stops by itself (exit 0)', async () => {
  await manifold('discovery', 'disable');
  let state = '';
  for (let i = 0; i < 100; i++) {
    state = (await box().systemctl('is-active', 'manifold-discovery.service')).stdout.trim();
    if (state === 'inactive') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.is(state, 'inactive');
  assert.match((await box().systemctl('show', '-p', 'Result', 'manifold-discovery.service')).stdout, 'Result=success');
  assert.is((await status()).enabled, false);
  const ls = await box().exec(['ls', '/sys/fs/bpf']);
  assert.not.match(ls.stdout, /manifold_discovery/);
  const cg = await box().exec(['bpftool', 'cgroup', 'show', '/sys/fs/cgroup']);
  assert.is(cg.stdout.trim(), '', cg.stdout);
});

test.run();
