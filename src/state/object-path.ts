/**
 * Finding the compiled dispatcher object (bpf/manifold.bpf.o in a checkout,
 * next to the executable in an installed package, or $MANIFOLD_BPF_OBJECT).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { findUp } from '../locate.js';

/** Path of the dispatcher object to load. */
export function dispatcherObjectPath(): string {
  const env = process.env.MANIFOLD_BPF_OBJECT;
  if (env) {
    if (!fs.existsSync(env)) throw new ManifoldError('ERR_BPF_OBJECT', `MANIFOLD_BPF_OBJECT=${env}: no such file`);
    return env;
  }
  const found = findUp([path.join('bpf', 'manifold.bpf.o'), 'manifold.bpf.o']);
  if (found) return found;
  throw new ManifoldError('ERR_BPF_OBJECT', 'cannot find manifold.bpf.o (set MANIFOLD_BPF_OBJECT to its path)');
}
