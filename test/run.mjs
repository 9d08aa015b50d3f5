#!/usr/bin/env node
// Test runner: runs every compiled test file in its own process, unit tests
// first, then (as root) integration and real-systemd tests inside a private
// mount namespace, and prints the total as "N passed, N failed".
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = path.join(root, 'build', 'test');
const isRoot = process.getuid?.() === 0;
const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
const suites = [
  { dir: 'unit', root: false },
  { dir: 'integration', root: true },
  { dir: 'systemd', root: true },
];

function files(dir) {
  const full = path.join(build, dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full)
    .filter((f) => f.endsWith('.test.js'))
    .sort()
    .map((f) => path.join(full, f))
    .filter((f) => !filter || filter.test(f));
}

function cleanupNetns(pid) {
  // Test namespaces are named mf-<test>-<pid in base 36><random>: remove
  // whatever this (possibly crashed) test file left behind.
  if (!pid) return;
  const tag = `-${pid.toString(36)}`;
  let names = [];
  try {
    names = fs.readdirSync('/run/netns').filter((n) => n.startsWith('mf-') && n.includes(tag));
  } catch {
    return;
  }
  for (const n of names) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const suite of suites) {
  for (const file of files(suite.dir)) {
    const rel = path.relative(root, file);
    if (suite.root && !isRoot) {
      console.log(`# ${rel}: needs root, not run`);
      failed++;
      failures.push(`${rel} (needs root)`);
      continue;
    }
    const cmd = suite.root ? 'unshare' : process.execPath;
    const args = suite.root ? ['--mount', '--propagation', 'private', process.execPath, file] : [file];
    process.stdout.write(`# ${rel}\n`);
    const started = Date.now();
    const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 15 * 60 * 1000, env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 256 * 1024 * 1024 });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    process.stdout.write(output);
    const total = /Total:\s+(\d+)/.exec(output);
    const ok = /Passed:\s+(\d+)/.exec(output);
    const skip = /Skipped:\s+(\d+)/.exec(output);
    if (total && ok) {
      const t = Number(total[1]);
      const p = Number(ok[1]);
      const s = skip ? Number(skip[1]) : 0;
      passed += p;
      skipped += s;
      failed += t - p - s;
      if (t - p - s > 0) failures.push(rel);
    }
    if (!total || r.status !== 0) {
      if (!total || (ok && Number(total[1]) === Number(ok[1]))) {
        failed++;
        failures.push(`${rel} (exited with ${r.status ?? r.signal}${r.error ? `: ${r.error.message}` : ''})`);
      }
    }
    process.stdout.write(`# ${rel}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    if (suite.root) cleanupNetns(r.pid);
  }
}
if (failures.length) console.log(`\nfailed:\n  ${failures.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
