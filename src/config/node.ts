/**
 * node:fs, node:path and node:buffer's isUtf8 for modules the systemd
 * generator loads. They come through require(): an ESM `import` of node:fs
 * builds its whole namespace eagerly, which loads Node's stream modules and
 * costs the generator ~5 ms per boot and daemon-reload.
 */
import { createRequire } from 'node:module';

// Builtins resolve the same from anywhere; '/' avoids initialising import.meta (~1 ms).
const require = createRequire('/');

/** node:fs */
export const fs = require('node:fs') as typeof import('node:fs');
/** node:path */
export const path = require('node:path') as typeof import('node:path');
/**
 * `rel` under `dir`: what path.join(dir, rel) returns when `dir` is already
 * normalised (path.normalize) and `rel` is relative with no empty, "." or
 * ".." component — without normalising both again for each file (in a loop
 * over files, path.normalize was the generator's hottest function).
 */
export function under(dir: string, rel: string): string {
  return dir.endsWith('/') ? dir + rel : `${dir}/${rel}`;
}

/** True when the bytes are valid UTF-8 (node:buffer isUtf8). */
export const isUtf8 = (require('node:buffer') as typeof import('node:buffer')).isUtf8;
