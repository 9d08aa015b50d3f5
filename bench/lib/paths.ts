/**
 * Locations used by the benchmark: the repository root, the compiled bench
 * scripts and the CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (build/bench/lib/ -> ../../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The compiled bench directory (build/bench). */
export const BENCH_BUILD = path.join(ROOT, 'build', 'bench');
/** The bench sources (results are written here). */
export const BENCH_SRC = path.join(ROOT, 'bench');
/** The manifold CLI entry point. */
export const CLI = path.join(ROOT, 'bin', 'manifold');
/** The production dispatcher object. */
export const DISPATCHER_OBJECT = path.join(ROOT, 'bpf', 'manifold.bpf.o');

/** Path of a compiled bench script, e.g. script('dataplane-worker'). */
export function script(name: string): string {
  return path.join(BENCH_BUILD, `${name}.js`);
}

/**
 * A fresh temporary directory named /tmp/mf-bench-<pid>-<tag>-XXXXXX: the
 * pid lets a later run (or the outer process) remove it if this one dies.
 */
export function benchTmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `mf-bench-${process.pid}-${tag}-`));
}
