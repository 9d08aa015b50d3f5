/**
 * Atomic replacement of the whole binding set.
 *
 * The new set is built into the inactive generation (a fresh LPM trie, its
 * port bits and wildcard lengths, destination reference counts), then made
 * live by one 4-byte write of active_gen. Until that write the old set is
 * untouched; after it the new set is complete. A process killed anywhere in
 * between leaves the old set live and some garbage that the next write
 * command collects.
 */
import { mapUpdate, mapUpdateBatch } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import {
  BINDING_KEY_SIZE, BINDING_VALUE_SIZE, encodeBindingKey, encodeBindingValue, fpSlot, GEN_META_SIZE, PORT_WORDS, u32,
} from '../core/codec.js';
import { bindingId, compareBindings, type Binding } from '../core/binding.js';
import type { State } from '../state/state.js';
import { createTrie } from '../state/lifecycle.js';
import { DestinationTable, destKeyText } from './destinations.js';
import { listBindings } from './bindings.js';

/** What an apply changes. */
export interface ApplyPlan {
  added: Binding[];
  removed: Binding[];
  relabelled: { binding: Binding; from: string }[];
  unchanged: number;
  total: number;
}

/** Compare the current and desired sets. */
export function diffBindings(current: readonly Binding[], desired: readonly Binding[]): ApplyPlan {
  const cur = new Map<string, Binding>();
  for (const b of current) cur.set(bindingId(b), b);
  const plan: ApplyPlan = { added: [], removed: [], relabelled: [], unchanged: 0, total: desired.length };
  const seen = new Set<string>();
  for (const b of desired) {
    const k = bindingId(b);
    seen.add(k);
    const old = cur.get(k);
    if (!old) plan.added.push(b);
    else if (old.label !== b.label) plan.relabelled.push({ binding: b, from: old.label });
    else plan.unchanged++;
  }
  for (const [k, b] of cur) if (!seen.has(k)) plan.removed.push(b);
  plan.added.sort(compareBindings);
  plan.removed.sort(compareBindings);
  plan.relabelled.sort((a, b) => compareBindings(a.binding, b.binding));
  return plan;
}

/** Test hook: MANIFOLD_TEST_APPLY_PAUSE_MS pauses before the flip. */
function testPause(): void {
  const ms = Number(process.env.MANIFOLD_TEST_APPLY_PAUSE_MS ?? '0');
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Replace the live binding set with `desired` (already validated and
 * free of conflicts). With `dryRun`, only compute the plan.
 */
export function applyBindings(state: State, desired: readonly Binding[], dryRun: boolean): ApplyPlan {
  const live = state.activeGen();
  const staging = live ^ 1;
  const table = new DestinationTable(state);
  const plan = diffBindings(listBindings(state, table, false), desired);
  // Nothing to change: leave the state (and the live generation) alone.
  if (dryRun || (plan.added.length === 0 && plan.removed.length === 0 && plan.relabelled.length === 0)) return plan;

  // Reference counts of the staging generation, from scratch.
  const counts = new Map<string, { key: { label: string; domain: Binding['prefix']['domain']; protocol: Binding['protocol'] }; n: number }>();
  for (const b of desired) {
    const key = { label: b.label, domain: b.prefix.domain, protocol: b.protocol };
    const k = destKeyText(key);
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { key, n: 1 });
  }
  for (const d of table.all()) {
    if (!counts.has(destKeyText(d)) && d.value.refs[staging] !== 0) table.setRefs(d, staging, 0);
  }
  table.collect(live);
  const ids = new Map<string, number>();
  for (const [k, c] of counts) {
    const d = table.ensure(c.key, live, staging);
    if (d.value.refs[staging] !== c.n) table.setRefs(d, staging, c.n);
    ids.set(k, d.value.id);
  }

  // The new trie, filled before it is reachable.
  const trie = createTrie();
  try {
    const keys = Buffer.alloc(desired.length * BINDING_KEY_SIZE);
    const values = Buffer.alloc(desired.length * BINDING_VALUE_SIZE);
    const bits = Buffer.alloc(4 * PORT_WORDS * 8);
    const wild = Buffer.alloc(GEN_META_SIZE);
    desired.forEach((b, i) => {
      encodeBindingKey(b.protocol, b.prefix, b.port, keys, i * BINDING_KEY_SIZE);
      const id = ids.get(destKeyText({ label: b.label, domain: b.prefix.domain, protocol: b.protocol })) ?? 0;
      encodeBindingValue(id, b.prefix.len, values, i * BINDING_VALUE_SIZE);
      const slot = fpSlot(b.prefix.domain, b.protocol);
      if (b.port === 0) wild[slot] = Math.max(wild[slot] ?? 0, b.prefix.len + 1);
      else {
        const byte = slot * PORT_WORDS * 8 + (b.port >> 3);
        bits[byte] = (bits[byte] ?? 0) | (1 << (b.port & 7));
      }
    });
    mapUpdateBatch(trie, keys, values, desired.length, BINDING_KEY_SIZE, BINDING_VALUE_SIZE);

    const wordKeys = Buffer.alloc(4 * PORT_WORDS * 4);
    for (let slot = 0; slot < 4; slot++) {
      for (let w = 0; w < PORT_WORDS; w++) wordKeys.writeUInt32LE(((staging * 4 + slot) << 10) | w, (slot * PORT_WORDS + w) * 4);
    }
    mapUpdateBatch(state.fd('portBits'), wordKeys, bits, 4 * PORT_WORDS, 4, 8);
    mapUpdate(state.fd('genMeta'), u32(staging), wild);
    state.installTrie(staging, trie);
  } catch (err) {
    closeFd(trie);
    throw err;
  }
  testPause();

  // Commit: one 4-byte write.
  mapUpdate(state.fd('activeGen'), u32(0), u32(staging));
  table.collect(staging);
  return plan;
}
