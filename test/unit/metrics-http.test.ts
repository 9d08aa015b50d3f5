/**
 * The exporter's HTTP limits (src/metrics/serve.ts), on the real executable:
 * a connection that sends nothing is closed after the headers timeout, not
 * kept for minutes; connections beyond the cap are closed at once; a normal
 * scrape still gets its answer meanwhile.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS_TIMEOUT_MS, MAX_CONNECTIONS } from '../../src/metrics/serve.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');

let child: ChildProcess | undefined;
let port = 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-mhttp-'));

test.before(async () => {
  child = spawn(BIN, ['metrics', '127.0.0.1', '0', '--bpffs', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the exporter did not start: ${stderr}`)), 20_000);
    child!.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving metrics on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (m) {
        clearTimeout(t);
        port = Number(m[1]);
        resolve();
      }
    });
  });
});

test.after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: net.Socket): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (s.destroyed) resolve(0);
    s.once('close', () => resolve(Date.now() - t0));
    s.on('error', () => undefined);
    s.resume();
  });
}

async function scrapeStatus(): Promise<string> {
  const s = await connect();
  s.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  let data = '';
  s.on('data', (d: Buffer) => (data += d.toString()));
  await closed(s);
  return data.split('\r\n')[0] ?? '';
}

test('a connection that sends nothing is closed after the headers timeout', async () => {
  const s = await connect();
  const ms = await closed(s);
  assert.ok(ms < HEADERS_TIMEOUT_MS + 5_000, `closed after ${ms} ms`);
});

test('connections beyond the cap are closed at once; scrapes are answered again once they go', async () => {
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await connect());
    const extra = await connect();
    const ms = await closed(extra);
    assert.ok(ms < 2_000, `the connection over the cap was closed after ${ms} ms`);
  } finally {
    for (const s of held) s.destroy();
  }
  await new Promise((r) => setTimeout(r, 300));
  // No state under the plain directory: the scrape fails, but it is answered.
  assert.match(await scrapeStatus(), /^HTTP\/1\.1 (500|503) /);
});

async function statusOf(target: string): Promise<string> {
  const s = await connect();
  s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  let data = '';
  s.on('data', (d: Buffer) => (data += d.toString()));
  await closed(s);
  return data.split('\r\n')[0] ?? '';
}

test('paths are read as sent: //metrics is not /metrics; a query and the absolute form are', async () => {
  assert.match(await statusOf('//metrics'), /^HTTP\/1\.1 404 /);
  assert.match(await statusOf('//x/metrics'), /^HTTP\/1\.1 404 /);
  assert.match(await statusOf('/metrics?x=1'), /^HTTP\/1\.1 (500|503) /);
  assert.match(await statusOf(`http://127.0.0.1:${port}/metrics`), /^HTTP\/1\.1 (500|503) /);
  assert.match(await statusOf('/'), /^HTTP\/1\.1 200 /);
});

test('a second exporter on the same port says the address is in use; a missing --bpffs is a usage error', () => {
  const again = spawnSync(BIN, ['metrics', '127.0.0.1', String(port), '--bpffs', dir], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  assert.is(again.status, 1, again.stderr);
  assert.is(again.stderr, `manifold: error: cannot listen on 127.0.0.1:${port}: the address is in use (another exporter?)\n`);
  const missing = spawnSync(BIN, ['metrics', '127.0.0.1', '0', '--bpffs', path.join(dir, 'missing')], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, MANIFOLD_JOURNAL: '0' } });
  assert.is(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, `--bpffs ${path.join(dir, 'missing')}: no such file`);
});

test('SIGHUP stops the exporter cleanly', async () => {
  let stderr = '';
  child!.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
  child!.kill('SIGHUP');
  assert.is(await exited, 0);
  assert.match(stderr, 'metrics exporter stopped (SIGHUP)');
});

test.run();
