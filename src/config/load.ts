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
import { fs, path } from './node.js';
import { parseIni } from './ini.js';
import { PortIndex } from './port-index.js';
import { bindKey, bindText, validateDocument } from './schema.js';
import { trustProblem } from './trust.js';
import type { ConfigProblem, LabelConfig } from './types.js';

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
  /** Problems; non-empty means some file was left out. */
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

function classify(file: string): FileKind {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(file)) return { kind: 'bad', message: 'the path contains control characters, which cannot be written into unit files' };
  let st: Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'bad', message: 'no such file (or a dangling symlink)' };
    if (code === 'EACCES') return { kind: 'bad', message: 'permission denied' };
    return { kind: 'bad', message: (err as Error).message };
  }
  if (st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) {
    const untrusted = trustProblem(file);
    return untrusted ? { kind: 'bad', message: untrusted } : { kind: 'masked' };
  }
  if (st.isDirectory()) return { kind: 'bad', message: 'is a directory' };
  if (!st.isFile()) return { kind: 'bad', message: 'is not a regular file' };
  if (st.size > MAX_CONFIG_BYTES) return { kind: 'bad', message: `is larger than ${MAX_CONFIG_BYTES} bytes` };
  const untrusted = trustProblem(file);
  if (untrusted) return { kind: 'bad', message: untrusted };
  return st.size === 0 ? { kind: 'masked' } : { kind: 'file' };
}

/**
 * The effective config files of the directories, in file-name order (masked
 * names left out), and problems with directories or entries.
 */
export function listConfigFiles(dirs: readonly string[] = configDirs()): { files: string[]; problems: ConfigProblem[] } {
  // File name → its path, or null when it is in a directory that is not trusted.
  const chosen = new Map<string, string | null>();
  const problems: ConfigProblem[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') problems.push({ file: dir, line: 0, message: `cannot read directory: ${(err as Error).message}` });
      continue;
    }
    const untrusted = trustProblem(dir, { directory: true });
    if (untrusted) problems.push({ file: dir, line: 0, message: `${untrusted}; the files in it are ignored` });
    for (const name of names) if (isConfigName(name) && !chosen.has(name)) chosen.set(name, untrusted ? null : path.join(dir, name));
  }
  const files: string[] = [];
  for (const name of [...chosen.keys()].sort()) {
    const file = chosen.get(name);
    if (file === null || file === undefined) continue;
    const k = classify(file);
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
    return `cannot read: ${(err as Error).message}`;
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
    return `cannot read: ${(err as Error).message}`;
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

/**
 * Checks across files, in order: a later file that redefines a label, reuses
 * a socket unit or binds a (protocol, prefix, port) already bound to another
 * label is rejected with a problem.
 */
export function checkAcrossFiles(units: readonly LabelConfig[]): LoadedConfig {
  const labels = new Map<string, LabelConfig>();
  const sockets = new Map<string, { label: string; at: string }>();
  const index = new PortIndex<{ label: string; at: string; text: string }>();
  const accepted: LabelConfig[] = [];
  const problems: ConfigProblem[] = [];
  for (const u of units) {
    const mine: ConfigProblem[] = [];
    const other = labels.get(u.name);
    if (other) mine.push({ file: u.file, line: u.nameLine, message: `label "${u.name}" is already defined in ${where(other.file, other.nameLine)}` });
    for (const s of u.sockets) {
      const prev = sockets.get(s.unit);
      if (prev) mine.push({ file: u.file, line: s.line, message: `Socket=${s.unit} is already used by label "${prev.label}" (${prev.at}); a socket's fds are registered under one label` });
    }
    // Bind= lines of one file never overlap each other (checked per file), so
    // probing all of them first and claiming after is enough.
    const claims: Array<{ key: string; first: number; last: number; line: number; owner: { label: string; at: string; text: string } }> = [];
    for (const b of u.binds) {
      for (const p of b.protocols) {
        claims.push({ key: bindKey(p, b), first: b.first, last: b.last, line: b.line, owner: { label: u.name, at: where(u.file, b.line), text: bindText(p, b) } });
      }
    }
    for (const c of claims) {
      const clash = index.find(c.key, c.first, c.last);
      if (clash) mine.push({ file: u.file, line: c.line, message: `Bind= ${c.owner.text} conflicts with ${clash.text} of label "${clash.label}" (${clash.at})` });
    }
    if (mine.length > 0) {
      problems.push(...mine);
      continue;
    }
    for (const c of claims) index.claim(c.key, c.first, c.last, c.owner);
    labels.set(u.name, u);
    for (const s of u.sockets) sockets.set(s.unit, { label: u.name, at: where(u.file, s.line) });
    accepted.push(u);
  }
  return { units: accepted, problems };
}

function combine(parsed: Array<{ unit: LabelConfig | null; problems: ConfigProblem[] }>, problems: ConfigProblem[]): LoadedConfig {
  const valid: LabelConfig[] = [];
  for (const r of parsed) {
    problems.push(...r.problems);
    if (r.unit) valid.push(r.unit);
  }
  const across = checkAcrossFiles(valid);
  return { units: across.units, problems: [...problems, ...across.problems] };
}

/**
 * Load the effective configuration of `dirs` (default: configDirs()). Never
 * throws for bad files: they are left out of `units` and described in `problems`.
 */
export function loadConfig(dirs: readonly string[] = configDirs()): LoadedConfig {
  const listed = listConfigFiles(dirs);
  return combine(listed.files.map(parseConfigFile), listed.problems);
}

/**
 * Validate config files. With `files`, they are checked together as if they
 * were the whole configuration (empty files count as masked); without, the
 * effective configuration of `dirs` is. Returns every problem (empty = valid).
 */
export function verifyConfig(files?: readonly string[], dirs?: readonly string[]): ConfigProblem[] {
  if (!files || files.length === 0) return loadConfig(dirs ?? configDirs()).problems;
  const problems: ConfigProblem[] = [];
  const parsed: Array<{ unit: LabelConfig | null; problems: ConfigProblem[] }> = [];
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
    else if (k.kind === 'file') parsed.push(parseConfigFile(file));
  }
  return combine(parsed, problems).problems;
}
