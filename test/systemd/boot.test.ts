/**
 * Proves the systemd test harness: a real systemd 252 boots as PID 1 in namespaces,
 * runs units, socket activation, sd_notify and generators, and leaves nothing behind.
 * Root only. Run: node node_modules/uvu/bin.js build/test/systemd boot
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { ownedName } from '../helpers/env.js';
import { bootSystemd, type Container } from './harness.js';

let c: Container | undefined;
let shutDown = false;
// In the host's own /tmp, on purpose; named so test/run.mjs removes it if this file is killed.
const sentinel = `/tmp/${ownedName('sd-boot-test')}`;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

test.before(async () => {
  fs.writeFileSync(sentinel, 'must survive\n');
  const t0 = Date.now();
  c = await bootSystemd({
    name: 'boot',
    files: {
      '/etc/systemd/system/mf-preboot.service': `[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/echo mf-preboot ran
`,
      '/etc/systemd/system/manifold-test.target.d/50-mf-preboot.conf': `[Unit]
Wants=mf-preboot.service
`,
    },
  });
  console.log(`  booted ${c.id} (pid ${c.pid}) in ${Date.now() - t0} ms`);
});

test.after(async () => {
  if (c && !shutDown) await c.shutdown();
  fs.rmSync(sentinel, { force: true });
});

test('boots to running, journald up, pre-boot files applied, root is the overlay', async () => {
  const t0 = Date.now();
  const { state, failed } = await box().waitForSystemRunning();
  console.log(`  is-system-running: ${state} after ${Date.now() - t0} ms more`);
  assert.equal(failed, [], `failed units: ${failed.join(' ')}`);
  assert.is(state, 'running');
  assert.is((await box().systemctl('is-active', 'systemd-journald.service')).stdout.trim(), 'active');
  assert.is((await box().systemctl('is-active', 'mf-preboot.service')).stdout.trim(), 'active');
  assert.match((await box().journalctl('-u', 'mf-preboot.service')).stdout, 'mf-preboot ran');
  const mounts = await box().exec(['findmnt', '-n', '-o', 'FSTYPE,OPTIONS', '/']);
  assert.match(mounts.stdout, /^overlay .*lowerdir=\/,/);
  assert.is((await box().exec(['findmnt', '-n', '-o', 'FSTYPE', '/sys/fs/bpf'])).stdout.trim(), 'bpf');
  assert.is((await box().exec(['hostname'])).stdout.trim(), box().id);
  assert.not.equal((await box().exec(['touch', `${box().workTree}/.mf-sd-probe`])).code, 0, 'checkout must be read-only');
});

test('a unit written after boot starts and logs to the journal', async () => {
  await box().writeFile('/etc/systemd/system/mf-hello.service', `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo hello from mf-hello'
`);
  assert.is((await box().systemctl('daemon-reload')).code, 0);
  const r = await box().systemctl('start', 'mf-hello.service');
  assert.is(r.code, 0, r.stderr);
  assert.match((await box().journalctl('-u', 'mf-hello.service', '-o', 'cat')).stdout, 'hello from mf-hello');
});

test('writeFile resolves symlinks inside the container, never on the host', async () => {
  const link = `/etc/mf-sd-link-${randomBytes(3).toString('hex')}`;
  assert.is((await box().exec(['ln', '-s', `${link}.target`, link])).code, 0);
  await box().writeFile(link, 'inside\n');
  assert.is(await box().readFile(`${link}.target`), 'inside\n');
  assert.not.ok(fs.existsSync(`${link}.target`), 'wrote through to the host');
});

test('socket activation: a client in the netns talks to an Accept=no service', async () => {
  await box().writeFile('/usr/local/lib/mf-sd/echo.cjs', `const net = require('node:net');
const names = process.env.LISTEN_FDNAMES;
const ok = process.env.LISTEN_PID === String(process.pid);
net.createServer((s) => s.once('data', (d) => s.end('echo ' + names + ' ' + ok + ' ' + d))).listen({ fd: 3 });
`);
  await box().writeFile('/etc/systemd/system/mf-echo.socket', `[Socket]
ListenStream=127.0.0.1:7777
Accept=no
`);
  await box().writeFile('/etc/systemd/system/mf-echo.service', `[Service]
ExecStart=${box().nodePath} /usr/local/lib/mf-sd/echo.cjs
`);
  await box().systemctl('daemon-reload');
  const s = await box().systemctl('start', 'mf-echo.socket');
  assert.is(s.code, 0, s.stderr);
  assert.is((await box().systemctl('is-active', 'mf-echo.service')).stdout.trim(), 'inactive');
  const client = await box().exec(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/7777; echo ping >&3; cat <&3'], { timeoutMs: 10_000 });
  assert.is(client.code, 0, client.stderr);
  assert.is(client.stdout, 'echo mf-echo.socket true ping\n');
  assert.is((await box().systemctl('is-active', 'mf-echo.service')).stdout.trim(), 'active');
});

test('Type=notify with systemd-notify --ready reaches active', async () => {
  await box().writeFile('/etc/systemd/system/mf-notify.service', `[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=10
ExecStart=/bin/sh -c 'systemd-notify --ready --status="mf ready"; exec sleep infinity'
`);
  await box().systemctl('daemon-reload');
  const r = await box().systemctl('start', 'mf-notify.service');
  assert.is(r.code, 0, r.stderr);
  const show = (await box().systemctl('show', '-p', 'ActiveState,SubState,StatusText', 'mf-notify.service')).stdout;
  assert.match(show, 'ActiveState=active');
  assert.match(show, 'SubState=running');
  assert.match(show, 'StatusText=mf ready');
});

test('a generator runs on daemon-reload; its /dev/kmsg line reaches the console', async () => {
  await box().writeFile('/etc/systemd/system-generators/mf-test-generator', `#!/bin/sh
# mf-test-generator: emits one unit and logs to /dev/kmsg
echo "<5>mf-test-generator[$$]: writing to $1" > /dev/kmsg
cat > "$1/mf-generated.service" <<EOF
# Generated by mf-test-generator
[Unit]
SourcePath=/etc/systemd/system-generators/mf-test-generator
[Service]
Type=oneshot
ExecStart=/bin/echo mf-generated ran
EOF
`, 0o755);
  assert.is((await box().systemctl('daemon-reload')).code, 0);
  const line = await box().waitForConsole('mf-test-generator[');
  assert.match(line, '<5>mf-test-generator[');
  assert.match(line, 'writing to /run/systemd/generator');
  const r = await box().systemctl('start', 'mf-generated.service');
  assert.is(r.code, 0, r.stderr);
  assert.match((await box().journalctl('-u', 'mf-generated.service', '-o', 'cat')).stdout, 'mf-generated ran');
  const inJournal = (await box().journalctl('-o', 'cat')).stdout.includes('writing to /run/systemd/generator');
  console.log(`  generator kmsg line: on the console; in the journal: ${inJournal ? 'yes' : 'no'}`);
});

test('shutdown leaves no netns, cgroup, process; host /tmp intact', async () => {
  const { id, pid, netnsName, cgroupPath } = box();
  const pidNs = fs.readlinkSync(`/proc/${pid}/ns/pid`);
  const t0 = Date.now();
  shutDown = true;
  await box().shutdown();
  console.log(`  shutdown of ${id} took ${Date.now() - t0} ms`);
  assert.not.ok(fs.existsSync(`/run/netns/${netnsName}`), 'netns left');
  assert.not.ok(fs.existsSync(cgroupPath), 'cgroup left');
  const left = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readlinkSync(`/proc/${p}/ns/pid`) === pidNs; } catch { return false; }
  });
  assert.equal(left, [], 'processes left in the container pid namespace');
  assert.ok(fs.existsSync(sentinel), 'HOST /tmp SENTINEL IS GONE');
  assert.match(box().console(), 'Powering off');
});

test.run();
