/**
 * What may be handed to libbpf as a BPF object (src/state/object-path.ts, src/sys/object.ts):
 * $MANIFOLD_BPF_OBJECT naming a FIFO, a device, a directory or a huge file fails at once with
 * ERR_BPF_OBJECT naming the variable and the path (a FIFO used to block libbpf's open forever,
 * holding the writers' lock); libbpf's own error numbers read as words, not "errno 4001".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManifoldError, toManifoldError } from '../../src/errors.js';
import { dispatcherObjectPath } from '../../src/state/object-path.js';
import { describeErrno, errnoName } from '../../src/sys/errno.js';
import { ROOT } from '../helpers/env.js';

const OBJECT_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'sys', 'object.js');
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-objpath-'));
const FIFO = path.join(DIR, 'fifo.bpf.o');
execFileSync('mkfifo', [FIFO]);
const TEXT = path.join(DIR, 'text.bpf.o');
fs.writeFileSync(TEXT, 'not an ELF file\n');
const HUGE = path.join(DIR, 'huge.bpf.o');
fs.closeSync(fs.openSync(HUGE, 'w'));
fs.truncateSync(HUGE, 65 * 1024 * 1024);

/** The error dispatcherObjectPath() throws with MANIFOLD_BPF_OBJECT=`value` (null when it returns). */
function pathError(value: string): ManifoldError | null {
  const saved = process.env.MANIFOLD_BPF_OBJECT;
  process.env.MANIFOLD_BPF_OBJECT = value;
  try {
    dispatcherObjectPath();
    return null;
  } catch (err) {
    return toManifoldError(err);
  } finally {
    if (saved === undefined) delete process.env.MANIFOLD_BPF_OBJECT;
    else process.env.MANIFOLD_BPF_OBJECT = saved;
  }
}

test('MANIFOLD_BPF_OBJECT must be a regular file of bounded size: else ERR_BPF_OBJECT naming the variable and the path', () => {
  for (const [value, why] of [
    [FIFO, /a FIFO \(named pipe\), not a regular file/],
    ['/dev/zero', /a character device, not a regular file/],
    [DIR, /a directory, not a regular file/],
    [HUGE, /68157440 bytes, too large for a BPF object \(at most 64 MiB\)/],
    [path.join(DIR, 'missing.bpf.o'), /: no such file$/],
  ] as const) {
    const t0 = Date.now();
    const err = pathError(value);
    assert.ok(err, `${value}: rejected`);
    assert.ok(Date.now() - t0 < 5000, `${value}: at once`);
    assert.is(err.code, 'ERR_BPF_OBJECT', value);
    assert.ok(err.message.startsWith(`MANIFOLD_BPF_OBJECT=${value}: `), err.message);
    assert.match(err.message, why);
  }
});

test('MANIFOLD_BPF_OBJECT naming the real object is taken as it is', () => {
  const object = path.join(ROOT, 'bpf', 'manifold.bpf.o');
  const saved = process.env.MANIFOLD_BPF_OBJECT;
  process.env.MANIFOLD_BPF_OBJECT = object;
  try {
    assert.is(dispatcherObjectPath(), object);
  } finally {
    if (saved === undefined) delete process.env.MANIFOLD_BPF_OBJECT;
    else process.env.MANIFOLD_BPF_OBJECT = saved;
  }
});

test('loadObjectAll never hands libbpf a FIFO or a device (any path: also the discovery object)', () => {
  // In a child with a time limit: libbpf's open of a FIFO without a writer would never return.
  for (const [file, why] of [
    [FIFO, 'a FIFO (named pipe), not a regular file'],
    ['/dev/zero', 'a character device, not a regular file'],
  ] as const) {
    const code = `import { loadObjectAll } from ${JSON.stringify(OBJECT_JS)};
try { loadObjectAll(${JSON.stringify(file)}, 'test object'); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ call: e.call, errno: e.errno, errnoName: e.errnoName, message: e.message })); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 15_000 });
    assert.is(r.signal, null, `${file}: returned (did not block)`);
    const got = JSON.parse(r.stdout) as { call: string; errno: number; errnoName: string; message: string };
    assert.is(got.call, 'bpf_object');
    assert.is(got.message, `cannot open BPF object ${file}: ${why}`);
    assert.is(toManifoldError(got).code, 'ERR_BPF_OBJECT');
  }
});

test("libbpf's error numbers (LIBBPF_ERRNO__*, from 4000) have names and words", () => {
  assert.is(errnoName(4000), 'LIBBPF_ERRNO__LIBELF');
  assert.is(errnoName(4001), 'LIBBPF_ERRNO__FORMAT');
  assert.is(errnoName(4007), 'LIBBPF_ERRNO__VERIFY');
  assert.is(errnoName(4013), 'LIBBPF_ERRNO__NLPARSE');
  assert.is(describeErrno(4001), 'not a valid BPF object file (BPF object format invalid)');
  assert.is(describeErrno(-4007), 'the kernel verifier rejected a program');
  for (let n = 4000; n <= 4013; n++) assert.not.match(describeErrno(n), /errno|40\d\d/, `${n}`);
  assert.is(errnoName(4014), 'errno 4014');
});

test('a regular file that is not an ELF object: the message says so in words, not "errno 4001"', () => {
  const code = `import { loadObjectAll } from ${JSON.stringify(OBJECT_JS)};
try { loadObjectAll(${JSON.stringify(TEXT)}, 'test object'); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ call: e.call, errno: e.errno, errnoName: e.errnoName, message: e.message, log: e.log })); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 15_000 });
  const got = JSON.parse(r.stdout) as { call: string; errno: number; errnoName: string; message: string; log: string };
  assert.is(got.errno, 4001);
  assert.is(got.errnoName, 'LIBBPF_ERRNO__FORMAT');
  assert.is(got.message, `cannot open BPF object ${TEXT}: not a valid BPF object file (BPF object format invalid)`);
  const m = toManifoldError(got);
  assert.is(m.code, 'ERR_BPF_OBJECT');
  assert.not.match(m.message, /errno 40/);
  assert.is(m.details?.errno, 'LIBBPF_ERRNO__FORMAT');
});

test.after(() => fs.rmSync(DIR, { recursive: true, force: true }));

test.run();
