/**
 * Where each binding of a generation lives and what the lookup metadata
 * says (bpf/manifold.h): exact-port bindings in the hash by length when a
 * (family, protocol) slot has at most EXACT_LENS distinct lengths, else the
 * longest length in the hash and the rest in the exact-port trie; port-0
 * bindings in the all-ports trie. The port words and gen_meta follow.
 *
 * A small generation (at most SMALL_GENERATION bindings) keeps every
 * exact-port binding in the exact-port trie instead ("trie mode": no hashed
 * length, the slot's trie bit set, OTHER port bits): looking up a trie of a
 * few entries costs less than hashing the key, for a hit and for a miss on a
 * port some binding names. The dispatcher needs nothing new for it (it is
 * how an ABI 1 generation is migrated, see src/state/migrate.ts). Writes
 * keep a generation in trie mode while it stays small; the write that would
 * make it larger rebuilds it in the hashed layout (src/ops/executor.ts).
 *
 * Pure: the kernel maps and the in-memory twin both place bindings with
 * this module, so they hold the same entries.
 */
import type { BindingList } from './binding-list.js';
import { EXACT_LENS, PORT_FIRST, PORT_OTHER, PORT_WORDS, SLOTS, portShift } from './layout.js';

/** Where a binding lives. */
export const Place = { hash: 0, exactTrie: 1, wildTrie: 2 } as const;
/** One of Place's values. */
export type PlaceId = (typeof Place)[keyof typeof Place];

/** gen_meta: what the dispatcher looks up per slot. */
export interface GenMeta {
  /** Longest port-0 prefix + 1 per slot (0 = none). */
  wildPlus1: number[];
  /** Bit s: slot s keeps exact-port bindings in the trie. */
  trieSlots: number;
  /** Hashed exact-port lengths per slot, longest first. */
  exactLens: number[][];
  /** The namespace's policy (POLICY_* of core/layout.ts): not about placement, carried along with the generation. */
  flags: number;
}

/** An empty gen_meta. */
export function emptyMeta(): GenMeta {
  return { wildPlus1: [0, 0, 0, 0], trieSlots: 0, exactLens: [[], [], [], []], flags: 0 };
}

/** A deep copy. */
export function copyMeta(m: GenMeta): GenMeta {
  return { wildPlus1: [...m.wildPlus1], trieSlots: m.trieSlots, exactLens: m.exactLens.map((l) => [...l]), flags: m.flags };
}

/** Word index inside one generation's words: slot * PORT_WORDS + port / 32. */
export function wordOf(slot: number, port: number): number {
  return slot * PORT_WORDS + (port >> 5);
}

/** The port word bit of `port` for `which` (PORT_FIRST or PORT_OTHER). */
export function portBit(port: number, which: number): bigint {
  return BigInt(which) << BigInt(portShift(port));
}

/** A generation laid out from scratch. */
export interface Layout {
  meta: GenMeta;
  /** SLOTS * PORT_WORDS words. */
  words: BigUint64Array;
  /** Place of each entry of the list. */
  places: Uint8Array;
  /** Entries placed in the hash. */
  hashCount: number;
}

/** Lay out a whole generation (exact: no over-approximation). */
export function layoutGeneration(list: BindingList): Layout {
  const lens: Set<number>[] = [new Set(), new Set(), new Set(), new Set()];
  const meta = emptyMeta();
  for (let i = 0; i < list.count; i++) {
    const s = list.slot(i);
    const len = list.len(i);
    if (list.port(i) === 0) meta.wildPlus1[s] = Math.max(meta.wildPlus1[s] ?? 0, len + 1);
    else lens[s]!.add(len);
  }
  const small = list.count <= SMALL_GENERATION;
  for (let s = 0; s < SLOTS; s++) {
    const sorted = [...lens[s]!].sort((a, b) => b - a);
    if (small && sorted.length > 0) meta.trieSlots |= 1 << s;
    else if (sorted.length <= EXACT_LENS) meta.exactLens[s] = sorted;
    else {
      meta.exactLens[s] = [sorted[0]!];
      meta.trieSlots |= 1 << s;
    }
  }
  // Port bits gathered as 32-bit halves (two bits per port never straddle them), made u64 words at the end.
  const halves = new Uint32Array(SLOTS * PORT_WORDS * 2);
  const places = new Uint8Array(list.count);
  let hashCount = 0;
  for (let i = 0; i < list.count; i++) {
    const port = list.port(i);
    if (port === 0) {
      places[i] = Place.wildTrie;
      continue;
    }
    const s = list.slot(i);
    const len = list.len(i);
    const hashed = meta.exactLens[s]!;
    const first = hashed[0] === len;
    if (hashed.includes(len)) {
      places[i] = Place.hash;
      hashCount++;
    } else places[i] = Place.exactTrie;
    const shift = portShift(port);
    const h = wordOf(s, port) * 2 + (shift >> 5);
    halves[h] = ((halves[h] as number) | ((first ? PORT_FIRST : PORT_OTHER) << (shift & 31))) >>> 0;
  }
  const words = new BigUint64Array(SLOTS * PORT_WORDS);
  for (let w = 0; w < words.length; w++) {
    const lo = halves[w * 2] as number;
    const hi = halves[w * 2 + 1] as number;
    if (lo !== 0 || hi !== 0) words[w] = (BigInt(hi) << 32n) | BigInt(lo);
  }
  return { meta, words, places, hashCount };
}

/** Where an existing key lives under `meta` (for deletes and lookups). */
export function placeOf(meta: GenMeta, slot: number, len: number, port: number): PlaceId {
  if (port === 0) return Place.wildTrie;
  return meta.exactLens[slot]!.includes(len) ? Place.hash : Place.exactTrie;
}

/**
 * Generations of at most this many bindings are laid out in trie mode (see
 * above). Measured with BPF_PROG_TEST_RUN (bench/dataplane.ts): a lookup in a
 * trie of a handful of entries beats hashing the 24-byte key.
 */
export const SMALL_GENERATION = 8;

/** True when slot s of `meta` is in trie mode: every exact-port binding of the slot is in the trie. */
export function trieModeSlot(meta: GenMeta, s: number): boolean {
  return (meta.exactLens[s] ?? []).length === 0 && (meta.trieSlots & (1 << s)) !== 0;
}

/** True when some slot of `meta` is in trie mode. */
export function hasTrieMode(meta: GenMeta): boolean {
  for (let s = 0; s < SLOTS; s++) if (trieModeSlot(meta, s)) return true;
  return false;
}

/**
 * Incremental placement on top of a generation's current metadata. New
 * lengths are added to the hash when there is room; a slot whose new length
 * would be the longest gets its FIRST bits copied to OTHER (the old first
 * length becomes an other length). A slot in trie mode takes every length
 * into its trie; in a small generation, so does a slot without exact-port
 * bindings yet. Anything else needs a rebuild.
 */
export class IncrementalPlacer {
  readonly meta: GenMeta;
  /** Changed words (generation-relative index → new value). */
  readonly changed = new Map<number, bigint>();
  metaChanged = false;
  private readonly word: (w: number) => bigint;

  private readonly small: boolean;

  /**
   * `word(w)` reads the current value of generation-relative word w. `small`:
   * the generation holds at most SMALL_GENERATION bindings after this write,
   * so a slot without exact-port bindings yet starts in trie mode.
   */
  constructor(meta: GenMeta, word: (w: number) => bigint, small = false) {
    this.meta = copyMeta(meta);
    this.word = word;
    this.small = small;
  }

  private current(w: number): bigint {
    const c = this.changed.get(w);
    return c ?? this.word(w);
  }

  private setBits(w: number, bits: bigint): void {
    const cur = this.current(w);
    if ((cur | bits) !== cur) this.changed.set(w, cur | bits);
  }

  /** Place entry i of `list`; null when the generation must be rebuilt instead. */
  place(list: BindingList, i: number): PlaceId | null {
    const s = list.slot(i);
    const len = list.len(i);
    const port = list.port(i);
    if (port === 0) {
      if ((this.meta.wildPlus1[s] ?? 0) < len + 1) {
        this.meta.wildPlus1[s] = len + 1;
        this.metaChanged = true;
      }
      return Place.wildTrie;
    }
    const lens = this.meta.exactLens[s]!;
    let place: PlaceId;
    if (this.small && lens.length === 0 && (this.meta.trieSlots & (1 << s)) === 0) {
      this.meta.trieSlots |= 1 << s;
      this.metaChanged = true;
    }
    if (lens.includes(len)) place = Place.hash;
    else if (lens.length < EXACT_LENS && (this.meta.trieSlots & (1 << s)) === 0) {
      if (lens.length > 0 && len > lens[0]!) this.promote(s);
      lens.push(len);
      lens.sort((a, b) => b - a);
      this.metaChanged = true;
      place = Place.hash;
    } else if (trieModeSlot(this.meta, s)) {
      // Trie mode (the caller keeps the generation small, or rebuilds it): the trie holds every length.
      place = Place.exactTrie;
    } else if (lens.length > 0 && len < lens[lens.length - 1]!) {
      // The trie is consulted after every hashed length: only shorter lengths may go there.
      if ((this.meta.trieSlots & (1 << s)) === 0) {
        this.meta.trieSlots |= 1 << s;
        this.metaChanged = true;
      }
      place = Place.exactTrie;
    } else {
      return null;
    }
    this.setBits(wordOf(s, port), portBit(port, lens[0] === len && place === Place.hash ? PORT_FIRST : PORT_OTHER));
    return place;
  }

  /** A new longest length: every FIRST bit of the slot (this write's too) becomes an OTHER bit as well. */
  private promote(slot: number): void {
    for (let p = 0; p < PORT_WORDS; p++) {
      const w = slot * PORT_WORDS + p;
      const cur = this.current(w);
      if (cur === 0n) continue;
      this.setBits(w, (cur & 0x5555555555555555n) << 1n);
    }
  }
}
