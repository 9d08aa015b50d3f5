/**
 * Building a dispatcher state on bpffs: load the object with its maps sized
 * for the load-time limits, initialise them, pin everything through a
 * PinDir, attach to the namespace and pin the link. And taking a state
 * directory apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_MAX_IDS, INITIAL_EXACT_CAPACITY, MANIFOLD_ABI, MANIFOLD_MAGIC, MAX_BINDINGS } from '../core/layout.js';
import { ManifoldError } from '../errors.js';
import { BPF_SK_LOOKUP, linkCreate, linkDetach, linkInfo, mapUpdate, objGet } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { loadObject, type LoadedObject } from '../sys/object.js';
import { manifoldVersion } from '../version.js';
import { encodeConfig, encodeGenState, encodeMeta, u32 } from './kernel-codec.js';
import { createExactHash, createTrie, innerPin, MapPins } from './kernel-maps.js';
import type { Gen, Limits } from './maps.js';
import { dispatcherObjectPath } from './object-path.js';
import { ObjectPins, type ResolvedTarget } from './paths.js';
import { ownDir, PinDir, type PinOwner } from './pins.js';
import { Place } from '../core/placement.js';
import { openSharedMaps } from '../discovery/shared.js';
import { DISPATCHER_SHARED_MAPS } from '../discovery/paths.js';
import { cookieOfNetns } from '../discovery/registry.js';

/** Name of the sk_lookup program in the object. */
export const PROGRAM_NAME = 'manifold_dispatch';

/** Exact-hash capacity of a freshly loaded generation. */

/** Most destinations a state can be loaded for. */
export const MAX_DESTINATIONS = 16384;
/** Most bindings per generation a state can be loaded for. */
export const MAX_BINDINGS_LIMIT = 1 << 24;

/** Load-time limits for `maxDestinations` destinations and `maxBindings` bindings. */
export function limitsFor(maxDestinations = DEFAULT_MAX_IDS / 2, maxBindings = MAX_BINDINGS): Limits {
  if (!Number.isInteger(maxDestinations) || maxDestinations < 1 || maxDestinations > MAX_DESTINATIONS) {
    throw new ManifoldError('ERR_USAGE', `invalid --max-destinations ${maxDestinations}: expected 1 to ${MAX_DESTINATIONS}`);
  }
  if (!Number.isInteger(maxBindings) || maxBindings < 1 || maxBindings > MAX_BINDINGS_LIMIT) {
    throw new ManifoldError('ERR_USAGE', `invalid --max-bindings ${maxBindings}: expected 1 to ${MAX_BINDINGS_LIMIT}`);
  }
  // Twice the ids: an apply may swap a full set for a disjoint one. Twice the
  // slots: a registration puts the new socket beside the old one until the switch.
  const maxIds = maxDestinations * 2;
  return { maxIds, sockSlots: maxIds * 2, maxBindings };
}

/** max_entries of the maps sized at load time. */
function sizedMaps(l: Limits): Map<string, number> {
  return new Map([
    [MapPins.destInfo, l.maxIds * 2],
    [MapPins.destTarget, l.maxIds * 2],
    [MapPins.destinations, l.maxIds],
    [MapPins.sockets, l.sockSlots],
    [MapPins.metrics, l.maxIds],
    [MapPins.metrics2, l.maxIds],
  ]);
}

/** A loaded dispatcher object, and whether it uses listener discovery's pinned maps. */
export type LoadedDispatcher = LoadedObject & { discovery: boolean };

/**
 * Load the dispatcher object (maps created, or reused for an upgrade;
 * `byKernelName`: see LoadOptions.reuseByKernelName — a copy of a running
 * program then also shares its listener discovery maps). Otherwise listener
 * discovery's shared maps are the pinned ones of `bpffs` while discovery is
 * enabled there, else (or without `bpffs`) private one-entry maps (never
 * pinned: the program alone holds them, and discovery_active() is false).
 */
export function loadDispatcher(limits: Limits, reuse?: ReadonlyMap<string, number>, byKernelName?: ReadonlyMap<string, number>, bpffs?: string): LoadedDispatcher {
  const all = new Map(reuse ?? []);
  const maxEntries = sizedMaps(limits);
  const shared = bpffs === undefined ? null : openSharedMaps(bpffs);
  if (shared) for (const [name, fd] of shared) all.set(name, fd);
  else if (!byKernelName) for (const name of DISPATCHER_SHARED_MAPS) maxEntries.set(name, 1);
  try {
    const object = loadObject(dispatcherObjectPath(), PROGRAM_NAME, { maxEntries, reuse: all, ...(byKernelName ? { reuseByKernelName: byKernelName } : {}) });
    return { ...object, discovery: shared !== null };
  } finally {
    for (const fd of shared?.values() ?? []) closeFd(fd);
  }
}

/** The namespace cookie stored at load for listener discovery (0 when it cannot be read, e.g. without CAP_SYS_ADMIN for another namespace). */
export function netnsCookieFor(netnsPath: string): bigint {
  try {
    return cookieOfNetns(netnsPath);
  } catch {
    return 0n;
  }
}

/** Give generation `gen` fresh inner maps: install them in the outer maps and pin them. */
export function initGeneration(object: LoadedObject, dir: PinDir, gen: Gen, limits: Limits): void {
  const made: [number, number, string][] = [];
  try {
    const hash = createExactHash(INITIAL_EXACT_CAPACITY);
    made.push([hash, object.mapFd(MapPins.exact), innerPin(gen, Place.hash)]);
    for (const wild of [false, true]) {
      const trie = createTrie(limits.maxBindings);
      made.push([trie, object.mapFd(MapPins.tries), innerPin(gen, wild ? Place.wildTrie : Place.exactTrie)]);
    }
    made.forEach(([fd, outer, name], i) => {
      dir.pin(fd, name);
      mapUpdate(outer, u32(i === 0 ? gen : gen * 2 + (i - 1)), u32(fd));
    });
    mapUpdate(object.mapFd(MapPins.genState), u32(gen), encodeGenState({ seq: 0n, flags: 0, exactCapacity: INITIAL_EXACT_CAPACITY, exactCount: 0, txid: 0n }));
  } finally {
    for (const [fd] of made) closeFd(fd);
  }
}

/**
 * Build a complete state in `dir` (a fresh directory) for `target`: maps,
 * program, attached link, all pinned, owned by `owner`. The link is
 * attached last: until then nothing steers.
 */
export function buildState(dir: string, target: ResolvedTarget, owner: PinOwner, limits: Limits): void {
  const pins = new PinDir(dir, true, owner);
  const object = loadDispatcher(limits, undefined, undefined, target.bpffs);
  try {
    const meta = {
      magic: MANIFOLD_MAGIC, abi: MANIFOLD_ABI, netnsIno: target.netnsIno, netnsDev: target.netnsDev, loadedAt: Date.now(),
      ownerUid: owner.uid, ownerGid: owner.gid, version: manifoldVersion(),
    };
    mapUpdate(object.mapFd(MapPins.meta), u32(0), encodeMeta(meta));
    mapUpdate(object.mapFd(MapPins.config), u32(0), encodeConfig(limits, netnsCookieFor(target.netns)));
    for (const gen of [0, 1] as const) initGeneration(object, pins, gen, limits);
    for (const name of Object.values(MapPins)) pins.pin(object.mapFd(name), name);
    pins.pin(object.progFd, ObjectPins.program);
    const netnsFd = fs.openSync(target.netns, 'r');
    let linkFd = -1;
    try {
      linkFd = linkCreate(object.progFd, netnsFd, BPF_SK_LOOKUP);
      pins.pin(linkFd, ObjectPins.link);
    } finally {
      fs.closeSync(netnsFd);
      if (linkFd >= 0) closeFd(linkFd);
    }
    ownDir(dir, owner);
  } finally {
    object.close();
  }
}

/** Detach the link pinned in `dir` (if any and still attached); true when one was attached. */
export function detachPinnedLink(dir: string): boolean {
  let fd: number;
  try {
    fd = objGet(path.join(dir, ObjectPins.link));
  } catch {
    return false;
  }
  try {
    const info = linkInfo(fd);
    if (info.netnsIno === 0) return false;
    linkDetach(fd);
    return true;
  } catch {
    return false;
  } finally {
    closeFd(fd);
  }
}

/** Detach and remove a state (or leftover) directory. */
export function destroyStateDir(dir: string): void {
  detachPinnedLink(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}
