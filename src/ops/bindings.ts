/**
 * Reading and changing the bindings of the live generation.
 */
import { ManifoldError } from '../errors.js';
import { mapDelete, mapDump, mapLookup, mapUpdate } from '../sys/bpf.js';
import {
  BINDING_KEY_SIZE, BINDING_VALUE_SIZE, decodeBindingKey, encodeBindingKey, encodeBindingValue, fpSlot, GEN_META_SIZE,
  PORT_WORDS, u32,
} from '../core/codec.js';
import { compareBindings, type Binding } from '../core/binding.js';
import { formatPrefix, type PortRange, type Prefix, type Protocol } from '../core/net.js';
import type { State } from '../state/state.js';
import { DestinationTable } from './destinations.js';

/** A binding together with the destination id it points at. */
export interface StoredBinding extends Binding {
  destId: number;
}

/** Raw entries of a generation's trie: binding identity and destination id. */
export function readTrie(state: State, gen: number): { protocol: Protocol; prefix: Prefix; port: number; destId: number }[] {
  const { keys, values, count } = mapDump(state.trieFd(gen), BINDING_KEY_SIZE, BINDING_VALUE_SIZE, 8192);
  const out: { protocol: Protocol; prefix: Prefix; port: number; destId: number }[] = [];
  for (let i = 0; i < count; i++) {
    const k = decodeBindingKey(keys, i * BINDING_KEY_SIZE);
    if (!k) continue;
    out.push({ ...k, destId: values.readUInt32LE(i * BINDING_VALUE_SIZE) });
  }
  return out;
}

/** Bindings of the live generation, most specific first (unless `sorted` is false). */
export function listBindings(state: State, table: DestinationTable = new DestinationTable(state), sorted = true): StoredBinding[] {
  const labels = new Map<number, string>();
  for (const d of table.all()) labels.set(d.value.id, d.label);
  const out: StoredBinding[] = [];
  for (const e of readTrie(state, state.activeGen())) {
    out.push({ ...e, label: labels.get(e.destId) ?? `<unknown destination ${e.destId}>` });
  }
  return sorted ? out.sort(compareBindings) : out;
}

/** Mark ports of generation `gen` as having exact-port bindings. */
function setPortBits(state: State, gen: number, slot: number, ports: Iterable<number>): void {
  const words = new Map<number, bigint>();
  for (const port of ports) {
    if (port === 0) continue;
    const idx = ((gen * 4 + slot) << 10) | (port >> 6);
    words.set(idx, (words.get(idx) ?? 0n) | (1n << BigInt(port & 63)));
  }
  const fd = state.fd('portBits');
  for (const [idx, bits] of words) {
    const cur = mapLookup(fd, u32(idx), 8)?.readBigUInt64LE(0) ?? 0n;
    if ((cur | bits) === cur) continue;
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(cur | bits, 0);
    mapUpdate(fd, u32(idx), b);
  }
}

/** Raise generation `gen`'s longest port-0 prefix for a slot. */
function raiseWildcard(state: State, gen: number, slot: number, len: number): void {
  const fd = state.fd('genMeta');
  const cur = mapLookup(fd, u32(gen), GEN_META_SIZE) ?? Buffer.alloc(GEN_META_SIZE);
  if ((cur[slot] ?? 0) >= len + 1) return;
  const next = Buffer.from(cur);
  next[slot] = len + 1;
  mapUpdate(fd, u32(gen), next);
}

/** Result of bind/unbind: which bindings changed. */
export interface BindResult {
  added: Binding[];
  relabelled: { binding: Binding; from: string }[];
  unchanged: Binding[];
  removed: Binding[];
}

function portsOf(range: PortRange): number[] {
  const out: number[] = [];
  for (let p = range.first; p <= range.last; p++) out.push(p);
  return out;
}

/** The trie entry exactly at (protocol, prefix, port), if any. */
function exactEntry(trieFd: number, protocol: Protocol, prefix: Prefix, port: number): number | null {
  const v = mapLookup(trieFd, encodeBindingKey(protocol, prefix, port), BINDING_VALUE_SIZE);
  if (!v || v.readUInt32LE(4) !== prefix.len) return null;
  return v.readUInt32LE(0);
}

/**
 * Bind (protocol, prefix, each port of range) to a label in the live
 * generation. Existing bindings of other labels are relabelled. Reference
 * counts are raised before entries appear and lowered after they vanish, so
 * an interrupted bind can leak a destination but never free a used one.
 */
export function bind(state: State, label: string, protocol: Protocol, prefix: Prefix, range: PortRange): BindResult {
  const gen = state.activeGen();
  const table = new DestinationTable(state);
  const dest = table.ensure({ label, domain: prefix.domain, protocol }, gen);
  const trie = state.trieFd(gen);
  const ports = portsOf(range);
  const result: BindResult = { added: [], relabelled: [], unchanged: [], removed: [] };
  const todo: { port: number; oldId: number | null }[] = [];
  for (const port of ports) {
    const oldId = exactEntry(trie, protocol, prefix, port);
    const b: Binding = { label, protocol, prefix, port };
    if (oldId === dest.value.id) result.unchanged.push(b);
    else todo.push({ port, oldId });
  }
  if (todo.length === 0) return result;
  table.addRefs(dest, gen, todo.length);
  const slot = fpSlot(prefix.domain, protocol);
  setPortBits(state, gen, slot, todo.map((t) => t.port));
  if (todo.some((t) => t.port === 0)) raiseWildcard(state, gen, slot, prefix.len);
  const value = encodeBindingValue(dest.value.id, prefix.len);
  const released = new Map<number, number>();
  for (const t of todo) {
    mapUpdate(trie, encodeBindingKey(protocol, prefix, t.port), value);
    const b: Binding = { label, protocol, prefix, port: t.port };
    if (t.oldId === null) result.added.push(b);
    else {
      released.set(t.oldId, (released.get(t.oldId) ?? 0) + 1);
      result.relabelled.push({ binding: b, from: table.byId(t.oldId)?.label ?? `#${t.oldId}` });
    }
  }
  for (const [id, n] of released) {
    const old = table.byId(id);
    if (old) table.addRefs(old, gen, -n);
  }
  table.collect(gen);
  return result;
}

/** Remove (protocol, prefix, each port of range) bindings of a label. */
export function unbind(state: State, label: string, protocol: Protocol, prefix: Prefix, range: PortRange): BindResult {
  const gen = state.activeGen();
  const table = new DestinationTable(state);
  const dest = table.get({ label, domain: prefix.domain, protocol });
  const trie = state.trieFd(gen);
  const result: BindResult = { added: [], relabelled: [], unchanged: [], removed: [] };
  const victims: number[] = [];
  for (const port of portsOf(range)) {
    const id = exactEntry(trie, protocol, prefix, port);
    const text = `${protocol} ${formatPrefix(prefix)} ${port}`;
    if (id === null) throw new ManifoldError('ERR_NOT_FOUND', `no binding ${text}`);
    if (!dest || id !== dest.value.id) {
      const owner = table.byId(id)?.label ?? `#${id}`;
      throw new ManifoldError('ERR_NOT_FOUND', `binding ${text} belongs to label ${owner}, not ${label}`);
    }
    victims.push(port);
  }
  for (const port of victims) {
    mapDelete(trie, encodeBindingKey(protocol, prefix, port));
    result.removed.push({ label, protocol, prefix, port });
  }
  if (dest) table.addRefs(dest, gen, -victims.length);
  table.collect(gen);
  return result;
}

/** Total number of port-bit words (for apply). */
export const ALL_PORT_WORDS = 2 * 4 * PORT_WORDS;
