/**
 * Where manifold's own files are (VERSION, the dispatcher object, koffi):
 * searched from the directory the program runs from and the directories
 * above it, so the same rule works everywhere:
 *
 * - the tsc module tree (tests, the library): this module's directory,
 *   build/src, below the checkout's bpf/, package.json and node_modules/;
 * - the single executable (build/sea/manifold in a checkout,
 *   /usr/lib/manifold/manifold in the package): the executable's directory,
 *   set by its entry (src/entry/sea.ts) after the start-up snapshot is
 *   deserialised — never at snapshot build time, where `import.meta.url` has
 *   no meaning.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let dir: string | undefined;

/** Set the program directory (the bundle's entry: the executable's directory). */
export function setProgramDir(d: string): void {
  dir = d;
}

/** The directory the program's files are searched from. */
export function programDir(): string {
  dir ??= path.dirname(fileURLToPath(import.meta.url));
  return dir;
}

/**
 * The first existing path among `names` (relative paths) in the program
 * directory, then in each of the `levels - 1` directories above it.
 */
export function findUp(names: readonly string[], levels = 6): string | undefined {
  let d = programDir();
  for (let i = 0; i < levels; i++) {
    for (const name of names) {
      const p = path.join(d, name);
      if (fs.existsSync(p)) return p;
    }
    d = path.dirname(d);
  }
  return undefined;
}

/**
 * A `require` that resolves packages the way Node does for a file in the
 * program directory (node_modules/ there or in a directory above): koffi,
 * a native addon, is loaded from its real path this way.
 */
export function programRequire(): NodeJS.Require {
  return createRequire(path.join(programDir(), 'manifold'));
}
