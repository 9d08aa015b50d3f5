/**
 * src/log/stdio.ts: short writes go to write(2) without creating process.stdout/stderr, and
 * the bytes keep their order with what goes through the streams. Run in child processes
 * whose stdout and stderr are pipes, as for a CLI in a script.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STDIO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'log', 'stdio.js');

function child(code: string, readSlowly = false): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', `import { put, useStream } from ${JSON.stringify(STDIO)};\n${code}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    c.stdout.on('data', (d: Buffer) => {
      out.push(d);
      // A reader that lags: the child's writes fill the pipe and must wait.
      if (readSlowly) {
        c.stdout.pause();
        setTimeout(() => c.stdout.resume(), 2);
      }
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

test('short writes and stream writes arrive in the order they were made, on each fd', async () => {
  const r = await child(`put(1, 'a'); put(2, 'x'); useStream(1).write('b'); put(1, 'c'); put(2, 'y'); process.stdout.write('d'); put(1, Buffer.from('e'));`);
  assert.is(r.code, 0);
  assert.is(r.stdout.toString(), 'abcde');
  assert.is(r.stderr, 'xy');
});

test('without a stream, process.stdout is never created (the point of write(2))', async () => {
  const r = await child(`
const d = Object.getOwnPropertyDescriptor(process, 'stdout');
let made = false;
Object.defineProperty(process, 'stdout', { ...d, get: () => { made = true; return d.get.call(process); } });
put(1, 'hello\\n');
put(2, 'made=' + made);`);
  assert.is(r.stdout.toString(), 'hello\n');
  assert.is(r.stderr, 'made=false');
});

test('a large write to a pipe whose reader lags arrives whole (partial writes continue)', async () => {
  const r = await child(`const b = Buffer.alloc(3 * 1024 * 1024); for (let i = 0; i < b.length; i++) b[i] = i % 251; put(1, b); put(1, 'end');`, true);
  assert.is(r.code, 0);
  assert.is(r.stdout.length, 3 * 1024 * 1024 + 3);
  for (let i = 0; i < 3 * 1024 * 1024; i += 4099) assert.is(r.stdout[i], i % 251, `byte ${i}`);
  assert.is(r.stdout.subarray(-3).toString(), 'end');
});

test.run();
