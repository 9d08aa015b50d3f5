/**
 * Non-overlapping port intervals per key (e.g. "tcp 192.0.2.0/24"), used to
 * find Bind= lines that claim the same (protocol, prefix, port). Port 0
 * ("all ports") is the interval [0, 0]: it only collides with another 0.
 */

interface Interval<T> {
  first: number;
  last: number;
  owner: T;
}

/** A set of disjoint intervals per key. */
export class PortIndex<T> {
  private readonly byKey = new Map<string, Interval<T>[]>();

  /** The owner of an interval that overlaps [first, last], or null. */
  find(key: string, first: number, last: number): T | null {
    const list = this.byKey.get(key);
    if (!list) return null;
    const at = this.position(list, first);
    const before = list[at - 1];
    if (before && before.last >= first) return before.owner;
    const after = list[at];
    if (after && after.first <= last) return after.owner;
    return null;
  }

  /** Insert the interval, or return the owner of an interval it overlaps (and insert nothing). */
  claim(key: string, first: number, last: number, owner: T): T | null {
    const clash = this.find(key, first, last);
    if (clash !== null) return clash;
    let list = this.byKey.get(key);
    if (!list) {
      list = [];
      this.byKey.set(key, list);
    }
    list.splice(this.position(list, first), 0, { first, last, owner });
    return null;
  }

  private position(list: Interval<T>[], first: number): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as Interval<T>).first < first) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
