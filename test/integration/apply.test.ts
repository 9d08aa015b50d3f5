/**
 * apply: whole-set replacement, dry-run, and atomicity when killed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN } from '../helpers/env.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';
import { sleep, waitExit } from '../helpers/wait.js';

let ctx: Ctx;
let dir: string;
type Entry = { label: string; prefix: string; port: number | string; protocol?: string };

function writeSet(name: string, bindings: Entry[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify({ bindings }));
  return p;
}

function listed(): string[] {
  return (ctx.env.ok(['bindings', '--json']).json as Entry[]).map((b) => `${b.label} ${b.protocol} ${b.prefix} ${b.port}`).sort();
}

test.before(async () => {
  ctx = await setup('apply');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-apply-'));
  await serve(ctx, 'old', 'tcp', '127.0.0.1', 9001);
  await serve(ctx, 'new', 'tcp', '127.0.0.1', 9002);
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('apply replaces the whole set, protocol absent = tcp and udp', async () => {
  ctx.env.ok(['bind', 'old', 'tcp', '192.0.2.9', '9']);
  const file = writeSet('a.json', [
    { label: 'old', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' },
    { label: 'new', prefix: '192.0.2.2', port: 80 },
  ]);
  const r = ctx.env.ok(['apply', file, '--json']);
  const doc = r.json as { added: Entry[]; removed: Entry[] };
  assert.is(doc.added.length, 3);
  assert.equal(doc.removed.map((b) => b.prefix), ['192.0.2.9/32'], 'binding not in the file removed');
  assert.equal(listed(), ['new tcp 192.0.2.2/32 80', 'new udp 192.0.2.2/32 80', 'old tcp 192.0.2.1/32 80']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.1', 80), 'old');
  assert.is(await ctx.agent.who('tcp', '192.0.2.2', 80), 'new');
  assert.is(await ctx.agent.who('tcp', '192.0.2.9', 9), '!ECONNREFUSED');
});

test('--dry-run prints the diff and changes nothing; load-bindings is an alias', async () => {
  const before = listed();
  const file = writeSet('b.json', [
    { label: 'new', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' },
    { label: 'new', prefix: '192.0.2.3/32', port: '81-82', protocol: 'tcp' },
  ]);
  const r = ctx.env.ok(['apply', file, '--dry-run']);
  assert.match(r.stdout, /^\+ tcp 192\.0\.2\.3\/32 81-82 -> new$/m, 'consecutive ports: one range line');
  assert.match(r.stdout, /^- tcp 192\.0\.2\.2\/32 80 -> new$/m);
  assert.match(r.stdout, /^~ tcp 192\.0\.2\.1\/32 80 -> new \(was old\)$/m);
  assert.equal(listed(), before);
  ctx.env.ok(['load-bindings', file]);
  assert.equal(listed(), ['new tcp 192.0.2.1/32 80', 'new tcp 192.0.2.3/32 81', 'new tcp 192.0.2.3/32 82']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.1', 80), 'new', 'relabelled');
});

test('an empty set removes everything and names each removed binding\'s label, also of a destination it removes', () => {
  ctx.env.ok(['bind', 'gone', 'tcp', '192.0.2.77', '7']);
  const before = listed();
  const file = writeSet('empty.json', []);
  const r = ctx.env.ok(['apply', file]);
  assert.match(r.stdout, /^- tcp 192\.0\.2\.77\/32 7 -> gone$/m, r.stdout);
  assert.not.match(r.stdout, /-> #\d/, r.stdout);
  assert.ok(before.length > 0);
  assert.equal(listed(), [], 'everything removed');
  ctx.env.ok(['apply', writeSet('b2.json', [{ label: 'gone', prefix: '192.0.2.77', port: 7, protocol: 'tcp' }, { label: 'new', prefix: '192.0.2.78', port: 7, protocol: 'tcp' }])]);
  const j = ctx.env.ok(['apply', file, '--json']).json as { removed: Entry[] };
  assert.equal(j.removed.map((b) => b.label).sort(), ['gone', 'new']);
});

test('apply killed with SIGKILL at random points leaves the old or the new set', async () => {
  const filler = (label: string, third: number): Entry[] => {
    const out: Entry[] = [];
    for (let i = 0; i < 40000; i++) out.push({ label, prefix: `10.${third}.${i >> 8}.${i & 255}/32`, port: 443, protocol: 'tcp' });
    return out;
  };
  const oldSet = [{ label: 'old', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' }, { label: 'old', prefix: '192.0.2.2/32', port: 80, protocol: 'tcp' }, ...filler('old', 1)];
  const newSet = [{ label: 'new', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' }, { label: 'new', prefix: '192.0.2.2/32', port: 80, protocol: 'tcp' }, ...filler('new', 2)];
  const oldFile = writeSet('old.json', oldSet);
  const newFile = writeSet('new.json', newSet);
  const rounds = 8;
  let sawOld = 0;
  let sawNew = 0;
  const killedMidway: number[] = [];
  let current = '';
  for (let round = 0; round < rounds; round++) {
    const from = round % 2 ? 'new' : 'old';
    const to = from === 'old' ? 'new' : 'old';
    const toFile = to === 'new' ? newFile : oldFile;
    // Measure the same operation, uninterrupted, just before: from the whole `to`
    // set to the whole `from` set. The kill is timed inside that window.
    if (current !== to) ctx.env.ok(['apply', toFile]);
    const t0 = Date.now();
    ctx.env.ok(['apply', from === 'new' ? newFile : oldFile]);
    const fullMs = Date.now() - t0;
    // Spread the kills over the window, from just after the start of the
    // process to the measured end; one stratum per round, random within it.
    const delay = Math.floor(fullMs * (0.1 + (0.9 * (round + Math.random())) / rounds));
    const child = spawn(BIN, ['apply', toFile, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], { stdio: 'ignore' });
    const exited = waitExit(child, 120_000, `manifold apply (round ${round})`);
    await sleep(delay);
    child.kill('SIGKILL');
    const how = await exited;
    assert.ok(how.signal === 'SIGKILL' || how.code === 0, `round ${round}: apply ended by itself with ${how.code ?? how.signal}`);
    if (how.signal === 'SIGKILL') killedMidway.push(round);
    const a = await ctx.agent.who('tcp', '192.0.2.1', 80);
    const b = await ctx.agent.who('tcp', '192.0.2.2', 80);
    const when = `round ${round} (killed after ${delay} of ${fullMs} ms, ${how.signal ?? 'it had finished'})`;
    assert.is(a, b, `${when}: both addresses see one set`);
    assert.ok(a === 'old' || a === 'new', `${when}: ${a}`);
    const listing = ctx.env.ok(['bindings', '--json']).json as Entry[];
    assert.equal([...new Set(listing.map((x) => x.label))], [a], `${when}: the listing holds exactly one set`);
    assert.is(listing.length, 40002, `${when}: complete set`);
    if (how.signal === null) assert.is(a, to, `${when}: a finished apply left the new set`);
    if (a === from) sawOld++;
    else sawNew++;
    current = a;
  }
  console.log(`  killed before the end in ${killedMidway.length} of ${rounds} rounds; ${sawOld} kept the old set, ${sawNew} got the new one`);
  assert.ok(sawOld + sawNew === rounds);
  // The kills must really land before the command finished, not after it.
  assert.ok(killedMidway.length >= rounds / 2, `killed before the end in only ${killedMidway.length} of ${rounds} rounds (${killedMidway.join(', ')})`);
  // Garbage of interrupted runs is collected by the next write.
  ctx.env.ok(['apply', writeSet('small.json', [{ label: 'new', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' }])]);
  const st = ctx.env.ok(['status', '--json']).json as { destinations: { label: string; bindings: number; socket: string | null }[] };
  for (const d of st.destinations) assert.ok(d.bindings > 0 || d.socket !== null, `no garbage destination ${d.label}`);
});

test.run();
