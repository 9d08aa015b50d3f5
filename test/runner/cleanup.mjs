// Removal of what a test file left behind, for test/run.mjs.
//
// Test helpers name what they create `mf-<prefix>-<pid in base 36><2 random
// base-36 characters>` (ownedName in test/helpers/env.ts), the pid being the
// test file's process. After the file's process group is gone, the runner
// removes that file's network namespaces (their /run/netns entries: those made
// inside the file's private mount namespace are empty files once it died),
// bpffs mounts and directories, cgroups, throw-away accounts, and its private
// TMPDIR. It never removes a namespace that is still mounted in some mount
// namespace of this machine unless it is this runner's own and carries the
// file's name, and sweeps only dead /run/netns/mf-* entries of other runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const NETNS_DIR = '/run/netns';
const HOST_MS = 30_000;

/**
 * Is `name` made by process `pid` (mf-…-<pid36><2 chars>)?
 * @param {string} name
 * @param {number} pid
 */
export function ownedBy(name, pid) {
  if (!name.startsWith('mf-')) return false;
  const tail = name.slice(name.lastIndexOf('-') + 1);
  return name.lastIndexOf('-') > 2 && tail.length === pid.toString(36).length + 2 && tail.startsWith(pid.toString(36)) && /^[0-9a-z]+$/.test(tail);
}

/**
 * The name an owned thing starts with, for files named `<owned>-…` or `<owned>.…`.
 * @param {string} entry
 * @param {number} pid
 */
function ownedPrefix(entry, pid) {
  for (let i = 3; i <= entry.length; i++) {
    if ((i === entry.length || entry[i] === '-' || entry[i] === '.') && ownedBy(entry.slice(0, i), pid)) return true;
  }
  return false;
}

/** @param {string} s */
function unescapeMount(s) {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Mounts listed in a mountinfo file.
 * @param {string} file
 * @returns {{ point: string, fstype: string }[]}
 */
function mountsOf(file) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    const point = pre?.split(' ')[4];
    if (point && post) out.push({ point: unescapeMount(point), fstype: post.split(' ')[0] ?? '' });
  }
  return out;
}

/** Mounts of this process's mount namespace. */
function ownMounts() {
  return mountsOf('/proc/self/mountinfo');
}

/**
 * Mount points under /run/netns in every mount namespace of the machine
 * (one process of each is read), with a pid of that namespace.
 * @returns {Map<string, { pid: number, own: boolean }>}
 */
function liveNetnsMounts() {
  const own = fs.readlinkSync('/proc/self/ns/mnt');
  /** @type {Map<string, number>} */
  const byNs = new Map();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const ns = fs.readlinkSync(`/proc/${p}/ns/mnt`);
      if (!byNs.has(ns)) byNs.set(ns, Number(p));
    } catch {
      /* gone, or not ours to read */
    }
  }
  const live = new Map();
  for (const [ns, pid] of byNs) {
    for (const m of mountsOf(`/proc/${pid}/mountinfo`)) {
      if (m.point.startsWith(`${NETNS_DIR}/`) && !(live.get(m.point)?.own)) live.set(m.point, { pid, own: ns === own });
    }
  }
  return live;
}

/** @param {string} cmd @param {string[]} args */
function host(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: HOST_MS });
  return r.status === 0 ? '' : `${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`;
}

/**
 * Unmount (lazily) every mount of this namespace at or under `dir`.
 * @param {string} dir
 * @param {string[]} removed
 * @param {string[]} problems
 */
function unmountUnder(dir, removed, problems) {
  const points = ownMounts().map((m) => m.point).filter((p) => p === dir || p.startsWith(`${dir}/`));
  for (const p of points.reverse()) {
    const err = host('umount', ['-l', p]);
    if (err) problems.push(err);
    else removed.push(`mount ${p}`);
  }
}

/**
 * Remove a file or directory tree, never across a mount point of this namespace.
 * @param {string} p
 * @param {string[]} removed
 * @param {string[]} problems
 */
function removeTree(p, removed, problems) {
  unmountUnder(p, removed, problems);
  if (ownMounts().some((m) => m.point === p || m.point.startsWith(`${p}/`))) {
    problems.push(`${p} is still a mount point; left in place`);
    return;
  }
  try {
    fs.rmSync(p, { recursive: true, force: true });
    removed.push(p);
  } catch (err) {
    problems.push(`cannot remove ${p}: ${err.message}`);
  }
}

/** cgroup2 mount points of this namespace. */
function cgroup2Mounts() {
  return ownMounts().filter((m) => m.fstype === 'cgroup2').map((m) => m.point);
}

/** @param {string} dir @returns {number[]} */
function cgroupProcs(dir) {
  let out = [];
  try {
    out = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      if (d.isDirectory()) out = out.concat(cgroupProcs(path.join(dir, d.name)));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** @param {string} dir */
function removeCgroupTree(dir) {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) removeCgroupTree(path.join(dir, d.name));
  fs.rmdirSync(dir);
}

/** @param {number} ms */
function pause(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Kill the processes of a cgroup tree and remove it.
 * @param {string} dir
 * @param {string[]} removed
 * @param {string[]} problems
 */
function removeCgroup(dir, removed, problems) {
  if (cgroupProcs(dir).length) {
    try {
      fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    } catch {
      for (const p of cgroupProcs(dir)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (let i = 0; i < 100 && cgroupProcs(dir).length; i++) pause(50);
  }
  try {
    removeCgroupTree(dir);
    removed.push(`cgroup ${dir}`);
  } catch (err) {
    problems.push(`cannot remove cgroup ${dir}: ${err.message}`);
  }
}

/**
 * Names of accounts (users or groups) in an /etc file.
 * @param {string} file
 */
function accounts(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')[0] ?? '').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Remove what the test file with process `pid` left behind. `tmpDir` is the
 * file's private TMPDIR (removed whole); /run/netns entries must have been
 * created between `startedMs` and `endedMs` (a recycled pid's are newer).
 * Needs root for everything but `tmpDir`.
 * @param {{ pid: number, tmpDir?: string, startedMs: number, endedMs: number }} file
 * @returns {{ removed: string[], problems: string[] }}
 */
export function cleanupFile({ pid, tmpDir, startedMs, endedMs }) {
  /** @type {string[]} */
  const removed = [];
  /** @type {string[]} */
  const problems = [];
  const root = process.getuid?.() === 0;
  if (root && pid) {
    // Network namespaces.
    let names = [];
    try {
      names = fs.readdirSync(NETNS_DIR).filter((n) => ownedBy(n, pid));
    } catch {
      names = [];
    }
    if (names.length) {
      const live = liveNetnsMounts();
      for (const n of names) {
        const p = `${NETNS_DIR}/${n}`;
        let st;
        try {
          st = fs.statSync(p);
        } catch {
          continue;
        }
        if (st.mtimeMs < startedMs - 2000 || st.mtimeMs > endedMs + 2000) continue;
        const holder = live.get(p);
        if (holder?.own) {
          const err = host('ip', ['netns', 'del', n]);
          if (err) problems.push(err);
          else removed.push(`netns ${n}`);
        } else if (holder) {
          problems.push(`netns ${n} is still mounted in the mount namespace of pid ${holder.pid}; left in place`);
        } else {
          try {
            fs.unlinkSync(p);
            removed.push(`netns ${n} (dead entry)`);
          } catch (err) {
            problems.push(`cannot remove ${p}: ${err.message}`);
          }
        }
      }
    }
    // bpffs mounts and directories, sentinels: /tmp/<owned>-…, /tmp/<owned>.….
    const tmp = os.tmpdir();
    for (const m of ownMounts()) {
      if (path.dirname(m.point) === tmp && ownedPrefix(path.basename(m.point), pid)) unmountUnder(m.point, removed, problems);
    }
    let entries = [];
    try {
      entries = fs.readdirSync(tmp).filter((e) => ownedPrefix(e, pid));
    } catch {
      entries = [];
    }
    for (const e of entries) removeTree(path.join(tmp, e), removed, problems);
    // cgroups made at the top of the cgroup2 hierarchy (test/systemd/harness.ts).
    for (const cg of cgroup2Mounts()) {
      let dirs = [];
      try {
        dirs = fs.readdirSync(cg, { withFileTypes: true }).filter((d) => d.isDirectory() && ownedBy(d.name, pid));
      } catch {
        dirs = [];
      }
      for (const d of dirs) removeCgroup(path.join(cg, d.name), removed, problems);
    }
    // Throw-away users and groups (test/integration/readonly.test.ts).
    for (const u of accounts('/etc/passwd').filter((n) => ownedBy(n, pid))) {
      const err = host('userdel', [u]);
      if (err) problems.push(err);
      else removed.push(`user ${u}`);
    }
    for (const g of accounts('/etc/group').filter((n) => ownedBy(n, pid))) {
      const err = host('groupdel', [g]);
      if (err) problems.push(err);
      else removed.push(`group ${g}`);
    }
  }
  if (tmpDir && fs.existsSync(tmpDir)) {
    // The private TMPDIR goes whole, silently (what is in it is the file's own).
    const scratch = [];
    removeTree(tmpDir, scratch, problems);
    removed.push(...scratch.filter((r) => r !== tmpDir));
  }
  return { removed, problems };
}

/**
 * Remove /run/netns/mf-* entries that are no namespace at all any more: not
 * mounted in any mount namespace of the machine (the empty files left when a
 * private mount namespace holding them died) and older than `minAgeMs` (so an
 * entry that `ip netns add` has just created and not yet mounted is spared).
 * Live namespaces, whoever owns them, are never touched. Root only.
 * @param {number} minAgeMs
 * @returns {{ removed: string[], problems: string[] }}
 */
export function sweepDeadNetns(minAgeMs = 60_000) {
  const removed = [];
  const problems = [];
  if (process.getuid?.() !== 0) return { removed, problems };
  let names = [];
  try {
    names = fs.readdirSync(NETNS_DIR).filter((n) => n.startsWith('mf-'));
  } catch {
    return { removed, problems };
  }
  if (!names.length) return { removed, problems };
  const live = liveNetnsMounts();
  for (const n of names) {
    const p = `${NETNS_DIR}/${n}`;
    try {
      const st = fs.lstatSync(p);
      if (!st.isFile() || st.size !== 0 || live.has(p) || st.mtimeMs > Date.now() - minAgeMs) continue;
      fs.unlinkSync(p);
      removed.push(`netns ${n} (dead entry)`);
    } catch (err) {
      if (err.code !== 'ENOENT') problems.push(`cannot remove ${p}: ${err.message}`);
    }
  }
  return { removed, problems };
}
