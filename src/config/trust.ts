/**
 * Who may write the config files: a config file can add root commands to
 * services (`ExecStartPost=+…`) and steer any traffic, so a file, or a
 * directory on the way to it, that someone other than root can write is
 * refused — the checks of sshd's StrictModes and sudo's sudoers checks:
 *
 * - every directory looked up on the way (from `/`, following symbolic
 *   links component by component, up to 40 of them) and the file itself
 *   must be owned by a trusted user and not writable by group or others;
 * - exception: a directory owned by a trusted user with the sticky bit
 *   (`/tmp`, mode 1777) may be writable by others: the kernel lets nobody
 *   but the owner rename or remove an entry in it, and the entry is checked
 *   itself. A symbolic link in such a directory must be owned by a trusted
 *   user (what fs.protected_symlinks enforces);
 * - no exception for a config directory whose entries are listed
 *   (`/etc/manifold`): anyone able to add a name there could mask or
 *   shadow a file ({@link directoryProblem});
 * - `/dev/null` (masking) is not checked itself, only the directories on
 *   the way to the link.
 *
 * Trusted users: root, and the effective user running manifold when that is
 * not root (like sshd trusting the user's own files): the generator and
 * `apply --config` run as root, so only root's files take effect; a user
 * running `manifold verify` is told about other users' files only. Group
 * ownership never makes a file trusted.
 */
import type { Stats } from 'node:fs';
import { trustedUids } from '../core/users.js';
import { fs, path } from './node.js';

/** Longest chain of symbolic links followed (the kernel's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
/** makedev(1, 3): /dev/null. */
const DEV_NULL_RDEV = 259;

/** The users whose files are trusted: root and the effective user (src/core/users.ts). */
export { trustedUids };

function lookupName(file: string, id: number): string | null {
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(id) && f[0]) return f[0];
    }
  } catch {
    /* no name */
  }
  return null;
}

function userText(uid: number): string {
  const name = lookupName('/etc/passwd', uid);
  return name ? `uid ${uid} ('${name}')` : `uid ${uid}`;
}

function groupText(gid: number): string {
  const name = lookupName('/etc/group', gid);
  return name ? `group '${name}'` : `group ${gid}`;
}

function rule(trusted: readonly number[]): string {
  const others = trusted.filter((u) => u !== 0);
  const who = others.length ? `root (or ${others.map(userText).join(', ')}, who runs manifold)` : 'root';
  return `config files and their directories must be writable only by ${who}`;
}

function modeText(st: Stats): string {
  return `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/**
 * Why `st` (of `p`, a directory or the file) lets someone untrusted write
 * it, or null. `sharedOk`: a trusted sticky directory may be writable by others.
 */
function nodeProblem(p: string, st: Stats, trusted: readonly number[], sharedOk: boolean): string | null {
  if (!trusted.includes(st.uid)) return `${p} is writable by ${userText(st.uid)}, its owner`;
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
  if (sharedOk && sticky) return null;
  if (st.mode & 0o002) return `${p} is writable by every user (${modeText(st)})`;
  if (st.mode & 0o020) return `${p} is writable by ${groupText(st.gid)} (gid ${st.gid}, ${modeText(st)})`;
  return null;
}

function isShared(st: Stats): boolean {
  return (st.mode & 0o022) !== 0;
}

/**
 * {@link trustProblem} of a file in a directory just found trusted
 * (`trustProblem(dir, { directory: true })` was null), from the file's own
 * lstat(2): everything on the way is checked already, the file is left.
 * The same answer as trustProblem for that path, without walking it again
 * (the generator checks every file at boot). A symbolic link is not
 * answered here (its target's path must be walked): undefined, call
 * trustProblem.
 */
export function entryTrustProblem(st: Stats, trusted: readonly number[] = trustedUids()): string | null | undefined {
  if (st.isSymbolicLink()) return undefined;
  if (st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) return null;
  const why = nodeProblem('it', st, trusted, false);
  return why ? `${why}: ${rule(trusted)}` : null;
}

/**
 * Why the file (or, with `directory`, the directory) at `target` may be
 * written by someone untrusted, or null when only trusted users can change
 * what it holds. Missing components are not a problem here (the caller
 * reports those); errors while looking are.
 */
export function trustProblem(target: string, opts: { directory?: boolean; trusted?: readonly number[] } = {}): string | null {
  const trusted = opts.trusted ?? trustedUids();
  const problem = (why: string): string => `${why}: ${rule(trusted)}`;
  const self = path.resolve(target);
  let rest = self.split('/').filter((c) => c !== '');
  let cur = '/';
  let curStat: Stats;
  let links = 0;
  try {
    curStat = fs.lstatSync('/');
    const rootWhy = nodeProblem('/', curStat, trusted, rest.length > 0 || !opts.directory);
    if (rootWhy) return problem(rootWhy);
    while (rest.length > 0) {
      const name = rest.shift() as string;
      if (name === '.') continue;
      if (name === '..') {
        cur = path.dirname(cur);
        curStat = fs.lstatSync(cur);
        continue;
      }
      const next = cur === '/' ? `/${name}` : `${cur}/${name}`;
      const st = fs.lstatSync(next);
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) return `${target}: too many levels of symbolic links`;
        if (isShared(curStat) && !trusted.includes(st.uid)) {
          return problem(`${next} is a symbolic link owned by ${userText(st.uid)} in ${cur}, which others can write to`);
        }
        const link = fs.readlinkSync(next);
        if (link.startsWith('/')) {
          cur = '/';
          curStat = fs.lstatSync('/');
        }
        rest = [...link.split('/').filter((c) => c !== ''), ...rest];
        continue;
      }
      const last = rest.length === 0;
      if (last && !opts.directory && st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) return null;
      if (!last && !st.isDirectory()) return `${target}: ${next} is not a directory`;
      // The sticky exception: for directories that names are looked up in,
      // not for a listed config directory (the last component with `directory`).
      const why = nodeProblem(next === self ? 'it' : next, st, trusted, !last);
      if (why) return problem(why);
      cur = next;
      curStat = st;
    }
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return null;
    return `${target}: cannot check who may write it: ${e.message}`;
  }
}
