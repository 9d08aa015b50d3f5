/**
 * Building a whole binding set (apply files, the config's Bind= lines) into
 * a BindingList without an object per binding:
 *
 * - every entry is validated; every problem is collected with its location
 *   (up to MAX_PROBLEMS), so a user fixes a file in one pass;
 * - ranges and "no protocol = tcp and udp" are COUNTED before anything is
 *   expanded: a set larger than the limit is refused in bounded time and
 *   memory;
 * - duplicates with the same label collapse; with different labels they are
 *   an error naming both places.
 *
 * Tags of the result are indices into `labels`.
 */
import { BindingList, KeyIndex } from '../core/binding-list.js';
import { labelProblem } from '../core/labels.js';
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, formatPrefix, parsePortRangeText, parsePrefixInto, parsePrefixText, quote, type PortRange } from '../core/net.js';

/** Most problems reported for one set. */
export const MAX_PROBLEMS = 100;

/** One problem: where and what. */
export interface SetProblem {
  /** "file:line:col: bindings[3]" or "web.conf:4". */
  where: string;
  message: string;
  /** The stable error code of this kind of problem. */
  code: ProblemCode;
}

/** Codes of entry problems. */
export type ProblemCode = 'ERR_INVALID_LABEL' | 'ERR_INVALID_PREFIX' | 'ERR_INVALID_PORT' | 'ERR_INVALID_PROTOCOL' | 'ERR_INVALID_FILE' | 'ERR_NO_SPACE';

/** One entry as given (apply file or config). */
export interface EntryInput {
  label: unknown;
  prefix: unknown;
  port: unknown;
  /** Absent: tcp and udp. */
  protocol?: unknown;
}

/** The built set. */
export interface BuiltSet {
  list: BindingList;
  labels: string[];
  /** An index of `list` by key, when the builder made one (it is kept valid only while keys are not changed). */
  index?: KeyIndex;
}

/** Where an entry came from: a text, or an entry number resolved by the builder's locator. */
export type Where = string | number;

const SLOT_TCP = 1;
const SLOT_UDP = 2;

/**
 * Validates entries and encodes them straight into a BindingList as they
 * come: an entry's expansion (ports × protocols) is counted before it is
 * expanded, so the set never grows past the limit.
 */
export class BindingSetBuilder {
  readonly problems: SetProblem[] = [];
  /** Problems beyond MAX_PROBLEMS that were not kept. */
  dropped = 0;
  private readonly labelIndex = new Map<string, number>();
  readonly labels: string[] = [];
  private total = 0;
  private readonly limit: number;
  private readonly list: BindingList;
  private readonly index: KeyIndex;
  /** Entry number of each binding (for duplicate messages). */
  private from = new Uint32Array(1024);
  /** Where prefixInto() leaves the address (callers may fill it themselves). */
  readonly scratch = new Uint8Array(16);
  private readonly scratch4 = this.scratch.subarray(0, 4);
  /** `scratch` as four 32-bit words (memory order, as a key holds the address). */
  private readonly scratchWords = new Uint32Array(this.scratch.buffer, this.scratch.byteOffset, 4);
  private readonly labelByHash = new Map<number, number>();
  private entries = 0;
  private readonly whereOf: string[] = [];
  /** Turns a numeric Where into text (set by a scanner that keeps positions). */
  locate: (entry: number) => string = (entry) => `entry ${entry}`;

  /** `limit`: most bindings the set may expand to. */
  constructor(limit: number, expected = 1024) {
    this.limit = limit;
    this.list = new BindingList(Math.min(expected, limit));
    this.index = new KeyIndex(this.list, Math.min(expected, limit));
  }

  private text(where: Where): string {
    return typeof where === 'number' ? this.locate(where) : where;
  }

  /** Record a problem. */
  problem(where: Where, message: string, code: ProblemCode = 'ERR_INVALID_FILE'): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ where: this.text(where), message, code });
    else this.dropped++;
  }

  /** Entries seen so far (valid or not): the number the next entry gets. */
  get entryCount(): number {
    return this.entries;
  }

  /** Count an entry that was rejected before reaching addFields (keeps entry numbers aligned). */
  skip(): void {
    this.entries++;
  }

  /** Bindings the entries expand to (counted before expanding). */
  get count(): number {
    return this.total;
  }

  /** Validate and encode one entry; problems are recorded, nothing is thrown. */
  add(e: EntryInput, where: Where): void {
    this.addFields(e.label, e.prefix, e.port, e.protocol, where);
  }

  /** The index of a label, registering it; -1 (problem recorded) when it is invalid. */
  labelId(labelIn: unknown, where: Where): number {
    if (typeof labelIn !== 'string') {
      this.problem(where, `label must be a string, got ${quote(labelIn)}`, 'ERR_INVALID_LABEL');
      return -1;
    }
    const known = this.labelIndex.get(labelIn);
    if (known !== undefined) return known;
    const why = labelProblem(labelIn);
    if (why) {
      this.problem(where, `invalid label: ${why}`, 'ERR_INVALID_LABEL');
      return -1;
    }
    this.labels.push(labelIn);
    this.labelIndex.set(labelIn, this.labels.length - 1);
    return this.labels.length - 1;
  }

  /**
   * labelId() for a label given as bytes `buf[start, end)` (UTF-8, no
   * escapes): a label seen before costs no string.
   */
  labelIdFromBytes(buf: Uint8Array, start: number, end: number, where: Where): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
    // 30 bits: a small integer key (collisions are told apart below).
    h &= 0x3fffffff;
    const cached = this.labelByHash.get(h);
    if (cached !== undefined) {
      const known = this.labels[cached] as string;
      if (known.length === end - start) {
        let same = true;
        for (let i = 0; i < known.length; i++) {
          if (known.charCodeAt(i) !== buf[start + i]) {
            same = false;
            break;
          }
        }
        if (same) return cached;
      }
    }
    const id = this.labelId(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8', start, end), where);
    // Valid labels are ASCII: one byte per character, as compared above.
    if (id >= 0 && cached === undefined) this.labelByHash.set(h, id);
    return id;
  }

  /** Protocol bits (1 tcp, 2 udp) of a protocol field; 0 (problem recorded) when invalid. */
  protocolBits(protocolIn: unknown, where: Where): number {
    if (protocolIn === undefined) return SLOT_TCP | SLOT_UDP;
    const p = typeof protocolIn === 'string' ? protocolIn.toLowerCase() : '';
    if (p === 'tcp') return SLOT_TCP;
    if (p === 'udp') return SLOT_UDP;
    this.problem(where, `invalid protocol ${quote(protocolIn)}: expected tcp or udp (or leave it out for both)`, 'ERR_INVALID_PROTOCOL');
    return 0;
  }

  /** Parse a prefix field into `scratch`: returns its length (+0x100 for IPv6), or -1 (problem recorded). */
  prefixInto(prefixIn: unknown, where: Where): number {
    const packed = typeof prefixIn === 'string' ? parsePrefixInto(prefixIn, this.scratch) : -1;
    if (packed < 0) {
      const why = typeof prefixIn === 'string' ? parsePrefixText(prefixIn) : 'expected an IP address or prefix such as 192.0.2.0/24';
      this.problem(where, `invalid prefix ${quote(prefixIn)}: ${typeof why === 'string' ? why : 'invalid'}`, 'ERR_INVALID_PREFIX');
    }
    return packed;
  }

  /** Parse a port field: first | last << 16, or -1 (problem recorded). */
  portRange(portIn: unknown, where: Where): number {
    // Unsigned: a port from 32768 on would make the packed pair negative (read as "invalid").
    if (typeof portIn === 'number' && Number.isInteger(portIn) && portIn >= 0 && portIn <= 65535 && !Object.is(portIn, -0)) return (portIn | (portIn << 16)) >>> 0;
    const portText = typeof portIn === 'number' ? (Number.isInteger(portIn) && portIn >= 0 && !Object.is(portIn, -0) ? String(portIn) : null) : typeof portIn === 'string' ? portIn : null;
    const pt: PortRange | string = portText === null ? 'expected a number from 0 to 65535 or a range such as "8000-8080"' : parsePortRangeText(portText);
    if (typeof pt === 'string') {
      this.problem(where, `invalid port ${quote(portIn)}: ${pt}`, 'ERR_INVALID_PORT');
      return -1;
    }
    return (pt.first | (pt.last << 16)) >>> 0;
  }

  /** add() without the entry object. */
  addFields(labelIn: unknown, prefixIn: unknown, portIn: unknown, protocolIn: unknown, where: Where): void {
    // Every field is checked (not just up to the first problem), so all are reported.
    const label = this.labelId(labelIn, where);
    const protocols = this.protocolBits(protocolIn, where);
    const packed = this.prefixInto(prefixIn, where);
    const ports = this.portRange(portIn, where);
    if (label < 0 || protocols === 0 || packed < 0 || ports < 0) this.skip();
    else this.addEncoded(label, packed, ports & 0xffff, ports >>> 16, protocols, where);
  }

  /**
   * Add an entry whose fields are already checked: a label index, the prefix
   * in `scratch` (`packed` as returned by prefixInto), a port range and
   * protocol bits. Counts the expansion before expanding it.
   */
  addEncoded(label: number, packed: number, first: number, last: number, protocols: number, where: Where): void {
    const entry = this.entries++;
    const n = (last - first + 1) * (protocols === 3 ? 2 : 1);
    const before = this.total;
    this.total += n;
    if (this.total > this.limit) {
      // Reported once, at the entry that crosses the limit; nothing more is expanded.
      if (before <= this.limit) this.problem(where, `the set expands to more than the ${this.limit} bindings allowed (ranges × protocols are counted, not expanded); nothing was changed`, 'ERR_NO_SPACE');
      return;
    }
    // Encoded even once the set has a problem (it is refused anyway): a conflict later in the
    // file is reported too, so the error (its code, its exit status) does not depend on order.
    if (typeof where === 'string') this.whereOf[entry] = where;
    const v6 = (packed & 0x100) !== 0;
    const len = packed & 0xff;
    // The key's words (binding_key, host order): prefixlen, family | protocol << 8 | port (big-endian) << 16, address.
    const a = this.scratchWords;
    const a0 = a[0] as number;
    const a1 = v6 ? (a[1] as number) : 0;
    const a2 = v6 ? (a[2] as number) : 0;
    const a3 = v6 ? (a[3] as number) : 0;
    const family = v6 ? AF_INET6 : AF_INET;
    for (let bit = SLOT_TCP; bit <= SLOT_UDP; bit <<= 1) {
      if (!(protocols & bit)) continue;
      const head = family | ((bit === SLOT_TCP ? IPPROTO_TCP : IPPROTO_UDP) << 8);
      for (let port = first; port <= last; port++) {
        const i = this.list.pushWords(32 + len, head | ((port >>> 8) << 16) | ((port & 0xff) << 24), a0, a1, a2, a3, label);
        const prev = this.index.add(i);
        if (prev < 0) {
          if (i >= this.from.length) {
            const grown = new Uint32Array(Math.max(i + 1, this.from.length * 2));
            grown.set(this.from);
            this.from = grown;
          }
          this.from[i] = entry;
          continue;
        }
        this.list.count--; // the duplicate just pushed
        this.total--;
        if (this.list.tag(prev) !== label) this.duplicate(where, bit, v6, len, port, label, prev);
      }
    }
  }

  /** Record the problem of a binding given here with `label` and at entry `prev`'s place with another. */
  private duplicate(where: Where, bit: number, v6: boolean, len: number, port: number, label: number, prev: number): void {
    const firstEntry = this.from[prev] ?? 0;
    const protocol = bit === SLOT_TCP ? 'tcp' : 'udp';
    const addr = Uint8Array.from(v6 ? this.scratch : this.scratch4);
    this.problem(
      where,
      `${protocol} ${formatPrefix({ domain: v6 ? 'ipv6' : 'ipv4', addr, len })} ${port} is bound to ${quote(this.labels[label])} here and to ${quote(this.labels[this.list.tag(prev)])} at ${this.whereOf[firstEntry] ?? this.locate(firstEntry)}`,
    );
  }

  /** True when every entry was valid and the set fits. */
  get ok(): boolean {
    return this.problems.length === 0 && this.dropped === 0;
  }

  /** The set (call only when `ok`). */
  build(): BuiltSet {
    return { list: this.list, labels: this.labels, index: this.index };
  }
}
