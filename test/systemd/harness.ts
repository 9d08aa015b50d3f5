/**
 * Test harness: boots a real systemd as PID 1 of throw-away namespaces, on an overlay whose
 * writes land on a tmpfs: of the host root (Debian 12, v252), or of a cached stock Debian
 * root from debian-root.ts (`root: (await debianRoot('trixie')).path`: systemd 257).
 *
 * Root only. How it works and which safety checks it makes: docs/testing-systemd.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownedName } from '../helpers/env.js';

/** A host path bind-mounted into the container before boot. */
export interface Bind {
  host: string;
  container: string;
  readOnly?: boolean;
}

/** Options of {@link bootSystemd}. */
export interface BootOptions {
  /** Short label put into the netns/cgroup name (`mf-sd-<name>-<pid36><random>`). */
  name?: string;
  /** Extra bind mounts (the manifold checkout is always bound read-only at its own path). */
  binds?: Bind[];
  /**
   * Files installed before boot: container path → content, or `{ content, mode }`.
   * Default mode 0644; 0755 under a `*-generators/` directory.
   */
  files?: Record<string, string | { content: string; mode?: number }>;
  /** Extra unit names masked (symlinked to /dev/null) before boot. */
  mask?: string[];
  /** Limit for reaching a usable manager (default 20 s). */
  timeoutMs?: number;
  /**
   * Lower layer of the overlay root instead of the host's `/`: an absolute directory holding a
   * whole system, e.g. `(await debianRoot('trixie')).path`. It is bind-mounted read-only first,
   * so nothing the container does reaches it.
   */
  root?: string;
  /**
   * With `root`: bind the host's node binary read-only at /usr/local/bin/node (such roots have
   * no Node >= 20; the binary needs only libc and libstdc++, which every Debian root has).
   */
  hostNode?: boolean;
}

/** Options of {@link Container.exec}. */
export interface ExecOptions {
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string;
  /** Added to the default environment (PATH, LANG=C.UTF-8, SYSTEMD_PAGER=, SYSTEMD_COLORS=0). */
  env?: Record<string, string>;
  /** SIGKILL after this long (default 30 s); the result's code is then 137. */
  timeoutMs?: number;
}

/** Outcome of a command: exit code (128 + signal number when killed by a signal). */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Result of {@link Container.waitForSystemRunning}. */
export interface SystemState {
  /** Output of `systemctl is-system-running --wait`, e.g. `running` or `degraded`. */
  state: string;
  /** Failed units (empty when running). */
  failed: string[];
}

/** A booted container. Call {@link Container.shutdown} when done (also on failure). */
export interface Container {
  /** `mf-sd-…`: name of the netns and of the cgroup directory. */
  readonly id: string;
  /** Host pid of the container's PID 1 (systemd). */
  readonly pid: number;
  /** Name of the network namespace (`ip -n NAME …`). */
  readonly netnsName: string;
  /** Host path of the delegated cgroup2 directory. */
  readonly cgroupPath: string;
  /** Node binary usable inside the container (throws for a `root` booted without `hostNode`). */
  readonly nodePath: string;
  /** Lower layer of the overlay root: `/` or BootOptions.root. */
  readonly lowerDir: string;
  /** The manifold checkout, bound read-only at this same path inside. */
  readonly workTree: string;
  /** Runs argv in all namespaces and the root of the container (`nsenter -t PID -a`). */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Writes a file (parents created) through /proc/PID/root, resolving symlinks inside the container. */
  writeFile(file: string, content: string | Buffer, mode?: number): Promise<void>;
  /** Reads a file through /proc/PID/root, resolving symlinks inside the container. */
  readFile(file: string): Promise<string>;
  /** `systemctl --no-pager ARGS`. */
  systemctl(...args: string[]): Promise<ExecResult>;
  /** `journalctl --no-pager ARGS`. */
  journalctl(...args: string[]): Promise<ExecResult>;
  /** Waits for the end of boot; returns the state and the failed units. */
  waitForSystemRunning(timeoutMs?: number): Promise<SystemState>;
  /** Console output so far (systemd status lines and /dev/kmsg lines), CR and ANSI codes removed. */
  console(): string;
  /** Resolves with the first console line matching `pattern`; rejects after `timeoutMs` (default 10 s). */
  waitForConsole(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Powers off (SIGRTMIN+4), SIGKILL fallback, removes cgroup + netns; throws if anything is left. */
  shutdown(): Promise<void>;
}

const PREFIX = 'mf-sd-';
const TARGET = 'manifold-test.target';
/** Staging tmpfs (in the container's mount namespace) and overlay mount point inside it. */
const STAGE = '/mnt';
const NEWROOT = `${STAGE}/root`;
/** systemd's poweroff request: SIGRTMIN+4, glibc's SIGRTMIN being 34. */
const SIGRTMIN_4 = 38;
/** Where the lower layer is bind-mounted read-only when it is not the host's `/`. */
const LOWER = `${STAGE}/lower`;
/** Where `hostNode` puts the host's node binary. */
const CONTAINER_NODE = '/usr/local/bin/node';
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HIDDEN = ['/tmp', '/var/tmp', '/root', '/home'];

/** Units that act on global kernel state or the host, or just slow a test boot down. */
const BASE_MASK = [
  'systemd-sysctl.service', 'systemd-binfmt.service', 'proc-sys-fs-binfmt_misc.automount',
  'proc-sys-fs-binfmt_misc.mount', 'systemd-timesyncd.service', 'systemd-modules-load.service',
  'kmod-static-nodes.service', 'modprobe@.service', 'systemd-udevd.service',
  'systemd-udevd-control.socket', 'systemd-udevd-kernel.socket', 'systemd-udev-trigger.service',
  'systemd-udev-settle.service', 'systemd-hwdb-update.service', 'sys-kernel-debug.mount',
  'sys-kernel-tracing.mount', 'sys-kernel-config.mount', 'sys-fs-fuse-connections.mount',
  'dev-hugepages.mount', 'systemd-pstore.service', 'systemd-random-seed.service',
  'systemd-remount-fs.service', 'systemd-journald-audit.socket', 'systemd-tmpfiles-clean.timer',
  'getty.target', 'getty@.service', 'serial-getty@.service', 'console-getty.service',
  'container-getty@.service', 'systemd-ask-password-console.path', 'systemd-ask-password-wall.path',
];

/** Files every container gets. */
const BASE_FILES: Record<string, string> = {
  [`/etc/systemd/system/${TARGET}`]: `[Unit]
Description=manifold test system (basic.target + journald)
Requires=basic.target
After=basic.target
AllowIsolate=yes
`,
  '/etc/systemd/journald.conf.d/50-mf-sd.conf': `[Journal]
Storage=volatile
ReadKMsg=no
`,
};

/**
 * PID 1 of the new pid namespace before systemd: mounts everything, waits for the
 * harness to install files, checks again that / will be the overlay, then execs systemd.
 */
const INIT = String.raw`set -eu
T=${STAGE} R=${NEWROOT}
fail() { echo "mf-sd-init: refusing to boot: $*" >&2; exit 1; }
field() { awk -v mp="$1" -v k="$2" '$5 == mp { i = 7; while ($i != "-") i++; v = $(i + k) } END { print v }' /proc/self/mountinfo; }
mopts() { awk -v mp="$1" '$5 == mp { v = $6 } END { print v }' /proc/self/mountinfo; }
[ "$$" = 1 ] || fail "not PID 1 of a new pid namespace"
TTY=$(tty) || fail "stdin is not a terminal"
[ -d $T ] || fail "$T does not exist"
mount -t tmpfs -o mode=0755,size=25% mf-sd-stage $T
[ "$(field $T 1)" = tmpfs ] || fail "no tmpfs on $T"
mkdir $T/upper $T/work $T/root
L=/
if [ "$MF_SD_LOWER" != / ]; then
  L=${LOWER}
  [ -d "$MF_SD_LOWER/usr/lib/systemd" ] || fail "$MF_SD_LOWER does not hold a system"
  mkdir $L; mount --bind "$MF_SD_LOWER" $L; mount -o remount,bind,ro $L
  case ",$(mopts $L)," in *,ro,*) ;; *) fail "$L is not read-only";; esac
fi
mount -t overlay -o lowerdir=$L,upperdir=$T/upper,workdir=$T/work mf-sd-root $R
[ "$(field $R 1)" = overlay ] || fail "no overlay on $R"
case ",$(field $R 3)," in *,lowerdir=$L,*upperdir=$T/upper,*) ;; *) fail "unexpected overlay options";; esac
mount -t proc -o nosuid,nodev,noexec proc $R/proc
mount --bind $R/proc/sys $R/proc/sys
mount -o remount,bind,ro $R/proc/sys
mount --bind $R/proc/sys/net $R/proc/sys/net
mount -o remount,bind,rw $R/proc/sys/net
for f in sysrq-trigger kcore; do
  if [ -e $R/proc/$f ]; then mount --bind $R/proc/$f $R/proc/$f; mount -o remount,bind,ro $R/proc/$f; fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs $R/sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 $R/sys/fs/cgroup
mount -t bpf -o mode=0700 bpf $R/sys/fs/bpf
mount -t tmpfs -o mode=0755,nosuid,size=4m mf-sd-dev $R/dev
cd $R/dev
mknod -m 666 null c 1 3; mknod -m 666 zero c 1 5; mknod -m 666 full c 1 7
mknod -m 666 random c 1 8; mknod -m 666 urandom c 1 9; mknod -m 666 tty c 5 0
mkdir pts shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts pts
mount -t tmpfs -o mode=1777,nosuid,nodev mf-sd-shm shm
ln -s pts/ptmx ptmx; ln -s /proc/self/fd fd; ln -s /proc/kcore core
ln -s /proc/self/fd/0 stdin; ln -s /proc/self/fd/1 stdout; ln -s /proc/self/fd/2 stderr
touch console; mount --bind "$TTY" console
ln -s console kmsg
cd /
mount -t tmpfs -o mode=0755,nosuid,nodev mf-sd-run $R/run
for d in $MF_SD_HIDE; do
  case $d in /tmp|/var/tmp) m=1777;; /root) m=0700;; *) m=0755;; esac
  mkdir -p $R$d; mount -t tmpfs -o mode=$m,nosuid,nodev mf-sd-hide $R$d
done
printf '%s\n' "$MF_SD_BINDS" | while IFS='	' read -r mode src dst; do
  [ -n "$src" ] || continue
  if [ -d "$src" ]; then mkdir -p "$R$dst"; else mkdir -p "$(dirname "$R$dst")"; touch "$R$dst"; fi
  mount --bind "$src" "$R$dst"
  [ "$mode" = rw ] || mount -o remount,bind,ro "$R$dst"
done
touch $T/.mf-sd-ready
i=0
while [ ! -e $T/.mf-sd-go ]; do
  i=$((i + 1)); [ $i -lt 6000 ] || fail "the harness never said go"; sleep 0.005
done
[ "$(field $R 1)" = overlay ] || fail "no overlay on $R"
cd $R
pivot_root . .
umount -l .
[ "$(field / 1)" = overlay ] || fail "/ is not the overlay after pivot_root"
exec env -i container=manifold-test /lib/systemd/systemd --unit=${TARGET}
`;

/** Started containers not yet shut down, cleaned up synchronously if the process exits. */
const live = new Set<Internal>();
let exitHook = false;

interface Internal {
  id: string;
  pid: number;
  cgroupPath: string;
  /** `pid:[inode]` of the container; `pidNsFd` pins that inode so it cannot be recycled meanwhile. */
  pidNs: string;
  pidNsFd: number;
  /** Host file in /tmp that must survive the container. */
  sentinel: string;
  done: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Limit of the quick host commands (ip, …) run synchronously. */
const HOST_MS = 30_000;

/** Runs a host command synchronously; throws with its stderr on failure. */
function host(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: HOST_MS });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

/** Mount point of the host's cgroup2 hierarchy (`/sys/fs/cgroup` or the hybrid `/sys/fs/cgroup/unified`). */
export function cgroup2Mount(): string {
  const points = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').flatMap((line) => {
    const [pre, post] = line.split(' - ');
    const mp = pre?.split(' ')[4];
    return post?.split(' ')[0] === 'cgroup2' && mp ? [mp] : [];
  });
  const p = points.includes('/sys/fs/cgroup') ? '/sys/fs/cgroup' : points[0];
  if (!p) throw new Error('no cgroup2 hierarchy is mounted on the host');
  return p;
}

/** The manifold checkout: the nearest ancestor of this file with manifold's package.json. */
function findWorkTree(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'manifold') return dir;
    } catch { /* keep looking */ }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the manifold checkout');
    dir = up;
  }
}

function pidsOf(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function ppid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function comm(pid: number): string | undefined {
  try { return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; }
}

function nsLink(pid: number | 'self', ns: string): string | undefined {
  try { return fs.readlinkSync(`/proc/${pid}/ns/${ns}`); } catch { return undefined; }
}

/** Host pids of processes in the given pid namespace (`pid:[inode]`). */
function pidsInNs(pidNs: string): number[] {
  return pidsOf().filter((p) => nsLink(p, 'pid') === pidNs);
}

/** Fields of the topmost mount at `mountPoint` in /proc/PID/mountinfo. */
function mountAt(pid: number, mountPoint: string): { fstype: string; superOpts: string; mountOpts: string } | undefined {
  let found: { fstype: string; superOpts: string; mountOpts: string } | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const fields = pre?.split(' ') ?? [];
    if (fields[4] !== mountPoint || !post) continue;
    const [fstype = '', , superOpts = ''] = post.split(' ');
    found = { fstype, superOpts, mountOpts: fields[5] ?? '' };
  }
  return found;
}

/** Refuses to go on unless `pid` is PID 1 of its own namespaces with the overlay root prepared. */
function assertContained(pid: number, netnsName: string, lowerDir: string): void {
  const problems: string[] = [];
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  if (!/^NSpid:.*\t1$/m.test(status)) problems.push('not PID 1 of a new pid namespace');
  for (const ns of ['mnt', 'pid', 'uts', 'ipc', 'cgroup']) {
    if (nsLink(pid, ns) === nsLink('self', ns)) problems.push(`shares the host ${ns} namespace`);
  }
  if (nsLink(pid, 'net') !== `net:[${fs.statSync(`/run/netns/${netnsName}`).ino}]`) problems.push('not in its netns');
  if (mountAt(pid, STAGE)?.fstype !== 'tmpfs') problems.push(`no tmpfs on ${STAGE}`);
  const lower = lowerDir === '/' ? '/' : LOWER;
  if (lower !== '/' && !`,${mountAt(pid, LOWER)?.mountOpts ?? ''},`.includes(',ro,')) problems.push(`${LOWER} is not a read-only mount`);
  const ov = mountAt(pid, NEWROOT);
  const opts = `,${ov?.superOpts ?? ''},`;
  if (ov?.fstype !== 'overlay' || !opts.includes(`,lowerdir=${lower},`) || !opts.includes(`,upperdir=${STAGE}/upper,`)) {
    problems.push(`no overlay (lowerdir=${lower}, upper on tmpfs) on ${NEWROOT}`);
  }
  if (problems.length) throw new Error(`refusing to boot systemd: ${problems.join('; ')}`);
}

/**
 * Resolves `file` inside the container whose root is the host path `root` (e.g. /proc/PID/root):
 * symlinks are followed within that root, never into the host. Missing parents are created if `mkdirs`.
 */
function resolveIn(root: string, file: string, mkdirs: boolean): string {
  if (!file.startsWith('/')) throw new Error(`container path must be absolute: ${file}`);
  const todo = file.split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (todo.length) {
    const part = todo.shift() as string;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    const hostPath = path.join(root, ...done, part);
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(hostPath); } catch { st = undefined; }
    if (st?.isSymbolicLink()) {
      if (++hops > 40) throw new Error(`too many symlinks in ${file}`);
      const target = fs.readlinkSync(hostPath);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (!st && todo.length && mkdirs) fs.mkdirSync(hostPath, { mode: 0o755 });
    done.push(part);
  }
  return path.join(root, ...done);
}

/** Runs a command, collecting output; never rejects on a non-zero exit. */
function run(cmd: string, args: string[], opts: ExecOptions & { baseEnv: NodeJS.ProcessEnv }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...opts.baseEnv, ...opts.env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', () => {
      clearTimeout(timer);
      // Output still in the pipes comes through before 'close'; a process that inherited them
      // (nsenter -a forks: its command outlives a SIGKILLed nsenter) must not keep us waiting.
      const late = setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); }, 2000);
      child.once('close', (code, signal) => {
        clearTimeout(late);
        resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), stdout, stderr });
      });
    });
    child.stdin.on('error', () => { /* the command may exit without reading */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Units enabled by the administrator of a root (its /etc/systemd/system/*.wants, *.requires). */
function enabledUnits(root: string): string[] {
  const dir = path.join(root, 'etc/systemd/system');
  let entries: string[] = [];
  try { entries = fs.readdirSync(dir); } catch { return []; }
  return entries
    .filter((d) => d.endsWith('.wants') || d.endsWith('.requires'))
    .flatMap((d) => { try { return fs.readdirSync(path.join(dir, d)); } catch { return []; } });
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined, dead?: () => string | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    const why = dead?.();
    if (why) throw new Error(`${what}: ${why}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function removeCgroupTree(dir: string): void {
  let subdirs: fs.Dirent[] = [];
  try { subdirs = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const d of subdirs) if (d.isDirectory()) removeCgroupTree(path.join(dir, d.name));
  try { fs.rmdirSync(dir); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
}

function cgroupProcs(dir: string): number[] {
  let out: number[] = [];
  try {
    out = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      if (d.isDirectory()) out = out.concat(cgroupProcs(path.join(dir, d.name)));
    }
  } catch { /* gone */ }
  return out;
}

/** Last-resort synchronous cleanup when the test process exits with containers still up. */
function onExit(): void {
  for (const c of live) {
    live.delete(c);
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    try { fs.writeFileSync(path.join(c.cgroupPath, 'cgroup.kill'), '1'); } catch { /* gone */ }
    const end = Date.now() + 2000;
    while (Date.now() < end && (pidsInNs(c.pidNs).length || cgroupProcs(c.cgroupPath).length)) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    spawnSync('ip', ['netns', 'del', c.id], { timeout: HOST_MS });
    try { removeCgroupTree(c.cgroupPath); } catch { /* reported by nobody: process is exiting */ }
    fs.closeSync(c.pidNsFd);
    fs.rmSync(c.sentinel, { force: true });
  }
}

/** On SIGINT/SIGTERM: clean up, then die of the signal as if we had no handler. */
function onSignal(sig: NodeJS.Signals): void {
  onExit();
  process.removeListener(sig, onSignal);
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function installHooks(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * Removes what a SIGKILLed test left behind (the container itself dies with it: pdeathsig,
 * pty hangup, --kill-child): empty `mf-sd-` cgroups older than a minute, and `mf-sd-`
 * netns without processes whose cgroup is gone (boot creates the cgroup first).
 */
function reapStale(cg2: string): void {
  const ls = (d: string): string[] => { try { return fs.readdirSync(d).filter((n) => n.startsWith(PREFIX)); } catch { return []; } };
  for (const name of ls(cg2)) {
    const dir = path.join(cg2, name);
    try {
      if (fs.statSync(dir).mtimeMs > Date.now() - 60_000 || cgroupProcs(dir).length) continue;
      removeCgroupTree(dir);
      fs.rmSync(`/tmp/${name}.sentinel`, { force: true });
    } catch { /* raced with its owner */ }
  }
  const inUse = new Set(pidsOf().map((p) => nsLink(p, 'net')));
  for (const name of ls('/run/netns')) {
    try {
      if (fs.existsSync(path.join(cg2, name)) || inUse.has(`net:[${fs.statSync(`/run/netns/${name}`).ino}]`)) continue;
      spawnSync('ip', ['netns', 'del', name], { timeout: HOST_MS });
    } catch { /* raced with its owner */ }
  }
}

/**
 * Boots systemd as PID 1 of new mount/pid/uts/ipc/cgroup namespaces inside a fresh netns
 * `mf-sd-…` and a delegated cgroup2 directory of the same name. The root is an overlay of the
 * host root with its upper layer on a tmpfs; the harness refuses to exec systemd unless that
 * overlay is really mounted. Resolves once `systemctl` can talk to the manager.
 */
export async function bootSystemd(opts: BootOptions = {}): Promise<Container> {
  if (process.getuid?.() !== 0) throw new Error('bootSystemd needs root');
  const label = (opts.name ?? '').replace(/[^a-z0-9]/gi, '').slice(0, 12);
  // mf-sd-[LABEL-]<pid36><2 random chars>: test/run.mjs removes what a killed test file left (ownedName).
  const id = ownedName(`sd${label ? `-${label}` : ''}`, (n) => fs.existsSync(`/run/netns/${n}`) || fs.existsSync(path.join(cgroup2Mount(), n)));
  const workTree = findWorkTree();
  const workParent = path.dirname(workTree);
  const hide = [...HIDDEN, ...(workParent === '/' ? [] : [workParent])];
  const lowerDir = opts.root ?? '/';
  if (!path.isAbsolute(lowerDir) || /[\s'"$`\\]/.test(lowerDir)) throw new Error(`bad root ${JSON.stringify(lowerDir)}`);
  if (lowerDir !== '/' && !fs.existsSync(path.join(lowerDir, 'usr/lib/systemd/systemd'))) throw new Error(`${lowerDir} holds no systemd`);
  const binds: Bind[] = [{ host: workTree, container: workTree, readOnly: true }, ...(opts.binds ?? [])];
  let nodePath: string | undefined = process.execPath;
  if (lowerDir !== '/') {
    nodePath = opts.hostNode ? CONTAINER_NODE : undefined;
    if (opts.hostNode) binds.push({ host: process.execPath, container: CONTAINER_NODE, readOnly: true });
  } else if (hide.some((h) => process.execPath.startsWith(`${h}/`))) {
    const prefix = path.dirname(path.dirname(process.execPath));
    binds.push({ host: prefix, container: prefix, readOnly: true });
  }
  for (const b of binds) {
    if (!path.isAbsolute(b.host) || !path.isAbsolute(b.container) || /[\t\n]/.test(b.host + b.container)) {
      throw new Error(`bad bind ${JSON.stringify(b)}`);
    }
  }
  const sentinel = `/tmp/${id}.sentinel`;
  fs.writeFileSync(sentinel, 'host /tmp must survive the test systemd\n');
  const cgroupPath = path.join(cgroup2Mount(), id);
  const hostCgroup = path.join(cgroup2Mount(),
    (fs.readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1] ?? '/'));

  let consoleText = '';
  let child: ChildProcess | undefined;
  let internal: Internal | undefined;
  let exited: string | undefined;
  const cleanupEarly = async (): Promise<void> => {
    if (internal) { live.delete(internal); fs.closeSync(internal.pidNsFd); }
    if (child && child.exitCode === null && child.signalCode === null) {
      if (internal) { try { process.kill(internal.pid, 'SIGKILL'); } catch { /* gone */ } }
      child.kill('SIGKILL');
      await waitFor('the init to exit', 5000, () => (exited ? true : undefined)).catch(() => undefined);
    }
    try { fs.writeFileSync(path.join(cgroupPath, 'cgroup.kill'), '1'); } catch { /* none */ }
    await waitFor('the cgroup to empty', 3000, () => (cgroupProcs(cgroupPath).length ? undefined : true)).catch(() => undefined);
    spawnSync('ip', ['netns', 'del', id], { timeout: HOST_MS });
    removeCgroupTree(cgroupPath);
    fs.rmSync(sentinel, { force: true });
  };

  try {
    reapStale(cgroup2Mount());
    fs.mkdirSync(cgroupPath);
    host('ip', ['netns', 'add', id]);
    host('ip', ['-n', id, 'link', 'set', 'lo', 'up']);
    const env: NodeJS.ProcessEnv = {
      PATH: PATH_ENV,
      SHELL: '/bin/sh',
      TERM: 'dumb',
      MF_SD_INIT: INIT,
      MF_SD_CGROUP: cgroupPath,
      MF_SD_NETNS: `/run/netns/${id}`,
      MF_SD_HIDE: hide.join(' '),
      MF_SD_LOWER: lowerDir,
      MF_SD_BINDS: binds.map((b) => `${b.readOnly === false ? 'rw' : 'ro'}\t${b.host}\t${b.container}`).join('\n'),
    };
    const cmd = 'echo $$ > "$MF_SD_CGROUP/cgroup.procs" && exec nsenter --net="$MF_SD_NETNS" -- '
      + 'unshare --mount --propagation private --pid --fork --kill-child --uts --ipc --cgroup -- '
      + '/bin/sh -c "$MF_SD_INIT" mf-sd-init';
    // pdeathsig: if this process dies, script dies, the pty hangs up unshare, and --kill-child kills PID 1.
    child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'script', '-q', '-e', '-f', '-c', cmd, '/dev/null'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { consoleText += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { consoleText += d; });
    child.on('exit', (code, sig) => { exited = `init exited (${sig ?? code})`; });
    const scriptPid = child.pid;
    if (scriptPid === undefined) throw new Error('cannot start script(1)');
    const dead = (): string | undefined => (exited ? `${exited}; console:\n${consoleText}` : undefined);
    const timeoutMs = opts.timeoutMs ?? 20_000;

    // script → sh → nsenter → unshare (one pid, exec chain); its child is PID 1 of the new pid ns.
    const [unsharePid, pid] = await waitFor('PID 1 of the container', timeoutMs, () => {
      const all = pidsOf();
      const u = all.find((p) => ppid(p) === scriptPid);
      const p1 = u === undefined ? undefined : all.find((p) => ppid(p) === u);
      return u !== undefined && p1 !== undefined && comm(u) === 'unshare' ? [u, p1] as const : undefined;
    }, dead);
    const pidNsFd = fs.openSync(`/proc/${pid}/ns/pid`, 'r');
    internal = { id, pid, cgroupPath, pidNs: nsLink(pid, 'pid') ?? '', pidNsFd, sentinel, done: false };
    live.add(internal);
    installHooks();

    await waitFor('the init mounts', timeoutMs, () => (fs.existsSync(`/proc/${pid}/root${STAGE}/.mf-sd-ready`) ? true : undefined), dead);
    assertContained(pid, id, lowerDir);
    // unshare stays in the host's cgroup: the container's root cgroup holds only PID 1.
    fs.writeFileSync(path.join(hostCgroup, 'cgroup.procs'), String(unsharePid));

    const preRoot = `/proc/${pid}/root${NEWROOT}`;
    const mask = [...new Set([...BASE_MASK, ...enabledUnits(lowerDir), ...(opts.mask ?? [])])];
    const unitDir = resolveIn(preRoot, '/etc/systemd/system', true);
    for (const unit of mask) {
      if (unit.includes('/')) throw new Error(`bad unit name ${unit}`);
      fs.rmSync(path.join(unitDir, unit), { force: true, recursive: false });
      fs.symlinkSync('/dev/null', path.join(unitDir, unit));
    }
    const files: Record<string, string | { content: string; mode?: number }> = {
      '/etc/machine-id': `${randomBytes(16).toString('hex')}\n`,
      '/etc/hostname': `${id}\n`,
      ...BASE_FILES,
      ...opts.files,
    };
    for (const [file, spec] of Object.entries(files)) {
      const { content, mode } = typeof spec === 'string' ? { content: spec, mode: undefined } : spec;
      writeIn(preRoot, file, content, mode ?? (file.includes('-generators/') ? 0o755 : 0o644));
    }
    fs.writeFileSync(`/proc/${pid}/root${STAGE}/.mf-sd-go`, '');

    await waitFor('systemd to start', timeoutMs, () => {
      try { return path.basename(fs.readlinkSync(`/proc/${pid}/exe`)) === 'systemd' ? true : undefined; } catch { return undefined; }
    }, dead);
    await waitFor('the manager socket', timeoutMs, () => (fs.existsSync(`/proc/${pid}/root/run/systemd/private`) ? true : undefined), dead);
    return makeContainer(internal, { id, workTree, nodePath, lowerDir, getConsole: () => consoleText, isExited: () => exited !== undefined });
  } catch (e) {
    await cleanupEarly();
    throw e;
  }
}

function writeIn(root: string, file: string, content: string | Buffer, mode: number): void {
  const target = resolveIn(root, file, true);
  fs.writeFileSync(target, content, { mode });
  fs.chmodSync(target, mode);
}

interface Extra {
  id: string;
  workTree: string;
  nodePath: string | undefined;
  lowerDir: string;
  getConsole: () => string;
  isExited: () => boolean;
}

function makeContainer(c: Internal, x: Extra): Container {
  const root = `/proc/${c.pid}/root`;
  const baseEnv: NodeJS.ProcessEnv = { PATH: PATH_ENV, LANG: 'C.UTF-8', TERM: 'dumb', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', HOME: '/root' };
  const clean = (): string => x.getConsole().replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  let shutdownPromise: Promise<void> | undefined;
  const exec = (argv: string[], o: ExecOptions = {}): Promise<ExecResult> => {
    if (c.done) return Promise.reject(new Error('container is shut down'));
    return run('nsenter', ['-t', String(c.pid), '-a', '--', ...argv], { ...o, baseEnv });
  };

  const shutdown = async (): Promise<void> => {
    const problems: string[] = [];
    try { process.kill(c.pid, SIGRTMIN_4); } catch { /* already gone */ }
    const gone = (): true | undefined => (x.isExited() && pidsInNs(c.pidNs).length === 0 ? true : undefined);
    await waitFor('poweroff', 10_000, gone).catch(async () => {
      console.warn(`# ${c.id}: systemd did not power off within 10 s, sending SIGKILL`);
      try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
      await waitFor('SIGKILL', 5000, gone).catch(() => undefined);
    });
    c.done = true;
    live.delete(c);
    const left = pidsInNs(c.pidNs);
    if (left.length) problems.push(`processes left in the container pid ns: ${left.join(' ')}`);
    if (cgroupProcs(c.cgroupPath).length) {
      try { fs.writeFileSync(path.join(c.cgroupPath, 'cgroup.kill'), '1'); } catch { /* no cgroup.kill */ }
      problems.push(`processes left in ${c.cgroupPath}: ${cgroupProcs(c.cgroupPath).join(' ')}`);
    }
    await waitFor('the cgroup to empty', 3000, () => (cgroupProcs(c.cgroupPath).length ? undefined : true)).catch(() => undefined);
    const del = spawnSync('ip', ['netns', 'del', c.id], { encoding: 'utf8', timeout: HOST_MS });
    if (del.status !== 0) problems.push(`ip netns del ${c.id}: ${del.stderr.trim()}`);
    try { removeCgroupTree(c.cgroupPath); } catch (e) { problems.push(`cannot remove ${c.cgroupPath}: ${(e as Error).message}`); }
    if (fs.existsSync(c.cgroupPath)) problems.push(`cgroup ${c.cgroupPath} still exists`);
    if (fs.existsSync(`/run/netns/${c.id}`)) problems.push(`netns ${c.id} still exists`);
    fs.closeSync(c.pidNsFd);
    if (!fs.existsSync(c.sentinel)) problems.push(`HOST /tmp WAS MODIFIED: sentinel ${c.sentinel} is gone`);
    fs.rmSync(c.sentinel, { force: true });
    if (problems.length) throw new Error(`shutdown of ${c.id}: ${problems.join('; ')}`);
  };

  return {
    id: x.id,
    pid: c.pid,
    netnsName: x.id,
    cgroupPath: c.cgroupPath,
    get nodePath(): string {
      if (x.nodePath === undefined) throw new Error(`no node in ${x.lowerDir}: boot it with hostNode: true`);
      return x.nodePath;
    },
    lowerDir: x.lowerDir,
    workTree: x.workTree,
    exec,
    async writeFile(file, content, mode = 0o644) { writeIn(root, file, content, mode); },
    async readFile(file) { return fs.readFileSync(resolveIn(root, file, false), 'utf8'); },
    systemctl: (...args) => exec(['systemctl', '--no-pager', ...args]),
    journalctl: (...args) => exec(['journalctl', '--no-pager', ...args]),
    async waitForSystemRunning(timeoutMs = 30_000) {
      const r = await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs });
      const state = r.stdout.trim() || `unknown (${r.stderr.trim()})`;
      if (state === 'running') return { state, failed: [] };
      const f = await exec(['systemctl', '--failed', '--plain', '--no-legend', '--no-pager']);
      return { state, failed: f.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean) };
    },
    console: clean,
    async waitForConsole(pattern, timeoutMs = 10_000) {
      const match = (l: string): boolean => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l));
      return waitFor(`console line ${String(pattern)}`, timeoutMs, () => clean().split('\n').find(match));
    },
    shutdown: () => (shutdownPromise ??= shutdown()),
  };
}
