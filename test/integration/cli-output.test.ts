/**
 * Readable output at scale, against a real dispatcher in a test namespace:
 * `apply` of 5,000 consecutive ports prints one range line and writes one
 * journal entry (stderr as the journal stream), and so do bind and unbind of a
 * range, and status shows it as one line; `bindings` in a pipe prints
 * one tab-separated binding per line (scripts), on a terminal (a pty from
 * script(1)) a header and the range collapsed; progress appears on stderr
 * for a large apply on a terminal only; `status --summary` has one line per
 * label with counts, sockets and counters (and --json); a socket is shown
 * as `ss -e` shows it (ino:N sk:HEX, compared with ss itself) next to the
 * decimal cookie; label completion reads the loaded state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN } from '../helpers/env.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;
const FIRST = 10000;
const LAST = 14999;

/** Run the CLI on a terminal (script(1) gives it a pty); stdout and stderr both land in the output, \r\n line ends. */
function onTerminal(args: string[]): { code: number | null; output: string } {
  const cmd = [BIN, ...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, MANIFOLD_JOURNAL: '0', COLUMNS: '120' } });
  if (r.error) throw r.error;
  return { code: r.status, output: r.stdout.replace(/\r\n/g, '\n') };
}

/** Run the CLI with stderr as journald's stream: the `<N>` lines are its journal entries. */
function withJournal(args: string[]): { code: number | null; stdout: string; journal: string[] } {
  const file = path.join(dir, 'stderr');
  const fd = fs.openSync(file, 'w');
  let code: number | null;
  let stdout: string;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    const r = spawnSync(BIN, [...args, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', fd], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}`, MANIFOLD_JOURNAL: '' },
    });
    if (r.error) throw r.error;
    code = r.status;
    stdout = r.stdout;
  } finally {
    fs.closeSync(fd);
  }
  return { code, stdout, journal: fs.readFileSync(file, 'utf8').split('\n').filter((l) => /^<\d>/.test(l)) };
}

test.before(async () => {
  ctx = await setup('out');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-out-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const bindings = [];
  for (let p = FIRST; p <= LAST; p++) bindings.push({ label: 'big', protocol: 'tcp', prefix: '192.0.2.0/24', port: p });
  bindings.push({ label: 'web', protocol: 'tcp', prefix: '198.51.100.0/24', port: 80 });
  // Pretty-printed: over the 256 KiB at which apply shows progress on a terminal.
  fs.writeFileSync(path.join(dir, 'big.json'), JSON.stringify({ bindings }, null, 2));
  assert.ok(fs.statSync(path.join(dir, 'big.json')).size >= 256 * 1024);
});

test.after(() => teardown(ctx));

test('apply of 5,000 consecutive ports: one output line, one journal entry', () => {
  const r = withJournal(['apply', path.join(dir, 'big.json')]);
  assert.is(r.code, 0, r.journal.join('\n'));
  assert.equal(r.stdout.split('\n').filter(Boolean), [`+ tcp 192.0.2.0/24 ${FIRST}-${LAST} -> big`, '+ tcp 198.51.100.0/24 80 -> web']);
  const applied = r.journal.filter((l) => l.includes('applied'));
  assert.equal(applied, [`<5>applied ${LAST - FIRST + 2} bindings: added ${LAST - FIRST + 2}, removed 0, relabelled 0`]);
  assert.ok(r.journal.length <= 3, `few journal entries: ${r.journal.join(' | ')}`);
});

test('status shows the range as one line; bind and unbind of a range print one line and write one journal entry each', () => {
  const st = ctx.env.ok(['status']);
  const lines = st.stdout.split('\n').filter((l) => l.includes('192.0.2.0/24'));
  assert.equal(lines.map((l) => l.trim().replace(/ +/g, ' ')), [`tcp 192.0.2.0/24 ${FIRST}-${LAST} -> big`]);
  assert.match(st.stdout, `bindings (${LAST - FIRST + 2}):`);
  const bind = withJournal(['bind', 'more', 'udp', '203.0.113.0/24', '8000-8080']);
  assert.is(bind.code, 0);
  assert.equal(bind.journal.filter((l) => l.includes('bound')), ['<6>bound udp 203.0.113.0/24 8000-8080 -> more']);
  const unbind = withJournal(['unbind', 'more', 'udp', '203.0.113.0/24', '8000-8080']);
  assert.is(unbind.code, 0);
  assert.equal(unbind.journal.filter((l) => l.includes('bound')), ['<6>unbound udp 203.0.113.0/24 8000-8080 from more']);
});

test('bindings in a pipe: one tab-separated binding per line; --json unchanged', () => {
  const r = ctx.env.ok(['bindings']);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.is(lines.length, LAST - FIRST + 2);
  assert.ok(lines.includes(`tcp\t192.0.2.0/24\t${FIRST}\tbig`));
  assert.ok(lines.includes(`tcp\t192.0.2.0/24\t${LAST}\tbig`));
  assert.ok(lines.every((l) => l.split('\t').length === 4), 'four tab-separated fields');
  const j = ctx.env.ok(['bindings', '--json']).json as { port: number }[];
  assert.is(j.length, LAST - FIRST + 2);
  assert.ok(j.every((b) => typeof b.port === 'number'));
});

test('bindings on a terminal: a header, aligned columns, the range as one row', () => {
  const r = onTerminal(['bindings']);
  assert.is(r.code, 0, r.output);
  const lines = r.output.split('\n').filter(Boolean);
  assert.equal(lines[0]?.split(/ {2,}/), ['PROTOCOL', 'PREFIX', 'PORT', 'LABEL']);
  assert.equal(lines.slice(1).map((l) => l.split(/ {2,}/)).sort(), [['tcp', '192.0.2.0/24', `${FIRST}-${LAST}`, 'big'], ['tcp', '198.51.100.0/24', '80', 'web']]);
  const col = (l: string, word: string): number => l.indexOf(word);
  assert.is(col(lines[0] as string, 'LABEL'), col(lines[1] as string, (lines[1] as string).trim().split(/ +/)[3] as string), 'LABEL column aligned');
});

test('a large apply shows progress on a terminal, never in a pipe', () => {
  ctx.env.ok(['apply', path.join(dir, 'big.json')]);
  const tty = onTerminal(['apply', '--dry-run', path.join(dir, 'big.json')]);
  assert.is(tty.code, 0, tty.output);
  assert.match(tty.output, /manifold: checking .*big\.json… \(\d+\.\d s\)/);
  assert.match(tty.output, '\x1b[K', 'the progress line is erased');
  const pipe = ctx.env.ok(['apply', '--dry-run', path.join(dir, 'big.json')]);
  assert.not.match(pipe.stderr, '…');
  assert.not.match(pipe.stderr, '\x1b');
});

test('status --summary: one line per label with counts, sockets and counters; --json', async () => {
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 0);
  const r = ctx.env.ok(['status', '--summary']);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines[0]?.split(/ {2,}/), ['LABEL', 'DESTINATIONS', 'BINDINGS', 'SOCKETS', 'LOOKUPS', 'MISSES', 'ERRORS']);
  assert.equal(lines[1]?.split(/ {2,}/), ['big', '1', String(LAST - FIRST + 1), '0/1', '0', '0', '0']);
  assert.equal(lines[2]?.split(/ {2,}/), ['web', '1', '1', '1/1', '0', '0', '0']);
  assert.match(lines[3] ?? '', /^capacity: bindings 5001\//);
  const j = ctx.env.ok(['status', '--summary', '--json']).json as { labels: { label: string; bindings: number; sockets: number }[] };
  assert.equal(j.labels.map((l) => [l.label, l.bindings, l.sockets]), [['big', LAST - FIRST + 1, 0], ['web', 1, 1]]);
});

test('a socket is shown as ss -e shows it (ino:N sk:HEX) next to the decimal cookie', () => {
  const st = ctx.env.ok(['status', '--json']).json as { destinations: { label: string; socket: string | null; sk: string | null; inode: number | null }[] };
  const web = st.destinations.find((d) => d.label === 'web');
  assert.ok(web?.socket, 'web has a socket');
  assert.match(web?.socket ?? '', /^\d+$/, 'decimal cookie in JSON');
  assert.is(web?.sk, BigInt(web?.socket ?? '0').toString(16));
  assert.ok(web?.inode, 'inode known (the agent holds the socket)');
  const ss = spawnSync('ss', ['-N', ctx.env.name, '-Htlne'], { encoding: 'utf8', timeout: 30_000 }).stdout;
  const id = `ino:${web?.inode} sk:${web?.sk}`;
  assert.match(ss, id, `ss -e lists ${id}`);
  const text = ctx.env.ok(['status', 'web']).stdout;
  assert.match(text, `socket=${web?.socket} (${id})`);
});

test('completion offers the labels of the loaded state', () => {
  const r = spawnSync(BIN, ['--get-yargs-completions', 'manifold', '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs, 'bind', ''], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.stdout.split('\n').filter(Boolean), ['big', 'web']);
  const s = spawnSync(BIN, ['--get-yargs-completions', 'manifold', 'status', '--bpffs', ctx.env.bpffs, '--netns', ctx.env.netnsPath, '--label', ''], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(s.stdout.split('\n').filter(Boolean), ['big', 'web']);
});

test.run();
