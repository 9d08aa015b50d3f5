/**
 * Under a real systemd 257 (Debian 13 root built with debootstrap, debian-root.ts), issue 14
 * item 9: a socket unit with PassFileDescriptorsToExec=yes hands its listening fds to its own
 * ExecStartPost= (checked with a shell stand-in against the kernel's socket tables, and
 * without the setting as a control), and manifold's generator, reading 257 from PID 1's
 * maps, renders Socket= that way: the socket's ExecStartPost= runs `manifold register`, real
 * TCP to a steered address reaches the socket-activated service, no manifold-register@
 * instance is involved, and a failed registration leaves the socket working (fail-open).
 * manifold runs from the checkout with the host's node bound in (hostNode): the root itself
 * has only Debian 13's packages (+ libbpf1). Root only. Run: node test/run.mjs trixie
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { debianRoot } from './debian-root.js';
import { bootSystemd, type Container } from './harness.js';
import { installFromCheckout, type Installation } from './install.js';

let c: Container | undefined;
let inst: Installation | undefined;
const GEN = '/run/systemd/generator';
const LIB = '/usr/local/lib/mf-trixie';

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

function installed(): Installation {
  if (!inst) throw new Error('manifold is not installed');
  return inst;
}

test.before(async () => {
  const root = await debianRoot('trixie', { packages: ['libbpf1'] });
  if (root.builtInS) console.log(`  built ${root.path} in ${root.builtInS} s`);
  c = await bootSystemd({ name: 'trixie', root: root.path, hostNode: true });
});

test.after(async () => {
  await c?.shutdown();
});

async function systemctl(...args: string[]): Promise<string> {
  const r = await box().systemctl(...args);
  assert.is(r.code, 0, `systemctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('Debian 13 with systemd 257 boots to running', async () => {
  const { state, failed } = await box().waitForSystemRunning();
  assert.equal(failed, [], `failed units: ${failed.join(' ')}`);
  assert.is(state, 'running');
  assert.match(await systemctl('--version'), /^systemd 257 \(/);
  assert.match(await box().readFile('/etc/os-release'), /^VERSION_ID="13"$/m);
});

// ---------------------------------------------------------------- the systemd feature, with a stand-in

const RECORD_SH = `#!/bin/sh
# Stand-in for manifold register: records what it was given.
out=/run/record-$1.txt
{ echo "self=$$"; echo "LISTEN_PID=$LISTEN_PID"; echo "LISTEN_FDS=$LISTEN_FDS"; echo "LISTEN_FDNAMES=$LISTEN_FDNAMES"
  for f in 3 4 5; do [ -e /proc/$$/fd/$f ] && echo "fd$f=$(readlink /proc/$$/fd/$f)"; done
} > $out.tmp
mv $out.tmp $out
`;

/** Listening TCP (state 0A) and unbound-remote UDP sockets on `port` in the container's netns: inode → table. */
function listeningInodes(port: number): Map<string, string> {
  const out = new Map<string, string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6', 'udp']) {
    const lines = fs.readFileSync(`/proc/${box().pid}/net/${table}`, 'utf8').split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1]?.endsWith(`:${hexPort}`)) continue;
      if (table.startsWith('tcp') && f[3] !== '0A') continue;
      out.set(f[9] as string, table);
    }
  }
  return out;
}

function record(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('PassFileDescriptorsToExec=yes: the socket\'s ExecStartPost= gets LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES and the listening fds', async () => {
  await box().writeFile(`${LIB}/record.sh`, RECORD_SH, 0o755);
  await box().writeFile('/etc/systemd/system/probe.socket', `[Socket]
ListenStream=127.0.0.1:7070
ListenStream=[::1]:7070
ListenDatagram=127.0.0.1:7070
BindIPv6Only=ipv6-only
FileDescriptorName=probe-fds
PassFileDescriptorsToExec=yes
ExecStartPost=+${LIB}/record.sh with
`);
  await box().writeFile('/etc/systemd/system/probe.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  await box().writeFile('/etc/systemd/system/control.socket', `[Socket]
ListenStream=127.0.0.1:7071
ExecStartPost=${LIB}/record.sh without
`);
  await box().writeFile('/etc/systemd/system/control.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  await systemctl('daemon-reload');
  await systemctl('start', 'probe.socket', 'control.socket');

  const got = record(await box().readFile('/run/record-with.txt'));
  assert.is(got.LISTEN_PID, got.self, 'LISTEN_PID is the ExecStartPost= process itself');
  assert.is(got.LISTEN_FDS, '3');
  assert.is(got.LISTEN_FDNAMES, 'probe-fds:probe-fds:probe-fds');
  const listening = listeningInodes(7070);
  assert.is(listening.size, 3, `three listening sockets on 7070: ${[...listening.values()].join(' ')}`);
  const passed = ['fd3', 'fd4', 'fd5'].map((k) => /^socket:\[(\d+)\]$/.exec(got[k] ?? '')?.[1]);
  assert.equal(passed.map((i) => (i ? listening.get(i) : undefined)).sort(), ['tcp', 'tcp6', 'udp'],
    `fds 3-5 are the socket unit's listening sockets: ${JSON.stringify(got)}`);

  const control = record(await box().readFile('/run/record-without.txt'));
  assert.is(control.LISTEN_FDS, '', 'without the setting ExecStartPost= gets no fds');
  assert.is(control.fd3, undefined);
  await systemctl('stop', 'probe.socket', 'control.socket');
});

// ---------------------------------------------------------------- manifold's rendering for >= 256

const WEB_JS = `import net from 'node:net';
if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
  console.error('web: no socket passed'); process.exit(1);
}
net.createServer((s) => s.end('web ' + process.pid + '\\n')).listen({ fd: 3 });
`;

async function manifold(...args: string[]): Promise<string> {
  const r = await box().exec([installed().bin, ...args], { timeoutMs: 60_000 });
  assert.is(r.code, 0, `manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Destination { label: string; domain: string; protocol: string; socket: string | null }

async function webCookie(): Promise<string | null> {
  const st = JSON.parse(await manifold('status', '--json')) as { destinations: Destination[] };
  return st.destinations.find((d) => d.label === 'web' && d.domain === 'ipv4' && d.protocol === 'tcp')?.socket ?? null;
}

async function request(host: string, port: number): Promise<string> {
  const r = await box().exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && timeout 10 cat <&3`], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`connect ${host}:${port}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

test('installed from the checkout: the generator reads systemd 257 and renders Socket= with PassFileDescriptorsToExec=', async () => {
  inst = await installFromCheckout(box());
  const ip = spawnSync('ip', ['-n', box().netnsName, 'route', 'add', 'local', '192.0.2.0/24', 'dev', 'lo'], { encoding: 'utf8' });
  assert.is(ip.status, 0, ip.stderr);
  await box().writeFile('/etc/manifold/web.conf', '[Label]\nBind=tcp 192.0.2.0/24 80\nSocket=web.socket\n');
  await box().writeFile(`${LIB}/web.mjs`, WEB_JS);
  await box().writeFile('/etc/systemd/system/web.socket', '[Socket]\nListenStream=127.0.0.1:8080\n');
  await box().writeFile('/etc/systemd/system/web.service', `[Service]\nExecStart=${box().nodePath} ${LIB}/web.mjs\n`);
  await systemctl('daemon-reload');
  await systemctl('reload', 'manifold.service');

  const dropIn = await box().readFile(`${GEN}/web.socket.d/50-manifold.conf`);
  assert.match(dropIn, /^\[Socket\]\nPassFileDescriptorsToExec=yes\nExecStartPost=-\+\/usr\/bin\/manifold register web$/m);
  assert.match(dropIn, /^After=manifold\.service$/m);
  assert.not.match(dropIn, /manifold-register@/);
  const gen = await box().exec(['ls', GEN]);
  assert.not.match(gen.stdout, /manifold-register@/, 'no template instance drop-in');
  const shown = await systemctl('show', '-p', 'PassFileDescriptorsToExec,ExecStartPost', 'web.socket');
  assert.match(shown, /^PassFileDescriptorsToExec=yes$/m, 'systemd 257 parsed the setting');
  assert.match(shown, /path=\/usr\/bin\/manifold ; argv\[\]=\/usr\/bin\/manifold register web ; ignore_errors=yes/);
  const verify = await box().exec(['systemd-analyze', 'verify', '/etc/systemd/system/web.socket']);
  assert.not.match(verify.stderr, /web\.socket|50-manifold/, verify.stderr);
});

test('starting web.socket registers its fd through ExecStartPost=; steered traffic reaches the service', async () => {
  assert.is(await webCookie(), null, 'nothing registered before the socket starts');
  await systemctl('start', 'web.socket');
  const cookie = await webCookie();
  assert.ok(cookie, 'web registered');
  const log = await box().journalctl('-u', 'web.socket', '-o', 'cat');
  assert.match(log.stdout, /registered ipv4:tcp:web/);
  const answer = await request('192.0.2.77', 80);
  assert.match(answer, /^web \d+$/);
  const units = await systemctl('list-units', '--all', '--plain', '--no-legend', 'manifold-register@*');
  assert.is(units.trim(), '', 'no manifold-register@ instance was loaded');

  // Restarting the socket (service stopped first) registers the new socket.
  await systemctl('stop', 'web.service', 'web.socket');
  await systemctl('start', 'web.socket');
  const again = await webCookie();
  assert.ok(again && again !== cookie, `a new socket is registered (${cookie} → ${again})`);
  assert.match(await request('192.0.2.8', 80), /^web \d+$/);
});

test('fail-open: when registration fails the socket still starts and serves its own address', async () => {
  await systemctl('stop', 'web.service', 'web.socket');
  await manifold('unload');
  const r = await box().systemctl('start', 'web.socket');
  assert.is(r.code, 0, r.stderr);
  assert.is((await systemctl('is-active', 'web.socket')).trim(), 'active');
  const log = await box().journalctl('-u', 'web.socket', '-o', 'cat');
  assert.match(log.stdout, /not loaded/i);
  assert.match(await request('127.0.0.1', 8080), /^web \d+$/);
  await systemctl('stop', 'web.service', 'web.socket');
});

test.run();
