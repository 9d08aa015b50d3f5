/**
 * Non-overlapping port intervals per key (e.g. "tcp 192.0.2.0/24"), used to
 * find Bind= lines that claim the same (protocol, prefix, port). Port 0
 * ("all ports") is the interval [0, 0]: it only collides with another 0.
 *
 * Each key's intervals are an AVL tree ordered by first port, so find and
 * claim take O(log n) whatever order the Bind= lines come in (a sorted
 * array with splice took O(n) per claim: a file of 52,000 Bind= lines with
 * descending ports took seconds).
 */

interface Node<T> {
  first: number;
  last: number;
  owner: T;
  left: Node<T> | null;
  right: Node<T> | null;
  height: number;
}

function height<T>(n: Node<T> | null): number {
  return n === null ? 0 : n.height;
}

function update<T>(n: Node<T>): void {
  n.height = 1 + Math.max(height(n.left), height(n.right));
}

function rotateRight<T>(n: Node<T>): Node<T> {
  const l = n.left as Node<T>;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft<T>(n: Node<T>): Node<T> {
  const r = n.right as Node<T>;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

/** Restore the AVL balance at `n` (its subtrees are balanced); returns the subtree's new root. */
function rebalance<T>(n: Node<T>): Node<T> {
  update(n);
  const balance = height(n.left) - height(n.right);
  if (balance > 1) {
    const l = n.left as Node<T>;
    if (height(l.left) < height(l.right)) n.left = rotateLeft(l);
    return rotateRight(n);
  }
  if (balance < -1) {
    const r = n.right as Node<T>;
    if (height(r.right) < height(r.left)) n.right = rotateRight(r);
    return rotateLeft(n);
  }
  return n;
}

/** Insert `node` under `n`; returns the subtree's new root. Recursion depth is the tree's height, O(log n). */
function insert<T>(n: Node<T> | null, node: Node<T>): Node<T> {
  if (n === null) return node;
  if (node.first < n.first) n.left = insert(n.left, node);
  else n.right = insert(n.right, node);
  return rebalance(n);
}

/** A set of disjoint intervals per key. */
export class PortIndex<T> {
  private readonly byKey = new Map<string, Node<T>>();

  /** The owner of an interval that overlaps [first, last], or null. O(log n). */
  find(key: string, first: number, last: number): T | null {
    // The intervals are disjoint, so ordered by first port they are ordered
    // by last port too: only the one just before `first` and the one at or
    // just after it can overlap.
    let before: Node<T> | null = null;
    let after: Node<T> | null = null;
    let n = this.byKey.get(key) ?? null;
    while (n !== null) {
      if (n.first < first) {
        before = n;
        n = n.right;
      } else {
        after = n;
        n = n.left;
      }
    }
    if (before !== null && before.last >= first) return before.owner;
    if (after !== null && after.first <= last) return after.owner;
    return null;
  }

  /** Insert the interval, or return the owner of an interval it overlaps (and insert nothing). O(log n). */
  claim(key: string, first: number, last: number, owner: T): T | null {
    const clash = this.find(key, first, last);
    if (clash !== null) return clash;
    const node: Node<T> = { first, last, owner, left: null, right: null, height: 1 };
    this.byKey.set(key, insert(this.byKey.get(key) ?? null, node));
    return null;
  }
}
