/**
 * In-place migrations of older states to the current map ABI.
 *
 * ABI 2 -> 3 (listener discovery): the layouts of every ABI 2 map stay
 * (gen_meta's first pad byte becomes the policy flags, 0 = off); three maps
 * are new (dest_target, dest_metrics2, ns_metrics: zero-filled arrays), the
 * config gets the namespace cookie. The new maps are pinned, then the link
 * switches to the new program (bpf_link_update against the program it
 * runs), then the caller writes the marker. Killed anywhere, the next
 * upgrade repeats it with the pins it finds.
 *
 * ABI 1 (manifold 0.1) -> current (3): below. It loads the current object,
 * so it creates the ABI 3 maps too.
 *
 * In-place migration of a state of map ABI 1 (manifold 0.1) to ABI 2,
 * keeping every binding, registered socket and counter, with no moment
 * without a program.
 *
 * Kept as they are: the sockmap (user space cannot read a socket back out of
 * it), the destinations table, active_gen, the marker and the link. The two
 * ABI 1 binding tries become both tries of their generation (exact-port and
 * all-ports lookups go to the same trie, as in ABI 1: correct, not yet
 * fast); every other map is new and filled from the old ones: port bits,
 * lookup metadata, destination info (slot = id, as in ABI 1), counters
 * (per-CPU values summed). The new maps and program are pinned in a
 * subdirectory `abi2` first; once the link runs the new program the pins are
 * moved into place. An interrupted migration is rolled back (the link still
 * runs the old program) or forward (it runs the new one) by the next upgrade.
 * The upgrade then rebuilds the other generation in the fast layout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DestKind, GEN_STALE, INITIAL_EXACT_CAPACITY, MAX_BINDINGS, PORT_OTHER, Sizes } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import {
  linkInfo, linkUpdate, mapDump, mapFdById, mapInfo, mapLookup, mapUpdate, mapUpdateBatch, objGet, progFdById, progInfo,
} from '../sys/bpf.js';
import { possibleCpus } from '../sys/cpus.js';
import { closeFd } from '../sys/libc.js';
import { step } from '../ops/faults.js';
import {
  decodeConfig, decodeDestKey, decodeDestValue, encodeCounters, encodeDestInfo, encodeGenMeta, encodeGenState, encodeConfig, u32, type Meta,
} from './kernel-codec.js';
import { createExactHash, innerPin, MapPins } from './kernel-maps.js';
import { loadDispatcher, netnsCookieFor } from './loader.js';
import { noCounters, type Counters, type Gen, type Limits } from './maps.js';
import { ObjectPins, type ResolvedTarget } from './paths.js';
import { PinDir } from './pins.js';
import { Place } from '../core/placement.js';

/** ABI 1 sizes: 32768 destination ids and sockmap slots. */
const ABI1_IDS = 32768;
const ABI1_PORT_WORDS = 1024;
const WORK = 'abi2';
/** Pins that exist only in ABI 1. */
const ABI1_ONLY = ['bindings', 'port_bits', 'bindings-0', 'bindings-1'];

function abi1Counters(raw: Buffer, cpus: number): Counters {
  const c: Counters = noCounters();
  for (let i = 0; i < cpus; i++) {
    const o = i * Sizes.metrics;
    if (o + Sizes.metrics > raw.length) break;
    c.lookups += raw.readBigUInt64LE(o);
    c.misses += raw.readBigUInt64LE(o + 8);
    c.errBadSocket += raw.readBigUInt64LE(o + 16);
    c.errWrongFamily += raw.readBigUInt64LE(o + 24);
    c.errWrongProtocol += raw.readBigUInt64LE(o + 32);
    c.errOther += raw.readBigUInt64LE(o + 40);
  }
  return c;
}

function idOfPin(p: string, asProgram = false): number | null {
  let fd: number;
  try {
    fd = objGet(p);
  } catch {
    return null;
  }
  try {
    return asProgram ? progInfo(fd).id : mapInfo(fd).id;
  } finally {
    closeFd(fd);
  }
}

/** Move the new pins into place and drop the ABI 1 ones (the link already runs the new program). */
function rollForward(dir: string): void {
  const work = path.join(dir, WORK);
  if (fs.existsSync(work)) {
    for (const name of fs.readdirSync(work)) {
      fs.renameSync(path.join(work, name), path.join(dir, name));
      step('migrate-moved');
    }
    fs.rmdirSync(work);
  }
  for (const name of ABI1_ONLY) fs.rmSync(path.join(dir, name), { force: true });
}

/** Migrate the state of `target` (marker `meta`, ABI 1) to ABI 2. The caller holds the writers' lock. */
export function migrateAbi1(target: ResolvedTarget, meta: Meta): void {
  const dir = target.stateDir;
  const work = path.join(dir, WORK);
  const owner = { uid: meta.ownerUid, gid: meta.ownerGid };
  const linkFd = objGet(path.join(dir, ObjectPins.link));
  try {
    const running = linkInfo(linkFd).progId;
    const newProg = idOfPin(path.join(work, ObjectPins.program), true) ?? (fs.existsSync(path.join(dir, MapPins.genState)) ? idOfPin(path.join(dir, ObjectPins.program), true) : null);
    if (newProg !== null && newProg === running) {
      rollForward(dir);
      return;
    }
    fs.rmSync(work, { recursive: true, force: true });
    for (const name of Object.values(MapPins)) {
      // New-only pins left in the directory by an earlier attempt that never switched.
      if (!['manifold_meta', 'active_gen', 'destinations', 'sockets', 'gen_meta', 'dest_metrics'].includes(name)) fs.rmSync(path.join(dir, name), { force: true });
    }
    fs.mkdirSync(work, { mode: 0o700 });
    const pins = new PinDir(work, true, owner);
    const old = new PinDir(dir, true, owner);
    const fds: number[] = [];
    const open = (name: string): number => {
      const fd = old.openMap(name);
      fds.push(fd);
      return fd;
    };
    try {
      const limits: Limits = { maxIds: ABI1_IDS, sockSlots: ABI1_IDS, maxBindings: MAX_BINDINGS };
      const reuse = new Map<string, number>([
        [MapPins.meta, open('manifold_meta')],
        [MapPins.activeGen, open('active_gen')],
        [MapPins.destinations, open('destinations')],
        [MapPins.sockets, open('sockets')],
      ]);
      const oldOuter = open('bindings');
      const oldGenMeta = open('gen_meta');
      const oldBits = open('port_bits');
      const oldMetrics = open('dest_metrics');
      const live = ((mapLookup(reuse.get(MapPins.activeGen) as number, u32(0), 4)?.readUInt32LE(0) ?? 0) & 1) as Gen;
      const object = loadDispatcher(limits, reuse, undefined, target.bpffs);
      try {
        const fd = (name: string): number => object.mapFd(name);
        mapUpdate(fd(MapPins.config), u32(0), encodeConfig(limits, netnsCookieFor(target.netns)));
        for (const g of [0, 1] as const) {
          const trieId = mapLookup(oldOuter, u32(g), 4)?.readUInt32LE(0) ?? 0;
          if (trieId === 0) throw new ManifoldError('ERR_STALE_STATE', `the ABI 1 state has no binding table for generation ${g}; "manifold load" replaces it (bindings are lost)`);
          const trie = mapFdById(trieId);
          fds.push(trie);
          mapUpdate(fd(MapPins.tries), u32(g * 2), u32(trie));
          mapUpdate(fd(MapPins.tries), u32(g * 2 + 1), u32(trie));
          pins.pin(trie, innerPin(g, Place.exactTrie));
          pins.pin(trie, innerPin(g, Place.wildTrie));
          const hash = createExactHash(INITIAL_EXACT_CAPACITY);
          fds.push(hash);
          mapUpdate(fd(MapPins.exact), u32(g), u32(hash));
          pins.pin(hash, innerPin(g, Place.hash));
          const gm = mapLookup(oldGenMeta, u32(g), 8) ?? Buffer.alloc(8);
          mapUpdate(fd(MapPins.genMeta), u32(g), encodeGenMeta({ wildPlus1: [gm[0] ?? 0, gm[1] ?? 0, gm[2] ?? 0, gm[3] ?? 0], trieSlots: 0xf, exactLens: [[], [], [], []], flags: 0 }));
          mapUpdate(fd(MapPins.genState), u32(g), encodeGenState({ seq: g === live ? 1n : 0n, flags: g === live ? 0 : GEN_STALE, exactCapacity: INITIAL_EXACT_CAPACITY, exactCount: 0, txid: 0n }));
          // Port bits: ABI 1 had one bit per port (64 per word); every named port becomes an "other" port (looked up in the trie).
          const keys: number[] = [];
          const values: bigint[] = [];
          for (let s = 0; s < 4; s++) {
            const words = new Map<number, bigint>();
            for (let w = 0; w < ABI1_PORT_WORDS; w++) {
              const bits = mapLookup(oldBits, u32(((g * 4 + s) << 10) | w), 8)?.readBigUInt64LE(0) ?? 0n;
              if (bits === 0n) continue;
              for (let b = 0; b < 64; b++) {
                if (((bits >> BigInt(b)) & 1n) === 0n) continue;
                const port = w * 64 + b;
                const idx = ((g * 4 + s) << 11) | (port >> 5);
                words.set(idx, (words.get(idx) ?? 0n) | (BigInt(PORT_OTHER) << BigInt((port & 31) * 2)));
              }
            }
            for (const [k, v] of words) {
              keys.push(k);
              values.push(v);
            }
          }
          if (keys.length) {
            const kb = Buffer.alloc(keys.length * 4);
            const vb = Buffer.alloc(keys.length * 8);
            keys.forEach((k, i) => kb.writeUInt32LE(k, i * 4));
            values.forEach((v, i) => vb.writeBigUInt64LE(v, i * 8));
            mapUpdateBatch(fd(MapPins.portWords), kb, vb, keys.length, 4, 8);
          }
        }
        // Destination info (slot = id) and counters.
        const dests = mapDump(reuse.get(MapPins.destinations) as number, Sizes.destKey, Sizes.destValue, 1024);
        const cpus = possibleCpus();
        const copied = new Map<number, Counters>();
        for (let i = 0; i < dests.count; i++) {
          if (!decodeDestKey(dests.keys, i * Sizes.destKey)) continue;
          const id = decodeDestValue(dests.values, i * Sizes.destValue).id;
          if (id >= ABI1_IDS) continue;
          const hasSocket = mapLookup(reuse.get(MapPins.sockets) as number, u32(id), 8) !== null;
          const info = encodeDestInfo({ kind: hasSocket ? DestKind.socket : DestKind.none, slot: id });
          for (const g of [0, 1]) mapUpdate(fd(MapPins.destInfo), u32((id << 1) | g), info);
          const c = abi1Counters(mapLookup(oldMetrics, u32(id), Sizes.metrics * cpus) ?? Buffer.alloc(0), cpus);
          copied.set(id, c);
          mapUpdate(fd(MapPins.metrics), u32(id), encodeCounters(c));
        }
        for (const name of [MapPins.config, MapPins.genMeta, MapPins.genState, MapPins.portWords, MapPins.tries, MapPins.exact, MapPins.destInfo, MapPins.destTarget, MapPins.metrics, MapPins.metrics2, MapPins.nsMetrics]) {
          pins.pin(fd(name), name);
        }
        pins.pin(object.progFd, ObjectPins.program);
        step('migrate-prepared');
        const oldProg = progFdById(running);
        try {
          linkUpdate(linkFd, object.progFd, oldProg);
        } finally {
          closeFd(oldProg);
        }
        step('migrate-switched');
        // Counts the old program made between the copy and the switch.
        for (const [id, before] of copied) {
          const now = abi1Counters(mapLookup(oldMetrics, u32(id), Sizes.metrics * cpus) ?? Buffer.alloc(0), cpus);
          if (now.lookups === before.lookups && now.misses === before.misses && now.errBadSocket === before.errBadSocket && now.errWrongFamily === before.errWrongFamily && now.errWrongProtocol === before.errWrongProtocol && now.errOther === before.errOther) continue;
          const cur = mapLookup(fd(MapPins.metrics), u32(id), Sizes.metrics);
          if (!cur) continue;
          const add = (o: number, d: bigint): void => {
            cur.writeBigUInt64LE(cur.readBigUInt64LE(o) + d, o);
          };
          add(0, now.lookups - before.lookups);
          add(8, now.misses - before.misses);
          add(16, now.errBadSocket - before.errBadSocket);
          add(24, now.errWrongFamily - before.errWrongFamily);
          add(32, now.errWrongProtocol - before.errWrongProtocol);
          add(40, now.errOther - before.errOther);
          mapUpdate(fd(MapPins.metrics), u32(id), cur);
        }
      } finally {
        object.close();
      }
      rollForward(dir);
    } finally {
      for (const f of fds) closeFd(f);
    }
  } finally {
    closeFd(linkFd);
  }
}

/** Maps new in ABI 3. */
const ABI3_NEW = [MapPins.destTarget, MapPins.metrics2, MapPins.nsMetrics];

/** Migrate the state of `target` (marker `meta`, ABI 2) to ABI 3. The caller holds the writers' lock and writes the marker after. */
export function migrateAbi2(target: ResolvedTarget, meta: Meta): void {
  const dir = target.stateDir;
  const pins = new PinDir(dir, true, { uid: meta.ownerUid, gid: meta.ownerGid });
  const reuse = new Map<string, number>();
  let linkFd = -1;
  try {
    for (const name of Object.values(MapPins)) {
      const fd = pins.tryOpenMap(name);
      if (fd !== null) reuse.set(name, fd);
      else if (!ABI3_NEW.includes(name as (typeof ABI3_NEW)[number])) throw new ManifoldError('ERR_STALE_STATE', `the ABI 2 state has no ${name} map: "manifold load" replaces it (bindings are lost)`);
    }
    const cfgFd = reuse.get(MapPins.config) as number;
    const raw = mapLookup(cfgFd, u32(0), Sizes.config);
    if (!raw) throw new ManifoldError('ERR_STALE_STATE', `the state ${dir} has no configuration: run "manifold load" to replace it`);
    const limits = decodeConfig(raw);
    const object = loadDispatcher(limits, reuse, undefined, target.bpffs);
    try {
      mapUpdate(cfgFd, u32(0), encodeConfig(limits, netnsCookieFor(target.netns)));
      for (const name of ABI3_NEW) if (!reuse.has(name)) pins.pin(object.mapFd(name), name);
      step('migrate3-prepared');
      linkFd = objGet(path.join(dir, ObjectPins.link));
      const oldProg = progFdById(linkInfo(linkFd).progId);
      try {
        linkUpdate(linkFd, object.progFd, oldProg);
      } finally {
        closeFd(oldProg);
      }
      step('migrate3-switched');
      pins.pin(object.progFd, ObjectPins.program);
    } finally {
      object.close();
    }
  } finally {
    for (const fd of reuse.values()) closeFd(fd);
    if (linkFd >= 0) closeFd(linkFd);
  }
}
