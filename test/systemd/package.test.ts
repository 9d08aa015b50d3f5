/**
 * The Debian package (issue 7): `make deb` builds it, lintian finds no error
 * the end-to-end systemd scenario (e2e.test.ts)
 * passes against the installed package, and in a container of its own:
 * `dpkg -i` alone (maintainer scripts, no help from the test) creates the
 * group, enables and starts manifold.service; the installed command, units and
 * generator steer traffic to a socket-activated service; reinstalling keeps
 * the dispatcher and its bindings; the last landed release's package (built
 * from the history), then this one over it, keep the state with a client
 * connecting all along; `dpkg --purge` unloads the dispatcher and
 * leaves none of the package's files, units, drop-ins or systemd state behind
 * (the group "manifold" stays, as documented in packaging/debian/README.Debian).
 *
 * The package embeds its Node.js runtime (the single executable): its Depends
 * are Debian 12's own packages (libbpf1, libsystemd0, libc6, ...), no nodejs.
 * The container's root is an overlay of the host's, so they must be installed
 * on the host as Debian packages (they are, with make test's APT_PACKAGES).
 * Two builds of the same tree give the same bytes.
 *
 * Root only. Run after `make build`: node test/run.mjs package
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootSystemd, type Container } from './harness.js';
import { treeOf } from '../helpers/history.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-package-'));
const IN_BOX = '/var/cache/manifold-test';
let deb = '';
let version = '';
let c: Container | undefined;
let shutDown = false;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

/** A host command that must succeed; returns stdout. */
function hostRun(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  assert.is(r.status, 0, `${cmd} ${args.join(' ')}: ${r.error?.message ?? ''}${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A command inside the container that must succeed; returns stdout. */
async function must(argv: string[], timeoutMs = 120_000): Promise<string> {
  const r = await box().exec(argv, { timeoutMs });
  assert.is(r.code, 0, `${argv.join(' ')} exited with ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function exists(p: string): Promise<boolean> {
  return (await box().exec(['test', '-e', p])).code === 0 || (await box().exec(['test', '-L', p])).code === 0;
}

async function prop(unit: string, name: string): Promise<string> {
  return (await must(['systemctl', 'show', '-p', name, '--value', unit])).trim();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One TCP connection from inside the container: the server's answer, or null if refused. */
async function request(host: string, port: number): Promise<string | null> {
  const r = await box().exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && timeout 10 cat <&3`], { timeoutMs: 20_000 });
  if (r.code !== 0) {
    assert.match(r.stderr, 'Connection refused', `connect ${host}:${port}: ${r.stderr}`);
    return null;
  }
  return r.stdout.trim();
}

async function stateDirs(): Promise<string[]> {
  return (await box().exec(['sh', '-c', 'ls -d /sys/fs/bpf/*_manifold /sys/fs/bpf/*_manifold-* 2>/dev/null'])).stdout.split('\n').filter(Boolean);
}

const WEB_JS = `import net from 'node:net';
// Socket-activated (Accept=no): the listening socket is fd 3.
net.createServer((s) => s.end('web ' + process.pid + '\\n')).listen({ fd: 3 });
`;

test.before(() => {
  const t0 = Date.now();
  hostRun('make', ['-s', 'deb', `DEB_OUTDIR=${tmp}/out`, `DEB_STAGE=${tmp}/stage`]);
  const debs = fs.readdirSync(path.join(tmp, 'out')).filter((f) => f.endsWith('.deb'));
  assert.is(debs.length, 1, `one .deb: ${debs.join(' ')}`);
  deb = path.join(tmp, 'out', debs[0] as string);
  version = hostRun('dpkg-deb', ['-f', deb, 'Version']).trim();
  console.log(`  make deb: ${path.basename(deb)} in ${Date.now() - t0} ms`);
});

test.after(async () => {
  if (c && !shutDown) await c.shutdown().catch((e: Error) => console.error(`# ${e.message}`));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the .deb: name, version, control fields and contents', () => {
  const upstream = version.replace(/-[^-]+$/, '');
  assert.match(version, /^\d[A-Za-z0-9.+~]*-\d+$/, `a Debian version with a revision: ${version}`);
  assert.is(upstream, fs.readFileSync(path.join(ROOT, 'build', 'dist', 'VERSION'), 'utf8').trim(), 'the bundle\'s VERSION');
  assert.is(path.basename(deb), `manifold_${version}_${hostRun('dpkg-deb', ['-f', deb, 'Architecture']).trim()}.deb`);
  const depends = hostRun('dpkg-deb', ['-f', deb, 'Depends']);
  for (const d of ['libbpf1', 'libsystemd0', 'libc6', 'libstdc++6']) assert.ok(depends.includes(d), `Depends has ${d}: ${depends}`);
  assert.not.match(depends, /nodejs/, 'no nodejs: the runtime is embedded');
  const listing = hostRun('dpkg-deb', ['-c', deb]).split('\n');
  const files = listing.map((l) => l.replace(/^.* \.\//, '/').replace(/ -> .*$/, ''));
  const links = new Map(listing.filter((l) => l.startsWith('l')).map((l) => [l.replace(/^.* \.\//, '/').replace(/ -> .*$/, ''), l.replace(/^.* -> /, '')]));
  assert.is(links.get('/usr/bin/manifold'), '../lib/manifold/manifold', 'the command is the executable');
  assert.is(links.get('/usr/lib/manifold/manifold-generator'), 'manifold', 'the generator is the executable under another name');
  assert.is(links.get('/usr/lib/systemd/system-generators/manifold-generator'), '../../manifold/manifold-generator');
  for (const f of [
    '/usr/bin/manifold', '/usr/lib/manifold/manifold', '/usr/lib/manifold/manifold-generator',
    '/usr/lib/manifold/lib/prom-client.cjs',
    '/usr/lib/manifold/manifold.bpf.o', '/usr/lib/manifold/discovery.bpf.o', '/usr/lib/manifold/VERSION', '/usr/lib/manifold/node_modules/koffi/package.json',
    '/usr/lib/systemd/system/manifold.service', '/usr/lib/systemd/system/manifold-register@.service',
    '/usr/lib/systemd/system/manifold-metrics.socket', '/usr/lib/systemd/system/manifold-metrics.service',
    '/usr/lib/systemd/system/manifold-discovery.service',
    '/usr/lib/systemd/system-generators/manifold-generator', '/usr/lib/sysusers.d/manifold.conf',
    '/usr/share/man/man1/manifold.1.gz', '/usr/share/man/man5/manifold.conf.5.gz',
    '/usr/share/doc/manifold/copyright', '/usr/share/doc/manifold/changelog.Debian.gz',
    '/usr/share/doc/manifold/examples/web.conf',
    '/usr/share/doc/manifold/systemd.md', '/usr/share/doc/manifold/metrics.md', '/usr/share/doc/manifold/journal.md', '/usr/share/doc/manifold/discovery.md',
    '/usr/share/manifold/prometheus/manifold.rules.yml', '/usr/share/manifold/prometheus/manifold.rules.test.yml',
    '/usr/share/manifold/grafana/manifold.json',
    '/usr/share/bash-completion/completions/manifold', '/usr/share/zsh/vendor-completions/_manifold',
    '/etc/manifold/example.conf.example',
  ]) {
    assert.ok(files.includes(f), `${f} in the package`);
  }
  assert.not.ok(files.some((f) => /musl|\/yargs\/|\/prom-client\//.test(f)), 'only koffi\'s glibc binary; yargs and prom-client are in the bundles');
  assert.equal(files.filter((f) => f.startsWith('/etc/') && !f.endsWith('/')), ['/etc/manifold/example.conf.example'], 'no configuration, only a commented example');
  hostRun('dpkg-deb', ['-e', deb, path.join(tmp, 'control')]);
  assert.is(fs.readFileSync(path.join(tmp, 'control', 'conffiles'), 'utf8'), '/etc/manifold/example.conf.example\n', 'it is a conffile');
  const bpf = fs.readFileSync(path.join(ROOT, 'bpf', 'manifold.bpf.o'));
  hostRun('dpkg-deb', ['-x', deb, path.join(tmp, 'x')]);
  assert.ok(fs.readFileSync(path.join(tmp, 'x', 'usr/lib/manifold/manifold.bpf.o')).equals(bpf), 'the committed BPF object');
  assert.match(fs.readFileSync(path.join(tmp, 'x', 'usr/share/bash-completion/completions/manifold'), 'utf8'), /complete .*manifold/, 'the bash completion script');
  assert.match(fs.readFileSync(path.join(tmp, 'x', 'usr/share/zsh/vendor-completions/_manifold'), 'utf8'), /^#compdef manifold/, 'the zsh completion script');
  const copyright = fs.readFileSync(path.join(tmp, 'x', 'usr/share/doc/manifold/copyright'), 'utf8');
  assert.match(copyright, /^Files: usr\/lib\/manifold\/manifold\nCopyright: Node\.js contributors/m, 'the embedded Node.js is in the copyright file');
  assert.match(copyright, /^License: Node\.js\n Node\.js is licensed for use as follows:/m, 'with Node\'s licence file in full');
  // The extracted executable runs by itself, from its own directory (VERSION next to it).
  const v = spawnSync(path.join(tmp, 'x', 'usr/bin/manifold'), ['version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  assert.is(v.stdout.trim().replace(/ \(BPF ABI \d+\)$/, ''), `manifold ${upstream}`, v.stderr);
});

test('two builds of the same tree give byte-identical packages', () => {
  hostRun('make', ['-s', 'deb', `DEB_OUTDIR=${tmp}/out2`, `DEB_STAGE=${tmp}/stage2`]);
  const again = path.join(tmp, 'out2', path.basename(deb));
  assert.ok(fs.existsSync(again), `${again}`);
  assert.ok(fs.readFileSync(again).equals(fs.readFileSync(deb)), `${again} differs from ${deb}`);
});

test('lintian: no errors', () => {
  // make test installs lintian (Makefile APT_PACKAGES).
  assert.is(spawnSync('sh', ['-c', 'command -v lintian'], { timeout: 30_000 }).status, 0, 'lintian is installed');
  const r = spawnSync('lintian', ['--fail-on', 'error', deb], { encoding: 'utf8', timeout: 120_000 });
  const tags = r.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l));
  console.log(`  lintian: ${tags.length ? tags.join('; ') : 'no tags'}`);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.equal(tags.filter((l) => l.startsWith('E: ')), []);
});

test('the end-to-end systemd scenario (e2e.test.ts) passes against the installed package', () => {
  const e2e = path.join(ROOT, 'build', 'test', 'systemd', 'e2e.test.js');
  assert.ok(fs.existsSync(e2e), `${e2e} (make build)`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [e2e], {
    cwd: ROOT, encoding: 'utf8', timeout: 5 * 60_000, maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, MANIFOLD_TEST_DEB: deb, FORCE_COLOR: '0' },
  });
  // Its uvu summary must not be read as this file's by test/run.mjs.
  const out = `${r.stdout}${r.stderr}`.replace(/^(\s*)(Total|Passed|Skipped|Duration):/gm, '$1e2e-$2 =');
  const total = /e2e-Total =\s+(\d+)/.exec(out)?.[1];
  const passed = /e2e-Passed =\s+(\d+)/.exec(out)?.[1];
  console.log(`  e2e.test.js with MANIFOLD_TEST_DEB: ${passed}/${total} passed in ${Date.now() - t0} ms`);
  assert.ok(r.status === 0 && total !== undefined && total === passed && Number(total) > 0, out);
});

test('dpkg -i: the maintainer scripts create the group, enable and start manifold.service', async () => {
  c = await bootSystemd({ name: 'package' });
  const s = await c.waitForSystemRunning();
  assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
  await c.writeFile(`${IN_BOX}/${path.basename(deb)}`, fs.readFileSync(deb));
  assert.not.ok((await c.exec(['getent', 'group', 'manifold'])).code === 0, 'no group "manifold" before');

  // This machine's image has a Docker-style /usr/sbin/policy-rc.d ("exit 101": start no
  // services on package installs), which deb-systemd-invoke obeys. Remove it from the
  // container's overlay, so that dpkg behaves as on an ordinary Debian system.
  await must(['rm', '-f', '/usr/sbin/policy-rc.d']);
  const out = await must(['dpkg', '-i', `${IN_BOX}/${path.basename(deb)}`]);
  assert.match(out, `Setting up manifold (${version})`);
  assert.match(await must(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'manifold']), `install ok installed ${version}`);
  const group = await must(['getent', 'group', 'manifold']);
  assert.match(group, /^manifold:x:\d+:/);
  assert.is(await prop('manifold.service', 'UnitFileState'), 'enabled');
  assert.is(await prop('manifold.service', 'ActiveState'), 'active');
  assert.is(await prop('manifold.service', 'Result'), 'success');
  assert.ok(await exists('/etc/systemd/system/sysinit.target.wants/manifold.service'));
  assert.is(await prop('manifold-metrics.socket', 'UnitFileState'), 'disabled', 'the exporter is not enabled by the package');
  assert.is(await prop('manifold-metrics.socket', 'ActiveState'), 'inactive');
  const dirs = await stateDirs();
  assert.is(dirs.length, 1, `one state directory: ${dirs.join(' ')}`);
  const gid = group.split(':')[2];
  assert.is((await must(['stat', '-c', '%g %a', dirs[0] as string])).trim(), `${gid} 750`, 'loaded with --group manifold');

  const v = (await must(['manifold', 'version'])).trim();
  assert.match(v, new RegExp(`^manifold ${version.replace(/-[^-]+$/, '').replace(/[.+~]/g, '\\$&')} \\(BPF ABI \\d+\\)$`));
  assert.match(await must(['man', '-w', 'manifold']), '/usr/share/man/man1/manifold.1.gz');
  assert.match(await must(['man', '-w', '5', 'manifold.conf']), '/usr/share/man/man5/manifold.conf.5.gz');
  // Every unit points to the man page and to installed documents.
  for (const u of ['manifold.service', 'manifold-register@web.service', 'manifold-metrics.socket', 'manifold-metrics.service', 'manifold-discovery.service']) {
    // systemctl show quotes the entries that have parentheses.
    const docs = (await prop(u, 'Documentation')).split(' ').filter(Boolean).map((d) => d.replace(/^"(.*)"$/, '$1'));
    assert.ok(docs.includes('man:manifold(1)'), `${u}: ${docs.join(' ')}`);
    for (const d of docs) {
      if (d.startsWith('file:')) assert.ok(await exists(d.slice('file:'.length)), `${u}: ${d} is installed`);
      else if (d.startsWith('man:')) await must(['man', '-w', ...d.slice(4).replace(/^(.*)\((\d)\)$/, '$2 $1').split(' ')]);
    }
  }
  // The configuration directory: no configuration, a commented example that is not read.
  assert.equal((await must(['ls', '-A', '/etc/manifold'])).trim().split('\n'), ['example.conf.example']);
  assert.equal(JSON.parse(await must(['manifold', 'bindings', '--json'])), []);
  await must(['manifold', 'verify']);
});

test('the installed command, generator and units steer traffic to a socket-activated service', async () => {
  await must(['ip', 'route', 'add', 'local', '192.0.2.0/24', 'dev', 'lo']);
  await box().writeFile('/etc/manifold/web.conf', fs.readFileSync(path.join(ROOT, 'packaging', 'examples', 'web.conf'), 'utf8'));
  await box().writeFile('/usr/local/lib/mf-package/web.mjs', WEB_JS);
  await box().writeFile('/etc/systemd/system/web.socket', '[Socket]\nListenStream=127.0.0.1:8080\nAccept=no\n');
  await box().writeFile('/etc/systemd/system/web.service', `[Service]\nExecStart=/usr/bin/node /usr/local/lib/mf-package/web.mjs\n`);
  await must(['manifold', 'verify']);
  await must(['systemctl', 'daemon-reload']);
  assert.match(await box().readFile('/run/systemd/generator/web.socket.d/50-manifold.conf'), /^Wants=manifold-register@web\.service$/m);
  await must(['systemctl', 'reload', 'manifold.service']);
  const bindings = JSON.parse(await must(['manifold', 'bindings', '--json'])) as { label: string; prefix: string; port: number }[];
  assert.is(bindings.length, 4, JSON.stringify(bindings));

  await must(['systemctl', 'start', 'web.socket']);
  let cookie: string | null = null;
  for (let i = 0; i < 100 && !cookie; i++) {
    const st = JSON.parse(await must(['manifold', 'status', '--json'])) as { destinations: { label: string; socket: string | null }[] };
    cookie = st.destinations.find((d) => d.label === 'web')?.socket ?? null;
    if (!cookie) await sleep(100);
  }
  assert.ok(cookie, 'manifold-register@web.service registered web.socket\'s socket');
  assert.is(await prop('manifold-register@web.service', 'Result'), 'success');
  const answer = await request('192.0.2.10', 80);
  assert.match(answer ?? 'refused', /^web \d+$/, 'steered to web.service');
  assert.is(answer, `web ${await prop('web.service', 'MainPID')}`);
  assert.is(await request('192.0.2.10', 81), null, 'not bound: refused');
  const journal = await must(['journalctl', '--no-pager', '-o', 'cat', '-u', 'manifold-register@web.service']);
  assert.match(journal, `registered ipv4:tcp:web socket ${cookie}`);
});

test('dpkg -i again (upgrade path): the dispatcher, bindings and socket stay', async () => {
  const before = await stateDirs();
  const ino = (await must(['stat', '-c', '%i', before[0] as string])).trim();
  const status = await must(['manifold', 'status', '--json']);
  await must(['dpkg', '-i', `${IN_BOX}/${path.basename(deb)}`]);
  assert.equal(await stateDirs(), before);
  assert.is((await must(['stat', '-c', '%i', before[0] as string])).trim(), ino, 'the same state directory');
  const after = JSON.parse(await must(['manifold', 'status', '--json'])) as { bindings: unknown[]; destinations: { label: string; socket: string | null }[] };
  const prev = JSON.parse(status) as typeof after;
  assert.equal(after.bindings, prev.bindings);
  assert.is(after.destinations.find((d) => d.label === 'web')?.socket, prev.destinations.find((d) => d.label === 'web')?.socket);
  assert.is(await prop('manifold.service', 'ActiveState'), 'active');
  assert.match((await request('192.0.2.10', 80)) ?? 'refused', /^web \d+$/);
});

/** The last release that landed on main (the same commit as test/integration/upgrade-landed.test.ts). */
const LANDED = '1be458c';

/** The landed release's .deb, built from this repository's history (its own `make deb`). */
function buildLandedDeb(): string {
  const dir = treeOf(LANDED, 'the landed commit', { dir: path.join(tmp, 'landed') });
  const r = spawnSync('make', ['-s', '-C', dir, 'deb', `DEB_OUTDIR=${dir}/out`, `DEB_STAGE=${dir}/stage`], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, `make deb of ${LANDED}: ${r.stderr}${r.stdout}`);
  const debs = fs.readdirSync(path.join(dir, 'out')).filter((f) => f.endsWith('.deb'));
  assert.is(debs.length, 1, debs.join(' '));
  return path.join(dir, 'out', debs[0] as string);
}

/** Connect to host:port from inside the container in a loop until stopped; resolves to the answers' count and the failures. */
function connectLoop(host: string, port: number, stopFile: string): Promise<{ ok: number; failed: number }> {
  const script = `ok=0; failed=0
while [ ! -e ${stopFile} ]; do
  if r=$(timeout 5 bash -c 'exec 3<>/dev/tcp/${host}/${port} && timeout 5 cat <&3' 2>/dev/null) && [ "\${r#web }" != "$r" ]; then ok=$((ok+1)); else failed=$((failed+1)); fi
done
echo "$ok $failed"`;
  return box().exec(['bash', '-c', script], { timeoutMs: 300_000 }).then((r) => {
    const [ok, failed] = r.stdout.trim().split(' ').map(Number);
    return { ok: ok ?? 0, failed: failed ?? -1 };
  });
}

test('upgrade path from the landed release: its package, then this one over it; state kept, no failed connection meanwhile', async () => {
  const landed = buildLandedDeb();
  const landedVersion = hostRun('dpkg-deb', ['-f', landed, 'Version']).trim();
  await box().writeFile(`${IN_BOX}/landed.deb`, fs.readFileSync(landed));
  const before = JSON.parse(await must(['manifold', 'status', '--json'])) as { bindings: unknown[]; destinations: { label: string; socket: string | null }[] };
  const socket = before.destinations.find((d) => d.label === 'web')?.socket;
  assert.ok(socket, 'web.socket\'s socket is registered');

  // The landed release takes over (the state is the same map ABI).
  assert.match(await must(['dpkg', '-i', `${IN_BOX}/landed.deb`]), `Setting up manifold (${landedVersion})`);
  assert.match(await must(['dpkg-query', '-W', '-f', '${Version}', 'manifold']), landedVersion);
  const mid = JSON.parse(await must(['manifold', 'status', '--json'])) as typeof before;
  assert.equal(mid.bindings, before.bindings, 'the landed release keeps the bindings');
  assert.is(mid.destinations.find((d) => d.label === 'web')?.socket, socket);
  assert.match((await request('192.0.2.10', 80)) ?? 'refused', /^web \d+$/);

  // This release over it, with a client connecting all along.
  const stop = '/run/manifold-test-stop-loop';
  const loop = connectLoop('192.0.2.10', 80, stop);
  await sleep(300);
  const out = await must(['dpkg', '-i', `${IN_BOX}/${path.basename(deb)}`]);
  await sleep(300);
  await must(['touch', stop]);
  const traffic = await loop;
  assert.match(out, `Setting up manifold (${version})`);
  assert.is(traffic.failed, 0, `connections failed while dpkg upgraded: ${JSON.stringify(traffic)}`);
  assert.ok(traffic.ok > 0, `the client connected while dpkg upgraded: ${JSON.stringify(traffic)}`);
  assert.match(await must(['dpkg-query', '-W', '-f', '${Version}', 'manifold']), version);
  const after = JSON.parse(await must(['manifold', 'status', '--json'])) as typeof before;
  assert.equal(after.bindings, before.bindings, 'every binding kept');
  assert.is(after.destinations.find((d) => d.label === 'web')?.socket, socket, 'the registered socket kept');
  assert.is(await prop('manifold.service', 'ActiveState'), 'active');
  assert.match((await request('192.0.2.10', 80)) ?? 'refused', /^web \d+$/);
  const failed = await must(['systemctl', '--failed', '--plain', '--no-legend']);
  assert.is(failed.trim(), '', 'no failed units');
});

test('dpkg --purge: dispatcher unloaded, every file, unit, drop-in and systemd state gone; the group stays', async () => {
  const listed = (await must(['dpkg', '-L', 'manifold'])).split('\n').filter((l) => l.startsWith('/'));
  assert.ok(listed.includes('/usr/bin/manifold'));
  // Directories the package shares with the system stay (dpkg removes only its own, when empty).
  const shared = new Set(['/', '/usr', '/usr/bin', '/usr/lib', '/usr/lib/systemd', '/usr/lib/systemd/system', '/usr/lib/systemd/system-generators',
    '/usr/lib/sysusers.d', '/usr/share', '/usr/share/doc', '/usr/share/man', '/usr/share/man/man1', '/usr/share/man/man5',
    '/usr/share/lintian', '/usr/share/lintian/overrides', '/.', '/etc',
    // Completion directories (bash-completion's and zsh's own when those are installed).
    '/usr/share/bash-completion', '/usr/share/bash-completion/completions', '/usr/share/zsh', '/usr/share/zsh/vendor-completions',
    // It still holds the administrator's web.conf.
    '/etc/manifold']);

  const r = await box().exec(['dpkg', '--purge', 'manifold'], { timeoutMs: 120_000 });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, 'manifold: unloaded the dispatcher');
  assert.equal(await stateDirs(), [], 'no /sys/fs/bpf/*_manifold');

  const left: string[] = [];
  for (const p of listed) if (!shared.has(p) && await exists(p)) left.push(p);
  assert.equal(left, [], 'nothing dpkg -L listed is left');
  assert.ok(await exists('/etc/manifold/web.conf'), 'the administrator\'s config file stays');
  for (const p of ['/usr/lib/manifold', '/usr/share/doc/manifold', '/usr/share/manifold', '/etc/manifold/example.conf.example', '/etc/systemd/system/sysinit.target.wants/manifold.service',
    '/run/systemd/generator/web.socket.d', '/run/systemd/generator/manifold-register@web.service.d']) {
    assert.not.ok(await exists(p), `${p} is gone`);
  }
  const helper = await box().exec(['sh', '-c', 'grep -rl manifold /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null; ls /var/lib/dpkg/info | grep "^manifold\\." || true']);
  assert.is(helper.stdout.trim(), '', `no deb-systemd-helper or dpkg state left: ${helper.stdout}`);
  assert.is((await box().exec(['dpkg-query', '-W', 'manifold'])).code, 1, 'dpkg knows no manifold any more');
  for (const u of ['manifold.service', 'manifold-register@web.service', 'manifold-metrics.socket']) {
    assert.is(await prop(u, 'LoadState'), 'not-found', `${u} is unknown to systemd`);
  }
  assert.not.match(await prop('web.socket', 'Wants'), 'manifold-register', 'the generated drop-in is gone');

  // Traffic takes the normal socket lookup again: the service itself still works.
  assert.is(await request('192.0.2.10', 80), null, 'no longer steered');
  assert.match((await request('127.0.0.1', 8080)) ?? 'refused', /^web \d+$/);
  assert.match(await must(['getent', 'group', 'manifold']), /^manifold:/, 'the group is kept (README.Debian)');
  const failed = await must(['systemctl', '--failed', '--plain', '--no-legend']);
  assert.is(failed.trim(), '', 'no failed units');
});

test('clean shutdown', async () => {
  shutDown = true;
  await box().shutdown();
});

test.run();
