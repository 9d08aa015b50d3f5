/**
 * Finding, layering and validating the config files.
 *
 * Files named `*.conf` are read from /etc/manifold, /run/manifold and
 * /usr/lib/manifold (or $MANIFOLD_CONFIG_DIRS, colon-separated, highest
 * priority first). For each file name the highest-priority directory wins;
 * an empty file or a symlink to /dev/null there masks the name entirely.
 * Files are then processed in file-name order; checks across files (label
 * defined twice, a binding or socket claimed by two labels) reject the later
 * file, so the result does not depend on the directory a file sits in.
 *
 * Files and directories that anyone but root can write are refused
 * (trust.ts); a config directory that is itself writable by others is
 * reported, and the names in it are ignored without letting files of the
 * same name in lower-priority directories take their place.
 */
import type { Stats } from 'node:fs';
import { fsReason } from '../errors.js';
import { hasUnsafeCharacters } from '../core/escape.js';
import type { Protocol } from '../core/net.js';
import { fs, isUtf8, path, under } from './node.js';
import { parseIni } from './ini.js';
import { PortIndex } from './port-index.js';
import { MAX_PROBLEMS_PER_FILE, omittedProblem } from './problems.js';
import { bindKey, bindText, validateDocument } from './schema.js';
import { entryTrustProblem, trustedUids, trustProblem } from './trust.js';
import type { BindConfig, ConfigProblem, LabelConfig } from './types.js';

/** Default config directories, highest priority first. */
export const DEFAULT_CONFIG_DIRS: readonly string[] = ['/etc/manifold', '/run/manifold', '/usr/lib/manifold'];

/** Larger config files are refused. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** makedev(1, 3): /dev/null. */
const DEV_NULL_RDEV = 259;

/** Result of loading the configuration: the valid labels and every problem. */
export interface LoadedConfig {
  /** Valid files, in file-name order. A file with any problem is left out. */
  units: LabelConfig[];
  /**
   * Problems; non-empty means some file was left out. At most
   * MAX_PROBLEMS_PER_FILE per file, then one with `omitted` standing for the
   * rest (src/config/problems.ts).
   */
  problems: ConfigProblem[];
}

/** The config directories: $MANIFOLD_CONFIG_DIRS (colon-separated, highest priority first) or the defaults. */
export function configDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env['MANIFOLD_CONFIG_DIRS'];
  if (v === undefined || v === '') return [...DEFAULT_CONFIG_DIRS];
  return v
    .split(':')
    .filter((d) => d !== '')
    .map((d) => path.resolve(d));
}

function isConfigName(name: string): boolean {
  return name.endsWith('.conf') && !name.startsWith('.') && name.length > '.conf'.length;
}

type FileKind = { kind: 'file' } | { kind: 'masked' } | { kind: 'bad'; message: string };

/**
 * Why a config file path cannot be named in a generated unit file, or null:
 * it contains a character the project's output escaping escapes
 * (src/core/escape.ts: C0 and C1 controls, DEL, bidirectional formatting,
 * the line and paragraph separators, unpaired surrogates). The generator
 * writes the path as it is into SourcePath= and a comment, where such a
 * character would start a new line or hide what follows.
 */
function pathCharactersProblem(file: string): string | null {
  if (!hasUnsafeCharacters(file)) return null;
  return 'the path contains control, bidirectional-formatting or line-separator characters, which cannot be written into unit files';
}

/** The message for a failed stat(2) of a config file. */
function statProblem(err: unknown): FileKind {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return { kind: 'bad', message: 'no such file (or a dangling symlink)' };
  if (code === 'EACCES') return { kind: 'bad', message: 'permission denied' };
  return { kind: 'bad', message: fsReason(err) };
}

/**
 * What the config file `file` is. `inTrusted`: its directory was just
 * found trusted (listConfigFiles), so a file that is not a symbolic link
 * needs only its own lstat(2) for the trust check (trust.ts, entryTrustProblem).
 */
function classify(file: string, inTrusted?: { trusted: readonly number[] }): FileKind {
  const unsafe = pathCharactersProblem(file);
  if (unsafe) return { kind: 'bad', message: unsafe };
  let st: Stats;
  let untrusted: string | null | undefined;
  try {
    if (inTrusted) {
      st = fs.lstatSync(file);
      untrusted = entryTrustProblem(st, inTrusted.trusted);
      if (untrusted === undefined) st = fs.statSync(file);
    } else {
      st = fs.statSync(file);
    }
  } catch (err) {
    return statProblem(err);
  }
  const trust = (): string | null => (untrusted === undefined ? trustProblem(file) : untrusted);
  if (st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) {
    const why = trust();
    return why ? { kind: 'bad', message: why } : { kind: 'masked' };
  }
  if (st.isDirectory()) return { kind: 'bad', message: 'is a directory' };
  if (!st.isFile()) return { kind: 'bad', message: 'is not a regular file' };
  if (st.size > MAX_CONFIG_BYTES) return { kind: 'bad', message: `is larger than ${MAX_CONFIG_BYTES} bytes` };
  const why = trust();
  if (why) return { kind: 'bad', message: why };
  return st.size === 0 && isEmpty(file) ? { kind: 'masked' } : { kind: 'file' };
}

/** stat(2) of a path, or null when it cannot be had. */
function statsOf(p: string): Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/**
 * Whether a file whose size reads 0 really holds nothing: files of /proc and
 * /sys say 0 and have content (or fail to read), and such a file must not
 * pass for a masked name. A file that cannot be read is not empty (reading
 * it later says why).
 */
function isEmpty(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch {
    return false;
  }
  try {
    return fs.readSync(fd, Buffer.alloc(1), 0, 1, null) === 0;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

/** The names in `dir` that are UTF-8; a *.conf name that is not is a problem (its bytes shown escaped). */
function utf8Names(dir: string, base: string, problems: ConfigProblem[]): string[] {
  const out: string[] = [];
  let raw: Buffer[];
  try {
    raw = fs.readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return out;
  }
  for (const b of raw) {
    if (isUtf8(b)) {
      out.push(b.toString('utf8'));
      continue;
    }
    if (!b.subarray(-5).equals(Buffer.from('.conf'))) continue;
    const shown = [...b].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
    problems.push({ file: under(base, shown), line: 0, message: 'the file name is not valid UTF-8: the file is ignored (rename it)' });
  }
  return out;
}

/**
 * The effective config files of the directories, in file-name order (masked
 * names left out), and problems with directories or entries.
 */
export function listConfigFiles(dirs: readonly string[] = configDirs()): { files: string[]; problems: ConfigProblem[] } {
  // File name → its path, or null when it is in a directory that is not trusted.
  const chosen = new Map<string, string | null>();
  const problems: ConfigProblem[] = [];
  const inTrusted = { trusted: trustedUids() };
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A directory that does not exist is fine (all three are optional); one that is something else is not.
      if (code === 'ENOTDIR' && statsOf(dir) !== null) problems.push({ file: dir, line: 0, message: 'is not a directory; no configuration is read from it' });
      else if (code !== 'ENOENT' && code !== 'ENOTDIR') problems.push({ file: dir, line: 0, message: `cannot read directory: ${fsReason(err)}` });
      continue;
    }
    const untrusted = trustProblem(dir, { directory: true, trusted: inTrusted.trusted });
    if (untrusted) problems.push({ file: dir, line: 0, message: `${untrusted}; the files in it are ignored` });
    const base = path.normalize(dir); // once: a directory entry's name has no "/"
    // A name that is not UTF-8 reads back with U+FFFD in place of its bad bytes: a path that
    // cannot be opened, and that another file's name could equal. Such names are refused.
    if (names.some((n) => n.includes('\uFFFD'))) names = utf8Names(dir, base, problems);
    for (const name of names) if (isConfigName(name) && !chosen.has(name)) chosen.set(name, untrusted ? null : under(base, name));
  }
  const files: string[] = [];
  for (const name of [...chosen.keys()].sort()) {
    const file = chosen.get(name);
    if (file === null || file === undefined) continue;
    const k = classify(file, inTrusted);
    if (k.kind === 'file') files.push(file);
    else if (k.kind === 'bad') problems.push({ file, line: 0, message: k.message });
  }
  return { files, problems };
}

/**
 * Read at most MAX_CONFIG_BYTES + 1 bytes of a regular file, without
 * blocking (a FIFO swapped in after classify() is refused, not waited on).
 * The buffer is sized from fstat and grows if the file does while it is
 * read; nothing is kept between calls (the single executable's start-up
 * snapshot keeps what a module holds once the generator's warm-up ran).
 */
function readBounded(file: string): Buffer | string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    return `cannot read: ${fsReason(err)}`;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return 'is not a regular file';
    const limit = MAX_CONFIG_BYTES + 1;
    let buf = Buffer.allocUnsafe(Math.min(limit, Math.max(st.size + 1, 256)));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n === limit) return `is larger than ${MAX_CONFIG_BYTES} bytes`;
        const bigger = Buffer.allocUnsafe(Math.min(limit, 2 * n));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n === limit) return `is larger than ${MAX_CONFIG_BYTES} bytes`;
    return Buffer.from(buf.subarray(0, n));
  } catch (err) {
    return `cannot read: ${fsReason(err)}`;
  } finally {
    fs.closeSync(fd);
  }
}

/** Read and validate one file on its own. */
export function parseConfigFile(file: string): { unit: LabelConfig | null; problems: ConfigProblem[] } {
  const data = readBounded(file);
  if (typeof data === 'string') return { unit: null, problems: [{ file, line: 0, message: data }] };
  return validateDocument(parseIni(data), file);
}

/** Validate text as if it were the file `file` (for tests and tools). */
export function parseConfigText(text: string, file: string): { unit: LabelConfig | null; problems: ConfigProblem[] } {
  return validateDocument(parseIni(text), file);
}

function where(file: string, line: number): string {
  return line > 0 ? `${file}:${line}` : file;
}

/** Who holds a (protocol, prefix, port) interval; its text is made only for a message. */
interface Claim {
  label: string;
  file: string;
  protocol: Protocol;
  bind: BindConfig;
}

/**
 * The checks across files, one file at a time in file-name order: a later
 * file that redefines a label, reuses a socket unit or binds a (protocol,
 * prefix, port) already bound to another label is rejected. Only accepted
 * files are kept, so a rejected file costs no memory once checked.
 */
class CrossFileCheck {
  private readonly labels = new Map<string, LabelConfig>();
  private readonly sockets = new Map<string, { label: string; at: string }>();
  private readonly index = new PortIndex<Claim>();
  readonly accepted: LabelConfig[] = [];

  /**
   * Accept `u`, or return its problems: at most MAX_PROBLEMS_PER_FILE, in
   * the order found, then one standing for the rest.
   */
  add(u: LabelConfig): ConfigProblem[] {
    const mine: ConfigProblem[] = [];
    let omitted = 0;
    const report = (line: number, message: () => string): void => {
      if (mine.length < MAX_PROBLEMS_PER_FILE) mine.push({ file: u.file, line, message: message() });
      else omitted++;
    };
    const other = this.labels.get(u.name);
    if (other) report(u.nameLine, () => `label "${u.name}" is already defined in ${where(other.file, other.nameLine)}`);
    for (const s of u.sockets) {
      const prev = this.sockets.get(s.unit);
      if (prev) report(s.line, () => `Socket=${s.unit} is already used by label "${prev.label}" (${prev.at}); a socket's fds are registered under one label`);
    }
    // Bind= lines of one file never overlap each other (checked per file), so
    // probing all of them first and claiming after is enough.
    for (const b of u.binds) {
      for (const p of b.protocols) {
        const clash = this.index.find(bindKey(p, b), b.first, b.last);
        if (clash) report(b.line, () => `Bind= ${bindText(p, b)} conflicts with ${bindText(clash.protocol, clash.bind)} of label "${clash.label}" (${where(clash.file, clash.bind.line)})`);
      }
    }
    if (mine.length > 0) {
      if (omitted > 0) mine.push(omittedProblem(u.file, omitted));
      return mine;
    }
    for (const b of u.binds) for (const p of b.protocols) this.index.claim(bindKey(p, b), b.first, b.last, { label: u.name, file: u.file, protocol: p, bind: b });
    this.labels.set(u.name, u);
    for (const s of u.sockets) this.sockets.set(s.unit, { label: u.name, at: where(u.file, s.line) });
    this.accepted.push(u);
    return [];
  }
}

/**
 * Checks across files, in order: a later file that redefines a label, reuses
 * a socket unit or binds a (protocol, prefix, port) already bound to another
 * label is rejected with a problem (at most MAX_PROBLEMS_PER_FILE per file,
 * in the order found, then one standing for the rest).
 */
export function checkAcrossFiles(units: readonly LabelConfig[]): LoadedConfig {
  const check = new CrossFileCheck();
  const problems: ConfigProblem[] = [];
  // Loops, not push(...list): spreading a long array into arguments overflows the stack.
  for (const u of units) for (const p of check.add(u)) problems.push(p);
  return { units: check.accepted, problems };
}

type Parsed = { unit: LabelConfig | null; problems: ConfigProblem[] };

/**
 * `problems`, then the problems of each file `parsed` yields, then those
 * across files. Files are parsed and checked one at a time, so only the
 * accepted ones stay in memory.
 */
function combine(parsed: Iterable<Parsed>, problems: ConfigProblem[]): LoadedConfig {
  const check = new CrossFileCheck();
  const across: ConfigProblem[] = [];
  // Loops, not push(...list): spreading a long array into arguments overflows the stack.
  for (const r of parsed) {
    for (const p of r.problems) problems.push(p);
    if (r.unit) for (const p of check.add(r.unit)) across.push(p);
  }
  for (const p of across) problems.push(p);
  return { units: check.accepted, problems };
}

function* parseEach(files: readonly string[]): Generator<Parsed> {
  for (const file of files) yield parseConfigFile(file);
}

/**
 * Load the effective configuration of `dirs` (default: configDirs()). Never
 * throws for bad files: they are left out of `units` and described in `problems`.
 */
export function loadConfig(dirs: readonly string[] = configDirs()): LoadedConfig {
  const listed = listConfigFiles(dirs);
  return combine(parseEach(listed.files), listed.problems);
}

/**
 * Validate config files. With `files`, they are checked together as if they
 * were the whole configuration (empty files count as masked); without, the
 * effective configuration of `dirs` is. Returns the problems (empty = valid):
 * every one, except that a file with more than MAX_PROBLEMS_PER_FILE has its
 * first ones listed and one more with `omitted` standing for the rest.
 */
export function verifyConfig(files?: readonly string[], dirs?: readonly string[]): ConfigProblem[] {
  if (!files || files.length === 0) return loadConfig(dirs ?? configDirs()).problems;
  const problems: ConfigProblem[] = [];
  const toParse: string[] = [];
  // The same path given twice is checked once.
  const seen = new Set<string>();
  for (const file of files) {
    const full = path.resolve(file);
    if (seen.has(full)) continue;
    seen.add(full);
    if (!isConfigName(path.basename(file))) {
      problems.push({ file, line: 0, message: 'config file names must end in .conf (and not start with "."); this file would be ignored' });
      continue;
    }
    const k = classify(file);
    if (k.kind === 'bad') problems.push({ file, line: 0, message: k.message });
    else if (k.kind === 'file') toParse.push(file);
  }
  return combine(parseEach(toParse), problems).problems;
}
