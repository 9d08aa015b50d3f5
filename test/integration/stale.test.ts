/**
 * A state directory that does not belong to a live dispatcher in this
 * namespace (its namespace died and the inode number came back, or it is
 * attached elsewhere) is stale, never "already loaded".
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ownedName, TestEnv } from '../helpers/env.js';
import { QUICK_MS } from '../helpers/wait.js';
import { mapCreate, mapNextKey, MapType, objPin } from '../../src/sys/bpf.js';
import { closeFd } from '../../src/sys/libc.js';
import { loadObject } from '../../src/sys/object.js';
import { PROGRAM_NAME } from '../../src/state/loader.js';
import { ROOT } from '../helpers/env.js';

let a: TestEnv;
let b: TestEnv;
test.before(() => {
  a = TestEnv.create('staleA');
  b = TestEnv.create('staleB');
  process.once('exit', () => {
    a.destroy();
    b.destroy();
  });
});
test.after(() => {
  a.destroy();
  b.destroy();
});

function ino(p: string): number {
  return Number(fs.statSync(p).ino);
}

/** Give namespace B's inode name to a state directory made elsewhere ("recycled inode"). */
function plant(from: TestEnv, dirName: string): void {
  fs.renameSync(path.join(from.bpffs, dirName), path.join(b.bpffs, `${ino(b.netnsPath)}_manifold`));
}

test('state of a dead namespace under a recycled inode is not loaded (not attached); load replaces it', () => {
  // Load into a third namespace that then dies (its link is detached), and
  // give its state directory the name B's inode would use.
  const dead = ownedName('staleC', (n) => fs.existsSync(`/run/netns/${n}`));
  execFileSync('ip', ['netns', 'add', dead], { timeout: QUICK_MS });
  const deadIno = ino(`/run/netns/${dead}`);
  b.ok(['load', '--netns', `/run/netns/${dead}`, '--bpffs', b.bpffs], { global: false });
  execFileSync('ip', ['netns', 'del', dead], { timeout: QUICK_MS });
  plant(b, `${deadIno}_manifold`);
  let r = b.cli(['status', '--json']);
  for (let i = 0; i < 100 && !/not attached/.test(r.stderr); i++) {
    execFileSync('sleep', ['0.1'], { timeout: QUICK_MS });
    r = b.cli(['status', '--json']);
  }
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NOT_LOADED', 'nothing is attached: for traffic it is not loaded');
  assert.is(r.code, 3);
  assert.match(r.stderr, /left over and not attached/);
  const load = b.cli(['load', '--json']);
  assert.is(load.code, 0, load.stderr);
  const doc = load.json as { alreadyLoaded: boolean; replacedStale: string | null };
  assert.is(doc.alreadyLoaded, false, 'not reported as already loaded');
  assert.match(String(doc.replacedStale), /detached/);
  assert.is(b.cli(['status', '--json']).code, 0);
  b.ok(['unload']);
});

test('state attached to another live namespace is stale, not "already loaded"', () => {
  a.ok(['load', '--netns', a.netnsPath, '--bpffs', b.bpffs], { global: false });
  plant(b, `${ino(a.netnsPath)}_manifold`);
  const r = b.cli(['status', '--json']);
  assert.is((r.json as { error: { code: string } }).error.code, 'ERR_STALE_STATE');
  assert.match(r.stderr, /attached to network namespace \d+, not \d+/);
  const load = b.cli(['load', '--json']);
  assert.is((load.json as { alreadyLoaded: boolean }).alreadyLoaded, false);
  assert.ok((load.json as { replacedStale: string | null }).replacedStale);
  b.ok(['unload']);
});

test('a second load reports already loaded and changes nothing', () => {
  b.ok(['load']);
  b.ok(['bind', 'x', 'tcp', '192.0.2.1', '80']);
  const before = b.ok(['status', '--json']).stdout;
  const again = b.cli(['load', '--json']);
  assert.is(again.code, 0);
  assert.is((again.json as { alreadyLoaded: boolean }).alreadyLoaded, true);
  assert.match(again.stderr, /already loaded/);
  assert.is(b.ok(['status', '--json']).stdout, before);
  const st = fs.statSync(path.join(b.bpffs, `${ino(b.netnsPath)}_manifold`));
  assert.is(st.mode & 0o777, 0o750, 'state directory mode');
  for (const pin of fs.readdirSync(path.join(b.bpffs, `${ino(b.netnsPath)}_manifold`))) {
    assert.is(fs.statSync(path.join(b.bpffs, `${ino(b.netnsPath)}_manifold`, pin)).mode & 0o777, 0o640, `${pin} mode`);
  }
});

test('not loaded here but in another namespace on the same bpffs: the error names it and the likely cause', () => {
  b.ok(['unload']); // the test before leaves it loaded
  const empty = b.cli(['status', '--json']);
  assert.is(empty.code, 3, empty.stderr);
  assert.match(empty.stderr, /is not loaded in network namespace \d+ .*: run "manifold load" first/);
  a.ok(['load', '--netns', a.netnsPath, '--bpffs', b.bpffs], { global: false });
  try {
    const r = b.cli(['bind', 'x', 'tcp', '192.0.2.1', '80', '--json']);
    assert.is(r.code, 3, r.stderr);
    assert.is((r.json as { error: { code: string } }).error.code, 'ERR_NOT_LOADED');
    assert.match(r.stderr, new RegExp(`not loaded in network namespace ${ino(b.netnsPath)} .*, only in network namespace ${ino(a.netnsPath)}: .*PrivateNetwork=.*--netns`));
    a.ok(['status', '--netns', a.netnsPath, '--bpffs', b.bpffs], { global: false });
    assert.not.match(a.ok(['bindings', '--netns', a.netnsPath, '--bpffs', b.bpffs, '--json'], { global: false }).stdout, /192\.0\.2\.1/, 'nothing was bound anywhere');
  } finally {
    a.cli(['unload', '--netns', a.netnsPath, '--bpffs', b.bpffs], { global: false });
  }
});

test('a pinned map replaced by a map of other sizes is refused by every command; neither upgrade nor the loader adopts it', () => {
  b.ok(['load']);
  b.ok(['bind', 'x', 'tcp', '192.0.2.7', '80']);
  const pin = path.join(b.bpffs, `${ino(b.netnsPath)}_manifold`, 'active_gen');
  fs.rmSync(pin);
  const bogus = mapCreate(MapType.HASH, 'bogus', 3, 99, 1);
  try {
    objPin(bogus, pin);
    const shape = /the pinned map active_gen is not a manifold map \(type 1, key 3 bytes, value 99 bytes; expected type 2, key 4 bytes, value 4 bytes\)/;
    for (const args of [['status'], ['bind', 'y', 'tcp', '192.0.2.8', '80'], ['upgrade']]) {
      const r = b.cli([...args, '--json']);
      assert.is(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.is((r.json as { error: { code: string } }).error.code, 'ERR_STALE_STATE', args[0]);
      assert.match(r.stderr, shape, args[0]);
    }
    assert.is(mapNextKey(bogus, null, 3), null, 'nothing was written into the replaced map');
    // The ABI migration and discovery hand pinned maps to the loader directly: it checks them too.
    assert.throws(
      () => loadObject(path.join(ROOT, 'bpf', 'manifold.bpf.o'), PROGRAM_NAME, { reuse: new Map([['active_gen', bogus]]) }).close(),
      /the existing map active_gen is not the map the program declares \(type 1, key 3 bytes, value 99 bytes; expected type 2, key 4 bytes, value 4 bytes\)/,
    );
  } finally {
    closeFd(bogus);
  }
  b.ok(['unload']);
});

test.run();
