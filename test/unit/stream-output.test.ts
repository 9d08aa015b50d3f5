/**
 * The listing streamers of src/cli/format.ts write bytes, chunk by chunk:
 * their output must be exactly the text made the plain way for any mix of
 * families, protocols, lengths, ports and labels (unsafe characters
 * included), whatever the order and across chunk boundaries:
 * - streamBindingsJson: one JSON.stringify per binding, escapeJson over it all;
 * - streamRangeLines: collapseIndices + rangeText, padded, escaped as out() does;
 * - streamBindingRows: one TAB-separated line per binding, escaped as out() does;
 * - DiffLines (apply's diff): `${sign} ${rangeText} -> ${label}` [+ ` (was ${old})`], escaped as out() does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BindingList } from '../../src/core/binding-list.js';
import { formatPrefix, maskInPlace } from '../../src/core/net.js';
import { escapeControls, escapeJson } from '../../src/core/escape.js';
import { redirectStdio } from '../../src/log/stdio.js';
import { collapseIndices, DiffLines, rangeText, streamBindingRows, streamBindingsJson, streamRangeLines } from '../../src/cli/format.js';

/** What `fn` writes to standard output (short writes go to write(2), streamed ones to process.stdout), as text, in order. */
function captureStdout(fn: () => void): string {
  const parts: Buffer[] = [];
  const keep = (chunk: string | Uint8Array): void => void parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as { write: unknown }).write = (chunk: string | Uint8Array): boolean => {
    keep(chunk);
    return true;
  };
  redirectStdio((fd, data) => {
    assert.is(fd, 1, 'nothing on stderr');
    keep(data);
  });
  try {
    fn();
  } finally {
    (process.stdout as { write: unknown }).write = write;
    redirectStdio(null);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** got === want, failing with the first difference and a little context (uvu's diff of megabytes is too slow). */
function sameText(got: string, want: string): void {
  if (got === want) return;
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  const around = (t: string): string => JSON.stringify(t.slice(Math.max(0, at - 40), at + 40));
  assert.unreachable(`texts differ at offset ${at} (lengths ${got.length} and ${want.length}): got ${around(got)}, want ${around(want)}`);
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
      sameText(got, reference(list, order, labelOf, head, tail));
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
  sameText(got, reference(list, order, labelOf, '', ''));
  assert.is(captureStdout(() => streamBindingsJson(list, [], labelOf)), '[]\n');
});

/** What streamRangeLines must print: the lines status printed with out() before. */
function referenceLines(list: BindingList, order: number[], labelOf: (i: number) => string, lead: string, pad: boolean): string {
  const ranges = collapseIndices(list, order, labelOf);
  const texts = ranges.map((x) => rangeText(list, x));
  let width = 0;
  for (const t of texts) if (t.length > width) width = t.length;
  return ranges.map((x, k) => `${escapeControls(`${lead}${pad ? (texts[k] as string).padEnd(width) : texts[k]}  -> ${x.label}`, '\t')}\n`).join('');
}

/** The rows with one entry per key (addresses padded to 16 bytes), in order. */
function distinctRows<R extends { v6: boolean; udp: boolean; addr: readonly number[]; len: number; port: number }>(raw: readonly R[]): (Omit<R, 'addr'> & { addr: number[] })[] {
  const seen = new Set<string>();
  return raw.map((r) => ({ ...r, addr: [...r.addr, ...Array<number>(16).fill(0)].slice(0, 16) })).filter((r) => {
    const k = JSON.stringify([r.v6, r.udp, r.addr, r.len, r.port]);
    return !seen.has(k) && (seen.add(k), true);
  });
}

// Runs of consecutive ports on few addresses, so ranges form (and break on labels, protocols, port 0).
const rangeRow = fc.record({
  v6: fc.boolean(),
  udp: fc.boolean(),
  addr: fc.constantFrom([10, 0, 0, 1], [10, 0, 0, 2], [192, 0, 2, 0], [32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
  len: fc.constantFrom(32, 24, 128, 64, 0),
  port: fc.oneof(fc.constant(0), fc.integer({ min: 79, max: 84 }), fc.integer({ min: 65530, max: 65535 })),
  tag: fc.integer({ min: 0, max: 3 }),
});

test('streamRangeLines writes what collapseIndices + rangeText + out() print', () => {
  fc.assert(
    fc.property(fc.array(rangeRow, { maxLength: 200 }), fc.boolean(), fc.constantFrom('  ', '+ '), (raw, pad, lead) => {
      // One entry per key, sorted as listings are (ranges need neighbours).
      const list = build(distinctRows(raw));
      const labelOf = (i: number): string => LABELS[list.tag(i)] ?? '?';
      const order = [...list.sortedIndices(labelOf)];
      const got = captureStdout(() => streamRangeLines(list, order, labelOf, lead, pad));
      sameText(got, referenceLines(list, order, labelOf, lead, pad));
    }),
    { numRuns: 300 },
  );
});

test('streamBindingRows writes one escaped TAB-separated line per binding', () => {
  fc.assert(
    fc.property(fc.array(row, { maxLength: 200 }), (rows) => {
      const list = build(rows);
      const labelOf = (i: number): string => LABELS[list.tag(i)] ?? '?';
      const order = rows.map((_, i) => i).reverse();
      const want = order.map((i) => `${escapeControls(`${list.protocol(i)}\t${formatPrefix(list.prefix(i))}\t${list.port(i)}\t${labelOf(i)}`, '\t')}\n`).join('');
      sameText(captureStdout(() => streamBindingRows(list, order, labelOf)), want);
    }),
    { numRuns: 200 },
  );
});

test('DiffLines writes what out() printed for each range of a diff', () => {
  fc.assert(
    fc.property(fc.array(rangeRow, { maxLength: 200 }), fc.constantFrom('+' as const, '-' as const, '~' as const), (raw, sign) => {
      const list = build(distinctRows(raw));
      const labelOf = (i: number): string => LABELS[list.tag(i)] ?? '?';
      const note = sign === '~' ? (i: number): string => LABELS[(list.tag(i) + 1) % LABELS.length] ?? '?' : undefined;
      const ranges = collapseIndices(list, [...list.sortedIndices(labelOf)], labelOf, note);
      const got = captureStdout(() => {
        const lines = new DiffLines();
        for (const x of ranges) lines.line(sign, list, x, sign === '~' ? (x.note ?? '?') : undefined);
        lines.end();
      });
      const want = ranges.map((x) => `${escapeControls(`${sign} ${rangeText(list, x)} -> ${x.label}${sign === '~' ? ` (was ${x.note ?? '?'})` : ''}`, '\t')}\n`).join('');
      sameText(got, want);
    }),
    { numRuns: 200 },
  );
});

test('streamRangeLines and streamBindingRows across many chunks', () => {
  const n = 30000;
  const rows = Array.from({ length: n }, (_, i) => ({
    v6: i % 9 === 0, udp: i % 2 === 0, addr: Array.from({ length: 16 }, (_, j) => (Math.floor(i / 50) * 7 + j) & 255), len: i % 9 === 0 ? 128 : 32, port: 1000 + (i % 50), tag: Math.floor(i / 700) % 4,
  }));
  const list = build(rows);
  const labelOf = (i: number): string => `svc-${list.tag(i)}`;
  const order = [...list.sortedIndices(labelOf)];
  sameText(captureStdout(() => streamRangeLines(list, order, labelOf, '  ', true)), referenceLines(list, order, labelOf, '  ', true));
  const want = order.map((i) => `${list.protocol(i)}\t${formatPrefix(list.prefix(i))}\t${list.port(i)}\t${labelOf(i)}\n`).join('');
  sameText(captureStdout(() => streamBindingRows(list, order, labelOf)), want);
  assert.is(captureStdout(() => streamRangeLines(list, [], labelOf, '  ', true)), '');
});

test.run();
