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
  assert.match(r.stdout, /^\+ tcp 192\.0\.2\.3\/32 81 -> new$/m);
  assert.match(r.stdout, /^- tcp 192\.0\.2\.2\/32 80 -> new$/m);
  assert.match(r.stdout, /^~ tcp 192\.0\.2\.1\/32 80 -> new \(was old\)$/m);
  assert.equal(listed(), before);
  ctx.env.ok(['load-bindings', file]);
  assert.equal(listed(), ['new tcp 192.0.2.1/32 80', 'new tcp 192.0.2.3/32 81', 'new tcp 192.0.2.3/32 82']);
  assert.is(await ctx.agent.who('tcp', '192.0.2.1', 80), 'new', 'relabelled');
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
  let sawOld = 0;
  let sawNew = 0;
  for (let round = 0; round < 8; round++) {
    ctx.env.ok(['apply', round % 2 ? newFile : oldFile]);
    const from = round % 2 ? 'new' : 'old';
    const to = from === 'old' ? 'new' : 'old';
    const child = spawn(process.execPath, [BIN, 'apply', to === 'new' ? newFile : oldFile, '--netns', ctx.env.netnsPath, '--bpffs', ctx.env.bpffs], { stdio: 'ignore' });
    const delay = 150 + Math.floor(Math.random() * 900);
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const a = await ctx.agent.who('tcp', '192.0.2.1', 80);
    const b = await ctx.agent.who('tcp', '192.0.2.2', 80);
    assert.is(a, b, `round ${round} (killed after ${delay} ms): both addresses see one set`);
    assert.ok(a === 'old' || a === 'new', `round ${round}: ${a}`);
    const labels = new Set((ctx.env.ok(['bindings', '--json']).json as Entry[]).map((x) => x.label));
    assert.equal([...labels], [a], `round ${round}: the listing holds exactly one set`);
    const count = (ctx.env.ok(['bindings', '--json']).json as Entry[]).length;
    assert.is(count, 40002, `round ${round}: complete set`);
    if (a === from) sawOld++;
    else sawNew++;
  }
  assert.ok(sawOld + sawNew === 8);
  // Garbage of interrupted runs is collected by the next write.
  ctx.env.ok(['apply', writeSet('small.json', [{ label: 'new', prefix: '192.0.2.1/32', port: 80, protocol: 'tcp' }])]);
  const st = ctx.env.ok(['status', '--json']).json as { destinations: { label: string; bindings: number; socket: string | null }[] };
  for (const d of st.destinations) assert.ok(d.bindings > 0 || d.socket !== null, `no garbage destination ${d.label}`);
});

test.run();
