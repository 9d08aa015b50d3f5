/**
 * The apply record (src/ops/apply-digest.ts): an apply of the set the live
 * generation already holds skips reading and diffing it. The digest must
 * not depend on the order of the input and must change with any binding or
 * label; and an apply taking the shortcut must leave exactly what the full
 * apply leaves: the same random sequences of bind, unbind, apply (often of
 * the previous set again) run on two twins, one of which never
 * has a record, and both must hold the same after every step.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { apply, type ApplyResult } from '../../src/ops/apply.js';
import { bind, unbind } from '../../src/ops/bind.js';
import { BindingSetBuilder, type BuiltSet } from '../../src/ops/binding-set.js';
import { setDigest } from '../../src/ops/apply-digest.js';
import { BindingList } from '../../src/core/binding-list.js';
import { parsePrefix } from '../../src/core/net.js';
import { TwinMaps } from '../../src/state/twin-maps.js';
import type { ApplyRecord, DispatcherMaps, Gen } from '../../src/state/maps.js';

interface Entry {
  label: string;
  prefix: string;
  port: number;
  protocol: 'tcp' | 'udp';
}

function built(entries: readonly Entry[]): BuiltSet {
  const b = new BindingSetBuilder(1 << 20);
  entries.forEach((e, i) => b.add(e, `e${i}`));
  assert.ok(b.ok, JSON.stringify(b.problems));
  return b.build();
}

const entry = fc.record({
  label: fc.constantFrom('web', 'dns', 'a', 'b'),
  prefix: fc.constantFrom('192.0.2.0/24', '192.0.2.7', '10.0.0.0/8', '2001:db8::/64', '2001:db8::1', '0.0.0.0/0'),
  port: fc.oneof(fc.constant(0), fc.integer({ min: 79, max: 83 })),
  protocol: fc.constantFrom('tcp' as const, 'udp' as const),
});

/** Entries with distinct keys (a set), in the given order. */
function distinct(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const k = `${e.prefix} ${e.port} ${e.protocol}`;
    return !seen.has(k) && (seen.add(k), true);
  });
}

test('the digest depends on the set, not on its order', () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 40 }), fc.integer(), (raw, seed) => {
      const set = distinct(raw);
      const shuffled = [...set].sort((x, y) => ((JSON.stringify(x).length * 31 + seed) % 7) - ((JSON.stringify(y).length * 31 + seed) % 7));
      const a = built(set);
      const b = built(shuffled);
      assert.is(setDigest(a.list, a.labels), setDigest(b.list, b.labels));
    }),
    { numRuns: 200 },
  );
});

test('the digest changes with any binding, label or port', () => {
  const base: Entry[] = [
    { label: 'web', prefix: '192.0.2.0/24', port: 80, protocol: 'tcp' },
    { label: 'dns', prefix: '2001:db8::/64', port: 53, protocol: 'udp' },
  ];
  const d = (entries: Entry[]): bigint => {
    const s = built(entries);
    return setDigest(s.list, s.labels);
  };
  const seen = new Set([d(base)]);
  const variants: Entry[][] = [
    [],
    base.slice(0, 1),
    [{ ...base[0]!, label: 'web2' }, base[1]!],
    [{ ...base[0]!, port: 81 }, base[1]!],
    [{ ...base[0]!, protocol: 'udp' }, base[1]!],
    [{ ...base[0]!, prefix: '192.0.2.0/25' }, base[1]!],
    [{ ...base[0]!, prefix: '192.0.3.0/24' }, base[1]!],
    [base[0]!, { ...base[1]!, label: 'web' }],
    [...base, { label: 'web', prefix: '192.0.2.9', port: 80, protocol: 'tcp' }],
  ];
  for (const v of variants) {
    const x = d(v);
    assert.not.ok(seen.has(x), `digest of ${JSON.stringify(v)} equals another set's`);
    seen.add(x);
  }
});

/** A twin that counts reads of whole binding sets. */
class CountingTwin extends TwinMaps {
  reads = 0;
  override readBindings(gen: Gen): BindingList {
    this.reads++;
    return super.readBindings(gen);
  }
}

/** A twin that never keeps an apply record (every apply takes the full path). */
class NoRecordTwin extends TwinMaps {
  override applyRecord(): ApplyRecord | null {
    return null;
  }
}

test('an apply of the live set again reads nothing, writes nothing, reports every binding unchanged', () => {
  const maps = new CountingTwin({ maxIds: 16 });
  const entries: Entry[] = [
    { label: 'web', prefix: '192.0.2.0/24', port: 80, protocol: 'tcp' },
    { label: 'web', prefix: '192.0.2.0/24', port: 0, protocol: 'tcp' },
    { label: 'dns', prefix: '2001:db8::/64', port: 53, protocol: 'udp' },
  ];
  const first = apply(maps, built(entries), false, { force: true });
  assert.is(first.added.length, 3);
  assert.ok(maps.applyRecord(), 'the apply left a record');
  const reads = maps.reads;
  const writes = maps.writes;
  const again = apply(maps, built([...entries].reverse()), false, { force: true });
  assert.is(maps.reads, reads, 'the live bindings were not read');
  assert.is(maps.writes, writes, 'nothing was written');
  assert.is(again.unchanged, 3);
  assert.equal([again.added.length, again.removed.length, again.relabelled.length], [0, 0, 0]);
  assert.is(again.unserved.length, 2, 'the warnings about destinations without a socket are still given');
  assert.ok(again.exec, 'the repair check ran');
  // A bind since: the record no longer matches; the full apply removes the extra binding.
  bind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('198.51.100.1'), ports: { first: 80, last: 80 }, force: true });
  const back = apply(maps, built(entries), false, { force: true });
  assert.ok(maps.reads > reads, 'the live bindings were read');
  assert.is(back.removed.length, 1);
  // The same set under another label is a change.
  const relabelled = apply(maps, built(entries.map((e) => ({ ...e, label: e.label === 'dns' ? 'dns2' : e.label }))), false, { force: true });
  assert.is(relabelled.relabelled.length, 1);
});

test('a dry run of the live set takes the short way and leaves the record', () => {
  const maps = new CountingTwin({ maxIds: 16 });
  const entries: Entry[] = [{ label: 'web', prefix: '192.0.2.7', port: 443, protocol: 'tcp' }];
  apply(maps, built(entries), false, { force: true });
  const rec = maps.applyRecord();
  const reads = maps.reads;
  const dry = apply(maps, built(entries), true, { force: true });
  assert.is(dry.exec, null);
  assert.is(dry.unchanged, 1);
  assert.is(maps.reads, reads);
  assert.equal(maps.applyRecord(), rec);
});

/** Everything the maps hold that an apply decides (the live generation's bindings and the destinations). */
function content(maps: DispatcherMaps): string {
  const gen = maps.activeGen();
  const l = maps.readBindings(gen);
  const labels = new Map(maps.destinations().map((d) => [d.id, d.label]));
  const bindings: string[] = [];
  for (let i = 0; i < l.count; i++) bindings.push(`${labels.get(l.tag(i))} ${l.protocol(i)} ${l.domain(i)} ${Buffer.from(l.addr(i)).toString('hex')}/${l.len(i)} ${l.port(i)}`);
  const dests = maps.destinations().map((d) => `${d.label}:${d.domain}:${d.protocol}=${d.id} ${d.refs.join(',')} ${d.flags}`);
  return JSON.stringify({ bindings: bindings.sort(), dests: dests.sort() });
}

function summary(r: ApplyResult): string {
  return `+${r.added.length} -${r.removed.length} ~${r.relabelled.length} =${r.unchanged} ${r.unserved.join('|')}`;
}

test('the short way leaves what the full apply leaves (random sequences on two twins)', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('apply' as const), entries: fc.array(entry, { maxLength: 12 }) }),
    fc.record({ kind: fc.constant('again' as const) }),
    fc.record({ kind: fc.constant('bind' as const), e: entry }),
    fc.record({ kind: fc.constant('unbind' as const), e: entry }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const fast = new TwinMaps({ maxIds: 32 });
      const full = new NoRecordTwin({ maxIds: 32 });
      let last: Entry[] = [];
      for (const o of ops) {
        const results: string[] = [];
        for (const m of [fast, full]) {
          try {
            if (o.kind === 'apply' || o.kind === 'again') {
              const entries = o.kind === 'apply' ? distinct(o.entries) : [...last].reverse();
              results.push(summary(apply(m, built(entries), false, { force: true })));
            } else {
              const req = { label: o.e.label, protocol: o.e.protocol, prefix: parsePrefix(o.e.prefix), ports: { first: o.e.port, last: o.e.port }, force: true };
              if (o.kind === 'bind') bind(m, req);
              else unbind(m, req);
              results.push('ok');
            }
          } catch (err) {
            results.push(`error ${(err as Error).message}`);
          }
        }
        if (o.kind === 'apply') last = distinct(o.entries);
        assert.is(results[0], results[1], `${JSON.stringify(o)}: results differ`);
        assert.is(content(fast), content(full), `${JSON.stringify(o)}: contents differ`);
      }
    }),
    { numRuns: 150 },
  );
});

test.run();
