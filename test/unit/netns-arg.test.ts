/**
 * --netns must name a network namespace: other namespace files (checked
 * with NS_GET_NSTYPE), regular files, directories and missing paths are
 * usage errors (ERR_USAGE, exit 2) for every command that takes it, before
 * any state is touched. A network namespace passes the check (the command
 * then fails on --bpffs, a plain directory).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-netns-arg-'));
process.once('exit', () => fs.rmSync(DIR, { recursive: true, force: true }));
const FILE = path.join(DIR, 'regular');
fs.writeFileSync(FILE, 'not a namespace\n');

function run(args: string[], netns: string): { code: number | null; stderr: string; error: { code: string; message: string } | undefined } {
  const r = spawnSync(BIN, [...args, '--netns', netns, '--bpffs', DIR, '--json'], {
    encoding: 'utf8',
    env: { ...process.env, MANIFOLD_JOURNAL: '0' },
    timeout: 60_000,
  });
  let error: { code: string; message: string } | undefined;
  try {
    error = (JSON.parse(r.stdout) as { error?: { code: string; message: string } }).error;
  } catch {
    error = undefined;
  }
  return { code: r.status, stderr: r.stderr, error };
}

const COMMANDS: string[][] = [
  ['status'],
  ['bindings'],
  ['bind', 'web', 'tcp', '192.0.2.1', '80'],
  ['unbind', 'web', 'tcp', '192.0.2.1', '80'],
  ['load'],
  ['unload'],
  ['upgrade'],
  ['unregister', 'web', 'ipv4', 'tcp'],
];

const KINDS: Array<[string, string]> = [
  ['mnt', 'a mount'],
  ['user', 'a user'],
  ['pid', 'a PID'],
  ['uts', 'a UTS'],
  ['ipc', 'an IPC'],
  ['cgroup', 'a cgroup'],
];

test('other namespace types are usage errors that name the type', () => {
  for (const [file, kind] of KINDS) {
    const ns = `/proc/self/ns/${file}`;
    if (!fs.existsSync(ns)) continue;
    for (const args of file === 'mnt' ? COMMANDS : [COMMANDS[0] as string[]]) {
      const r = run(args, ns);
      assert.is(r.code, 2, `${args[0]} --netns ${ns}: ${r.stderr}`);
      assert.is(r.error?.code, 'ERR_USAGE');
      assert.is(r.error?.message, `--netns ${ns}: not a network namespace but ${kind} namespace (expected e.g. /proc/PID/ns/net or /run/netns/NAME)`);
    }
  }
});

test('a regular file, a directory, a missing path and a FIFO are usage errors', () => {
  const fifo = path.join(DIR, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const cases: Array<[string, RegExp]> = [
    [FILE, /not a network namespace file/],
    [DIR, /not a network namespace file/],
    ['/', /not a network namespace file/],
    [path.join(DIR, 'missing'), /no such file/],
    ['/proc/self/ns', /not a network namespace file/],
    [fifo, /not a network namespace file/],
  ];
  for (const [p, re] of cases) {
    for (const args of p === FILE ? COMMANDS : COMMANDS.slice(0, 3)) {
      const r = run(args, p);
      assert.is(r.code, 2, `${args[0]} --netns ${p}: ${r.stderr}`);
      assert.is(r.error?.code, 'ERR_USAGE', `${args[0]} --netns ${p}`);
      assert.match(r.error?.message ?? '', re);
    }
  }
});

test('a network namespace passes (the command then fails on the plain --bpffs directory)', () => {
  for (const ns of ['/proc/self/ns/net', `/proc/${process.pid}/ns/net`]) {
    const r = run(['status'], ns);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.error?.message ?? '', `--bpffs ${DIR}: not a bpf filesystem`);
  }
});

test.run();
