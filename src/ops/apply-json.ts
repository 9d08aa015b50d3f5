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
import { quote } from '../core/net.js';
import type { BindingSetBuilder } from './binding-set.js';

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
  constructor(private readonly buf: Buffer) {}

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

  string(): string {
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
    const end = this.pos++;
    if (!escaped) return b.toString('utf8', start, end);
    return this.unescape(start, end);
  }

  private unescape(start: number, end: number): string {
    let out = '';
    let i = start;
    let run = start;
    const b = this.buf;
    while (i < end) {
      if (b[i] !== 0x5c) {
        i++;
        continue;
      }
      out += b.toString('utf8', run, i);
      const e = b[i + 1];
      const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
      if (e !== undefined && simple[e] !== undefined) {
        out += simple[e];
        i += 2;
      } else if (e === 0x75) {
        const hex = b.toString('latin1', i + 2, i + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('invalid \\u escape in a string', i);
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        this.fail('invalid escape in a string', i);
      }
      run = i;
    }
    return out + b.toString('utf8', run, end);
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
    return this.fail(`unexpected ${this.describe()}`);
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

function entry(s: Scanner, index: number, name: string, builder: BindingSetBuilder): void {
  s.ws();
  const at = `${name}:${s.line}:${s.col()}: bindings[${index}]`;
  if (s.peek() !== 0x7b) {
    const v = readValue(s);
    builder.problem(at, `expected an object {"label", "prefix", "port", "protocol"}, found ${v.kind === 'other' ? v.what : `a ${v.kind}`}`);
    return;
  }
  s.pos++;
  const seen = new Set<string>();
  const fields: Record<string, unknown> = {};
  let ok = true;
  s.ws();
  if (s.peek() === 0x7d) s.pos++;
  else {
    for (;;) {
      s.ws();
      const keyLine = s.line;
      const keyCol = s.col();
      const key = s.string();
      s.expect(0x3a, "':'");
      const v = readValue(s);
      const here = `${name}:${keyLine}:${keyCol}: bindings[${index}]`;
      if (seen.has(key)) {
        builder.problem(here, `key ${quote(key)} is given twice`);
        ok = false;
      } else if (!ENTRY_KEYS.has(key)) {
        builder.problem(here, `unknown key ${quote(key)} (expected label, prefix, port, protocol)`);
        ok = false;
      } else if (key === 'port') {
        if (v.kind === 'number') {
          if (v.text === '-0' || v.text.startsWith('-0.') || v.text.startsWith('-0e') || v.text.startsWith('-0E')) {
            builder.problem(here, `port ${v.text} is not a port (use 0 for all ports)`, 'ERR_INVALID_PORT');
            ok = false;
          } else if (!v.integer) {
            builder.problem(here, `invalid port ${v.text}: expected an integer from 0 to 65535 or a range such as "8000-8080"`, 'ERR_INVALID_PORT');
            ok = false;
          } else fields.port = v.value;
        } else if (v.kind === 'string') fields.port = v.value;
        else {
          builder.problem(here, `invalid port: expected a number or a range string, found ${v.kind === 'other' ? v.what : 'a string'}`, 'ERR_INVALID_PORT');
          ok = false;
        }
      } else if (v.kind === 'string') fields[key] = v.value;
      else {
        builder.problem(here, `${key} must be a string, found ${v.kind === 'number' ? `the number ${v.text}` : v.what}`);
        ok = false;
      }
      seen.add(key);
      s.ws();
      if (s.peek() === 0x2c) {
        s.pos++;
        continue;
      }
      s.expect(0x7d, "',' or '}'");
      break;
    }
  }
  if (!ok) return;
  for (const k of ['label', 'prefix', 'port']) {
    if (!seen.has(k)) {
      builder.problem(at, `missing ${quote(k)}`);
      ok = false;
    }
  }
  if (ok) builder.add({ label: fields.label, prefix: fields.prefix, port: fields.port, ...(seen.has('protocol') ? { protocol: fields.protocol } : {}) }, at);
}

function entries(s: Scanner, name: string, builder: BindingSetBuilder): void {
  s.expect(0x5b, "'['");
  s.ws();
  if (s.peek() === 0x5d) {
    s.pos++;
    return;
  }
  for (let i = 0; ; i++) {
    entry(s, i, name, builder);
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
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) s.pos = 3;
  s.ws();
  if (s.peek() === 0x5b) {
    entries(s, name, builder);
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
        entries(s, name, builder);
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
  if (s.pos < buf.length) s.fail(`unexpected ${s.describe()} after the document`);
}
