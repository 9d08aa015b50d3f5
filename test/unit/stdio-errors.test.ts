/**
 * Output that cannot be written (src/log/stdio.ts, settleOutput in src/cli/output.ts, the
 * final flush of src/entry/sea.ts): a reader that went away (EPIPE) or a full device (ENOSPC,
 * /dev/full) never ends the process with Node's stack trace of an unhandled 'error' event.
 * EPIPE on stdout: exit status 1, nothing said; another error: exit status 1 and one line
 * "manifold: error: cannot write the output: <reason>"; stderr failures leave the status alone.
 * Run in child processes whose stdout is /dev/full or a pipe the reader closed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const STDIO = path.join(SRC, 'log', 'stdio.js');
const OUTPUT = path.join(SRC, 'cli', 'output.js');
/** The single executable's entry: run by plain Node it starts the CLI with process.argv. */
const SEA = path.join(SRC, 'entry', 'sea.js');

const ENOSPC_LINE = 'manifold: error: cannot write the output: no space left on device (ENOSPC)\n';

/** Where the child's stdout or stderr goes: /dev/full, a pipe whose reader closes before the child writes, or a pipe read to the end. */
type Sink = 'full' | 'closed' | 'pipe';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run node with `args`, stdout and stderr to the given sinks. */
function run(args: string[], out: Sink, err: Sink = 'pipe'): Promise<Result> {
  return new Promise((resolve, reject) => {
    const full = out === 'full' || err === 'full' ? fs.openSync('/dev/full', 'w') : -1;
    const env = { ...process.env };
    delete env.JOURNAL_STREAM;
    delete env.NOTIFY_SOCKET;
    delete env.MANIFOLD_DEBUG;
    const c = spawn(process.execPath, args, { stdio: ['ignore', out === 'full' ? full : 'pipe', err === 'full' ? full : 'pipe'], env });
    if (full >= 0) fs.closeSync(full);
    let stdout = '';
    let stderr = '';
    for (const [stream, sink, add] of [
      [c.stdout, out, (d: string) => (stdout += d)],
      [c.stderr, err, (d: string) => (stderr += d)],
    ] as const) {
      if (!stream) continue;
      // The reader goes away before the child (which takes far longer to start) writes.
      if (sink === 'closed') stream.destroy();
      else stream.setEncoding('utf8').on('data', add);
    }
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run `code` as an ES module in a child, with put, useStream, putStream of stdio.ts and out, outBytes, flushOut, settleOutput of output.ts in scope. */
function child(code: string, out: Sink, err: Sink = 'pipe'): Promise<Result> {
  // The reader of a 'closed' pipe is gone only once the parent has run: wait a little.
  const body = `import { put, useStream } from ${JSON.stringify(STDIO)};
import * as output from ${JSON.stringify(OUTPUT)};
setTimeout(() => {\n${code}\n}, 100);`;
  return run(['--input-type=module', '-e', body], out, err);
}

function noStackTrace(r: Result, what: string): void {
  assert.not.match(r.stderr, /Unhandled 'error' event|node:events|\n\s+at /, `${what}: no stack trace, got ${JSON.stringify(r.stderr.slice(0, 300))}`);
}

test('put and stream writes to /dev/full neither throw nor crash the process', async () => {
  const r = await child(`put(1, 'short'); useStream(1).write(Buffer.alloc(200000, 0x61)); put(1, 'after'); put(2, 'done');`, 'full');
  noStackTrace(r, '/dev/full');
  assert.is(r.code, 0);
  assert.is(r.stderr, 'done');
});

test('put and stream writes to a pipe whose reader went away (EPIPE) neither throw nor crash the process', async () => {
  const r = await child(`put(1, 'x'.repeat(100000)); useStream(1).write(Buffer.alloc(200000, 0x61)); put(1, 'after'); put(2, 'done');`, 'closed');
  noStackTrace(r, 'EPIPE');
  assert.is(r.code, 0);
  assert.is(r.stderr, 'done');
});

test('a failed stream write is recorded, also when the error comes after the write (the final flush)', async () => {
  const r = await child(
    `useStream(1).write('a'.repeat(300000), () => process.stdout.write('', () => setImmediate(() => { process.exitCode = output.settleOutput(0); })));`,
    'full',
  );
  noStackTrace(r, 'flush');
  assert.is(r.code, 1);
  assert.is(r.stderr, ENOSPC_LINE);
});

test('settleOutput: stdout ENOSPC turns success into status 1 with one error line; a failed command keeps its status', async () => {
  const lines = await child(`for (let i = 0; i < 20000; i++) output.out('line ' + i); output.flushOut(); process.exitCode = output.settleOutput(0);`, 'full');
  noStackTrace(lines, 'lines');
  assert.is(lines.code, 1);
  assert.is(lines.stderr, ENOSPC_LINE);
  const bytes = await child(`output.outRaw('['); output.outBytes(Buffer.alloc(300000, 0x20)); output.outRaw(']'); process.exitCode = output.settleOutput(3);`, 'full');
  noStackTrace(bytes, 'bytes');
  assert.is(bytes.code, 3);
  assert.is(bytes.stderr, ENOSPC_LINE);
});

test('settleOutput: stdout EPIPE gives status 1 and says nothing', async () => {
  const r = await child(`output.out('x'.repeat(100000)); output.flushOut(); output.outBytes(Buffer.alloc(100000)); process.exitCode = output.settleOutput(0);`, 'closed');
  noStackTrace(r, 'EPIPE');
  assert.is(r.code, 1);
  assert.is(r.stderr, '');
});

test('CLI: version, version --json and --help to /dev/full fail with one line, no stack trace', async () => {
  for (const args of [['version'], ['version', '--json'], ['--help'], ['--version']]) {
    const r = await run([SEA, ...args], 'full');
    noStackTrace(r, args.join(' '));
    assert.is(r.code, 1, `${args.join(' ')}: status`);
    assert.is(r.stderr, ENOSPC_LINE, `${args.join(' ')}: stderr`);
  }
});

test('CLI: output to a pipe whose reader went away: status 1, nothing on stderr', async () => {
  for (const args of [['version'], ['--help'], ['completion', 'bash']]) {
    const r = await run([SEA, ...args], 'closed');
    noStackTrace(r, args.join(' '));
    assert.is(r.code, 1, `${args.join(' ')}: status`);
    assert.is(r.stderr, '', `${args.join(' ')}: stderr`);
  }
});

test('CLI: a usage error with stdout on /dev/full keeps its own status (2) and still says what was wrong', async () => {
  const r = await run([SEA, 'no-such-command', '--json'], 'full');
  noStackTrace(r, 'usage');
  assert.is(r.code, 2);
  assert.match(r.stderr, /^manifold: error: unknown command/);
  assert.ok(r.stderr.endsWith(ENOSPC_LINE), r.stderr);
});

test('CLI: stderr that cannot be written leaves the status alone (stdout is complete)', async () => {
  const ok = await run([SEA, 'version'], 'pipe', 'full');
  assert.is(ok.code, 0);
  assert.match(ok.stdout, /^manifold /);
  const closed = await run([SEA, 'version'], 'pipe', 'closed');
  assert.is(closed.code, 0);
  const usage = await run([SEA, 'no-such-command'], 'pipe', 'full');
  assert.is(usage.code, 2);
});

test.run();
