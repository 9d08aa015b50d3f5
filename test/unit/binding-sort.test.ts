/**
 * The listing order of bindings (status, bindings): BindingList.sortedIndices
 * sorts on precomputed words; it must give the order of the reference
 * comparator below (most specific first, then protocol, family, address,
 * port, label) for any mix of families, lengths, ports and labels.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BindingList, sortByColumns } from '../../src/core/binding-list.js';
import { maskInPlace } from '../../src/core/net.js';

interface Row {
  v6: boolean;
  udp: boolean;
  addr: number[];
  len: number;
  port: number;
  label: string;
}

function reference(a: Row, b: Row): number {
  if (a.len !== b.len) return b.len - a.len;
  const wa = a.port === 0 ? 1 : 0;
  const wb = b.port === 0 ? 1 : 0;
  if (wa !== wb) return wa - wb;
  if (a.udp !== b.udp) return a.udp ? 1 : -1;
  if (a.v6 !== b.v6) return a.v6 ? 1 : -1;
  for (let i = 0; i < 16; i++) {
    const d = (a.addr[i] ?? 0) - (b.addr[i] ?? 0);
    if (d !== 0) return d;
  }
  if (a.port !== b.port) return a.port - b.port;
  return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
}

const row = fc.record({
  v6: fc.boolean(),
  udp: fc.boolean(),
  addr: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
  len: fc.integer({ min: 0, max: 128 }),
  port: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 79, max: 81 })),
  label: fc.constantFrom('a', 'b', 'web', 'Z', 'é'),
});

test('sortedIndices orders like the reference comparator', () => {
  fc.assert(
    fc.property(fc.array(row, { maxLength: 200 }), (raw) => {
      const list = new BindingList();
      const rows: Row[] = [];
      const tagOf = new Map<string, number>();
      for (const r of raw) {
        const len = r.v6 ? r.len : r.len % 33;
        const addr = Uint8Array.from(r.addr.slice(0, r.v6 ? 16 : 4));
        maskInPlace(addr, len);
        const tag = tagOf.get(r.label) ?? tagOf.size + 7;
        tagOf.set(r.label, tag);
        list.push(r.udp ? 'udp' : 'tcp', r.v6 ? 'ipv6' : 'ipv4', addr, len, r.port, tag);
        rows.push({ ...r, len, addr: [...addr] });
      }
      const labels = new Map([...tagOf].map(([l, t]) => [t, l]));
      const got = [...list.sortedIndices((i) => labels.get(list.tag(i)) ?? '')].map((i) => rows[i]!);
      const want = [...rows].sort(reference);
      assert.equal(got.map((r) => JSON.stringify(r)), want.map((r) => JSON.stringify(r)));
    }),
    { numRuns: 300 },
  );
});

test('sortedIndices with uniqueKeys orders distinct keys like the reference comparator (short and long lists)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.array(row, { maxLength: 300 }), fc.array(row, { minLength: 1100, maxLength: 1600 })), (raw) => {
      const list = new BindingList();
      const rows: Row[] = [];
      const seen = new Set<string>();
      const tagOf = new Map<string, number>();
      for (const r of raw) {
        const len = r.v6 ? r.len : r.len % 33;
        const addr = Uint8Array.from(r.addr.slice(0, r.v6 ? 16 : 4));
        maskInPlace(addr, len);
        const key = `${r.v6} ${r.udp} ${[...addr].join('.')}/${len} ${r.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const tag = tagOf.get(r.label) ?? tagOf.size + 7;
        tagOf.set(r.label, tag);
        list.push(r.udp ? 'udp' : 'tcp', r.v6 ? 'ipv6' : 'ipv4', addr, len, r.port, tag);
        rows.push({ ...r, len, addr: [...addr] });
      }
      const labels = new Map([...tagOf].map(([l, t]) => [t, l]));
      const got = [...list.sortedIndices((i) => labels.get(list.tag(i)) ?? '', { uniqueKeys: true })].map((i) => rows[i]!);
      const want = [...rows].sort(reference);
      assert.equal(got.map((r) => JSON.stringify(r)), want.map((r) => JSON.stringify(r)));
    }),
    { numRuns: 80 },
  );
});

test('sortByColumns: the radix path (long lists) orders like a stable comparator sort', () => {
  const word = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }), fc.constant(0x10000));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1024, max: 3000 }), fc.array(word, { minLength: 12000, maxLength: 12000 }), (width, n, pool) => {
      const w = new Uint32Array(n * width);
      for (let i = 0; i < w.length; i++) w[i] = pool[i % pool.length]!;
      const cols = Array.from({ length: width }, (_, k) => Uint32Array.from({ length: n }, (_, i) => w[i * width + k]!));
      const got = sortByColumns(cols, n);
      const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => {
        for (let k = 0; k < width; k++) {
          const x = w[a * width + k]!;
          const y = w[b * width + k]!;
          if (x !== y) return x < y ? -1 : 1;
        }
        return a - b;
      });
      assert.equal([...got], want);
    }),
    { numRuns: 40 },
  );
});

test.run();
