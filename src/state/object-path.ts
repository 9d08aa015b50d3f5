/**
 * Finding the compiled dispatcher object (bpf/manifold.bpf.o in a checkout,
 * next to the bundle in an installed package, or $MANIFOLD_BPF_OBJECT).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManifoldError } from '../errors.js';

/** Path of the dispatcher object to load. */
export function dispatcherObjectPath(): string {
  const env = process.env.MANIFOLD_BPF_OBJECT;
  if (env) {
    if (!fs.existsSync(env)) throw new ManifoldError('ERR_BPF_OBJECT', `MANIFOLD_BPF_OBJECT=${env}: no such file`);
    return env;
  }
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const candidate of [path.join(dir, 'bpf', 'manifold.bpf.o'), path.join(dir, 'manifold.bpf.o')]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    dir = path.dirname(dir);
  }
  throw new ManifoldError('ERR_BPF_OBJECT', 'cannot find manifold.bpf.o (set MANIFOLD_BPF_OBJECT to its path)');
}
