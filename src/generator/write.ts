/**
 * Writing the generator's output: all drop-ins of a label or none. Every
 * path is checked first (each component at most NAME_MAX bytes), then each
 * file is written atomically (temporary file in the same directory, then
 * rename); if one fails, the label's files written so far are removed, so a
 * socket never wants a register unit that lacks its label. --dry-run
 * prints instead.
 */
import { fs, path, under } from '../config/node.js';
import { NAME_MAX } from '../config/unit-name.js';
import type { DropIn } from './render.js';
import { fsReason } from '../core/errno-text.js';

let tmpCounter = 0;

/** Why `file`'s path cannot be written under any directory, or null (a component over NAME_MAX bytes, an absolute or ".." path). */
export function dropInPathProblem(file: DropIn): string | null {
  if (path.isAbsolute(file.path)) return `${file.path} is an absolute path`;
  for (const part of file.path.split('/')) {
    if (part === '' || part === '.' || part === '..') return `${file.path} has an empty, "." or ".." component`;
    const bytes = Buffer.byteLength(part, 'utf8');
    if (bytes > NAME_MAX) return `${part.slice(0, 24)}…${part.slice(-16)} is ${bytes} bytes long; file names may have at most ${NAME_MAX}`;
  }
  return null;
}

/**
 * Create `parent` (a unit's drop-in directory) if it is missing. systemd
 * empties the generator directories before each run, so it usually is:
 * mkdir first costs one call, where trying the file first costs a failed
 * open and its exception as well.
 */
function makeParent(parent: string): void {
  try {
    fs.mkdirSync(parent, { mode: 0o755 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT') throw err;
    fs.mkdirSync(parent, { recursive: true, mode: 0o755 });
  }
}

/**
 * Write one file atomically at `full`. Throws on failure (the temporary
 * file is removed). `newParent`: its directory may not exist yet (the first
 * file of that directory in this run).
 */
function writeAtomic(full: string, file: DropIn, newParent: boolean): void {
  const parent = path.dirname(full);

  // A short name: the final name may already be NAME_MAX bytes long.
  const tmp = `${parent}/.#mf${process.pid}-${tmpCounter++}.tmp`;
  try {
    if (newParent) makeParent(parent);
    fs.writeFileSync(tmp, file.content, { mode: 0o644, flag: 'wx' });
    fs.renameSync(tmp, full);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

/**
 * Write all of `files` (one label's drop-ins) under `dir`, or none: paths are
 * checked before anything is written, and on a failure the files already
 * written are removed. Throws an Error naming the file and the reason.
 */
export function writeAll(dir: string, files: readonly DropIn[]): void {
  const base = path.normalize(dir);
  for (const f of files) {
    const why = dropInPathProblem(f);
    if (why) throw new Error(`cannot write ${path.join(dir, f.path)}: ${why}`);
  }
  const written: string[] = [];
  const parents = new Set<string>();
  try {
    for (const f of files) {
      const parent = path.dirname(f.path);
      const newParent = !parents.has(parent);
      parents.add(parent);
      const full = under(base, f.path); // f.path passed dropInPathProblem above
      try {
        writeAtomic(full, f, newParent);
      } catch (err) {
        throw new Error(`cannot write ${full}: ${fsReason(err)}`);
      }
      written.push(full);
    }
  } catch (err) {
    for (const w of written) {
      try {
        fs.unlinkSync(w);
      } catch {
        // nothing more to do
      }
    }
    throw err;
  }
}

/** The --dry-run listing: "# would write PATH" then the contents, for each file. */
export function dryRunText(dir: string | undefined, files: readonly DropIn[]): string {
  if (files.length === 0) return '# nothing to write\n';
  return files.map((f) => `# would write ${dir ? path.join(dir, f.path) : f.path}\n${f.content}`).join('\n');
}
