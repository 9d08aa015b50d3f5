/**
 * The apply document: the byte scanner and the binding-set builder, without
 * root. The fast paths (entries without objects, IPv4 parsed in place) must
 * agree with the general parsers and report every problem where it is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { formatPrefix, maskInPlace, parsePrefixInto, parsePrefixText } from '../../src/core/net.js';
import { parseApplyDocument } from '../../src/ops/apply.js';
import { BindingSetBuilder, MAX_PROBLEMS } from '../../src/ops/binding-set.js';
import { ManifoldError, toManifoldError } from '../../src/errors.js';
import { messageLines } from '../../src/cli/output.js';
import { BpfObjectError } from '../../src/sys/errno.js';

function parse(text: string, limit = 1 << 20): ReturnType<typeof parseApplyDocument> {
  return parseApplyDocument(Buffer.from(text), 'f.json', limit);
}

function failure(text: string, limit = 1 << 20): ManifoldError {
  try {
    parse(text, limit);
  } catch (err) {
    assert.instance(err, ManifoldError);
    return err as ManifoldError;
  }
  assert.unreachable(`expected ${text} to be refused`);
  throw new Error('unreachable');
}

function bindings(set: ReturnType<typeof parseApplyDocument>): string[] {
  const out: string[] = [];
  for (let i = 0; i < set.list.count; i++) out.push(`${set.list.protocol(i)} ${formatPrefix(set.list.prefix(i))} ${set.list.port(i)} ${set.labels[set.list.tag(i)]}`);
  return out.sort();
}

test('parsePrefixInto agrees with parsePrefixText on any text', () => {
  const chars = fc.constantFrom('0', '1', '2', '5', '9', '.', '/', ':', 'a', 'f', '3', ' ', '-');
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 24 }), fc.ipV4().map((a) => a), fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 40 })).map(([a, l]) => `${a}/${l}`), fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 130 })).map(([a, l]) => `${a}/${l}`)), (text) => {
      const out = new Uint8Array(16).fill(0xaa);
      const packed = parsePrefixInto(text, out);
      const slow = parsePrefixText(text);
      if (typeof slow === 'string') {
        assert.is(packed, -1, text);
        return;
      }
      assert.ok(packed >= 0, text);
      assert.is(packed & 0xff, slow.len, text);
      assert.is((packed & 0x100) !== 0, slow.domain === 'ipv6', text);
      const bytes = slow.domain === 'ipv6' ? 16 : 4;
      maskInPlace(slow.addr, slow.len);
      assert.equal(Array.from(out.subarray(0, bytes)), Array.from(slow.addr), text);
    }),
    { numRuns: 3000 },
  );
});

test('both document forms; ranges and missing protocols expand; same-label duplicates collapse', () => {
  const doc = `{"bindings": [
    {"label": "web", "prefix": "192.0.2.7/24", "port": 80, "protocol": "tcp"},
    {"label": "web", "prefix": "192.0.2.0/24", "port": "80", "protocol": "TCP"},
    {"label": "dns", "prefix": "2001:db8::/64", "port": "53-54"},
    {"label": "all", "prefix": "10.0.0.1", "port": 0, "protocol": "udp"}
  ]}`;
  const set = parse(doc);
  assert.equal(bindings(set), [
    'tcp 192.0.2.0/24 80 web',
    'tcp 2001:db8::/64 53 dns',
    'tcp 2001:db8::/64 54 dns',
    'udp 10.0.0.1/32 0 all',
    'udp 2001:db8::/64 53 dns',
    'udp 2001:db8::/64 54 dns',
  ]);
  const bare = parse('\uFEFF[{"prefix": "10.0.0.0/8", "port": 1, "label": "x", "protocol": "udp"}]');
  assert.equal(bindings(bare), ['udp 10.0.0.0/8 1 x']);
  assert.is(parse('{"bindings": []}').list.count, 0);
  assert.is(parse('[]').list.count, 0);
});

test('every bad entry is reported with its file, line, column and index; nothing else is built', () => {
  const doc = [
    '{"bindings": [',
    ' {"label": "ok", "prefix": "10.0.0.1", "port": 1},',
    ' {"label": "bad label!", "prefix": "10.0.0.1", "port": 2},',
    ' {"label": "a", "prefix": "10.0.0.256", "port": 3},',
    ' {"label": "a", "prefix": "10.0.0.1", "port": 65536},',
    ' {"label": "a", "prefix": "10.0.0.1", "port": -0},',
    ' {"label": "a", "prefix": "10.0.0.1", "port": 1.5},',
    ' {"label": "a", "prefix": "10.0.0.1", "port": 7, "label": "b"},',
    ' {"label": "a", "prefix": "10.0.0.1", "port": 7, "extra": 1},',
    ' {"label": "a", "port": 7},',
    ' "text",',
    ' {"label": "a", "prefix": "10.0.0.1", "port": 8, "protocol": "sctp"},',
    ' {"label": 5, "prefix": "10.0.0.1", "port": 9}',
    ']}',
  ].join('\n');
  const err = failure(doc);
  assert.is(err.code, 'ERR_INVALID_FILE');
  const m = err.message;
  assert.match(m, /11 problems \(nothing was changed\)/);
  assert.match(m, /f\.json:3:2: bindings\[1\]: invalid label/);
  assert.match(m, /f\.json:4:2: bindings\[2\]: invalid prefix "10\.0\.0\.256"/);
  assert.match(m, /f\.json:5:2: bindings\[3\]: invalid port 65536/);
  assert.match(m, /f\.json:6:\d+: bindings\[4\]: port -0 is not a port/);
  assert.match(m, /f\.json:7:\d+: bindings\[5\]: invalid port 1\.5/);
  assert.match(m, /f\.json:8:\d+: bindings\[6\]: key "label" is given twice/);
  assert.match(m, /f\.json:9:\d+: bindings\[7\]: unknown key "extra"/);
  assert.match(m, /f\.json:10:2: bindings\[8\]: missing "prefix"/);
  assert.match(m, /f\.json:11:2: bindings\[9\]: expected an object/);
  assert.match(m, /f\.json:12:2: bindings\[10\]: invalid protocol "sctp"/);
  assert.match(m, /f\.json:13:\d+: bindings\[11\]: label must be a string, found the number 5/);
});

test('ports from 32768 on are kept (the packed port pair is unsigned)', () => {
  assert.equal(bindings(parse('[{"label": "a", "prefix": "10.0.0.1", "port": 65535, "protocol": "tcp"}, {"label": "a", "prefix": "10.0.0.2", "port": "40000-40001", "protocol": "udp"}]')), [
    'tcp 10.0.0.1/32 65535 a',
    'udp 10.0.0.2/32 40000 a',
    'udp 10.0.0.2/32 40001 a',
  ]);
  const b = new BindingSetBuilder(100);
  b.add({ label: 'a', prefix: '10.0.0.1', port: 50000, protocol: 'tcp' }, 'a.conf:1');
  assert.ok(b.ok);
  assert.is(b.build().list.port(0), 50000);
});

test('one kind of problem keeps its own code', () => {
  assert.is(failure('[{"label": "a", "prefix": "1.2.3", "port": 1}, {"label": "a", "prefix": "x", "port": 1}]').code, 'ERR_INVALID_PREFIX');
  assert.is(failure('[{"label": "a", "prefix": "1.2.3.4", "port": "9-8"}]').code, 'ERR_INVALID_PORT');
});

test('a conflict after another problem is reported too: the code does not depend on the order of entries', () => {
  const bad = '{"label": "a", "prefix": "x", "port": 1}';
  const one = '{"label": "a", "prefix": "10.0.0.1", "port": 80, "protocol": "tcp"}';
  const two = '{"label": "b", "prefix": "10.0.0.1", "port": 80, "protocol": "tcp"}';
  for (const order of [[bad, one, two], [one, two, bad], [one, bad, two]]) {
    const err = failure(`[${order.join(',')}]`);
    assert.is(err.code, 'ERR_INVALID_FILE', order.join(' '));
    assert.match(err.message, /2 problems/, order.join(' '));
    assert.match(err.message, /is bound to "b" here and to "a"/, order.join(' '));
  }
});

test('the same binding with two labels names both places', () => {
  const err = failure('[\n{"label": "a", "prefix": "10.0.0.0/8", "port": "1-3"},\n{"label": "b", "prefix": "10.1.2.3/8", "port": 2, "protocol": "udp"}\n]');
  assert.match(err.message, /f\.json:3:1: bindings\[1\]: udp 10\.0\.0\.0\/8 2 is bound to "b" here and to "a" at f\.json:2:1: bindings\[0\]/);
});

test('syntax errors stop the scan with a position; strict where JSON.parse is lenient', () => {
  assert.match(failure('{"bindings": [}').message, /^f\.json:1:15: malformed JSON/);
  assert.match(failure('{"bindings": [], "bindings": []}').message, /given twice/);
  assert.match(failure('{"bindings": []} x').message, /after the document/);
  assert.match(failure('{"other": []}').message, /unknown key "other"/);
  assert.match(failure('{}').message, /missing "bindings"/);
  assert.match(failure('{"bindings": [{"label": "a\u0001"}]}').message, /control character/);
  assert.match(failure('[' + '['.repeat(100) + ']'.repeat(100) + ']').message, /nested too deeply|expected an object/);
});

test('a set larger than the limit is refused by counting, before expanding', () => {
  const err = failure('[{"label": "a", "prefix": "10.0.0.0/8", "port": "1-4000"}]', 1000);
  assert.is(err.code, 'ERR_NO_SPACE');
  assert.match(err.message, /more than the 1000 bindings allowed/);
  // Exactly at the limit is fine: 500 ports × tcp and udp.
  assert.is(parse('[{"label": "a", "prefix": "10.0.0.0/8", "port": "1-500"}]', 1000).list.count, 1000);
});

test('problems are capped; the rest are counted', () => {
  const entries = Array.from({ length: MAX_PROBLEMS + 25 }, (_, i) => `{"label": "a", "prefix": "bad${i}", "port": 1}`);
  const err = failure(`[${entries.join(',\n')}]`);
  assert.match(err.message, new RegExp(`${MAX_PROBLEMS + 25} problems`));
  assert.match(err.message, /… and 25 more/);
  assert.is((err.message.match(/invalid prefix/g) ?? []).length, MAX_PROBLEMS);
});

test('the builder takes entries from other sources with text locations', () => {
  const b = new BindingSetBuilder(100);
  b.add({ label: 'a', prefix: '10.0.0.1', port: 5 }, 'web.conf:3');
  b.add({ label: 'b', prefix: '10.0.0.1', port: 5, protocol: 'tcp' }, 'db.conf:7');
  assert.not.ok(b.ok);
  assert.match(b.problems[0]?.message ?? '', /bound to "b" here and to "a" at web\.conf:3/);
  assert.is(b.problems[0]?.where, 'db.conf:7');
});

test('compact entries (the scanner\'s fast path) give the same set and the same problems as spaced ones', () => {
  const label = fc.constantFrom('web', 'dns', 'a-1', 'svc.x', 'bad label', '', '.x', 'é', 'a\\u0041');
  const prefix = fc.oneof(
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 33 })).map(([a, l]) => `${a}/${l}`),
    fc.ipV4(),
    fc.constantFrom('2001:db8::/64', '::/0', '10.0.0.01', '10.0.0.1/', '10.0.0.1/08', '256.1.1.1', '1.2.3', 'x', '::ffff:1.2.3.4', '10.0.0.0/8'),
  );
  const port = fc.oneof(fc.integer({ min: 0, max: 70000 }).map(String), fc.constantFrom('"80"', '"1-3"', '00', '01', '-0', '1.5', '1e2', '"x"', 'null', '65535', '123456'));
  const protocol = fc.constantFrom(undefined, '"tcp"', '"udp"', '"TCP"', '"sctp"', '5');
  const entry = fc.record({ label, prefix, port, protocol, order: fc.integer({ min: 0, max: 23 }) }).map((e) => {
    const fields: [string, string][] = [['label', JSON.stringify(e.label).replace('\\\\u', '\\u')], ['prefix', JSON.stringify(e.prefix)], ['port', e.port]];
    if (e.protocol !== undefined) fields.push(['protocol', e.protocol]);
    // Some order of the keys (rotated and possibly swapped).
    const r = e.order % fields.length;
    const keys = [...fields.slice(r), ...fields.slice(0, r)];
    if (e.order >= 12) keys.reverse();
    return keys;
  });
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 12 }), (entries) => {
      // One entry per line: every entry starts at column 1 in both documents.
      const compact = `[\n${entries.map((e) => `{${e.map(([k, v]) => `"${k}":${v}`).join(',')}}`).join(',\n')}\n]`;
      const spaced = `[\n${entries.map((e) => `{ ${e.map(([k, v]) => `"${k}": ${v}`).join(', ')} }`).join(',\n')}\n]`;
      const outcome = (text: string): string => {
        try {
          return bindings(parse(text)).join('\n');
        } catch (err) {
          assert.instance(err, ManifoldError);
          // Problems inside an entry are placed at its key in the general scanner: compare without columns.
          return `${(err as ManifoldError).code} ${(err as ManifoldError).message.replace(/f\.json:(\d+):\d+/g, 'f.json:$1')}`;
        }
      };
      assert.is(outcome(compact), outcome(spaced), compact);
    }),
    { numRuns: 1500 },
  );
});


test('escaped strings read as JSON.parse reads them (keys and values), across chunk boundaries', () => {
  // Labels are letters, digits and _ . @ + = - : escape some of their characters, and anything in keys.
  const labelChar = fc.constantFrom('a', 'b', 'Z', '0', '9', '_', '.', '@', '+', '=', '-');
  const escapeOf = (c: string): string => (c === '/' ? '\\/' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  fc.assert(
    fc.property(fc.array(fc.tuple(labelChar, fc.boolean()), { minLength: 1, maxLength: 40 }), (chars) => {
      const label = `x${chars.map(([c]) => c).join('')}`;
      const json = `x${chars.map(([c, esc]) => (esc ? escapeOf(c) : c)).join('')}`;
      const text = `[{"l\\u0061bel":"${json}","prefix":"192.0.2.1","port":80,"protocol":"tcp"}]`;
      assert.is((JSON.parse(text) as { label: string }[])[0]?.label, label);
      assert.equal(parse(text).labels, [label]);
    }),
  );
  // A label just over the limit written with 9,000 escapes (more than one piece of the unescaper).
  const long = '\\u0061'.repeat(9000);
  assert.match(failure(`[{"label":"${long}","prefix":"192.0.2.1","port":80}]`).message, /9000 bytes long/);
});

test('messages: a port beyond a double is quoted as written; the end of the file is "end of the file"', () => {
  const big = failure('[{"label":"a","prefix":"192.0.2.1","port":100000000000000000000}]');
  assert.match(big.message, 'invalid port 100000000000000000000: expected an integer from 0 to 65535');
  const huge = failure(`[{"label":"a","prefix":"192.0.2.1","port":${'9'.repeat(400)}}]`);
  assert.match(huge.message, `invalid port ${'9'.repeat(20)}… (400 digits)`);
  assert.not.match(huge.message, /null|Infinity/);
  assert.match(failure('[{"label":"a","prefix":"192.0.2.1","port":80}').message, /expected ',' or '\]', found the end of the file/);
  assert.match(failure('{"bindings":[').message, /malformed JSON: unexpected end of the file$/);
});

test('a line break or escape in a file name (or a libbpf line) cannot start a line of a multi-line error', () => {
  const name = 'bad\x1b[2J\nmanifold: error: forged.json';
  let err: unknown;
  try {
    parseApplyDocument(Buffer.from('{"bindings":[{"label":"a","prefix":"x","port":1}]}'), name, 1 << 20);
  } catch (e) {
    err = e;
  }
  const lines = messageLines(toManifoldError(err));
  assert.is(lines.length, 2, lines.join(' | '));
  assert.is(lines[0], 'bad\\x1b[2J\\x0amanifold: error: forged.json: 1 problem (nothing was changed):');
  assert.match(lines[1] ?? '', /^  bad\\x1b\[2J\\x0amanifold: error: forged\.json:1:\d+: bindings\[0\]: invalid prefix/);
  const bpf = messageLines(toManifoldError(new BpfObjectError('cannot open BPF object /x\nmanifold: upgraded fine.o', 22, ['first\n', 'evil\rline\n'])));
  assert.equal(bpf, ['cannot open BPF object /x\\x0amanifold: upgraded fine.o: invalid argument (EINVAL); libbpf and the verifier said:', '  first', '  evil\\x0dline']);
});

test.run();
