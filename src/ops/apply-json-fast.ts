/**
 * The apply scanner's fast path: one entry of the usual shape, read
 * straight from the bytes with no call per token and no object.
 *
 * It takes an object with no whitespace inside, keys among label, prefix,
 * port, protocol each at most once (label, prefix and port present), the
 * label and prefix plain strings (printable ASCII, no escapes), the port a
 * plain integer from 0 to 65535, the protocol exactly "tcp" or "udp" —
 * what `bindings --json` and generated files write. Anything else, it reads
 * nothing and the general scanner (apply-json.ts) takes the entry from the
 * same position, so every error keeps its message and place.
 *
 * A taken entry is handed to the builder exactly as the general scanner's
 * submit() would (same calls in the same order), so problems found in its
 * values (an invalid label or prefix) are reported identically.
 */
import { parsePrefixBytes } from '../core/net.js';
import type { BindingSetBuilder } from './binding-set.js';

const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const CLOSE = 0x7d;

const LABEL = 1;
const PREFIX = 2;
const PORT = 4;
const PROTOCOL = 8;

/** End (exclusive) of a plain string whose contents start at `i`, or -1 (escape, control, non-ASCII, end of input). */
function plainEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (; i < n; i++) {
    const c = b[i] as number;
    if (c === QUOTE) return i;
    if (c < 0x20 || c === 0x5c || c >= 0x7f) return -1;
  }
  return -1;
}

/** True when `b[i..]` is `word` followed by `":`. */
function keyIs(b: Uint8Array, i: number, word: string): boolean {
  const n = word.length;
  for (let k = 0; k < n; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return b[i + n] === QUOTE && b[i + n + 1] === COLON;
}

/**
 * Read the entry whose '{' is at `pos` and hand it to the builder as entry
 * `at`. Returns the position after its '}', or -1 when the entry is not of
 * the fast shape (nothing was read or recorded). `b` is the document as a
 * plain Uint8Array (V8 reads its elements faster than a Buffer's), `buf`
 * the same bytes as the Buffer (for text).
 */
export function fastEntry(b: Uint8Array, buf: Buffer, pos: number, at: number, builder: BindingSetBuilder): number {
  let p = pos + 1;
  let seen = 0;
  let labelStart = 0;
  let labelEnd = 0;
  let prefixStart = 0;
  let prefixEnd = 0;
  let port = 0;
  let protocols = 3;
  for (;;) {
    if (b[p] !== QUOTE) return -1;
    // The key: its first bytes decide which it can be.
    let bit: number;
    const k = b[p + 1];
    if (k === 0x6c && keyIs(b, p + 1, 'label')) {
      bit = LABEL;
      p += 8;
    } else if (k === 0x70 && keyIs(b, p + 1, 'prefix')) {
      bit = PREFIX;
      p += 9;
    } else if (k === 0x70 && keyIs(b, p + 1, 'port')) {
      bit = PORT;
      p += 7;
    } else if (k === 0x70 && keyIs(b, p + 1, 'protocol')) {
      bit = PROTOCOL;
      p += 11;
    } else return -1;
    if (seen & bit) return -1;
    seen |= bit;
    if (bit === PORT) {
      // 1–5 digits without a leading zero (0 itself is fine), at most 65535, then ',' or '}'.
      // One loop for every port (no branch that only some ports take: steadier optimized code).
      const first = p;
      let v = 0;
      let c = b[p] as number;
      const leadingZero = c === 0x30;
      while (c >= 0x30 && c <= 0x39 && p - first < 6) {
        v = v * 10 + (c - 0x30);
        c = b[++p] as number;
      }
      const digits = p - first;
      if (digits === 0 || digits > 5 || (leadingZero && digits > 1) || v > 65535) return -1;
      port = v;
    } else {
      if (b[p] !== QUOTE) return -1;
      const start = p + 1;
      const end = plainEnd(b, start);
      if (end < 0) return -1;
      p = end + 1;
      if (bit === LABEL) {
        labelStart = start;
        labelEnd = end;
      } else if (bit === PREFIX) {
        prefixStart = start;
        prefixEnd = end;
      } else {
        if (end - start !== 3) return -1;
        const a = b[start];
        const m = b[start + 1];
        const z = b[start + 2];
        if (a === 0x74 && m === 0x63 && z === 0x70) protocols = 1;
        else if (a === 0x75 && m === 0x64 && z === 0x70) protocols = 2;
        else return -1;
      }
    }
    const c = b[p];
    p++;
    if (c === COMMA) continue;
    if (c === CLOSE) break;
    return -1;
  }
  if ((seen & (LABEL | PREFIX | PORT)) !== (LABEL | PREFIX | PORT)) return -1;
  // As submit() in apply-json.ts: label, then prefix (port and protocol are valid here).
  const label = builder.labelIdFromBytes(b, labelStart, labelEnd, at);
  let packed = parsePrefixBytes(b, prefixStart, prefixEnd, builder.scratch);
  if (packed < 0) packed = builder.prefixInto(buf.toString('utf8', prefixStart, prefixEnd), at);
  if (label < 0 || packed < 0) builder.skip();
  else builder.addEncoded(label, packed, port, port, protocols, at);
  return p;
}
