/**
 * Property and fuzz tests (fast-check) of the config input parsers:
 *
 * - the INI reader: random text and bytes never throw and give bounded
 *   results; documents generated from a model (sections, assignments,
 *   comments, continuations, CRLF, BOM) read back as the model says;
 * - Bind=, Listen= and Socket= values: never throw, and accept exactly what
 *   the reference parsers accept (src/core/net.ts for addresses and ports,
 *   systemd's unit_name_is_valid re-implemented here from its C source);
 * - unit-name escaping: round trip, and agreement with the real
 *   `systemd-escape` binary (run as a plain command) on random strings;
 * - the label validator: agreement with the documented alphabet and
 *   length, and only ERR_INVALID_LABEL is ever thrown.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { parseIni, strip } from '../../src/config/ini.js';
import { parseConfigText } from '../../src/config/load.js';
import { formatIpPrefix } from '../../src/config/ip.js';
import { registerUnitFor, systemdEscape, systemdUnescape } from '../../src/config/unit-name.js';
import { labelProblem, validateLabel } from '../../src/core/labels.js';
import { formatPrefix, parseAddress, parsePortRange, parsePrefix } from '../../src/core/net.js';
import { ManifoldError } from '../../src/errors.js';

const RUNS = 2000;

/** A string that is valid UTF-16 (no lone surrogates). */
function wellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

// ---------------------------------------------------------------- INI reader

test('ini fuzz: any text or bytes; never throws, results bounded by the input', () => {
  const input = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.array(fc.constantFrom('[', ']', '=', '\\', '#', ';', ' ', '\t', '\r', '\n', '\0', 'a', 'K', '\uFEFF', 'é'), { maxLength: 200 }).map((xs) => xs.join('')),
    fc.uint8Array({ maxLength: 300 }),
  );
  fc.assert(
    fc.property(input, (x) => {
      const d = parseIni(x);
      const text = typeof x === 'string' ? x : Buffer.from(x).toString('latin1');
      const lines = text.split('\n').length;
      assert.ok(d.sections.length + d.assignments.length + d.problems.length <= lines);
      for (const item of [...d.sections, ...d.assignments, ...d.problems]) assert.ok(item.line >= 1 && item.line <= lines, `line ${item.line} of ${lines}`);
      for (const a of d.assignments) {
        assert.ok(a.key !== '' && !a.key.includes('\n') && !a.value.includes('\n'));
        assert.is(strip(a.key), a.key);
        assert.is(strip(a.value), a.value);
        assert.ok(a.value.length <= text.length);
      }
    }),
    { numRuns: RUNS },
  );
});

type Item =
  | { kind: 'section'; name: string }
  | { kind: 'assign'; key: string; parts: string[] }
  | { kind: 'comment'; text: string }
  | { kind: 'blank'; text: string };

const word = (chars: string, min: number, max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...chars), minLength: min, maxLength: max });
const ALNUM = 'abcXYZ019-_';
// Value text: no backslash, no newline; may hold blanks, '=', '#', ';' and '[' inside.
const valueChars = 'ab c=#;[]/.:é\t';
const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant('section' as const), name: word(ALNUM, 1, 8) }),
  fc.record({ kind: fc.constant('assign' as const), key: fc.tuple(fc.constantFrom('K', 'Bind', 'x'), word(ALNUM, 0, 6)).map(([a, b]) => a + b), parts: fc.array(word(valueChars, 0, 10), { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('comment' as const), text: fc.tuple(fc.constantFrom('#', ';', ' #', '\t;'), word(valueChars + '\\', 0, 10)).map(([a, b]) => a + b) }),
  fc.record({ kind: fc.constant('blank' as const), text: word(' \t', 0, 3) }),
);

test('ini model: generated documents read back as written (continuations, comments, CRLF, BOM)', () => {
  fc.assert(
    fc.property(fc.array(item, { maxLength: 12 }), fc.boolean(), fc.boolean(), (items, crlf, bom) => {
      const lines: string[] = [];
      const sections: Array<{ name: string; line: number }> = [];
      const assignments: Array<{ section: string | null; key: string; value: string; line: number }> = [];
      let section: string | null = null;
      for (const it of items) {
        const line = lines.length + 1;
        if (it.kind === 'section') {
          lines.push(`[${it.name}]`);
          sections.push({ name: it.name, line });
          section = it.name;
        } else if (it.kind === 'assign') {
          // A continued line must not look like a comment once stripped.
          const parts = it.parts.map((p, i) => (i > 0 && /^[ \t]*[#;]/.test(p) ? `x${p}` : p));
          parts.forEach((p, i) => lines.push(i === 0 ? ` ${it.key} =${p}${i < parts.length - 1 ? '\\' : ''}` : `${p}${i < parts.length - 1 ? '\\' : ''}`));
          assignments.push({ section, key: it.key, value: strip(parts.join(' ')), line });
        } else {
          lines.push(it.text);
        }
      }
      const text = (bom ? '\uFEFF' : '') + lines.map((l) => l + (crlf ? '\r\n' : '\n')).join('');
      const d = parseIni(Buffer.from(text, 'utf8'));
      assert.equal(d.problems, []);
      assert.equal(d.sections, sections);
      assert.equal(d.assignments, assignments);
    }),
    { numRuns: RUNS },
  );
});

// ---------------------------------------------------------------- Bind=, Listen=, Socket=

const blanks = fc.constantFrom(' ', '\t', '  ', ' \t ');
const protocol = fc.constantFrom('tcp', 'udp', 'any', 'TCP', 'Udp', 'ANY', 'sctp', 'tcp6', '', 'x');
const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.constantFrom('::ffff:1.2.3.4', '::1.2.3.4', '0.0.0.0', '::', '255.255.255.255', '01.2.3.4', '1.2.3', 'fe80::1%lo', 'a::b::c', '::FFFF:0:0'),
  fc.string({ unit: fc.constantFrom('0', '1', '9', 'a', 'f', ':', '.', '/'), maxLength: 20 }),
);
const prefix = fc.oneof(address, fc.tuple(address, fc.oneof(fc.integer({ min: 0, max: 140 }).map(String), fc.constantFrom('', '01', '-1', '8a', ' 8'))).map(([a, l]) => `${a}/${l}`));
const port = fc.oneof(
  fc.integer({ min: 0, max: 70000 }).map(String),
  fc.tuple(fc.integer({ min: 0, max: 66000 }), fc.integer({ min: 0, max: 66000 })).map(([a, b]) => `${a}-${b}`),
  fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 5000 })).map(([a, n]) => `${a}-${a + n}`),
  fc.constantFrom('080', '+80', '80-', '-80', '1e2', '0x50', '', '65535', '65536', '0-0', '1-1', '80-80', '1-4096', '1-4097'),
);

/** Words of a value as the config splits them: runs of blanks, after stripping (as the INI reader does). */
function words(value: string): string[] {
  return strip(value).split(/[ \t]+/);
}

function ok<T>(f: () => T): T | null {
  try {
    return f();
  } catch (err) {
    assert.instance(err, ManifoldError);
    return null;
  }
}

function protocolsOf(word: string): string[] | null {
  const w = word.toLowerCase();
  return w === 'any' ? ['tcp', 'udp'] : w === 'tcp' || w === 'udp' ? [w] : null;
}

test('Bind= accepts exactly what src/core/net.ts accepts (host bits must be zero), canonically', () => {
  const value = fc.tuple(protocol, blanks, prefix, blanks, port, fc.constantFrom('', ' ', ' extra')).map(([p, b1, x, b2, n, tail]) => `${p}${b1}${x}${b2}${n}${tail}`);
  fc.assert(
    fc.property(value, (v) => {
      const r = parseConfigText(`[Label]\nBind=${v}\n`, '/etc/manifold/p.conf');
      if (v.trim() === '') {
        // An empty assignment (blanks only) resets the list, as in systemd units (manifold.conf(5)).
        assert.equal(r.problems, [], `refused ${JSON.stringify(v)}`);
        assert.is(r.unit?.binds.length, 0);
        return;
      }
      const w = words(v);
      let expected: { protocols: string[]; prefix: string; range: { first: number; last: number } } | null = null;
      if (w.length === 3) {
        const protocols = protocolsOf(w[0] as string);
        const p = ok(() => parsePrefix(w[1] as string));
        const exact = p && ok(() => parseAddress((w[1] as string).split('/')[0] as string));
        const range = ok(() => parsePortRange(w[2] as string));
        if (protocols && p && exact && range && Buffer.from(exact.addr).equals(Buffer.from(p.addr))) expected = { protocols, prefix: formatPrefix(p), range };
      }
      if (expected === null) {
        assert.is(r.unit, null, `accepted ${JSON.stringify(v)}`);
        assert.is(r.problems.length, 1, JSON.stringify(r.problems));
        assert.is(r.problems[0]?.line, 2);
        return;
      }
      assert.equal(r.problems, [], `refused ${JSON.stringify(v)}`);
      const b = r.unit?.binds[0];
      assert.equal(b?.protocols, expected.protocols);
      assert.is(b ? formatIpPrefix(b.prefix) : '', expected.prefix);
      assert.equal({ first: b?.first, last: b?.last }, expected.range);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('Listen= accepts exactly one address (net.ts), a protocol and a port from 1 to 65535', () => {
  const value = fc.tuple(protocol, blanks, prefix, blanks, port).map(([p, b1, x, b2, n]) => `${p}${b1}${x}${b2}${n}`);
  fc.assert(
    fc.property(value, (v) => {
      const r = parseConfigText(`[Label]\nService=s.service\nListen=${v}\n`, '/etc/manifold/p.conf');
      if (v.trim() === '') {
        // An empty assignment (blanks only) resets the list (manifold.conf(5)): Service= is then left without Listen=.
        assert.is(r.unit, null, `accepted ${JSON.stringify(v)}`);
        assert.ok(r.problems.length === 1 && r.problems[0]?.line === 2 && /Listen=/.test(r.problems[0].message), JSON.stringify(r.problems));
        return;
      }
      const w = words(v);
      let accept = false;
      if (w.length === 3 && protocolsOf(w[0] as string) && !(w[1] as string).includes('/')) {
        const a = ok(() => parseAddress(w[1] as string));
        // A config file keeps the "8080-8080" form it always accepted (files outlive upgrades);
        // the command line's single-port options refuse it (parsePort).
        const r = ok(() => parsePortRange(w[2] as string));
        accept = a !== null && r !== null && r.first === r.last && r.first !== 0;
      }
      if (accept) assert.equal(r.problems, [], `refused ${JSON.stringify(v)}`);
      else {
        assert.is(r.unit, null, `accepted ${JSON.stringify(v)}`);
        assert.ok(r.problems.every((p) => p.line === 3), JSON.stringify(r.problems));
      }
    }),
    { numRuns: RUNS },
  );
});

/** systemd 252 unit_name_is_valid(n, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE), for the type after the last ".". */
function systemdUnitNameValid(n: string, type: string): boolean {
  if (n.length === 0 || Buffer.byteLength(n) >= 256) return false;
  const e = n.lastIndexOf('.');
  if (e <= 0 || n.slice(e + 1) !== type) return false;
  let at = -1;
  for (let i = 0; i < e; i++) {
    const c = n[i] as string;
    if (c === '@' && at < 0) at = i;
    if (!/^[A-Za-z0-9:\-_.\\@]$/.test(c)) return false;
  }
  if (at === 0) return false;
  return at < 0 || e > at + 1;
}

/** The value of `key` as the INI reader (tested above) reads it: a trailing backslash continues the line. */
function valueOf(text: string, key: string): string {
  return parseIni(text).assignments.find((a) => a.key === key)?.value ?? '';
}

const unitChars = fc.constantFrom('a', 'Z', '0', ':', '-', '_', '.', '\\', '@', ' ', '/', 'é', '%');
const unitName = (type: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.tuple(fc.string({ unit: unitChars, maxLength: 12 }), fc.constantFrom(`.${type}`, '.service', '.socket', '', `.${type}x`)).map(([s, t]) => s + t),
    fc.tuple(fc.string({ unit: fc.constantFrom('a', '-', '@', '.'), minLength: 200, maxLength: 260 }), fc.constant(`.${type}`)).map(([s, t]) => `a${s}${t}`),
  );

test('Socket= accepts what systemd accepts as a socket name, when its drop-ins fit NAME_MAX', () => {
  fc.assert(
    fc.property(unitName('socket'), (name) => {
      const text = `[Label]\nSocket=${name}\n`;
      const r = parseConfigText(text, '/etc/manifold/p.conf');
      const v = valueOf(text, 'Socket');
      const fits = Buffer.byteLength(`${registerUnitFor(v)}.d`) <= 255 && Buffer.byteLength(`${v}.d`) <= 255;
      const accept = v !== '' && systemdUnitNameValid(v, 'socket') && fits;
      if (accept) assert.equal(r.problems, [], `refused ${JSON.stringify(name)}`);
      else if (v !== '') assert.is(r.unit, null, `accepted ${JSON.stringify(name)}`);
    }),
    { numRuns: RUNS },
  );
});

test('Service= accepts what systemd accepts as a service name (manifold\'s own units aside)', () => {
  fc.assert(
    fc.property(unitName('service'), (name) => {
      const text = `[Label]\nName=l\nService=${name}\nListen=tcp 127.0.0.1 1\n`;
      const r = parseConfigText(text, '/etc/manifold/p.conf');
      const v = valueOf(text, 'Service');
      const accept = systemdUnitNameValid(v, 'service') && Buffer.byteLength(`${v}.d`) <= 255 && v !== 'manifold.service' && !v.startsWith('manifold-register@');
      if (v === '') return;
      if (accept) assert.equal(r.problems, [], `refused ${JSON.stringify(name)}`);
      else assert.is(r.unit, null, `accepted ${JSON.stringify(name)}`);
    }),
    { numRuns: RUNS },
  );
});

test('config fuzz: random lines under [Label] never throw; problems name lines of the file', () => {
  const line = fc.oneof(
    fc.tuple(fc.constantFrom('Bind', 'Listen', 'Socket', 'Service', 'Name', 'Registration', 'X-Y', 'Nope', ''), fc.string({ unit: 'binary', maxLength: 40 })).map(([k, v]) => `${k}=${v}`),
    fc.string({ unit: 'binary', maxLength: 40 }),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 10 }), (ls) => {
      const text = `[Label]\n${ls.join('\n')}\n`;
      const r = parseConfigText(text, '/etc/manifold/p.conf');
      const n = text.split('\n').length;
      assert.ok(r.problems.every((p) => p.line >= 0 && p.line <= n && typeof p.message === 'string' && p.message.length < 2000));
      assert.is(r.unit === null, r.problems.length > 0);
    }),
    { numRuns: RUNS },
  );
});

// ---------------------------------------------------------------- unit-name escaping

const escapable = fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => wellFormed(s) && !s.includes('\0'));

test('systemdUnescape(systemdEscape(s)) is s; escaped names use only unit-name characters', () => {
  fc.assert(
    fc.property(escapable, (s) => {
      const e = systemdEscape(s);
      assert.match(e, /^[A-Za-z0-9:_.\\-]*$/);
      assert.not.ok(e.startsWith('.'), 'a leading dot is escaped');
      assert.is(systemdUnescape(e), s);
    }),
    { numRuns: RUNS * 2 },
  );
});

/** Run systemd-escape once on many strings; null when it refused them. */
function systemdEscapeBinary(args: string[], unescape: boolean): string[] | null {
  const r = spawnSync('systemd-escape', [...(unescape ? ['--unescape'] : []), '--', ...args], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) return null;
  return r.stdout.replace(/\n$/, '').split(unescape ? '\n' : ' ');
}

test('systemdEscape agrees with the systemd-escape binary on random strings', () => {
  const samples = fc.sample(escapable.filter((s) => s !== ''), { numRuns: 1500, seed: 42 });
  for (let i = 0; i < samples.length; i += 300) {
    const batch = samples.slice(i, i + 300);
    const expected = systemdEscapeBinary(batch, false);
    assert.ok(expected, 'systemd-escape accepts any string');
    assert.equal(batch.map(systemdEscape), expected);
  }
});

test('systemdUnescape agrees with systemd-escape --unescape, refusals included', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'é', '-', '\\', 'x', '0', '2', 'f', 'F', 'c', '3', 'g', '/'), maxLength: 12 }).filter((s) => s !== '' && !s.includes('\n'));
  const samples = fc.sample(text, { numRuns: 300, seed: 7 });
  for (const s of samples) {
    // One string per call: systemd-escape refuses the whole call if one string is bad.
    const out = systemdEscapeBinary([s], true);
    const mine = systemdUnescape(s);
    if (out === null) assert.is(mine, null, `systemd refuses ${JSON.stringify(s)}`);
    else if (mine !== null) assert.is(mine, out[0], JSON.stringify(s));
    else {
      // systemd returns bytes JavaScript cannot hold as text (not UTF-8) or cuts at NUL.
      const raw = spawnSync('systemd-escape', ['--unescape', '--', s]).stdout as Buffer;
      const bytes = raw.subarray(0, raw.length - 1);
      assert.ok(bytes.toString('utf8') !== bytes.toString('latin1') || /\\x00/i.test(s), `refused ${JSON.stringify(s)}, systemd gave ${JSON.stringify(bytes)}`);
    }
  }
});

// ---------------------------------------------------------------- labels

/** The documented rule: 1–255 bytes of letters, digits and _ . @ + = -, not starting with . @ + = -. */
function labelReference(s: string): boolean {
  if (s.length === 0 || Buffer.byteLength(s) > 255) return false;
  const allowed = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || '_.@+=-'.includes(c);
  return [...s].every(allowed) && !'.@+=-'.includes(s[0] as string);
}

test('labels: labelProblem agrees with the documented rule; validateLabel throws only ERR_INVALID_LABEL', () => {
  const label = fc.oneof(
    fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '.', '@', '+', '=', '-', ':', ' ', '/', 'é', '\n', '\0'), maxLength: 20 }),
    fc.string({ unit: fc.constantFrom('a', '-'), minLength: 250, maxLength: 260 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  fc.assert(
    fc.property(label, (s) => {
      const good = labelReference(s);
      assert.is(labelProblem(s) === null, good, JSON.stringify(s));
      try {
        assert.is(validateLabel(s), s);
        assert.ok(good);
      } catch (err) {
        assert.not.ok(good);
        assert.instance(err, ManifoldError);
        assert.is((err as ManifoldError).code, 'ERR_INVALID_LABEL');
      }
    }),
    { numRuns: RUNS * 2 },
  );
  for (const v of [undefined, null, 1, {}, ['a'], Symbol('x')]) {
    try {
      validateLabel(v);
      assert.unreachable();
    } catch (err) {
      assert.is((err as ManifoldError).code, 'ERR_INVALID_LABEL');
    }
  }
});

test.run();
