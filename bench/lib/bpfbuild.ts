/**
 * Compiling the benchmark's BPF programs (bench/bpf/*.bpf.c) with clang,
 * using the Makefile's BPF_CFLAGS (read from the Makefile so they cannot
 * drift) and stripping DWARF like `make bpf` does (BTF is kept).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_BUILD, BENCH_SRC, ROOT } from './paths.js';

/** BPF_CFLAGS from the Makefile, with $(CURDIR) expanded. */
export function makefileBpfCflags(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
  const m = /^BPF_CFLAGS\s*:?=\s*(.*)$/m.exec(text);
  if (!m?.[1]) throw new Error('cannot find BPF_CFLAGS in the Makefile');
  return m[1].replace(/\$\(CURDIR\)/g, ROOT).trim().split(/\s+/);
}

/**
 * Compile bench/bpf/<name>.bpf.c (or `source`, relative to the repository
 * root) into build/bench/bpf/<name>.bpf.o; returns its path.
 */
export function compileBenchProgram(name: string, source?: string): string {
  const src = source === undefined ? path.join(BENCH_SRC, 'bpf', `${name}.bpf.c`) : path.join(ROOT, source);
  const outDir = path.join(BENCH_BUILD, 'bpf');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `${name}.bpf.o`);
  const clang = process.env.CLANG ?? 'clang';
  const strip = process.env.LLVM_STRIP ?? 'llvm-strip';
  execFileSync(clang, [...makefileBpfCflags(), '-c', src, '-o', `${out}.tmp`], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  execFileSync(strip, ['-g', `${out}.tmp`], { timeout: 60_000 });
  fs.renameSync(`${out}.tmp`, out);
  return out;
}

/** clang's version line. */
export function clangVersion(): string {
  try {
    return execFileSync(process.env.CLANG ?? 'clang', ['--version'], { encoding: 'utf8', timeout: 30_000 }).split('\n')[0] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
