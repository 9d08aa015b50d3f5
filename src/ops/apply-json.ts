/**
 * The apply file: {"bindings": [{"label", "prefix", "port", "protocol"?}]},
 * or a bare array of entries (the output of `bindings --json`; tubular's
 * bindings JSON is the object form).
 *
 * A scanner over the file's bytes feeds each entry to a BindingSetBuilder,
 * with no object per binding and strict rules where JSON.parse is lenient:
 * a repeated key is an error (a second "bindings" would silently replace the
 * first), unknown keys are errors, a port is an integer literal (no -0,
 * fraction or exponent) or a range string. Syntax errors stop the scan; an
 * invalid entry is reported with its line and column and the scan goes on,
 * so every bad entry is reported.
 */
import { parsePrefixBytes, quote } from '../core/net.js';
import type { BindingSetBuilder, ProblemCode } from './binding-set.js';
import { fastEntry } from './apply-json-fast.js';

/** Code units per piece when a string with escapes is unescaped. */
const UNESCAPE_CHUNK = 8192;

/** The character of each one-letter JSON escape, by the letter's byte. */
const SIMPLE_ESCAPES: Partial<Record<number, number>> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };

/** The value of the four hex digits at b[at, at + 4) (before `end`), or -1. */
function hex4(b: Uint8Array, at: number, end: number): number {
  if (at + 4 > end) return -1;
  let v = 0;
  for (let k = at; k < at + 4; k++) {
    const c = b[k] as number;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** A malformed document (the scan cannot go on). */
export class JsonSyntaxError extends Error {
  constructor(readonly line: number, readonly column: number, message: string) {
    super(message);
  }
}

const ENTRY_KEYS = new Set(['label', 'prefix', 'port', 'protocol']);

class Scanner {
  pos = 0;
  line = 1;
  lineStart = 0;
  constructor(readonly buf: Buffer) {}

  col(at = this.pos): number {
    return at - this.lineStart + 1;
  }

  fail(message: string, at = this.pos): never {
    throw new JsonSyntaxError(this.line, this.col(at), message);
  }

  ws(): void {
    const b = this.buf;
    for (;;) {
      const c = b[this.pos];
      if (c === 0x20 || c === 0x09 || c === 0x0d) this.pos++;
      else if (c === 0x0a) {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else return;
    }
  }

  peek(): number | undefined {
    return this.buf[this.pos];
  }

  expect(c: number, what: string): void {
    this.ws();
    if (this.buf[this.pos] !== c) this.fail(`expected ${what}, found ${this.describe()}`);
    this.pos++;
  }

  describe(): string {
    const c = this.buf[this.pos];
    if (c === undefined) return 'the end of the file';
    if (c >= 0x21 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
    return `byte 0x${c.toString(16).padStart(2, '0')}`;
  }

  /** "unexpected X" for what is at the current position ("unexpected end of the file"). */
  unexpected(): string {
    return this.pos >= this.buf.length ? 'unexpected end of the file' : `unexpected ${this.describe()}`;
  }

  /** Bytes of the last string read by span() (when it had no escapes). */
  spanStart = 0;
  spanEnd = 0;

  /**
   * Read a string; true when it has no escapes (its bytes are
   * buf[spanStart, spanEnd)), false when it had to be unescaped (returned by
   * string()).
   */
  span(): boolean {
    const b = this.buf;
    if (b[this.pos] !== 0x22) this.fail(`expected a string, found ${this.describe()}`);
    const start = ++this.pos;
    let escaped = false;
    for (;;) {
      const c = b[this.pos];
      if (c === undefined) this.fail('unterminated string', start - 1);
      if (c === 0x22) break;
      if (c < 0x20) this.fail('control character in a string (escape it)');
      if (c === 0x5c) {
        escaped = true;
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.spanStart = start;
    this.spanEnd = this.pos++;
    return !escaped;
  }

  /** Read a string. */
  string(): string {
    return this.span() ? this.buf.toString('utf8', this.spanStart, this.spanEnd) : this.unescape(this.spanStart, this.spanEnd);
  }

  /** A plain non-negative integer literal of up to 6 digits, or -1 (nothing read) for anything else. */
  uint(): number {
    const b = this.buf;
    let i = this.pos;
    let v = 0;
    while (i - this.pos < 7) {
      const c = b[i];
      if (c === undefined || c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      i++;
    }
    const n = i - this.pos;
    const next = b[i];
    if (n === 0 || n > 6 || (n > 1 && b[this.pos] === 0x30) || next === 0x2e || next === 0x65 || next === 0x45 || (next !== undefined && next >= 0x30 && next <= 0x39)) return -1;
    this.pos = i;
    return v;
  }

  /**
   * The text of a string whose bytes buf[start, end) hold escapes. Built in
   * chunks of UTF-16 code units, so a huge string of escapes costs time and
   * memory in proportion to its length (one piece per escape made V8 keep
   * tens of millions of string pieces).
   */
  unescape(start: number, end: number): string {
    const b = this.buf;
    const units = new Uint16Array(Math.min(UNESCAPE_CHUNK, end - start));
    const parts: string[] = [];
    let u = 0;
    const flush = (): void => {
      parts.push(String.fromCharCode.apply(null, units.subarray(0, u) as unknown as number[]));
      u = 0;
    };
    const put = (code: number): void => {
      if (u === units.length) flush();
      units[u++] = code;
    };
    let i = start;
    while (i < end) {
      const run = i;
      while (i < end && b[i] !== 0x5c) i++;
      if (i > run) {
        // Plain bytes (UTF-8) up to the next escape.
        const text = b.toString('utf8', run, i);
        for (let k = 0; k < text.length; k++) put(text.charCodeAt(k));
      }
      if (i >= end) break;
      const e = b[i + 1];
      const simple = e === undefined ? undefined : SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        put(simple);
        i += 2;
      } else if (e === 0x75) {
        const code = hex4(b, i + 2, end);
        if (code < 0) this.fail('invalid \\u escape in a string', i);
        put(code);
        i += 6;
      } else {
        this.fail('invalid escape in a string', i);
      }
    }
    if (u > 0 || parts.length === 0) flush();
    return parts.length === 1 ? (parts[0] as string) : parts.join('');
  }

  /** A number literal: its text and whether it is a plain non-negative integer. */
  number(): { text: string; value: number; integer: boolean } {
    const b = this.buf;
    const start = this.pos;
    if (b[this.pos] === 0x2d) this.pos++;
    const digits = (): number => {
      const s = this.pos;
      while ((b[this.pos] ?? 0) >= 0x30 && (b[this.pos] ?? 0) <= 0x39) this.pos++;
      return this.pos - s;
    };
    const intStart = this.pos;
    const n = digits();
    if (n === 0 || (n > 1 && b[intStart] === 0x30)) this.fail('invalid number', start);
    let integer = b[start] !== 0x2d;
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail('invalid number', start);
      integer = false;
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (digits() === 0) this.fail('invalid number', start);
      integer = false;
    }
    const text = b.toString('latin1', start, this.pos);
    return { text, value: Number(text), integer };
  }

  literal(): null {
    for (const word of ['true', 'false', 'null']) {
      if (this.buf.toString('latin1', this.pos, this.pos + word.length) === word) {
        this.pos += word.length;
        return null;
      }
    }
    return this.fail(this.unexpected());
  }

  /** Skip any value (for error recovery inside a well-formed document). */
  skipValue(depth = 0): void {
    if (depth > 64) this.fail('nested too deeply');
    this.ws();
    const c = this.peek();
    if (c === 0x22) this.string();
    else if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      this.pos++;
      this.ws();
      if (this.peek() === close) {
        this.pos++;
        return;
      }
      for (;;) {
        if (c === 0x7b) {
          this.ws();
          this.string();
          this.expect(0x3a, "':'");
        }
        this.skipValue(depth + 1);
        this.ws();
        if (this.peek() === 0x2c) {
          this.pos++;
          continue;
        }
        this.expect(close, c === 0x7b ? "',' or '}'" : "',' or ']'");
        return;
      }
    } else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) this.number();
    else this.literal();
  }
}

type Value = { kind: 'string'; value: string } | { kind: 'number'; text: string; value: number; integer: boolean } | { kind: 'other'; what: string };

function readValue(s: Scanner): Value {
  s.ws();
  const c = s.peek();
  if (c === 0x22) return { kind: 'string', value: s.string() };
  if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return { kind: 'number', ...s.number() };
  const what = c === 0x7b ? 'an object' : c === 0x5b ? 'an array' : c === 0x74 || c === 0x66 ? 'a boolean' : c === 0x6e ? 'null' : 'a value';
  s.skipValue();
  return { kind: 'other', what };
}

const KEY_LABEL = 1;
const KEY_PREFIX = 2;
const KEY_PORT = 4;
const KEY_PROTOCOL = 8;

const KEY_BYTES: readonly [number, Buffer][] = [
  [KEY_LABEL, Buffer.from('label"')],
  [KEY_PREFIX, Buffer.from('prefix"')],
  [KEY_PORT, Buffer.from('port"')],
  [KEY_PROTOCOL, Buffer.from('protocol"')],
];

/** The bit of an entry key (0: unknown), from its bytes (`pos` at the opening quote) without making a string. */
function keyBit(b: Buffer, pos: number): number {
  for (const [bit, word] of KEY_BYTES) {
    let i = 0;
    while (i < word.length && b[pos + 1 + i] === word[i]) i++;
    if (i === word.length) return bit;
  }
  return 0;
}

/**
 * Positions of entries, kept as numbers so an entry costs no string: the
 * builder turns an entry number into "file:line:col: bindings[i]" only when
 * it reports a problem.
 */
class Positions {
  line = new Uint32Array(1024);
  col = new Uint32Array(1024);
  record(i: number, line: number, col: number): void {
    if (i >= this.line.length) {
      const grow = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
        const g = new Uint32Array(a.length * 2);
        g.set(a);
        return g;
      };
      this.line = grow(this.line);
      this.col = grow(this.col);
    }
    this.line[i] = line;
    this.col[i] = col;
  }
}

/** One field of an entry as read: bytes of a plain string, a text, or a number; reused for every entry. */
class Field {
  given = false;
  isSpan = false;
  start = 0;
  end = 0;
  value: unknown = undefined;

  reset(): void {
    this.given = false;
    this.isSpan = false;
    this.value = undefined;
  }

  /** The field's value (its text made only now for a span). */
  get(buf: Buffer): unknown {
    return this.isSpan ? buf.toString('utf8', this.start, this.end) : this.value;
  }
}

/** The fields of the entry being read (one set per scan). */
class EntryFields {
  readonly label = new Field();
  readonly prefix = new Field();
  readonly port = new Field();
  readonly protocol = new Field();

  of(bit: number): Field {
    return bit === KEY_LABEL ? this.label : bit === KEY_PREFIX ? this.prefix : bit === KEY_PORT ? this.port : this.protocol;
  }

  reset(): void {
    this.label.reset();
    this.prefix.reset();
    this.port.reset();
    this.protocol.reset();
  }
}

const KEY_NAMES: Record<number, string> = { [KEY_LABEL]: 'label', [KEY_PREFIX]: 'prefix', [KEY_PORT]: 'port', [KEY_PROTOCOL]: 'protocol' };
/** The bit of each entry key, by name (for keys written with escapes). */
const KEY_BITS = new Map(Object.entries(KEY_NAMES).map(([bit, key]) => [key, Number(bit)]));

/**
 * A value that is not a string, for key `bit`: a port number beyond the
 * plain fast path (returned when it is an integer), or the problem.
 */
/** A number's text as written, cut short for a message. */
function quoteText(text: string): string {
  return text.length > 24 ? `${text.slice(0, 20)}… (${text.length} digits)` : text;
}

function otherValue(s: Scanner, bit: number): number | { message: string; code: ProblemCode } {
  const c = s.peek();
  if (bit === KEY_PORT && (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39))) {
    const v = s.number();
    if (v.text === '-0' || v.text.startsWith('-0.') || v.text.startsWith('-0e') || v.text.startsWith('-0E')) return { message: `port ${v.text} is not a port (use 0 for all ports)`, code: 'ERR_INVALID_PORT' };
    if (!v.integer) return { message: `invalid port ${quoteText(v.text)}: expected an integer from 0 to 65535 or a range such as "8000-8080"`, code: 'ERR_INVALID_PORT' };
    // Beyond what a double holds exactly, the value would be echoed rounded (or as null): say the text.
    if (!Number.isSafeInteger(v.value)) return { message: `invalid port ${quoteText(v.text)}: expected an integer from 0 to 65535 or a range such as "8000-8080"`, code: 'ERR_INVALID_PORT' };
    return v.value;
  }
  const v = readValue(s);
  const found = v.kind === 'number' ? `the number ${v.text}` : v.kind === 'other' ? v.what : 'a string';
  if (bit === KEY_PORT) return { message: `invalid port: expected a number or a range string, found ${found}`, code: 'ERR_INVALID_PORT' };
  return { message: `${KEY_NAMES[bit] ?? 'value'} must be a string, found ${found}`, code: 'ERR_INVALID_FILE' };
}

/** Protocol bits of a plain "tcp"/"udp" (as lower-case bytes), or 0. */
function protocolBitsOf(b: Buffer, f: Field): number {
  if (f.end - f.start !== 3) return 0;
  const a = b[f.start];
  if (a === 0x74 && b[f.start + 1] === 0x63 && b[f.start + 2] === 0x70) return 1;
  if (a === 0x75 && b[f.start + 1] === 0x64 && b[f.start + 2] === 0x70) return 2;
  return 0;
}

/** Hand a complete entry to the builder: plain fields go the byte fast path, anything else the general one. */
function submit(b: Buffer, f: EntryFields, at: number, builder: BindingSetBuilder): void {
  const label = f.label.isSpan ? builder.labelIdFromBytes(b, f.label.start, f.label.end, at) : builder.labelId(f.label.value, at);
  let protocols = 3;
  if (f.protocol.given) {
    protocols = f.protocol.isSpan ? protocolBitsOf(b, f.protocol) : 0;
    if (protocols === 0) protocols = builder.protocolBits(f.protocol.get(b), at);
  }
  let packed = f.prefix.isSpan ? parsePrefixBytes(b, f.prefix.start, f.prefix.end, builder.scratch) : -1;
  if (packed < 0) packed = builder.prefixInto(f.prefix.get(b), at);
  const ports = builder.portRange(f.port.get(b), at);
  if (label < 0 || protocols === 0 || packed < 0 || ports < 0) builder.skip();
  else builder.addEncoded(label, packed, ports & 0xffff, ports >>> 16, protocols, at);
}

/** Scan entry `index` of the array; `at` is its number in the builder. */
function entry(s: Scanner, index: number, at: number, name: string, builder: BindingSetBuilder, f: EntryFields): void {
  s.ws();
  const b = s.buf;
  if (s.peek() !== 0x7b) {
    const v = readValue(s);
    builder.problem(at, `expected an object {"label", "prefix", "port", "protocol"}, found ${v.kind === 'other' ? v.what : `a ${v.kind}`}`);
    builder.skip();
    return;
  }
  s.pos++;
  f.reset();
  let seen = 0;
  let ok = true;
  s.ws();
  if (s.peek() === 0x7d) s.pos++;
  else {
    for (;;) {
      s.ws();
      const keyLine = s.line;
      const keyCol = s.col();
      let bit = b[s.pos] === 0x22 ? keyBit(b, s.pos) : 0;
      if (bit === 0 && b[s.pos] === 0x22) {
        // A key written with escapes ("l\u0061bel") is the same key.
        const at = s.pos;
        bit = KEY_BITS.get(s.string()) ?? 0;
        s.pos = at;
      }
      if (bit === 0 || seen & bit) {
        const key = s.string();
        s.expect(0x3a, "':'");
        s.skipValue();
        builder.problem(`${name}:${keyLine}:${keyCol}: bindings[${index}]`, bit === 0 ? `unknown key ${quote(key)} (expected label, prefix, port, protocol)` : `key ${quote(key)} is given twice`);
        ok = false;
      } else {
        s.span();
        s.expect(0x3a, "':'");
        s.ws();
        const c = b[s.pos];
        const field = f.of(bit);
        field.given = true;
        if (c === 0x22) {
          if (s.span()) {
            field.isSpan = true;
            field.start = s.spanStart;
            field.end = s.spanEnd;
          } else field.value = s.unescape(s.spanStart, s.spanEnd);
        } else if (bit === KEY_PORT && c !== undefined && c >= 0x30 && c <= 0x39 && (field.value = s.uint()) !== -1) {
          // a plain port number
        } else {
          const v = otherValue(s, bit);
          if (typeof v === 'number') field.value = v;
          else {
            builder.problem(`${name}:${keyLine}:${keyCol}: bindings[${index}]`, v.message, v.code);
            ok = false;
          }
        }
      }
      seen |= bit;
      s.ws();
      if (s.peek() === 0x2c) {
        s.pos++;
        continue;
      }
      s.expect(0x7d, "',' or '}'");
      break;
    }
  }
  if (!ok) {
    builder.skip();
    return;
  }
  const missing = [seen & KEY_LABEL ? '' : 'label', seen & KEY_PREFIX ? '' : 'prefix', seen & KEY_PORT ? '' : 'port'].filter((k) => k !== '');
  if (missing.length > 0) {
    for (const k of missing) builder.problem(at, `missing ${quote(k)}`);
    builder.skip();
    return;
  }
  submit(b, f, at, builder);
}

function entries(s: Scanner, name: string, builder: BindingSetBuilder, positions: Positions, fields: EntryFields): void {
  s.expect(0x5b, "'['");
  s.ws();
  if (s.peek() === 0x5d) {
    s.pos++;
    return;
  }
  const b = s.buf;
  // The fast path reads a plain view of the same bytes (faster element access than a Buffer).
  const u = new Uint8Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; ; i++) {
    s.ws();
    const n = builder.entryCount;
    positions.record(n, s.line, s.col());
    // The usual shape of entry is read by the fast path; anything else (or any doubt) by entry().
    const end = u[s.pos] === 0x7b ? fastEntry(u, b, s.pos, n, builder) : -1;
    if (end >= 0) s.pos = end;
    else entry(s, i, n, name, builder, fields);
    // Entries are usually separated by a bare comma.
    if (u[s.pos] === 0x2c) {
      s.pos++;
      continue;
    }
    s.ws();
    if (s.peek() === 0x2c) {
      s.pos++;
      continue;
    }
    s.expect(0x5d, "',' or ']'");
    return;
  }
}

/**
 * Scan an apply document into `builder`. Throws JsonSyntaxError for a
 * malformed document; entry problems are recorded in the builder.
 */
export function scanApplyJson(buf: Buffer, name: string, builder: BindingSetBuilder): void {
  const s = new Scanner(buf);
  const positions = new Positions();
  const fields = new EntryFields();
  const base = builder.entryCount;
  builder.locate = (n) => `${name}:${positions.line[n] ?? 0}:${positions.col[n] ?? 0}: bindings[${n - base}]`;
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) s.pos = 3;
  s.ws();
  if (s.peek() === 0x5b) {
    entries(s, name, builder, positions, fields);
  } else {
    s.expect(0x7b, 'an object {"bindings": [...]} or an array of bindings');
    let found = false;
    s.ws();
    if (s.peek() === 0x7d) s.pos++;
    else {
      for (;;) {
        s.ws();
        const keyAt = { line: s.line, col: s.col() };
        const key = s.string();
        s.expect(0x3a, "':'");
        if (key !== 'bindings') throw new JsonSyntaxError(keyAt.line, keyAt.col, `unknown key ${quote(key)} (expected "bindings")`);
        if (found) throw new JsonSyntaxError(keyAt.line, keyAt.col, 'key "bindings" is given twice: which set was meant is ambiguous');
        found = true;
        s.ws();
        if (s.peek() !== 0x5b) throw new JsonSyntaxError(s.line, s.col(), '"bindings" must be an array');
        entries(s, name, builder, positions, fields);
        s.ws();
        if (s.peek() === 0x2c) {
          s.pos++;
          continue;
        }
        s.expect(0x7d, "',' or '}'");
        break;
      }
    }
    if (!found) throw new JsonSyntaxError(1, 1, 'missing "bindings" (expected {"bindings": [...]})');
  }
  s.ws();
  if (s.pos < buf.length) s.fail(`${s.unexpected()} after the document`);
}
