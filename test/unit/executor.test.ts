/**
 * The write path against the in-memory twin: bind/unbind plans, the two
 * generations staying in sync, repair after an interruption.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bind, unbind } from '../../src/ops/bind.js';
import { parsePrefix } from '../../src/core/net.js';
import { TwinMaps } from '../../src/state/twin-maps.js';
import { GEN_DIRTY, GEN_STALE, PORT_FIRST, PORT_OTHER, portShift } from '../../src/core/layout.js';
import { apply, planApply } from '../../src/ops/apply.js';
import { BindingSetBuilder } from '../../src/ops/binding-set.js';
import { View } from '../../src/ops/view.js';
import { emptyPlan } from '../../src/ops/plan.js';
import { execute } from '../../src/ops/executor.js';
import { BindingList } from '../../src/core/binding-list.js';
import type { Gen } from '../../src/state/maps.js';
import { layoutGeneration, Place, SMALL_GENERATION } from '../../src/core/placement.js';

function listing(maps: TwinMaps, gen: Gen): string[] {
  const l = maps.readBindings(gen);
  const labels = new Map(maps.destinations().map((d) => [d.id, d.label]));
  const out: string[] = [];
  for (let i = 0; i < l.count; i++) out.push(`${labels.get(l.tag(i))} ${l.protocol(i)} ${l.prefix(i).len} ${l.port(i)}`);
  return out.sort();
}

test('bind then unbind a range: both generations agree, refs follow', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  const r = bind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.0/24'), ports: { first: 80, last: 82 } });
  assert.is(r.added.length, 3);
  assert.is(r.exec.strategy, 'incremental');
  assert.equal(listing(maps, 0), listing(maps, 1));
  assert.equal(maps.genState(0).seq, maps.genState(1).seq);
  const d = maps.destinations()[0]!;
  assert.equal(d.refs, [3, 3]);
  const h = bind(maps, { label: 'host', protocol: 'tcp', prefix: parsePrefix('192.0.2.7'), ports: { first: 80, last: 80 } });
  assert.is(h.added.length, 1);
  const u = unbind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.0/24'), ports: { first: 80, last: 82 } });
  assert.is(u.removed.length, 3);
  assert.equal(listing(maps, maps.activeGen()), ['host tcp 32 80']);
  assert.equal(listing(maps, 0), listing(maps, 1));
  assert.equal(maps.destinations().map((x) => x.label), ['host'], 'web collected: no bindings, no socket');
});

test('relabel moves references', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  bind(maps, { label: 'a', protocol: 'udp', prefix: parsePrefix('2001:db8::/64'), ports: { first: 0, last: 0 } });
  const r = bind(maps, { label: 'b', protocol: 'udp', prefix: parsePrefix('2001:db8::/64'), ports: { first: 0, last: 0 } });
  assert.equal(r.relabelled.map((x) => x.from), ['a']);
  assert.equal(maps.destinations().map((x) => `${x.label} ${x.refs.join(',')}`), ['b 1,1']);
});

test('unbind of a partly missing range removes nothing', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix('10.0.0.0/8'), ports: { first: 1, last: 5 } });
  const before = listing(maps, maps.activeGen());
  assert.throws(() => unbind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix('10.0.0.0/8'), ports: { first: 4, last: 6 } }), /no binding tcp 10.0.0.0\/8 6/);
  assert.equal(listing(maps, maps.activeGen()), before);
});

test('an interrupted write is repaired by the next one', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix('10.0.0.1'), ports: { first: 1, last: 1 } });
  const live = maps.activeGen();
  const staging = (live ^ 1) as Gen;
  // Simulate a writer killed after it dirtied and changed the staging generation.
  maps.setGenState(staging, { ...maps.genState(staging), flags: GEN_DIRTY });
  maps.resetGeneration(staging, 64);
  const r = bind(maps, { label: 'b', protocol: 'tcp', prefix: parsePrefix('10.0.0.2'), ports: { first: 2, last: 2 } });
  assert.ok(r.exec.repaired);
  assert.equal(listing(maps, maps.activeGen()), ['a tcp 32 1', 'b tcp 32 2']);
  assert.equal(listing(maps, 0), listing(maps, 1));
});

test('many lengths in a slot: the trie takes the shorter ones', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  // Past a small generation (which keeps every exact-port binding in the trie: below).
  bind(maps, { label: 'u', protocol: 'udp', prefix: parsePrefix('10.1.0.1'), ports: { first: 1, last: 10 } });
  for (const len of [32, 31, 30, 29, 28, 27, 26, 25]) {
    bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix(`10.0.0.0/${len}`), ports: { first: 80, last: 80 } });
  }
  const g = maps.activeGen();
  const meta = maps.genMeta(g);
  assert.ok(meta.trieSlots & 1, 'slot 0 uses the trie');
  assert.equal(meta.exactLens[0], [32, 31, 30, 29, 28, 27], 'the six longest lengths are hashed');
  assert.is(maps.readBindings(g).count, 18);
  assert.equal(listing(maps, 0), listing(maps, 1));
});

test('a no-op after a rebuild writes nothing; the next real write rebuilds the stale generation', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  const list = new BindingList();
  for (let i = 0; i < 300; i++) list.push('tcp', 'ipv4', Uint8Array.of(10, 0, i >> 8, i & 255), 32, 80, 0);
  const first = apply(maps, { list, labels: ['web'] }, false, { force: true });
  assert.is(first.exec?.strategy, 'rebuild');
  const staging = (maps.activeGen() ^ 1) as Gen;
  assert.is(maps.genState(staging).flags, GEN_STALE, 'the old generation is stale after a rebuild');
  const writes = maps.writes;
  const again = apply(maps, { list, labels: ['web'] }, false, { force: true });
  assert.is(again.exec?.strategy, 'none');
  assert.is(maps.writes, writes, 'the same set again writes nothing');
  const b = bind(maps, { label: 'other', protocol: 'tcp', prefix: parsePrefix('192.0.2.1'), ports: { first: 80, last: 80 } });
  assert.ok(b.exec.repaired, 'the next real write brings the stale generation back');
  assert.equal(listing(maps, 0), listing(maps, 1));
  assert.is(maps.genState(0).flags | maps.genState(1).flags, 0);
});

test('a large apply is planned without put and delete lists and rebuilt from its target; a small one keeps them', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  const setOf = (n: number, port: number) => {
    const b = new BindingSetBuilder(1 << 16);
    for (let i = 0; i < n; i++) b.add({ label: i % 2 ? 'a' : 'b', prefix: `10.0.${i >> 8}.${i & 255}`, port, protocol: 'tcp' }, `e${i}`);
    return b.build();
  };
  const big = planApply(new View(maps), setOf(300, 80));
  assert.is(big.plan.puts.count, 0);
  assert.is(big.plan.omitted, 300);
  assert.equal([...big.plan.refDelta].sort(), [[0, 150], [1, 150]].sort());
  const r = apply(maps, setOf(300, 80), false, { force: true });
  assert.is(r.exec?.strategy, 'rebuild');
  assert.is(maps.readBindings(maps.activeGen()).count, 300);
  // One more binding: a small change, planned with its put and changed in place.
  const more = setOf(301, 80);
  const small = planApply(new View(maps), setOf(301, 80));
  assert.is(small.plan.puts.count, 1);
  assert.is(small.plan.omitted, 0);
  const r2 = apply(maps, more, false, { force: true });
  assert.is(r2.exec?.strategy, 'incremental');
  assert.equal(listing(maps, 0), listing(maps, 1));
  // A plan that left its changes out must be rebuilt: the executor refuses it otherwise.
  const bad = { ...emptyPlan(), omitted: 1 };
  assert.throws(() => execute(maps, bad), /left out its changes/);
});

/** Where generation g keeps its exact-port tcp/IPv4 bindings: 'trie' (trie mode), 'hash' or 'none'. */
function tcp4Mode(maps: TwinMaps, g: Gen): string {
  const meta = maps.genMeta(g);
  if (meta.exactLens[0]!.length > 0) return 'hash';
  return meta.trieSlots & 1 ? 'trie' : 'none';
}

test('a small generation keeps its exact-port bindings in the trie; the write that outgrows it lays it out hashed', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  for (let i = 1; i <= SMALL_GENERATION; i++) {
    const r = bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix(`10.0.0.${i}`), ports: { first: 80, last: 80 } });
    assert.is(r.exec.strategy, 'incremental', `bind ${i} changes the generations in place`);
    assert.is(tcp4Mode(maps, 0), 'trie');
    assert.is(tcp4Mode(maps, 1), 'trie');
    assert.is(maps.genState(maps.activeGen()).exactCount, 0, 'nothing is hashed');
  }
  const past = bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix('10.0.0.99'), ports: { first: 80, last: 80 } });
  assert.is(past.exec.strategy, 'rebuild', 'the binding that makes it larger than small lays the generation out again');
  assert.is(tcp4Mode(maps, maps.activeGen()), 'hash');
  assert.is(maps.genState(maps.activeGen()).exactCount, SMALL_GENERATION + 1);
  const next = bind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix('10.0.0.100'), ports: { first: 80, last: 80 } });
  assert.is(next.exec.strategy, 'incremental', 'then writes are in place again');
  assert.is(tcp4Mode(maps, maps.activeGen()), 'hash');
  // Shrinking does not flip it back (no rebuild for that); the next layout from scratch does.
  for (let i = 1; i <= SMALL_GENERATION; i++) unbind(maps, { label: 'a', protocol: 'tcp', prefix: parsePrefix(`10.0.0.${i}`), ports: { first: 80, last: 80 } });
  assert.is(tcp4Mode(maps, maps.activeGen()), 'hash');
  assert.equal(listing(maps, 0), listing(maps, 1));
  assert.equal(listing(maps, maps.activeGen()), ['a tcp 32 80', 'a tcp 32 80']);
});

test('apply lays out a set of at most SMALL_GENERATION bindings in trie mode, a larger one hashed', () => {
  const setOf = (n: number) => {
    const b = new BindingSetBuilder(1 << 16);
    for (let i = 0; i < n; i++) b.add({ label: 'web', prefix: `10.0.0.${i}`, port: 443, protocol: 'tcp' }, `e${i}`);
    b.add({ label: 'web', prefix: '10.1.0.0/24', port: 0, protocol: 'tcp' }, 'wild');
    return b.build();
  };
  const maps = new TwinMaps({ maxIds: 8 });
  apply(maps, setOf(SMALL_GENERATION - 1), false, { force: true });
  assert.is(tcp4Mode(maps, maps.activeGen()), 'trie');
  assert.is(maps.genMeta(maps.activeGen()).wildPlus1[0], 25, 'port-0 bindings stay in the all-ports trie');
  const large = apply(maps, setOf(SMALL_GENERATION), false, { force: true });
  assert.is(large.exec?.strategy, 'rebuild', 'a trie-mode generation that outgrows small is laid out again');
  assert.is(tcp4Mode(maps, maps.activeGen()), 'hash');
  assert.is(maps.readBindings(maps.activeGen()).count, SMALL_GENERATION + 1);
});

test('a generation laid out from scratch: trie mode up to SMALL_GENERATION bindings, hashed past it', () => {
  for (const [n, mode] of [[1, 'trie'], [SMALL_GENERATION, 'trie'], [SMALL_GENERATION + 1, 'hash']] as const) {
    const list = new BindingList();
    for (let i = 0; i < n; i++) list.push('tcp', 'ipv4', Uint8Array.of(10, 0, 0, i), i % 2 ? 32 : 28, 80 + i, 0);
    const layout = layoutGeneration(list);
    assert.is(layout.meta.exactLens[0]!.length > 0 ? 'hash' : layout.meta.trieSlots & 1 ? 'trie' : 'none', mode, `${n} bindings`);
    assert.is(layout.hashCount, mode === 'hash' ? n : 0);
    assert.is([...layout.places].every((p) => p === (mode === 'hash' ? Place.hash : Place.exactTrie)), true);
    // Every port is marked OTHER in trie mode (no hashed length to try first).
    const bits = (port: number) => Number((layout.words[port >> 5]! >> BigInt(portShift(port))) & 3n);
    // Hashed: the longest length (32) is tried first, the other (28) after it.
    for (let i = 0; i < n; i++) assert.is(bits(80 + i), mode === 'trie' || i % 2 === 0 ? PORT_OTHER : PORT_FIRST);
  }
});

test.run();
