/**
 * A past commit's tree, from this repository's history: what the upgrade
 * tests build an older release from (test/integration/upgrade-*.test.ts,
 * test/systemd/package.test.ts). The tree shares this checkout's
 * node_modules; the caller builds what it needs in it and removes it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './env.js';

/**
 * Extract `commit` (`what` names it in errors) into `dir` (default: a new
 * temporary directory named with `prefix`) and link this checkout's
 * node_modules into it. Throws if the commit is not in the history (a
 * shallow clone).
 */
export function treeOf(commit: string, what: string, opts: { prefix?: string; dir?: string } = {}): string {
  const have = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${commit}^{commit}`], { timeout: 30_000 });
  if (have.status !== 0) throw new Error(`${what} ${commit} is not in this repository's history (a shallow clone?): fetch it to run this test`);
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'mf-history-'));
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', ROOT, commit, dir], { timeout: 60_000 });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** treeOf, compiled with this checkout's tsc (trees whose bin/manifold runs build/src). */
export function compiledTreeOf(commit: string, what: string, prefix: string): string {
  const dir = treeOf(commit, what, { prefix });
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(dir, 'tsconfig.json')], { timeout: 300_000, stdio: 'pipe' });
  return dir;
}
