/**
 * The write path and the lookup layout, without root: random sequences of
 * apply, bind and unbind run on the in-memory twin, and a model of the
 * dispatcher's lookup (bpf/manifold.bpf.c: port words, hashed lengths
 * longest first, the exact-port trie when the slot needs it, the all-ports
 * trie when it could be longer) over the twin's live generation must agree
 * with the reference precedence model after every write. The real program
 * is checked against the same reference in
 * test/integration/precedence-property.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { resolveReference, type Binding } from '../../src/core/binding.js';
import { fullLength, portShift, PORT_FIRST, PORT_OTHER, EXACT_LENS, slotOf } from '../../src/core/layout.js';
import { maskInPlace, parsePrefix, type Domain, type Protocol } from '../../src/core/net.js';
import { apply } from '../../src/ops/apply.js';
import { BindingSetBuilder } from '../../src/ops/binding-set.js';
import { bind, unbind } from '../../src/ops/bind.js';
import type { DispatcherMaps } from '../../src/state/maps.js';
import { TwinMaps } from '../../src/state/twin-maps.js';

/** The dispatcher's lookup, step by step, over what the maps hold. Returns the destination id or null. */
function lookup(maps: DispatcherMaps, protocol: Protocol, domain: Domain, addr: Uint8Array, port: number): number | null {
  const g = maps.activeGen();
  const meta = maps.genMeta(g);
  const slot = slotOf(domain, protocol);
  const word = maps.portWords(g)[(slot << 11) | (port >> 5)] ?? 0n;
  const bits = Number((word >> BigInt(portShift(port))) & 3n);
  const all = maps.readBindings(g);
  const find = (len: number, p: number): { id: number; len: number } | null => {
    const a = Uint8Array.from(addr);
    maskInPlace(a, len);
    for (let i = 0; i < all.count; i++) {
      if (all.protocol(i) !== protocol || all.domain(i) !== domain || all.port(i) !== p || all.len(i) !== len) continue;
      if (all.addr(i).every((v, k) => v === a[k])) return { id: all.tag(i), len };
    }
    return null;
  };
  const lens = meta.exactLens[slot]!;
  let best: { id: number; len: number } | null = null;
  if (bits) {
    for (let i = bits & PORT_FIRST ? 0 : 1; i < EXACT_LENS; i++) {
      const l = lens[i];
      if (l === undefined) break;
      best = find(l, port);
      if (best || !(bits & PORT_OTHER)) break;
    }
    if (!best && bits & PORT_OTHER && (meta.trieSlots >> slot) & 1) {
      for (let l = fullLength(domain); l >= 0 && !best; l--) if (!lens.includes(l)) best = find(l, port);
    }
  }
  const wild = meta.wildPlus1[slot] ?? 0;
  if (wild && (!best || best.len + 1 < wild)) {
    for (let l = fullLength(domain); l >= 0; l--) {
      const h = find(l, 0);
      if (h) {
        if (!best || h.len > best.len) best = h;
        break;
      }
    }
  }
  return best ? best.id : null;
}

const labels = ['red', 'green', 'blue', 'cyan'];
const v4 = fc.tuple(fc.constantFrom(10, 11), fc.constantFrom(0, 1), fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 3 })).map((b) => b.join('.'));
const v6 = fc.tuple(fc.constantFrom('2001:db8', '2001:db9'), fc.constantFrom(0, 1), fc.constantFrom(0, 0xff), fc.integer({ min: 0, max: 3 })).map(([a, b, c, d]) => `${a}:${b.toString(16)}::${c.toString(16)}:${d}`);
const entry = fc.oneof(
  fc.record({ label: fc.constantFrom(...labels), protocol: fc.constantFrom<Protocol>('tcp', 'udp'), addr: v4, len: fc.constantFrom(0, 7, 8, 16, 23, 24, 25, 26, 27, 28, 30, 32), port: fc.constantFrom(0, 80, 443, 8080) }),
  fc.record({ label: fc.constantFrom(...labels), protocol: fc.constantFrom<Protocol>('tcp', 'udp'), addr: v6, len: fc.constantFrom(0, 16, 32, 33, 48, 64, 80, 127, 128), port: fc.constantFrom(0, 80, 443, 8080) }),
);
const op = fc.oneof(
  fc.record({ kind: fc.constant('apply' as const), set: fc.array(entry, { maxLength: 24 }) }),
  fc.record({ kind: fc.constantFrom('bind' as const, 'unbind' as const), e: entry, span: fc.constantFrom(1, 1, 3) }),
);
const query = fc.record({ protocol: fc.constantFrom<Protocol>('tcp', 'udp'), isV6: fc.boolean(), a4: v4, a6: v6, port: fc.constantFrom(80, 443, 8080, 22, 81) });

test('the lookup over the twin equals the reference model after every write', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), fc.array(query, { minLength: 30, maxLength: 30 }), (ops, queries) => {
      const maps = new TwinMaps({ maxIds: 64 });
      let model: Binding[] = [];
      for (const o of ops) {
        if (o.kind === 'apply') {
          const b = new BindingSetBuilder(1 << 20);
          const seen = new Set<string>();
          const next: Binding[] = [];
          o.set.forEach((e, i) => {
            const prefix = parsePrefix(`${e.addr}/${e.len}`);
            const k = `${e.protocol} ${prefix.addr.join('.')}/${e.len} ${e.port}`;
            if (seen.has(k)) return;
            seen.add(k);
            next.push({ label: e.label, protocol: e.protocol, prefix, port: e.port });
            b.add({ label: e.label, prefix: `${e.addr}/${e.len}`, port: e.port, protocol: e.protocol }, `e${i}`);
          });
          apply(maps, b.build(), false, { force: true });
          model = next;
        } else {
          const prefix = parsePrefix(`${o.e.addr}/${o.e.len}`);
          const first = o.e.port;
          const last = first === 0 ? 0 : first + o.span - 1;
          const req = { label: o.e.label, protocol: o.e.protocol, prefix, ports: { first, last }, force: true };
          const same = (b: Binding, p: number): boolean => b.protocol === o.e.protocol && b.port === p && b.prefix.len === prefix.len && b.prefix.domain === prefix.domain && b.prefix.addr.every((v, k) => v === prefix.addr[k]);
          if (o.kind === 'bind') {
            bind(maps, req);
            for (let p = first; p <= last; p++) model = [...model.filter((b) => !same(b, p)), { label: o.e.label, protocol: o.e.protocol, prefix, port: p }];
          } else {
            let ok = true;
            for (let p = first; p <= last; p++) if (!model.some((b) => same(b, p) && b.label === o.e.label)) ok = false;
            try {
              unbind(maps, req);
              assert.ok(ok, 'unbind succeeded where the model has no such binding');
              for (let p = first; p <= last; p++) model = model.filter((b) => !same(b, p));
            } catch (err) {
              assert.not.ok(ok, `unbind failed where the model has the bindings: ${(err as Error).message}`);
            }
          }
        }
        const byId = new Map(maps.destinations().map((d) => [d.id, d.label]));
        for (const q of queries) {
          const domain: Domain = q.isV6 ? 'ipv6' : 'ipv4';
          const addr = parsePrefix(q.isV6 ? q.a6 : q.a4).addr;
          const want = resolveReference(model, q.protocol, domain, addr, q.port)?.label ?? null;
          const id = lookup(maps, q.protocol, domain, addr, q.port);
          assert.is(id === null ? null : (byId.get(id) ?? `#${id}`), want, `${q.protocol} ${q.isV6 ? q.a6 : q.a4}:${q.port} after ${o.kind}`);
        }
      }
    }),
    { numRuns: 150 },
  );
});

test.run();
