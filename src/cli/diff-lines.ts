/**
 * The lines of apply's text diff ("+ tcp 192.0.2.0/24 80-81 -> web",
 * "~ … -> web (was api)") written straight into byte chunks: the same text
 * as `${sign} ${rangeText(list, range)} -> ${label}`, with no string per
 * line (a diff can have hundreds of thousands). IPv4 addresses are written
 * from the key bytes; IPv6 ones through formatPrefix.
 *
 * Labels are escaped once each (escapeControls, keeping TAB: the same bytes
 * as escaping the whole line, since every other part is ASCII made here).
 */
import type { BindingList } from '../core/binding-list.js';
import { escapeControls } from '../core/escape.js';
import { AF_INET, formatPrefix } from '../core/net.js';
import { Sizes } from '../core/layout.js';
import type { IndexRange } from './format.js';
import { outBytes } from './output.js';

/** Bytes per chunk handed to stdout. */
const CHUNK = 1 << 18;

const ARROW = Buffer.from(' -> ');
const WAS = Buffer.from(' (was ');

/** Writes diff lines into chunks; call end() once done. */
export class DiffLines {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  private readonly labels = new Map<string, Buffer>();

  /** One line: `sign` ('+', '-' or '~'), the range of entries of `list`, its label, and `was` (the old label) for '~'. */
  line(sign: string, list: BindingList, r: IndexRange, was?: string): void {
    const label = this.label(r.label);
    const old = was === undefined ? null : this.label(was);
    // Longest text before the label: "~ udp " + an IPv6 prefix (at most 43) + " 65535-65535".
    const need = 80 + label.length + (old ? old.length + WAS.length + 1 : 0);
    if (this.pos + need > this.buf.length) this.flush(need);
    const i = r.index;
    this.ascii(`${sign} ${list.protocol(i)} `);
    const keys = list.keys;
    const o = i * Sizes.bindingKey;
    if (keys[o + 4] === AF_INET) {
      for (let k = 0; k < 4; k++) {
        if (k > 0) this.byte(0x2e);
        this.uint(keys[o + 8 + k] as number);
      }
      this.byte(0x2f);
      this.uint(list.len(i));
    } else this.ascii(formatPrefix(list.prefix(i)));
    this.byte(0x20);
    this.uint(r.first);
    if (r.last !== r.first) {
      this.byte(0x2d);
      this.uint(r.last);
    }
    this.bytes(ARROW);
    this.bytes(label);
    if (old) {
      this.bytes(WAS);
      this.bytes(old);
      this.byte(0x29);
    }
    this.byte(0x0a);
  }

  /** Write what is left. */
  end(): void {
    if (this.pos > 0) outBytes(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  /** Hand the full chunk to stdout (which may keep it: a new one is used). */
  private flush(need: number): void {
    this.end();
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK, need));
  }

  private label(text: string): Buffer {
    let b = this.labels.get(text);
    if (b === undefined) this.labels.set(text, (b = Buffer.from(escapeControls(text, '\t'))));
    return b;
  }

  private byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  private bytes(b: Buffer): void {
    for (let k = 0; k < b.length; k++) this.buf[this.pos++] = b[k] as number;
  }

  /** ASCII text made here (keywords, an IPv6 prefix). */
  private ascii(text: string): void {
    for (let k = 0; k < text.length; k++) this.buf[this.pos++] = text.charCodeAt(k);
  }

  private uint(n: number): void {
    if (n >= 10) this.uint(Math.floor(n / 10));
    this.buf[this.pos++] = 0x30 + (n % 10);
  }
}
