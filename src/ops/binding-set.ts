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
import { formatPrefix, parsePortRangeText, parsePrefixText, quote, type PortRange, type Prefix, type Protocol } from '../core/net.js';

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

/** A validated entry, before expansion. */
interface Entry {
  label: number;
  protocols: Protocol[];
  prefix: Prefix;
  ports: PortRange;
  where: string;
}

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
}

/** Collects entries, then expands them once they are all known to be valid and to fit. */
export class BindingSetBuilder {
  readonly problems: SetProblem[] = [];
  /** Problems beyond MAX_PROBLEMS that were not kept. */
  dropped = 0;
  private readonly entries: Entry[] = [];
  private readonly labelIndex = new Map<string, number>();
  readonly labels: string[] = [];
  private total = 0;
  private readonly limit: number;

  /** `limit`: most bindings the set may expand to. */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Record a problem. */
  problem(where: string, message: string, code: ProblemCode = 'ERR_INVALID_FILE'): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ where, message, code });
    else this.dropped++;
  }

  /** Bindings the entries expand to (counted, not expanded). */
  get count(): number {
    return this.total;
  }

  /** Validate one entry; problems are recorded, nothing is thrown. */
  add(e: EntryInput, where: string): void {
    let ok = true;
    let label = -1;
    if (typeof e.label !== 'string') {
      this.problem(where, `label must be a string, got ${quote(e.label)}`, 'ERR_INVALID_LABEL');
      ok = false;
    } else {
      const known = this.labelIndex.get(e.label);
      if (known !== undefined) label = known;
      else {
        const why = labelProblem(e.label);
        if (why) {
          this.problem(where, `invalid label: ${why}`, 'ERR_INVALID_LABEL');
          ok = false;
        } else {
          label = this.labels.length;
          this.labels.push(e.label);
          this.labelIndex.set(e.label, label);
        }
      }
    }
    let protocols: Protocol[] = ['tcp', 'udp'];
    if (e.protocol !== undefined) {
      const p = typeof e.protocol === 'string' ? e.protocol.toLowerCase() : '';
      if (p === 'tcp' || p === 'udp') protocols = [p];
      else {
        this.problem(where, `invalid protocol ${quote(e.protocol)}: expected tcp or udp (or leave it out for both)`, 'ERR_INVALID_PROTOCOL');
        ok = false;
      }
    }
    let prefix: Prefix | null = null;
    const pr = typeof e.prefix === 'string' ? parsePrefixText(e.prefix) : 'expected an IP address or prefix such as 192.0.2.0/24';
    if (typeof pr === 'string') {
      this.problem(where, `invalid prefix ${quote(e.prefix)}: ${pr}`, 'ERR_INVALID_PREFIX');
      ok = false;
    } else {
      prefix = pr;
      const addr = Uint8Array.from(pr.addr);
      for (let i = 0; i < addr.length; i++) {
        const keep = Math.max(0, Math.min(8, pr.len - i * 8));
        addr[i] = (addr[i] ?? 0) & ((0xff00 >> keep) & 0xff);
      }
      prefix = { ...pr, addr };
    }
    let ports: PortRange | null = null;
    const portText = typeof e.port === 'number' ? (Number.isInteger(e.port) && e.port >= 0 && !Object.is(e.port, -0) ? String(e.port) : null) : typeof e.port === 'string' ? e.port : null;
    const pt = portText === null ? 'expected a number from 0 to 65535 or a range such as "8000-8080"' : parsePortRangeText(portText);
    if (typeof pt === 'string') {
      this.problem(where, `invalid port ${quote(e.port)}: ${pt}`, 'ERR_INVALID_PORT');
      ok = false;
    } else ports = pt;
    if (!ok || !prefix || !ports || label < 0) return;
    const n = (ports.last - ports.first + 1) * protocols.length;
    const before = this.total;
    this.total += n;
    if (this.total > this.limit) {
      // Reported once, at the entry that crosses the limit.
      if (before <= this.limit) this.problem(where, `the set expands to more than the ${this.limit} bindings allowed (ranges × protocols are counted, not expanded); nothing was changed`, 'ERR_NO_SPACE');
      return;
    }
    this.entries.push({ label, protocols, prefix, ports, where });
  }

  /** True when every entry was valid and the set fits. */
  get ok(): boolean {
    return this.problems.length === 0 && this.dropped === 0;
  }

  /** Expand the entries; duplicates across labels become problems. Call only when `ok`. */
  build(): BuiltSet {
    const list = new BindingList(this.total);
    const from = new Uint32Array(this.total);
    const index = new KeyIndex(list, this.total);
    this.entries.forEach((e, ei) => {
      for (const protocol of e.protocols) {
        for (let port = e.ports.first; port <= e.ports.last; port++) {
          const i = list.pushPrefix(protocol, e.prefix, port, e.label);
          const prev = index.add(i);
          if (prev < 0) {
            from[i] = ei;
            continue;
          }
          list.count--; // drop the duplicate just pushed
          if (list.tag(prev) !== e.label) {
            const first = this.entries[from[prev] ?? 0];
            this.problem(
              e.where,
              `${protocol} ${formatPrefix(e.prefix)} ${port} is bound to ${quote(this.labels[e.label])} here and to ${quote(this.labels[list.tag(prev)])} at ${first?.where ?? '?'}`,
            );
          }
        }
      }
    });
    return { list, labels: this.labels };
  }
}
