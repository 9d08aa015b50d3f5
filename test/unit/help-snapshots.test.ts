/**
 * Help snapshots: `manifold --help` and `manifold CMD --help` of every
 * command listed there are compared with test/fixtures/help/*.txt, so a
 * change of any help text shows up in review. `-h` prints the same as
 * `--help`. A command without a snapshot, or a snapshot of a command that
 * is gone, fails. MANIFOLD_UPDATE_HELP=1 rewrites the snapshots (then
 * review `git diff test/fixtures/help`).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin', 'manifold');
const DIR = path.join(ROOT, 'test', 'fixtures', 'help');
const UPDATE = process.env.MANIFOLD_UPDATE_HELP === '1';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI as installed (bin/manifold itself) with output to pipes (help is 100 columns wide then). */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, MANIFOLD_JOURNAL: '0', COLUMNS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run each argument list, four at a time; results in order. */
async function runMany(lists: string[][]): Promise<Run[]> {
  const out: Run[] = new Array<Run>(lists.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < lists.length) {
      const i = next++;
      out[i] = await run(lists[i] as string[]);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

/** Command names from the "Commands:" section of the top-level help. */
function commandsOf(help: string): string[] {
  const section = help.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
  return [...section.matchAll(/^ {2}manifold ([a-z][a-z-]*)/gm)].map((m) => m[1] as string);
}

function snapshotName(command: string | null): string {
  return `${command ?? 'manifold'}.txt`;
}

function compare(name: string, actual: string): void {
  const file = path.join(DIR, name);
  if (UPDATE) {
    fs.mkdirSync(DIR, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `no snapshot ${path.relative(ROOT, file)}: run MANIFOLD_UPDATE_HELP=1 node test/run.mjs help-snapshots and review it`);
  assert.fixture(actual, fs.readFileSync(file, 'utf8'), `help changed: ${name} (MANIFOLD_UPDATE_HELP=1 rewrites the snapshots)`);
}

let top: Run;
let commands: string[] = [];

test.before(async () => {
  top = await run(['--help']);
  commands = commandsOf(top.stdout);
});

test('manifold --help lists the commands and matches its snapshot', () => {
  assert.is(top.code, 0, top.stderr);
  assert.is(top.stderr, '');
  for (const c of ['load', 'bind', 'apply', 'status', 'doctor', 'completion']) assert.ok(commands.includes(c), `${c} listed`);
  compare(snapshotName(null), top.stdout);
});

test('every command\'s --help matches its snapshot; -h prints the same', async () => {
  const runs = await runMany(commands.flatMap((c) => [[c, '--help'], [c, '-h']]));
  commands.forEach((c, k) => {
    const long = runs[2 * k] as Run;
    const short = runs[2 * k + 1] as Run;
    assert.is(long.code, 0, `${c} --help: ${long.stderr}`);
    assert.is(long.stderr, '', `${c} --help prints nothing on stderr`);
    assert.match(long.stdout, new RegExp(`^manifold ${c}\\b`), `${c} --help starts with its usage`);
    assert.match(long.stdout, /\nExamples:\n {2}manifold /, `${c} --help has examples`);
    // The command's own options come before the global ones.
    const own = long.stdout.indexOf('\nOptions:\n');
    const global = long.stdout.indexOf('\nGlobal options:\n');
    assert.ok(global > 0, `${c}: global options listed`);
    if (own >= 0) assert.ok(own < global, `${c}: own options before the global ones`);
    assert.is(short.code, 0, `${c} -h: ${short.stderr}`);
    assert.is(short.stdout, long.stdout, `${c} -h prints what --help prints`);
    compare(snapshotName(c), long.stdout);
  });
});

test('no snapshot of a command that is gone', () => {
  if (UPDATE) return;
  const expected = new Set([snapshotName(null), ...commands.map(snapshotName)]);
  const stale = fs.readdirSync(DIR).filter((f) => !expected.has(f));
  assert.equal(stale, [], 'stale snapshots in test/fixtures/help');
});

test('-h at the top level and after options prints the top-level help', async () => {
  const [a, b] = await runMany([['-h'], ['--json', '-h']]);
  assert.is(a?.stdout, top.stdout);
  assert.is(b?.stdout, top.stdout);
});

test.run();
