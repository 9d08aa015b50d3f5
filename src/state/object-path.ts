/**
 * Finding the compiled dispatcher object (bpf/manifold.bpf.o in a checkout,
 * next to the executable in an installed package, or $MANIFOLD_BPF_OBJECT).
 */
import path from 'node:path';
import { ManifoldError } from '../errors.js';
import { findUp } from '../locate.js';
import { errnoName } from '../sys/errno.js';
import { objectFileProblem } from '../sys/object.js';

/**
 * Path of the dispatcher object to load. $MANIFOLD_BPF_OBJECT, when set, must name a
 * regular file of bounded size (objectFileProblem in src/sys/object.ts: a FIFO would block
 * libbpf forever, a device would be read as garbage), else ERR_BPF_OBJECT names the variable.
 */
export function dispatcherObjectPath(): string {
  const env = process.env.MANIFOLD_BPF_OBJECT;
  if (env) {
    const problem = objectFileProblem(env);
    if (problem) {
      const hint = problem.errno === 2 ? '' : ': it must name the compiled dispatcher object (manifold.bpf.o)';
      throw new ManifoldError('ERR_BPF_OBJECT', `MANIFOLD_BPF_OBJECT=${env}: ${problem.text}${hint}`, { errno: errnoName(problem.errno) });
    }
    return env;
  }
  const found = findUp([path.join('bpf', 'manifold.bpf.o'), 'manifold.bpf.o']);
  if (found) return found;
  throw new ManifoldError('ERR_BPF_OBJECT', 'cannot find manifold.bpf.o (set MANIFOLD_BPF_OBJECT to its path)');
}
