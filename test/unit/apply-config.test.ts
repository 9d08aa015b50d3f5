/**
 * apply --config ownership against the in-memory twin (no root): labels the
 * config files define are replaced, bindings made by hand are kept (or
 * pruned), a removed file's label is removed, a file with problems keeps the
 * bindings of labels applied before, and the config bits follow the
 * generations like the bindings do.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { destConfigBit } from '../../src/core/layout.js';
import { parsePrefix } from '../../src/core/net.js';
import { applyConfig, type ConfigApplyInput } from '../../src/ops/apply-config.js';
import { apply } from '../../src/ops/apply.js';
import { BindingSetBuilder, type BuiltSet } from '../../src/ops/binding-set.js';
import { bind } from '../../src/ops/bind.js';
import type { Gen } from '../../src/state/maps.js';
import { TwinMaps } from '../../src/state/twin-maps.js';

type Spec = [label: string, protocol: string, prefix: string, port: string];

function set(specs: Spec[]): BuiltSet {
  const b = new BindingSetBuilder(1 << 20);
  specs.forEach(([label, protocol, prefix, port], i) => b.add({ label, protocol, prefix, port }, `spec ${i}`));
  assert.equal(b.problems, []);
  return b.build();
}

function config(specs: Spec[], opts: Partial<Omit<ConfigApplyInput, 'set'>> & { extraLabels?: string[] } = {}): ConfigApplyInput {
  return {
    set: set(specs),
    labels: new Set([...specs.map((s) => s[0]), ...(opts.extraLabels ?? [])]),
    incomplete: opts.incomplete ?? false,
    prune: opts.prune ?? false,
  };
}

function listing(maps: TwinMaps, gen: Gen = maps.activeGen()): string[] {
  const l = maps.readBindings(gen);
  const labels = new Map(maps.destinations().map((d) => [d.id, d.label]));
  const out: string[] = [];
  for (let i = 0; i < l.count; i++) out.push(`${labels.get(l.tag(i))} ${l.protocol(i)} ${l.prefix(i).len} ${l.port(i)}`);
  return out.sort();
}

/** Labels marked as configured in generation g. */
function configured(maps: TwinMaps, g: Gen = maps.activeGen()): string[] {
  return [...new Set(maps.destinations().filter((d) => (d.flags & destConfigBit(g)) !== 0).map((d) => d.label))].sort();
}

/** Both generations clean, in sync, same bindings and same config bits. */
function inSync(maps: TwinMaps): void {
  const s0 = maps.genState(0);
  const s1 = maps.genState(1);
  if (s0.flags !== 0 || s1.flags !== 0) return; // a STALE generation is rebuilt before use
  assert.is(s0.seq, s1.seq);
  assert.equal(listing(maps, 0), listing(maps, 1));
  assert.equal(configured(maps, 0), configured(maps, 1), 'config bits equal in both generations');
}

function hand(maps: TwinMaps, label: string, prefix: string, port: number): void {
  bind(maps, { label, protocol: 'tcp', prefix: parsePrefix(prefix), ports: { first: port, last: port }, force: true });
}

test('labels of the config are applied and marked; bindings made by hand are kept and reported', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  hand(maps, 'manual', '10.0.0.1', 80);
  const r = applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80'], ['api', 'tcp', '198.51.100.0/24', '0']]), false);
  assert.is(r.added.length, 2);
  assert.is(r.removed.length, 0);
  assert.equal([...r.keptByHand], [['manual', 1]]);
  assert.equal([...r.keptConfigured], []);
  assert.equal(r.configuredLabels, ['api', 'web']);
  assert.equal(listing(maps), ['api tcp 24 0', 'manual tcp 32 80', 'web tcp 24 80']);
  assert.equal(configured(maps), ['api', 'web']);
  inSync(maps);
  // Applying the same again changes nothing and writes nothing.
  const again = applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80'], ['api', 'tcp', '198.51.100.0/24', '0']]), false);
  assert.is(again.exec?.strategy, 'none');
  assert.is(again.unchanged, 3);
});

test('a configured label is the config\'s: bindings added to it by hand are replaced; a removed file\'s label is removed', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80'], ['api', 'tcp', '198.51.100.0/24', '0']]), false);
  hand(maps, 'web', '192.0.2.7', 9999);
  hand(maps, 'manual', '10.0.0.1', 80);
  const r = applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80']]), false);
  assert.equal(r.removed.map((j) => r.labelOf(r.live.tag(j))).sort(), ['api', 'web']);
  assert.equal(listing(maps), ['manual tcp 32 80', 'web tcp 24 80']);
  assert.equal(configured(maps), ['web']);
  inSync(maps);
});

test('--prune removes bindings made by hand', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  hand(maps, 'manual', '10.0.0.1', 80);
  const r = applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80']], { prune: true }), false);
  assert.equal([...r.keptByHand], []);
  assert.equal(listing(maps), ['web tcp 24 80']);
});

test('with files left out, labels applied from the config before keep their bindings and their mark', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80'], ['api', 'tcp', '198.51.100.0/24', '0']]), false);
  hand(maps, 'manual', '10.0.0.1', 80);
  // web.conf is broken (left out); api.conf changed; manual is not the config's.
  const r = applyConfig(maps, config([['api', 'tcp', '198.51.100.0/25', '0']], { incomplete: true }), false);
  assert.equal([...r.keptConfigured], [['web', 1]]);
  assert.equal([...r.keptByHand], [['manual', 1]]);
  assert.equal(listing(maps), ['api tcp 25 0', 'manual tcp 32 80', 'web tcp 24 80']);
  assert.equal(configured(maps), ['api', 'web'], 'web stays the config\'s');
  inSync(maps);
  // Fixed, and web.conf removed meanwhile: now web goes.
  applyConfig(maps, config([['api', 'tcp', '198.51.100.0/25', '0']]), false);
  assert.equal(listing(maps), ['api tcp 25 0', 'manual tcp 32 80']);
  assert.equal(configured(maps), ['api']);
  // With problems and --prune, hand-made bindings go but configured labels stay.
  applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80'], ['api', 'tcp', '198.51.100.0/25', '0']]), false);
  const p = applyConfig(maps, config([], { incomplete: true, prune: true }), false);
  assert.equal([...p.keptConfigured].sort(), [['api', 1], ['web', 1]]);
  assert.equal(listing(maps), ['api tcp 25 0', 'web tcp 24 80']);
});

test('a key the config binds wins over a kept binding of another label (relabelled, reported)', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  hand(maps, 'manual', '192.0.2.50', 7000);
  const r = applyConfig(maps, config([['web', 'tcp', '192.0.2.50/32', '7000']]), false);
  assert.equal(r.takenOver, ['tcp 192.0.2.50/32 7000 (was manual)']);
  assert.is(r.relabelled.length, 1);
  assert.equal(listing(maps), ['web tcp 32 7000']);
});

test('a label without Bind= lines is still the config\'s; apply FILE keeps the marks of labels it keeps', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  hand(maps, 'sock', '10.0.0.9', 53);
  applyConfig(maps, config([], { extraLabels: ['sock'] }), false);
  assert.equal(listing(maps), [], 'the file defines label sock with no bindings');
  applyConfig(maps, config([['web', 'tcp', '192.0.2.0/24', '80']]), false);
  apply(maps, set([['web', 'tcp', '192.0.2.0/24', '80'], ['other', 'udp', '10.0.0.0/8', '53']]), false, { force: true });
  assert.equal(configured(maps), ['web']);
  inSync(maps);
});

test('dry run changes nothing, also not the marks', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  hand(maps, 'manual', '10.0.0.1', 80);
  const r = applyConfig(maps, config([['manual', 'tcp', '10.0.0.1', '80']]), true);
  assert.is(r.exec, null);
  assert.is(r.unchanged, 1);
  assert.equal(configured(maps), []);
  applyConfig(maps, config([['manual', 'tcp', '10.0.0.1', '80']]), false);
  assert.equal(configured(maps), ['manual'], 'taking over a label only changes its mark');
  inSync(maps);
});

test('config bits survive a rebuild of the staging generation (large change) and a resync after an interruption', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  const many: Spec[] = Array.from({ length: 300 }, (_, i) => ['web', 'tcp', `10.1.${i >> 8}.${i & 255}`, '80']);
  const r = applyConfig(maps, config(many), false);
  assert.is(r.exec?.strategy, 'rebuild');
  assert.equal(configured(maps), ['web']);
  // The other generation is STALE after a rebuild; the next write resyncs it from the live one.
  hand(maps, 'manual', '10.0.0.1', 80);
  assert.equal(configured(maps), ['web']);
  inSync(maps);
  const g = maps.activeGen();
  assert.equal(configured(maps, g), configured(maps, (g ^ 1) as Gen));
});

test.run();
