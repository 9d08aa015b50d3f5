/**
 * The .deb on stock Debian (issue 12 item 2): for Debian 12 (bookworm, systemd 252) and
 * Debian 13 (trixie, systemd 257), a root built with debootstrap from Debian's own archive
 * (debian-root.ts) — no Node.js in it — booted with systemd as PID 1; `apt install
 * ./manifold_*.deb` and nothing else installs the package (the single executable embeds its
 * Node.js runtime); its maintainer scripts create the group and start manifold.service; the
 * installed command, generator and units steer real TCP to a socket-activated service (on
 * 257 through the socket's own ExecStartPost=, on 252 through manifold-register@); `apt
 * purge` unloads the dispatcher and leaves none of the package's files.
 *
 * The container has no network, so the roots are built with libbpf1 (a Depends, from
 * Debian's archive) already installed. There is no node anywhere in the container (no
 * hostNode): the test's socket-activated web service is a perl-base script.
 *
 * Root only; the first run builds and caches the roots (about 90 s each).
 * Run after `make build`: node test/run.mjs package-debian
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianRoot, type DebianSuite } from './debian-root.js';
import { bootSystemd, type Container } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-package-debian-'));
const IN_BOX = '/var/cache/manifold-test';
const LIB = '/usr/local/lib/mf-package';
let deb = '';
let version = '';

/** Socket-activated (Accept=no) web service: answers "web PID" on the listening socket, fd 3. */
const WEB_PL = `use strict; use warnings; use Socket;
open(my $l, '+<&=', 3) or die "fd 3: $!";
while (accept(my $c, $l)) { syswrite($c, "web $$\\n"); close($c); }
`;

test.before(() => {
  const r = spawnSync('make', ['-s', 'deb', `DEB_OUTDIR=${tmp}/out`, `DEB_STAGE=${tmp}/stage`], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  assert.is(r.status, 0, `make deb: ${r.stderr}${r.stdout}`);
  const debs = fs.readdirSync(path.join(tmp, 'out')).filter((f) => f.endsWith('.deb'));
  assert.is(debs.length, 1, `one .deb: ${debs.join(' ')}`);
  deb = path.join(tmp, 'out', debs[0] as string);
  version = spawnSync('dpkg-deb', ['-f', deb, 'Version'], { encoding: 'utf8', timeout: 60_000 }).stdout.trim();
});

test.after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The scenario on one Debian release; `passFds`: systemd >= 256 renders Socket= on the socket itself. */
async function scenario(suite: DebianSuite, release: string, systemd: RegExp, passFds: boolean): Promise<void> {
  const root = await debianRoot(suite, { packages: ['libbpf1'] });
  if (root.builtInS) console.log(`  built ${root.path} in ${root.builtInS} s`);
  const c: Container = await bootSystemd({ name: `pkg-${suite}`, root: root.path });
  try {
    const must = async (argv: string[], timeoutMs = 120_000): Promise<string> => {
      const r = await c.exec(argv, { timeoutMs, env: { DEBIAN_FRONTEND: 'noninteractive' } });
      assert.is(r.code, 0, `${argv.join(' ')} exited with ${r.code}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    const prop = async (unit: string, name: string): Promise<string> => (await must(['systemctl', 'show', '-p', name, '--value', unit])).trim();
    const request = async (host: string, port: number): Promise<string | null> => {
      const r = await c.exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && timeout 10 cat <&3`], { timeoutMs: 20_000 });
      if (r.code !== 0) {
        assert.match(r.stderr, 'Connection refused', `connect ${host}:${port}: ${r.stderr}`);
        return null;
      }
      return r.stdout.trim();
    };
    // State directories (not the lock file beside them, <ino>_manifold_lock).
    const stateDirs = async (): Promise<string[]> => (await c.exec(['sh', '-c', 'ls -d /sys/fs/bpf/*_manifold /sys/fs/bpf/*_manifold-* 2>/dev/null'])).stdout.split('\n').filter(Boolean);

    const s = await c.waitForSystemRunning();
    assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
    assert.match(await c.readFile('/etc/os-release'), new RegExp(`^VERSION_ID="${release}"$`, 'm'));
    assert.match(await must(['systemctl', '--version']), systemd);
    assert.is((await c.exec(['dpkg-query', '-W', 'nodejs'])).code, 1, 'no nodejs package');
    assert.is((await c.exec(['sh', '-c', 'command -v node || test -e /usr/bin/node || test -e /usr/local/bin/node'])).code, 1, 'no node in the container');
    await must(['rm', '-f', '/usr/sbin/policy-rc.d']);

    // apt install ./manifold_*.deb, nothing else.
    await c.writeFile(`${IN_BOX}/${path.basename(deb)}`, fs.readFileSync(deb));
    const out = await must(['sh', '-c', `cd ${IN_BOX} && apt install -y ./manifold_*.deb`], 300_000);
    assert.match(out, `Setting up manifold (${version})`);
    assert.match(await must(['dpkg-query', '-W', '-f', '${Status}', 'manifold']), 'install ok installed');
    assert.match(await must(['getent', 'group', 'manifold']), /^manifold:x:\d+:/);
    assert.is(await prop('manifold.service', 'UnitFileState'), 'enabled');
    assert.is(await prop('manifold.service', 'ActiveState'), 'active');
    assert.is(await prop('manifold.service', 'Result'), 'success');
    assert.is((await stateDirs()).length, 1, 'manifold.service loaded the dispatcher');
    const upstream = version.replace(/-[^-]+$/, '');
    assert.is((await must(['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'manifold', 'version'])).trim().replace(/ \(BPF ABI \d+\)$/, ''), `manifold ${upstream}`);
    assert.is((await must(['readlink', '/usr/bin/manifold'])).trim(), '../lib/manifold/manifold');

    // The example configuration: generator, registration, steered traffic.
    const ip = spawnSync('ip', ['-n', c.netnsName, 'route', 'add', 'local', '192.0.2.0/24', 'dev', 'lo'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(ip.status, 0, ip.stderr);
    await c.writeFile('/etc/manifold/web.conf', fs.readFileSync(path.join(ROOT, 'packaging', 'examples', 'web.conf'), 'utf8'));
    await c.writeFile(`${LIB}/web.pl`, WEB_PL);
    await c.writeFile('/etc/systemd/system/web.socket', '[Socket]\nListenStream=127.0.0.1:8080\nAccept=no\n');
    await c.writeFile('/etc/systemd/system/web.service', `[Service]\nExecStart=/usr/bin/perl ${LIB}/web.pl\n`);
    await must(['manifold', 'verify']);
    await must(['systemctl', 'daemon-reload']);
    const dropIn = await c.readFile('/run/systemd/generator/web.socket.d/50-manifold.conf');
    if (passFds) assert.match(dropIn, /^ExecStartPost=-\+\/usr\/bin\/manifold register web$/m);
    else assert.match(dropIn, /^Wants=manifold-register@web\.service$/m);
    await must(['systemctl', 'reload', 'manifold.service']);
    assert.is((JSON.parse(await must(['manifold', 'bindings', '--json'])) as unknown[]).length, 4);
    await must(['systemctl', 'start', 'web.socket']);
    let cookie: string | null = null;
    for (let i = 0; i < 100 && !cookie; i++) {
      const st = JSON.parse(await must(['manifold', 'status', '--json'])) as { destinations: { label: string; socket: string | null }[] };
      cookie = st.destinations.find((d) => d.label === 'web')?.socket ?? null;
      if (!cookie) await sleep(100);
    }
    assert.ok(cookie, 'web.socket\'s socket was registered');
    const answer = await request('192.0.2.10', 80);
    assert.match(answer ?? 'refused', /^web \d+$/, 'steered to web.service');
    assert.is(answer, `web ${await prop('web.service', 'MainPID')}`);
    assert.is(await request('192.0.2.10', 81), null, 'not bound: refused');

    // apt purge: dispatcher unloaded, the package's files gone, traffic back to normal.
    const listed = (await must(['dpkg', '-L', 'manifold'])).split('\n').filter((l) => l.startsWith('/usr/lib/manifold') || l === '/usr/bin/manifold');
    await must(['apt', 'purge', '-y', 'manifold'], 300_000);
    assert.equal(await stateDirs(), [], 'no /sys/fs/bpf/*_manifold');
    const left: string[] = [];
    for (const p of listed) if ((await c.exec(['sh', '-c', `test -e '${p}' || test -L '${p}'`])).code === 0) left.push(p);
    assert.equal(left, [], 'nothing of /usr/lib/manifold or /usr/bin/manifold is left');
    assert.is(await request('192.0.2.10', 80), null, 'no longer steered');
    assert.match((await request('127.0.0.1', 8080)) ?? 'refused', /^web \d+$/, 'the service itself still answers');
  } finally {
    await c.shutdown().catch((e: Error) => console.error(`# ${e.message}`));
  }
}

test('Debian 12 (bookworm, systemd 252): apt install ./manifold_*.deb, steered traffic, apt purge', async () => {
  await scenario('bookworm', '12', /^systemd 252 \(/, false);
});

test('Debian 13 (trixie, systemd 257): apt install ./manifold_*.deb, steered traffic, apt purge', async () => {
  await scenario('trixie', '13', /^systemd 257 \(/, true);
});

test.run();
