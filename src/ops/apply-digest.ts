/**
 * The digest of an apply's binding set, and the check that lets an apply
 * of an unchanged set skip reading and diffing the live generation.
 *
 * The digest is a function of the set only (each binding's key words and
 * label), not of the order of the input: the sum, in two independent
 * 32-bit lanes, of a hash of each binding, with the count folded in. After
 * a plain apply, the state keeps {content version of the live generation,
 * digest of the set} (the apply record, see ApplyRecord in
 * src/state/maps.ts). Every write that changes the live generation gives
 * it a new content version, so while the version is the same the live set
 * is exactly the set the digest was made of; an apply whose set has the
 * same digest is then a no-op. A stale or missing record only costs the
 * full diff. A different set with the same 64-bit digest is as unlikely as
 * a random 64-bit collision (about 2^-64 per apply).
 */
import type { BindingList } from '../core/binding-list.js';
import type { ApplyRecord, DispatcherMaps, Gen } from '../state/maps.js';

/** Two lanes of FNV-1a over a label's UTF-16 code units. */
function labelHashes(label: string, out: Uint32Array, at: number): void {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let j = 0; j < label.length; j++) {
    const c = label.charCodeAt(j);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  out[at] = a >>> 0;
  out[at + 1] = b >>> 0;
}

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The two lane sums over entries 0..n-1 (key words, label hashes by tag) into `sums`. */
function laneSums(words: Uint32Array, tags: Uint32Array, n: number, labels: Uint32Array, sums: Uint32Array): void {
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    const t = (tags[i] as number) * 2;
    let a = labels[t] as number;
    let b = labels[t + 1] as number;
    const o = i * 6;
    for (let w = 0; w < 6; w++) {
      const x = words[o + w] as number;
      a = Math.imul(a ^ x, 0x01000193);
      b = Math.imul((b + x) | 0, 0x5bd1e995) ^ (b >>> 13);
    }
    sa = (sa + fmix(a)) | 0;
    sb = (sb + fmix(b ^ 0x27d4eb2f)) | 0;
  }
  sums[0] = sa >>> 0;
  sums[1] = sb >>> 0;
}

/**
 * The digest of a binding set: `list`'s entries (tags = indices into
 * `labels`, the label of each). Independent of the order of the entries.
 */
export function setDigest(list: BindingList, labels: readonly string[]): bigint {
  const lh = new Uint32Array(Math.max(1, labels.length) * 2);
  labels.forEach((l, k) => labelHashes(l, lh, k * 2));
  const sums = new Uint32Array(2);
  laneSums(list.words, list.tags, list.count, lh, sums);
  const a = fmix(((sums[0] as number) ^ Math.imul(list.count, 0x9e3779b1)) >>> 0);
  const b = (sums[1] as number) >>> 0;
  return (BigInt(a) << 32n) | BigInt(b);
}

/** The live generation's content version when it is clean (no write in progress), else null. */
function cleanSeq(maps: DispatcherMaps, live: Gen): bigint | null {
  const st = maps.genState(live);
  return st.flags === 0 && st.seq !== 0n ? st.seq : null;
}

/** True when the live generation holds exactly the set whose digest is `digest` (see the module comment). */
export function liveSetIs(maps: DispatcherMaps, live: Gen, digest: bigint): boolean {
  const seq = cleanSeq(maps, live);
  const rec = maps.applyRecord();
  return seq !== null && rec !== null && rec.seq === seq && rec.digest === digest;
}

/**
 * Record that the live generation now holds the set whose digest is
 * `digest` (call with the writers' lock held, right after the apply made it
 * so). When the live generation is not clean, the record is cleared.
 */
export function recordLiveSet(maps: DispatcherMaps, digest: bigint): void {
  const seq = cleanSeq(maps, maps.activeGen());
  const rec: ApplyRecord | null = seq === null ? null : { seq, digest };
  const old = maps.applyRecord();
  if (old?.seq === rec?.seq && old?.digest === rec?.digest) return;
  maps.setApplyRecord(rec);
}
