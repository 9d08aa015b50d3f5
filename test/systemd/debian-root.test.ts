/**
 * Stock Debian roots for the systemd harness (debian-root.ts): the cache builds an entry once
 * under concurrent callers, never leaves a usable-looking entry after a failed or killed build,
 * and a debootstrap'd Debian 12 root (no NodeSource node) boots systemd 252 as PID 1 with
 * everything the host-overlay mode has, without writing into the cached root.
 * Root only; builds the bookworm root on first use (docs/testing-systemd.md says how long).
 * Run: node test/run.mjs debian-root
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedEntry, debianRoot, rootKey, type DebianRoot } from './debian-root.js';
import { bootSystemd, cgroup2Mount, type Container } from './harness.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tmpCaches: string[] = [];

function tmpCache(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-roots-test-'));
  tmpCaches.push(d);
  return d;
}

test.after(() => {
  for (const d of tmpCaches) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- the cache

test('rootKey: order and duplicates do not matter; suite and packages do', () => {
  assert.is(rootKey('trixie', ['systemd', 'libbpf1', 'systemd']), rootKey('trixie', ['libbpf1', 'systemd']));
  assert.match(rootKey('trixie', ['systemd']), /^trixie-[0-9a-f]{12}$/);
  assert.is.not(rootKey('trixie', ['systemd']), rootKey('bookworm', ['systemd']));
  assert.is.not(rootKey('trixie', ['systemd']), rootKey('trixie', ['systemd', 'dbus']));
});

test('concurrent callers build an entry once and all get it', async () => {
  const cache = tmpCache();
  let builds = 0;
  const build = async (tmp: string): Promise<Record<string, unknown>> => {
    builds++;
    fs.mkdirSync(path.join(tmp, 'root'));
    await sleep(300);
    fs.writeFileSync(path.join(tmp, 'root', 'file'), 'x');
    return { n: builds };
  };
  const results = await Promise.all([1, 2, 3].map(() => cachedEntry(cache, 'k-1', build)));
  assert.is(builds, 1);
  assert.equal(results.map((r) => r.built).sort(), [false, false, true]);
  for (const r of results) assert.is(r.entry, path.join(cache, 'k-1'));
  assert.is(fs.readFileSync(path.join(cache, 'k-1', 'root', 'file'), 'utf8'), 'x');
  assert.equal(JSON.parse(fs.readFileSync(path.join(cache, 'k-1', 'info.json'), 'utf8')), { n: 1 });
  assert.equal(fs.readdirSync(cache).sort(), ['k-1', 'k-1.lock']);
  assert.is((await cachedEntry(cache, 'k-1', build)).built, false);
  assert.is(builds, 1);
});

test('a failed build leaves nothing behind and the next call builds', async () => {
  const cache = tmpCache();
  const err = await cachedEntry(cache, 'k-2', async (tmp) => {
    fs.mkdirSync(path.join(tmp, 'root'));
    fs.writeFileSync(path.join(tmp, 'root', 'half'), '');
    throw new Error('debootstrap broke');
  }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', 'debootstrap broke');
  assert.equal(fs.readdirSync(cache), ['k-2.lock']);
  const ok = await cachedEntry(cache, 'k-2', async (tmp) => { fs.mkdirSync(path.join(tmp, 'root')); return {}; });
  assert.is(ok.built, true);
});

test('a build killed with SIGKILL leaves no usable entry; the lock dies with it; the next build cleans up', async () => {
  const cache = tmpCache();
  const mod = path.join(HERE, 'debian-root.js');
  const script = `import { cachedEntry } from ${JSON.stringify(mod)};
import fs from 'node:fs';
await cachedEntry(${JSON.stringify(cache)}, 'k-3', async (tmp) => {
  fs.mkdirSync(tmp + '/root'); fs.writeFileSync(tmp + '/root/half', '');
  fs.writeFileSync(${JSON.stringify(path.join(cache, 'started'))}, '');
  await new Promise(() => setInterval(() => {}, 1000));
});`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
  const end = Date.now() + 20_000;
  while (!fs.existsSync(path.join(cache, 'started'))) {
    assert.ok(Date.now() < end, 'the child never started building');
    await sleep(20);
  }
  assert.ok(child.pid !== undefined);
  process.kill(child.pid as number, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const left = fs.readdirSync(cache);
  assert.not.ok(left.includes('k-3'), 'no entry under the final name');
  assert.is(left.filter((n) => n.startsWith('k-3.tmp-')).length, 1, 'the partial build is under a temporary name');
  const t0 = Date.now();
  const again = await cachedEntry(cache, 'k-3', async (tmp) => { fs.mkdirSync(path.join(tmp, 'root')); return { ok: true }; });
  assert.ok(Date.now() - t0 < 10_000, 'the lock was released when its holder died');
  assert.is(again.built, true);
  assert.equal(fs.readdirSync(cache).filter((n) => n.startsWith('k-3')).sort(), ['k-3', 'k-3.lock']);
  assert.not.ok(fs.existsSync(path.join(cache, 'k-3', 'root', 'half')));
});

/** Host pids whose command line mentions `text`. */
function pidsMentioning(text: string): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try { return fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(text) ? [Number(n)] : []; } catch { return []; }
  });
}

test('a real debootstrap dies with the test process that started it; nothing usable is left', async () => {
  const cache = tmpCache();
  const mod = path.join(HERE, 'debian-root.js');
  const script = `import { debianRoot } from ${JSON.stringify(mod)};
await debianRoot('bookworm', { cacheDir: ${JSON.stringify(cache)} });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
  try {
    const end = Date.now() + 60_000;
    // Wait until debootstrap is fetching into <key>.tmp-…/root.
    while (!fs.readdirSync(cache).some((n) => n.includes('.tmp-') && fs.existsSync(path.join(cache, n, 'root', 'debootstrap')))) {
      assert.ok(Date.now() < end, 'debootstrap never started');
      await sleep(50);
    }
    assert.ok(pidsMentioning(cache).length > 1, 'debootstrap runs');
  } finally {
    process.kill(child.pid as number, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  const end = Date.now() + 10_000;
  while (pidsMentioning(cache).length && Date.now() < end) await sleep(50);
  assert.equal(pidsMentioning(cache), [], 'no process of the build survives');
  const left = fs.readdirSync(cache);
  assert.not.ok(left.some((n) => !n.includes('.tmp-') && !n.endsWith('.lock')), `no usable entry: ${left.join(' ')}`);
  for (const n of left) {
    const p = path.join(cache, n);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(p));
    assert.equal(mounts, [], 'no mount left inside the build');
  }
  const rm = spawn('rm', ['-rf', '--one-file-system', '--', cache]);
  await new Promise((r) => rm.once('exit', r));
});

test('debianRoot refuses bad package names before building anything', async () => {
  const cache = tmpCache();
  for (const bad of ['-x', 'a b', 'x;rm', '', 'A']) {
    const err = await debianRoot('bookworm', { cacheDir: cache, packages: [bad] }).then(() => undefined, (e: Error) => e);
    assert.match(err?.message ?? '', 'bad package name');
  }
  assert.equal(fs.readdirSync(cache), []);
});

// ---------------------------------------------------------------- booting stock Debian 12

let root: DebianRoot | undefined;
let c: Container | undefined;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

/** A few facts about the cached root that a write into it would change. */
function fingerprint(dir: string): string {
  const st = (p: string): string => {
    try { const s = fs.lstatSync(path.join(dir, p)); return `${p}:${s.size}:${s.mtimeMs}:${s.ino}`; } catch { return `${p}:absent`; }
  };
  return ['etc', 'etc/machine-id', 'etc/hostname', 'etc/systemd/system', 'tmp', 'run', 'var/log', 'var/log/journal', 'usr/local/bin']
    .map(st).join('\n');
}

test('a stock bookworm root boots systemd 252 to running', async () => {
  root = await debianRoot('bookworm');
  if (root.builtInS) console.log(`  built ${root.path} in ${root.builtInS} s`);
  assert.match(root.systemdVersion, /^252\./);
  const before = fingerprint(root.path);
  const sentinel = `/tmp/mf-sd-debroot-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(sentinel, 'must survive\n');
  try {
    c = await bootSystemd({
      name: 'bookworm',
      root: root.path,
      files: { '/etc/systemd/system/mf-hello.service': '[Service]\nType=oneshot\nExecStart=/bin/echo hello from bookworm\n' },
    });
    const { state, failed } = await box().waitForSystemRunning();
    assert.equal(failed, [], `failed units: ${failed.join(' ')}`);
    assert.is(state, 'running');
    assert.match((await box().systemctl('--version')).stdout, /^systemd 252 \(/);
    assert.match(await box().readFile('/etc/os-release'), /^VERSION_ID="12"$/m);
    assert.is(box().lowerDir, root.path);
    const mnt = await box().exec(['findmnt', '-n', '-o', 'FSTYPE,OPTIONS', '/']);
    assert.match(mnt.stdout, /^overlay .*lowerdir=\/mnt\/lower,/);
    assert.is((await box().exec(['findmnt', '-n', '-o', 'FSTYPE', '/sys/fs/bpf'])).stdout.trim(), 'bpf');
    assert.is((await box().exec(['hostname'])).stdout.trim(), box().id);
    assert.is((await box().systemctl('start', 'mf-hello.service')).code, 0);
    assert.match((await box().journalctl('-u', 'mf-hello.service', '-o', 'cat')).stdout, 'hello from bookworm');

    // Stock: Debian 12's own packages only, so no Node >= 20 (NodeSource's nodejs is on the host).
    const node = await box().exec(['sh', '-c', 'command -v node nodejs; dpkg-query -W -f "${Status}" nodejs']);
    assert.is(node.stdout, '', 'no node in a stock root');
    assert.throws(() => box().nodePath, /no node/);
    const apt = await box().exec(['sh', '-c', 'grep -rh "^[^#]" /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null']);
    assert.match(apt.stdout, /^deb http:\/\/deb\.debian\.org\/debian bookworm main$/m);
    assert.not.match(apt.stdout, /nodesource/i);

    // Own netns (only lo), cgroup under the host's cgroup2 mount, the checkout read-only.
    assert.ok(fs.existsSync(`/run/netns/${box().netnsName}`));
    assert.is(path.dirname(box().cgroupPath), cgroup2Mount());
    assert.not.equal((await box().exec(['touch', `${box().workTree}/.mf-sd-probe`])).code, 0, 'checkout must be read-only');
    assert.match((await box().exec(['cat', '/proc/net/dev'])).stdout, /^\s*lo:/m);
    assert.is((await box().exec(['sh', '-c', 'grep -c : /proc/net/dev'])).stdout.trim(), '1');

    // Writes land on the tmpfs, not in the cache.
    assert.is((await box().exec(['sh', '-c', 'echo x > /etc/mf-probe && echo y > /usr/local/bin/mf-probe'])).code, 0);
    assert.not.ok(fs.existsSync(path.join(root.path, 'etc/mf-probe')));
    assert.not.ok(fs.existsSync(path.join(root.path, 'etc/systemd/system/manifold-test.target')));
  } finally {
    const id = c?.id;
    const cg = c?.cgroupPath;
    await c?.shutdown();
    c = undefined;
    if (id) assert.not.ok(fs.existsSync(`/run/netns/${id}`), 'netns removed');
    if (cg) assert.not.ok(fs.existsSync(cg), 'cgroup removed');
    assert.ok(fs.existsSync(sentinel), 'host /tmp intact');
    fs.rmSync(sentinel, { force: true });
  }
  assert.is(fingerprint(root.path), before, 'the cached root is unchanged');
});

test('hostNode binds the host node binary, which runs in the stock root', async () => {
  const r = root ?? await debianRoot('bookworm');
  c = await bootSystemd({ name: 'bwnode', root: r.path, hostNode: true });
  try {
    assert.is(box().nodePath, '/usr/local/bin/node');
    const v = await box().exec([box().nodePath, '-p', 'process.versions.node']);
    assert.is(v.code, 0, v.stderr);
    assert.is(v.stdout.trim(), process.versions.node);
    assert.not.equal((await box().exec(['sh', '-c', 'echo > /usr/local/bin/node'])).code, 0, 'read-only');
  } finally {
    await c.shutdown();
    c = undefined;
  }
});

test.run();
