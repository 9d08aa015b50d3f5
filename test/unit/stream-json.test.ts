/**
 * streamBindingsJson writes the bindings array as bytes, chunk by chunk:
 * its output must be exactly the text made the plain way (one
 * JSON.stringify per binding, escapeJson over it all) for any mix of
 * families, protocols, lengths, ports and labels (unsafe characters
 * included), whatever the order and across chunk boundaries.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BindingList } from '../../src/core/binding-list.js';
import { formatPrefix, maskInPlace } from '../../src/core/net.js';
import { escapeJson } from '../../src/core/escape.js';
import { streamBindingsJson } from '../../src/cli/format.js';

/** What `fn` writes to process.stdout, as text. */
function captureStdout(fn: () => void): string {
  const parts: Buffer[] = [];
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as { write: unknown }).write = (chunk: string | Uint8Array): boolean => {
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
    return true;
  };
  try {
    fn();
  } finally {
    (process.stdout as { write: unknown }).write = write;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The reference text: one JSON.stringify per binding. */
function reference(list: BindingList, order: number[], labelOf: (i: number) => string, head: string, tail: string): string {
  const items = order.map((i) => `\n  ${JSON.stringify({ label: labelOf(i), protocol: list.protocol(i), prefix: formatPrefix(list.prefix(i)), port: list.port(i) })}`);
  return escapeJson(`${head}[${items.join(',')}${order.length ? '\n' : ''}]${tail}\n`);
}

const LABELS = ['web', 'a', 'dns-1', 'é', 'x\u202ey', 'tab\there', 'nul\u0000', 'del\u007f', '"quoted"', 'x'.repeat(200)];

const row = fc.record({
  v6: fc.boolean(),
  udp: fc.boolean(),
  addr: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
  len: fc.integer({ min: 0, max: 128 }),
  port: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 65535 }), fc.constantFrom(1, 9, 10, 99, 100, 65535)),
  tag: fc.integer({ min: 0, max: LABELS.length - 1 }),
});

function build(rows: { v6: boolean; udp: boolean; addr: number[]; len: number; port: number; tag: number }[]): BindingList {
  const list = new BindingList();
  for (const r of rows) {
    const len = r.v6 ? r.len : r.len % 33;
    const addr = Uint8Array.from(r.addr.slice(0, r.v6 ? 16 : 4));
    maskInPlace(addr, len);
    list.push(r.udp ? 'udp' : 'tcp', r.v6 ? 'ipv6' : 'ipv4', addr, len, r.port, r.tag);
  }
  return list;
}

test('streamBindingsJson writes what JSON.stringify per binding gives', () => {
  fc.assert(
    fc.property(fc.array(row, { maxLength: 300 }), fc.boolean(), fc.constantFrom(['', ''], ['{"bindings":', '}']), (rows, reversed, [head, tail]) => {
      const list = build(rows);
      const labelOf = (i: number): string => LABELS[list.tag(i)] ?? '?';
      const order = rows.map((_, i) => i);
      if (reversed) order.reverse();
      const got = captureStdout(() => streamBindingsJson(list, order, labelOf, head, tail));
      assert.is(got, reference(list, order, labelOf, head, tail));
    }),
    { numRuns: 200 },
  );
});

test('streamBindingsJson: many chunks, a subset of entries, a label longer than a chunk', () => {
  const n = 20000;
  const rows = Array.from({ length: n }, (_, i) => ({
    v6: i % 7 === 0, udp: i % 3 === 0, addr: Array.from({ length: 16 }, (_, j) => (i * 31 + j * 17) & 255), len: i % 5 === 0 ? 24 : 128, port: (i * 13) % 65536, tag: i % 4,
  }));
  const list = build(rows);
  const long = 'L'.repeat(70000);
  const labelOf = (i: number): string => (list.tag(i) === 3 ? long : `svc-${list.tag(i)}`);
  const order = Array.from({ length: n }, (_, i) => i).filter((i) => i % 11 !== 0);
  const got = captureStdout(() => streamBindingsJson(list, Uint32Array.from(order), labelOf));
  assert.is(got, reference(list, order, labelOf, '', ''));
  assert.is(captureStdout(() => streamBindingsJson(list, [], labelOf)), '[]\n');
});

test.run();
