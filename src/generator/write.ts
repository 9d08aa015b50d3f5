/**
 * Writing the generator's output: each file atomically (temporary file in
 * the same directory, then rename), or printed for --dry-run.
 */
import { fs, path } from '../config/node.js';
import type { DropIn } from './render.js';

/** Write one file atomically under `dir`. Throws on failure (the temporary file is removed). */
export function writeAtomic(dir: string, file: DropIn): void {
  const full = path.join(dir, file.path);
  const parent = path.dirname(full);
  fs.mkdirSync(parent, { recursive: true, mode: 0o755 });
  const tmp = path.join(parent, `.#${path.basename(full)}.${process.pid}.tmp`);
  try {
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

/** The --dry-run listing: "# would write PATH" then the contents, for each file. */
export function dryRunText(dir: string | undefined, files: readonly DropIn[]): string {
  if (files.length === 0) return '# nothing to write\n';
  return files.map((f) => `# would write ${dir ? path.join(dir, f.path) : f.path}\n${f.content}`).join('\n');
}
