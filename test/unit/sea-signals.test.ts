/**
 * The single executable never opens Node's inspector: SIGUSR1 would start it
 * on 127.0.0.1:9229 (code execution as the process's user, root for
 * manifold) unless JavaScript listens for the signal (src/entry/sea.ts).
 * Checked on the long-running exporter, the command that lives long enough
 * to be signalled.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');

test('SIGUSR1 to the exporter: no inspector, still serving, stops on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-usr1-'));
  const child = spawn(BIN, ['metrics', '127.0.0.1', '0', '--bpffs', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the exporter did not start: ${stderr}`)), 20_000);
      const check = (): void => {
        if (/serving metrics on/.test(stderr)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stderr.on('data', check);
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    child.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 500));
    assert.is(child.exitCode, null, 'still running');
    assert.not.match(stderr, /Debugger listening|inspector/i);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.match(stderr, /metrics exporter stopped/);
});

test.run();
