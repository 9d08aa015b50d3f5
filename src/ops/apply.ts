/**
 * apply: replace the whole binding set, atomically (one transaction through
 * the executor). The diff against the live set works on packed keys, with
 * no string or object per binding.
 */
import fs from 'node:fs';
import { BindingList, KeyIndex } from '../core/binding-list.js';
import { slotOf } from '../core/layout.js';
import { fsReason, ManifoldError } from '../errors.js';
import type { DispatcherMaps } from '../state/maps.js';
import { BindingSetBuilder, type BuiltSet, type SetProblem } from './binding-set.js';
import { JsonSyntaxError, scanApplyJson } from './apply-json.js';
import { execute, type ExecResult } from './executor.js';
import { liveSetIs, recordLiveSet, setDigest } from './apply-digest.js';
import { addRef, emptyPlan, rebuildsFromTarget, type Plan } from './plan.js';
import { View } from './view.js';
import { refuseWholeFamily } from './safety.js';
import { planExactTargets, type ConfigTargets, type Policy, type TargetChange } from './target.js';
import { formatPrefix } from '../core/net.js';
import { oneLine } from '../core/escape.js';

/** Largest apply input read (file or standard input). */
export const MAX_APPLY_BYTES = 256 * 1024 * 1024;

/** What an apply changes, as indices (no object per binding). */
export interface ApplyDiff {
  /** The new set (tags = destination ids). */
  target: BindingList;
  /** The live set before (tags = destination ids). */
  live: BindingList;
  /** Indices into target of new bindings. */
  added: number[];
  /** Indices into target of relabelled bindings, with the index into live of the old one. */
  relabelled: [number, number][];
  /** Indices into live of removed bindings. */
  removed: number[];
  unchanged: number;
  /** Label of a destination id (old and new). */
  labelOf(id: number): string;
}

/** The result of apply. */
export interface ApplyResult extends ApplyDiff {
  exec: ExecResult | null;
  /** One warning per destination that gets bindings but has no socket. */
  unserved: string[];
  /** apply --config: what changed in the address targets (empty otherwise). */
  targets: TargetChange[];
  /** apply --config: the new policy when it changed, else null. */
  policy: Policy | null;
}

/** Read an apply input: a regular file, or "-" for standard input; bounded. */
export function readApplyInput(arg: string): Buffer {
  if (arg === '-') return readBounded(0, 'standard input');
  let fd: number;
  try {
    fd = fs.openSync(arg, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ManifoldError('ERR_FILE_NOT_FOUND', `cannot read ${arg}: no such file`);
    if (code === 'EACCES' || code === 'EPERM') throw new ManifoldError('ERR_PERMISSION', `cannot read ${arg}: permission denied`);
    throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${arg}: ${fsReason(err)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${arg}: it is a directory`);
    if (!st.isFile()) throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${arg}: not a regular file (use "-" to read standard input)`);
    if (st.size > MAX_APPLY_BYTES) throw new ManifoldError('ERR_INVALID_FILE', `${arg} is ${st.size} bytes, more than the ${MAX_APPLY_BYTES} an apply file may have`);
    return readBounded(fd, arg, st.size);
  } finally {
    fs.closeSync(fd);
  }
}

/** Read to the end, at most MAX_APPLY_BYTES; `sizeHint` (a regular file's size) makes it one buffer and one read. */
function readBounded(fd: number, what: string, sizeHint = 0): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (;;) {
    const want = parts.length === 0 && sizeHint > 0 ? sizeHint + 1 : 1 << 20;
    const buf = Buffer.allocUnsafeSlow(Math.min(want, MAX_APPLY_BYTES + 1 - total));
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (code === 'EOF') break;
      if (code === 'EISDIR') throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${what}: it is a directory`);
      throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${what}: ${fsReason(err)}`);
    }
    if (n === 0) break;
    total += n;
    if (total > MAX_APPLY_BYTES) throw new ManifoldError('ERR_INVALID_FILE', `${what} is larger than the ${MAX_APPLY_BYTES} bytes an apply input may have`);
    parts.push(buf.subarray(0, n));
  }
  // One part (a regular file read at once): no copy.
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/** Format a builder's problems as one ERR_INVALID_FILE error listing each (or return when there are none). */
export function throwProblems(problems: readonly SetProblem[], dropped: number, what: string): void {
  if (problems.length === 0 && dropped === 0) return;
  const n = problems.length + dropped;
  // One kind of problem keeps its own code (e.g. ERR_INVALID_PREFIX); a mix is ERR_INVALID_FILE.
  const codes = new Set(problems.map((p) => p.code));
  const code = codes.size === 1 && dropped === 0 ? [...codes][0]! : 'ERR_INVALID_FILE';
  // The message is split into lines at its own line breaks only: any in a part (a file name) are escaped.
  const lines = problems.map((p) => `  ${oneLine(p.where)}: ${oneLine(p.message)}`);
  if (dropped > 0) lines.push(`  … and ${dropped} more`);
  throw new ManifoldError(code, `${oneLine(what)}: ${n} problem${n === 1 ? '' : 's'} (nothing was changed):\n${lines.join('\n')}`, {
    problems: problems.map((p) => ({ ...p })),
    more: dropped,
    multiline: true,
  });
}

/** Parse an apply document (already read) into a set; throws ERR_INVALID_FILE listing every problem. */
export function parseApplyDocument(buf: Buffer, name: string, limit: number): BuiltSet {
  // About 60 bytes of JSON per binding: size the set so it rarely grows.
  const builder = new BindingSetBuilder(limit, Math.min(limit, Math.ceil(buf.length / 60) + 16));
  try {
    scanApplyJson(buf, name, builder);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new ManifoldError('ERR_INVALID_FILE', `${name}:${err.line}:${err.column}: malformed JSON: ${err.message}`);
    throw err;
  }
  throwProblems(builder.problems, builder.dropped, name);
  return builder.build();
}

/**
 * Rewrite the tags of `set.list` from label indices to destination ids.
 * Destinations that do not exist yet are allocated and added to
 * `plan.create` (and to `created`); without a plan, a missing destination
 * makes it return false with the set unchanged.
 */
function tagWithIds(view: View, set: BuiltSet, plan: Plan | null, created: Map<number, string>): boolean {
  // Destination id of each (label, slot), -1 until first seen.
  const ids = new Int32Array(set.labels.length * 4).fill(-1);
  const target = set.list;
  const tags = target.tags;
  for (let i = 0; i < target.count; i++) {
    const k = (tags[i] as number) * 4 + target.slot(i);
    if ((ids[k] as number) >= 0) continue;
    const key = { label: set.labels[tags[i] as number] as string, domain: target.domain(i), protocol: target.protocol(i) };
    const d = view.dest(key);
    if (d) {
      ids[k] = d.id;
      continue;
    }
    if (!plan) return false;
    const id = view.allocateId(key);
    plan.create.push({ ...key, id, refs: [0, 0], flags: 0 });
    created.set(id, key.label);
    ids[k] = id;
  }
  for (let i = 0; i < target.count; i++) tags[i] = ids[(tags[i] as number) * 4 + target.slot(i)] as number;
  return true;
}

/**
 * Plan the replacement of the live set by `set`. The set is consumed: its
 * list becomes the plan's target, its tags rewritten from label indices to
 * destination ids. `liveSet`: the live bindings, when already read.
 */
export function planApply(view: View, set: BuiltSet, liveSet?: BindingList): { plan: Plan; diff: ApplyDiff } {
  const plan = emptyPlan();
  const created = new Map<number, string>();
  tagWithIds(view, set, plan, created);
  const target = set.list;
  const tags = target.tags;
  const live = liveSet ?? view.maps.readBindings(view.live);
  // Each live binding is looked up in the new set's index (the builder's, when it made one):
  // wasAt[i] = 1 + the index into live of target i's key, 0 when it is new.
  const targetIx = set.index ?? KeyIndex.of(target);
  const wasAt = new Int32Array(target.count);
  const removed: number[] = [];
  const liveTags = live.tags;
  let unchanged = 0;
  for (let j = 0; j < live.count; j++) {
    const i = targetIx.find(live, j);
    if (i >= 0 && wasAt[i] === 0) {
      wasAt[i] = j + 1;
      if (liveTags[j] === tags[i]) unchanged++;
    } else removed.push(j);
  }
  // The labels are read now: a destination the plan removes is gone when the result is printed
  // (an empty set otherwise reads them only then, and printed "#id" for its removed bindings).
  view.destinations();
  const diff: ApplyDiff = {
    target, live, added: [], relabelled: [], removed, unchanged,
    labelOf: (id) => created.get(id) ?? view.labelOf(id),
  };
  // A large change is rebuilt from the target by the executor: the put and delete lists are left out then.
  const omit = rebuildsFromTarget(target.count - unchanged + removed.length, target.count);
  plan.puts = new BindingList(omit ? 0 : target.count - unchanged);
  plan.omitted = omit ? target.count - unchanged + removed.length : 0;
  // Binding count changes per destination id, summed here (one Map update per id, not per binding).
  const refs = new Int32Array(view.maps.limits.maxIds);
  const bump = (id: number, n: number): void => {
    if (id < refs.length) refs[id] = (refs[id] as number) + n;
    else addRef(plan, id, n);
  };
  // The same set again (every binding unchanged): nothing to put, no pass over the set.
  for (let i = 0; unchanged < target.count && i < target.count; i++) {
    const j = (wasAt[i] as number) - 1;
    const id = tags[i] as number;
    if (j < 0) {
      diff.added.push(i);
      if (!omit) {
        plan.puts.pushFrom(target, i, id);
        plan.putIsNew.push(1);
      }
      bump(id, 1);
      continue;
    }
    if (liveTags[j] === id) continue;
    diff.relabelled.push([i, j]);
    if (!omit) {
      plan.puts.pushFrom(target, i, id);
      plan.putIsNew.push(0);
    }
    bump(id, 1);
    bump(liveTags[j] as number, -1);
  }
  plan.deletes = new BindingList(omit ? 0 : removed.length);
  for (const j of removed) {
    if (!omit) plan.deletes.pushFrom(live, j, liveTags[j] as number);
    bump(liveTags[j] as number, -1);
  }
  for (let id = 0; id < refs.length; id++) if (refs[id] !== 0) addRef(plan, id, refs[id] as number);
  // Only destinations some binding of the new set uses were created above.
  plan.target = target;
  return { plan, diff };
}

/**
 * Destinations of the new set without a socket: one warning each; a
 * whole-family binding (prefix /0) of one is refused unless `force`. A label
 * in `awaited` (label → the systemd unit that registers its sockets) gets a
 * line in `awaiting` instead of a warning: at boot and on reload its socket
 * comes once that unit starts.
 */
export function checkUnserved(view: View, diff: ApplyDiff, force: boolean, awaited: ReadonlyMap<string, string> = new Map()): { warnings: string[]; awaiting: string[] } {
  const t = diff.target;
  const tags = t.tags;
  let maxId = 0;
  for (let i = 0; i < t.count; i++) if ((tags[i] as number) > maxId) maxId = tags[i] as number;
  // Per id: 0 not asked yet, 1 served, 2 not served; for the unserved: how many bindings, the first, the first /0.
  const served = new Uint8Array(maxId + 1);
  const n = new Uint32Array(maxId + 1);
  const example = new Int32Array(maxId + 1);
  const wide = new Int32Array(maxId + 1).fill(-1);
  const unserved: number[] = [];
  for (let i = 0; i < t.count; i++) {
    const id = tags[i] as number;
    let ok = served[id];
    if (ok === 0) {
      ok = view.served(id) ? 1 : 2;
      served[id] = ok;
      if (ok === 2) {
        example[id] = i;
        unserved.push(id);
      }
    }
    if (ok === 1) continue;
    n[id] = (n[id] as number) + 1;
    if ((wide[id] as number) < 0 && t.len(i) === 0) wide[id] = i;
  }
  const counts = new Map<number, { n: number; example: number; wide: number }>(unserved.map((id) => [id, { n: n[id] as number, example: example[id] as number, wide: wide[id] as number }]));
  const warnings: string[] = [];
  const awaiting: string[] = [];
  for (const [id, c] of counts) {
    const label = diff.labelOf(id);
    const destination = `${t.domain(c.example)}:${t.protocol(c.example)}:${label}`;
    if (c.wide >= 0) refuseWholeFamily({ destination, protocol: t.protocol(c.wide), prefix: t.prefix(c.wide), first: t.port(c.wide), last: t.port(c.wide) }, force);
    const unit = awaited.get(label);
    if (unit !== undefined) {
      awaiting.push(`${destination} has no socket yet: ${unit} registers it when it starts (until then its ${c.n} binding(s) refuse traffic)`);
      continue;
    }
    warnings.push(`${destination} has no socket: its ${c.n} binding(s) (e.g. ${t.protocol(c.example)} ${formatPrefix(t.prefix(c.example))} ${t.port(c.example)}) refuse traffic until a socket is registered`);
  }
  return { warnings, awaiting };
}

/**
 * The result of an apply of the set the live generation already holds (see
 * src/ops/apply-digest.ts), without reading or diffing the live bindings;
 * null when a destination of the set is missing (then the full apply runs).
 */
function unchangedApply(view: View, set: BuiltSet, dryRun: boolean, force: boolean): ApplyResult | null {
  const created = new Map<number, string>();
  if (!tagWithIds(view, set, null, created)) return null;
  const diff: ApplyDiff = {
    target: set.list, live: new BindingList(0), added: [], relabelled: [], removed: [], unchanged: set.list.count,
    labelOf: (id) => view.labelOf(id),
  };
  const unserved = checkUnserved(view, diff, force).warnings;
  // As any no-op apply: nothing is written, unless an earlier write was interrupted (then it is repaired).
  return { ...diff, exec: dryRun ? null : execute(view.maps, emptyPlan()), unserved, targets: [], policy: null };
}

/** Replace the live set (or, with dryRun, only compute the diff). */
export function apply(maps: DispatcherMaps, set: BuiltSet, dryRun: boolean, opts: { force?: boolean; targets?: ConfigTargets | undefined } = {}): ApplyResult {
  const view = new View(maps);
  // A plain apply of the set the live generation holds skips the diff; it keeps the record current.
  const digest = opts.targets ? null : setDigest(set.list, set.labels);
  if (digest !== null && liveSetIs(maps, view.live, digest)) {
    const same = unchangedApply(view, set, dryRun, opts.force ?? false);
    if (same) return same;
  }
  const result = applyPlanned(maps, view, set, dryRun, opts);
  if (digest !== null && !dryRun && result.exec) recordLiveSet(maps, digest);
  return result;
}

function applyPlanned(maps: DispatcherMaps, view: View, set: BuiltSet, dryRun: boolean, opts: { force?: boolean; targets?: ConfigTargets | undefined }): ApplyResult {
  const { plan, diff } = planApply(view, set);
  // apply --config: the targets and the policy in the same plan (all or nothing with the bindings).
  const t = opts.targets ? planExactTargets(view, plan, opts.targets.assignments, { explicitFirst: opts.targets.explicitFirst }) : { changes: [], policy: null };
  const unserved = checkUnserved(view, diff, opts.force ?? false).warnings;
  const changed = diff.added.length + diff.relabelled.length + diff.removed.length > 0 || plan.destInfo.size > 0 || plan.policy !== null;
  const extra = { unserved, targets: t.changes, policy: t.policy };
  if (dryRun) return { ...diff, exec: null, ...extra };
  // A no-op apply writes nothing, unless an earlier write was interrupted: then it repairs that.
  if (!changed) return { ...diff, exec: execute(maps, emptyPlan()), ...extra };
  return { ...diff, exec: execute(maps, plan), ...extra };
}
