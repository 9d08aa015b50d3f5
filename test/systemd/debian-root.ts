/**
 * Stock Debian roots for the systemd test harness: `debootstrap --variant=minbase` of a suite
 * (bookworm: Debian 12, systemd 252; trixie: Debian 13, systemd 257) plus the packages a
 * booted system and the tests need, built on demand and cached outside the checkout.
 *
 * Cache layout (default /var/cache/manifold-test/roots, or $MANIFOLD_TEST_ROOTS):
 *   <suite>-<hash>/root        the root file system (the overlay's lower layer: never written)
 *   <suite>-<hash>/info.json   written last, before the rename: an entry without it is unusable
 *   <suite>-<hash>.lock        flock(2) lock serialising builds of that entry
 *   <suite>-<hash>.tmp-…       a build in progress (or killed, with its debootstrap: removed by the next build)
 * <hash> covers the suite, the variant, the sorted package list and RECIPE.
 * How long a build takes: docs/testing-systemd.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Debian suites the harness can boot. */
export type DebianSuite = 'bookworm' | 'trixie';

/** Packages every root gets on top of minbase: systemd as /sbin/init. */
export const BASE_PACKAGES: readonly string[] = ['systemd', 'systemd-sysv'];

/** Bump when the way a root is built changes, so cached roots are rebuilt. */
const RECIPE = 1;
const DEFAULT_CACHE = '/var/cache/manifold-test/roots';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
/** How long to wait for another process building the same entry. */
const LOCK_WAIT_S = 900;
/** A debootstrap taking longer than this is killed (a build takes 35–95 s here). */
const BUILD_TIMEOUT_MS = 600_000;
const INFO = 'info.json';

/** A cached root, ready to be the overlay's lower layer. */
export interface DebianRoot {
  suite: DebianSuite;
  /** Sorted package list (BASE_PACKAGES + extras) given to debootstrap --include. */
  packages: string[];
  /** Absolute path of the root file system (never write into it). */
  path: string;
  /** Version of the root's systemd package, e.g. `257.9-1~deb13u1`. */
  systemdVersion: string;
  /** Seconds the build took (0 when the cache already had it). */
  builtInS: number;
}

/** Options of {@link debianRoot}. */
export interface DebianRootOptions {
  /** Extra packages on top of BASE_PACKAGES (the container has no network: install what tests need here). */
  packages?: string[];
  /** Cache directory (default $MANIFOLD_TEST_ROOTS or /var/cache/manifold-test/roots). */
  cacheDir?: string;
  /** Debian mirror (default $MANIFOLD_TEST_MIRROR or deb.debian.org); not part of the cache key. */
  mirror?: string;
}

/** Contents of <entry>/info.json. */
interface Info {
  suite: DebianSuite;
  packages: string[];
  recipe: number;
  systemdVersion: string;
  builtAt: string;
  builtInS: number;
}

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/** The cache entry name for a suite and package list: `<suite>-<12 hex digits>`. */
export function rootKey(suite: DebianSuite, packages: readonly string[]): string {
  const list = [...new Set(packages)].sort();
  const hash = createHash('sha256').update(JSON.stringify({ recipe: RECIPE, variant: 'minbase', suite, packages: list })).digest('hex');
  return `${suite}-${hash.slice(0, 12)}`;
}

/**
 * Holds an exclusive flock(2) on `file` through a `flock` child process that keeps it while
 * its stdin is open: the lock goes away with this process, however it dies.
 * Resolves with a release function once the lock is held.
 */
export function lockFile(file: string, waitS = LOCK_WAIT_S): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-x', '-w', String(waitS), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let held = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!held && out.includes('locked\n')) {
        held = true;
        resolve(() => { child.stdin.end(); });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.stdin.on('error', () => { /* flock gave up */ });
    child.on('error', (e) => reject(new Error(`cannot run flock: ${e.message}`)));
    child.on('close', (code) => {
      if (!held) reject(new Error(`cannot lock ${file} within ${waitS} s (flock exited ${code}${err ? `: ${err.trim()}` : ''})`));
    });
    // Not waited for by Node's event loop once released.
    child.unref();
  });
}

/** `rm -rf --one-file-system`: never follows into a mount left inside a broken build. */
function removeTree(dir: string): void {
  const r = spawnSync('rm', ['-rf', '--one-file-system', '--', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot remove ${dir}: ${r.stderr.trim()}`);
}

function readInfo(entry: string): Info | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(entry, INFO), 'utf8')) as Info;
  } catch {
    return undefined;
  }
}

/**
 * Returns the cache entry `<cacheDir>/<key>` built by `build(tmpEntry)` if it is not there yet.
 * `build` fills `<tmpEntry>/root` and returns what goes into info.json; the entry is renamed
 * into place only after info.json is written, under an flock so that concurrent callers build
 * it once. Leftovers of killed builds (`<key>.tmp-*`, an entry without info.json) are removed first.
 */
export async function cachedEntry(cacheDir: string, key: string, build: (tmpEntry: string) => Promise<Record<string, unknown>>): Promise<{ entry: string; built: boolean }> {
  const entry = path.join(cacheDir, key);
  if (readInfo(entry)) return { entry, built: false };
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
  const release = await lockFile(`${entry}.lock`);
  try {
    if (readInfo(entry)) return { entry, built: false };
    for (const name of fs.readdirSync(cacheDir)) {
      if (name === key || name.startsWith(`${key}.tmp-`)) removeTree(path.join(cacheDir, name));
    }
    const tmp = `${entry}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.mkdirSync(tmp, { mode: 0o755 });
    try {
      const info = await build(tmp);
      fs.writeFileSync(path.join(tmp, INFO), `${JSON.stringify(info, null, 2)}\n`);
      fs.renameSync(tmp, entry);
    } catch (e) {
      removeTree(tmp);
      throw e;
    }
    return { entry, built: true };
  } finally {
    release();
  }
}

/**
 * Runs argv as PID 1 of a new pid and mount namespace (`unshare --pid --fork --kill-child`,
 * under `setpriv --pdeathsig KILL`): if this process dies, or after `timeoutMs`, the whole
 * namespace is killed, so no orphan keeps writing into a build directory, and debootstrap's
 * /proc and /sys mounts in the target vanish with it. Resolves with the exit code and the
 * combined output (last 64 KiB).
 */
function runContained(argv: string[], timeoutMs: number): Promise<{ code: number; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--propagation', 'private',
      '--pid', '--fork', '--kill-child', '--', ...argv],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' } });
    let log = '';
    const add = (d: string): void => { log = (log + d).slice(-65536); };
    const timer = setTimeout(() => { add(`\nkilled after ${timeoutMs / 1000} s\n`); child.kill('SIGKILL'); }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', add);
    child.stderr.setEncoding('utf8').on('data', add);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, sig) => { clearTimeout(timer); resolve({ code: code ?? (sig ? 128 : 1), log }); });
  });
}

/** Version of a package installed in `root`, from its dpkg database. */
function installedVersion(root: string, pkg: string): string {
  const r = spawnSync('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * A stock Debian root of `suite` with BASE_PACKAGES and `opts.packages`, from the cache or
 * built now with debootstrap (~40 s on this machine; see docs/testing-systemd.md). Root only.
 */
export async function debianRoot(suite: DebianSuite, opts: DebianRootOptions = {}): Promise<DebianRoot> {
  if (process.getuid?.() !== 0) throw new Error('debianRoot needs root (debootstrap)');
  const packages = [...new Set([...BASE_PACKAGES, ...(opts.packages ?? [])])].sort();
  const bad = packages.find((p) => !PACKAGE_NAME.test(p));
  if (bad !== undefined) throw new Error(`bad package name ${JSON.stringify(bad)}`);
  const cacheDir = opts.cacheDir ?? process.env['MANIFOLD_TEST_ROOTS'] ?? DEFAULT_CACHE;
  const mirror = opts.mirror ?? process.env['MANIFOLD_TEST_MIRROR'] ?? DEFAULT_MIRROR;
  if (!path.isAbsolute(cacheDir)) throw new Error(`cache directory must be absolute: ${cacheDir}`);
  const { entry, built } = await cachedEntry(cacheDir, rootKey(suite, packages), async (tmp) => {
    const t0 = Date.now();
    const root = path.join(tmp, 'root');
    const r = await runContained(['debootstrap', '--variant=minbase', `--include=${packages.join(',')}`,
      '--components=main', suite, root, mirror], BUILD_TIMEOUT_MS);
    if (r.code !== 0) {
      throw new Error(`debootstrap ${suite} failed (exit ${r.code}):\n${r.log.split('\n').slice(-15).join('\n')}`);
    }
    const systemdVersion = installedVersion(root, 'systemd');
    if (!systemdVersion) throw new Error(`debootstrap ${suite}: systemd is not installed in the root`);
    // The downloaded .debs (~40 MB) are not needed to boot; the apt lists stay for `apt install ./x.deb`.
    for (const f of fs.readdirSync(path.join(root, 'var/cache/apt/archives'))) {
      if (f.endsWith('.deb')) fs.rmSync(path.join(root, 'var/cache/apt/archives', f));
    }
    const info: Info = { suite, packages, recipe: RECIPE, systemdVersion, builtAt: new Date().toISOString(), builtInS: Math.round((Date.now() - t0) / 100) / 10 };
    return { ...info };
  });
  const info = readInfo(entry);
  if (!info) throw new Error(`cache entry ${entry} has no ${INFO}`);
  return { suite, packages, path: path.join(entry, 'root'), systemdVersion: info.systemdVersion, builtInS: built ? info.builtInS : 0 };
}
