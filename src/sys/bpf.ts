/**
 * libbpf low-level API (the bpf(2) wrappers of libbpf.so.1).
 *
 * Struct arguments are built as Buffers with the layouts of libbpf 1.1
 * (checked against the C headers by test/unit/bpf-object.test.ts). libbpf >= 1.0
 * returns -errno from these functions.
 */
import fs from 'node:fs';
import { koffi, lazyLib, openLib, type Lib } from './ffi.js';
import { SysError } from './errno.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface BpfFns {
  obj_get: Fn;
  obj_get_opts: Fn;
  obj_pin: Fn;
  map_update: Fn;
  map_lookup: Fn;
  map_delete: Fn;
  map_next_key: Fn;
  map_lookup_batch: Fn;
  map_update_batch: Fn;
  map_delete_batch: Fn;
  map_create: Fn;
  obj_info: Fn;
  obj_info_direct: Fn;
  map_fd_by_id: Fn;
  prog_fd_by_id: Fn;
  link_create: Fn;
  link_update: Fn;
  link_detach: Fn;
  test_run: Fn;
  iter_create: Fn;
  link_fd_by_id: Fn;
}

let fns: BpfFns | undefined;

/** The opened libbpf, for the object loader. */
export function libbpf(): Lib {
  return openLib('libbpf.so.1') as Lib;
}

function bpf(): BpfFns {
  if (fns) return fns;
  const lib = lazyLib(libbpf);
  fns = {
    obj_get: lib.func('int bpf_obj_get(const char *path)'),
    obj_get_opts: lib.func('int bpf_obj_get_opts(const char *path, const uint8_t *opts)'),
    obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    map_update: lib.func('int bpf_map_update_elem(int fd, const uint8_t *key, const uint8_t *value, uint64_t flags)'),
    map_lookup: lib.func('int bpf_map_lookup_elem(int fd, const uint8_t *key, _Out_ uint8_t *value)'),
    map_delete: lib.func('int bpf_map_delete_elem(int fd, const uint8_t *key)'),
    map_next_key: lib.func('int bpf_map_get_next_key(int fd, const uint8_t *key, _Out_ uint8_t *next)'),
    map_lookup_batch: lib.func(
      'int bpf_map_lookup_batch(int fd, uint8_t *in_batch, _Out_ uint8_t *out_batch, _Out_ uint8_t *keys, _Out_ uint8_t *values, _Inout_ uint32_t *count, const uint8_t *opts)',
    ),
    map_update_batch: lib.func(
      'int bpf_map_update_batch(int fd, const uint8_t *keys, const uint8_t *values, _Inout_ uint32_t *count, const uint8_t *opts)',
    ),
    map_delete_batch: lib.func(
      'int bpf_map_delete_batch(int fd, const uint8_t *keys, _Inout_ uint32_t *count, const uint8_t *opts)',
    ),
    map_create: lib.func(
      'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const uint8_t *opts)',
    ),
    obj_info: lib.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ uint8_t *info, _Inout_ uint32_t *len)'),
    // The same call with buffers passed as they are (no copies in and out): several times cheaper.
    obj_info_direct: lib.func('int bpf_obj_get_info_by_fd(int fd, uint8_t *info, uint32_t *len)'),
    map_fd_by_id: lib.func('int bpf_map_get_fd_by_id(uint32_t id)'),
    prog_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    link_create: lib.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, const uint8_t *opts)'),
    link_update: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, const uint8_t *opts)'),
    link_detach: lib.func('int bpf_link_detach(int link_fd)'),
    test_run: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ uint8_t *opts)'),
    iter_create: lib.func('int bpf_iter_create(int link_fd)'),
    link_fd_by_id: lib.func('int bpf_link_get_fd_by_id(uint32_t id)'),
  };
  return fns;
}

function check(call: string, ret: number, context?: string): number {
  if (ret < 0) throw new SysError(call, -ret, context);
  return ret;
}

/** Map types used by manifold. */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_ARRAY: 6,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  SOCKMAP: 15,
  SOCKHASH: 18,
  RINGBUF: 27,
} as const;

/** Attach types (enum bpf_attach_type) used by manifold. */
export const AttachType = {
  CGROUP_SOCK_OPS: 3,
  CGROUP_INET4_POST_BIND: 12,
  CGROUP_INET6_POST_BIND: 13,
  TRACE_ITER: 28,
  CGROUP_INET_SOCK_RELEASE: 34,
  SK_LOOKUP: 36,
} as const;

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;
export const BPF_F_NO_PREALLOC = 1;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_REPLACE = 1 << 2;
export const BPF_SK_LOOKUP = 36;

/** Open a pinned object; `readOnly` asks for a read-only fd (BPF_F_RDONLY). */
export function objGet(path: string, readOnly = false): number {
  const ctx = `cannot open ${path}`;
  if (!readOnly) return check('bpf_obj_get', bpf().obj_get(path), ctx);
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(BPF_F_RDONLY, 8);
  return check('bpf_obj_get_opts', bpf().obj_get_opts(path, opts), ctx);
}

/** Pin an object at a bpffs path. */
export function objPin(fd: number, path: string): void {
  check('bpf_obj_pin', bpf().obj_pin(fd, path), `cannot pin ${path}`);
}

/** Update one element. */
export function mapUpdate(fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  check('bpf_map_update_elem', bpf().map_update(fd, key, value, flags));
}

/** Look one element up; null when absent. */
export function mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null {
  const value = Buffer.alloc(valueSize);
  const ret = bpf().map_lookup(fd, key, value) as number;
  if (ret === -2 /* ENOENT */) return null;
  check('bpf_map_lookup_elem', ret);
  return value;
}

/** Delete one element; returns false when it was absent. */
export function mapDelete(fd: number, key: Buffer): boolean {
  const ret = bpf().map_delete(fd, key) as number;
  if (ret === -2) return false;
  check('bpf_map_delete_elem', ret);
  return true;
}

/** Next key after `key` (null = first); null at the end. */
export function mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null {
  const next = Buffer.alloc(keySize);
  const ret = bpf().map_next_key(fd, key, next) as number;
  if (ret === -2) return null;
  check('bpf_map_get_next_key', ret);
  return next;
}

function batchOpts(): Buffer {
  const opts = Buffer.alloc(24);
  opts.writeBigUInt64LE(24n, 0);
  return opts;
}

/**
 * Read a whole map with BPF_MAP_LOOKUP_BATCH, falling back to
 * get_next_key + lookup where the kernel lacks batch support for the type.
 * `valueSize` is the per-element value size as user space sees it (for
 * per-CPU maps: round_up(value, 8) * possible CPUs).
 */
export function mapDump(fd: number, keySize: number, valueSize: number, chunk = 4096): { keys: Buffer; values: Buffer; count: number } {
  const keyParts: Buffer[] = [];
  const valueParts: Buffer[] = [];
  let total = 0;
  const batchToken = Buffer.alloc(Math.max(keySize, 8));
  let first = true;
  for (;;) {
    // Only the first n entries, written by the kernel, are used.
    const keys = Buffer.allocUnsafeSlow(keySize * chunk);
    const values = Buffer.allocUnsafeSlow(valueSize * chunk);
    const count = [chunk];
    const ret = bpf().map_lookup_batch(fd, first ? null : batchToken, batchToken, keys, values, count, batchOpts()) as number;
    first = false;
    const n = count[0] ?? 0;
    if (ret < 0 && ret !== -2) {
      if (ret === -524 || ret === -22 || ret === -95) return mapDumpSlow(fd, keySize, valueSize);
      check('bpf_map_lookup_batch', ret);
    }
    if (n > 0) {
      keyParts.push(keys.subarray(0, n * keySize));
      valueParts.push(values.subarray(0, n * valueSize));
      total += n;
    }
    if (ret === -2) break;
  }
  return { keys: Buffer.concat(keyParts), values: Buffer.concat(valueParts), count: total };
}

function mapDumpSlow(fd: number, keySize: number, valueSize: number): { keys: Buffer; values: Buffer; count: number } {
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  let key = mapNextKey(fd, null, keySize);
  while (key) {
    const value = mapLookup(fd, key, valueSize);
    if (value) {
      keys.push(key);
      values.push(value);
    }
    key = mapNextKey(fd, key, keySize);
  }
  return { keys: Buffer.concat(keys), values: Buffer.concat(values), count: keys.length };
}

/**
 * Read `count` consecutive elements of an ARRAY map starting at index
 * `first` (one BPF_MAP_LOOKUP_BATCH). Returns the values, packed.
 */
export function mapLookupRange(fd: number, first: number, count: number, valueSize: number): Buffer {
  const values = Buffer.alloc(valueSize * count);
  if (count === 0) return values;
  const keys = Buffer.alloc(4 * count);
  const token = Buffer.alloc(8);
  let got = 0;
  let start: Buffer | null = first === 0 ? null : Buffer.from(Uint32Array.of(first - 1).buffer);
  while (got < count) {
    const n = [count - got];
    const ret = bpf().map_lookup_batch(fd, start, token, keys, values.subarray(got * valueSize), n, batchOpts()) as number;
    const read = n[0] ?? 0;
    if (ret < 0 && ret !== -2) {
      if (ret === -524 || ret === -22 || ret === -95) {
        for (let i = got; i < count; i++) {
          const v = mapLookup(fd, u32key(first + i), valueSize);
          if (v) v.copy(values, i * valueSize);
        }
        return values;
      }
      check('bpf_map_lookup_batch', ret);
    }
    got += read;
    if (ret === -2 || read === 0) break;
    start = Buffer.from(token.subarray(0, 4));
  }
  return values;
}

function u32key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** Delete many elements (absent ones are skipped); falls back to single deletes. */
export function mapDeleteBatch(fd: number, keys: Buffer, count: number, keySize: number): void {
  for (let i = 0; i < count; i++) mapDelete(fd, keys.subarray(i * keySize, (i + 1) * keySize));
}

/** Update many elements; falls back to single updates where batch is unsupported. */
export function mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, keySize: number, valueSize: number): void {
  if (count === 0) return;
  const n = [count];
  const ret = bpf().map_update_batch(fd, keys, values, n, batchOpts()) as number;
  if (ret === -524 || ret === -22 || ret === -95) {
    for (let i = (n[0] ?? 0); i < count; i++) {
      mapUpdate(fd, keys.subarray(i * keySize, (i + 1) * keySize), values.subarray(i * valueSize, (i + 1) * valueSize));
    }
    return;
  }
  check('bpf_map_update_batch', ret);
}

/** Options for mapCreate. */
export interface MapCreateOptions {
  flags?: number;
  innerMapFd?: number;
}

/** Create an (unpinned) map. */
export function mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, options: MapCreateOptions = {}): number {
  const opts = Buffer.alloc(48);
  opts.writeBigUInt64LE(48n, 0);
  opts.writeUInt32LE(options.innerMapFd ?? 0, 24);
  opts.writeUInt32LE(options.flags ?? 0, 28);
  return check('bpf_map_create', bpf().map_create(type, name, keySize, valueSize, maxEntries, opts), `cannot create map ${name}`);
}

/** Raw bpf_obj_get_info_by_fd. */
export function objInfo(fd: number, size: number): Buffer {
  const info = Buffer.alloc(size);
  const len = [size];
  check('bpf_obj_get_info_by_fd', bpf().obj_info(fd, info, len));
  return info;
}

/** A map's type (enum bpf_map_type) and key and value sizes. */
export interface MapShape {
  type: number;
  keySize: number;
  valueSize: number;
}

/**
 * The type and sizes of a map: the head of bpf_map_info (the kernel fills
 * what fits), read with no copies, for a check made on every map a command
 * opens.
 */
export function mapShape(fd: number): MapShape {
  const info = Buffer.alloc(16);
  const len = Uint32Array.of(16);
  check('bpf_obj_get_info_by_fd', bpf().obj_info_direct(fd, info, len));
  return { type: info.readUInt32LE(0), keySize: info.readUInt32LE(8), valueSize: info.readUInt32LE(12) };
}

/** Why map shape `have` is not `want` ("type 1, key 3 bytes, value 99 bytes; expected …"), or null when they are the same. */
export function shapeMismatch(have: MapShape, want: MapShape): string | null {
  if (have.type === want.type && have.keySize === want.keySize && have.valueSize === want.valueSize) return null;
  const text = (m: MapShape): string => `type ${m.type}, key ${m.keySize} bytes, value ${m.valueSize} bytes`;
  return `${text(have)}; expected ${text(want)}`;
}

/** Information about a map. */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** bpf_map_info of a map fd. */
export function mapInfo(fd: number): MapInfo {
  const b = objInfo(fd, 88);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    keySize: b.readUInt32LE(8),
    valueSize: b.readUInt32LE(12),
    maxEntries: b.readUInt32LE(16),
    flags: b.readUInt32LE(20),
    name: cString(b.subarray(24, 40)),
  };
}

/** Information about a program. */
export interface ProgInfo {
  type: number;
  id: number;
  name: string;
}

/** bpf_prog_info of a program fd. */
export function progInfo(fd: number): ProgInfo {
  const b = objInfo(fd, 232);
  return { type: b.readUInt32LE(0), id: b.readUInt32LE(4), name: cString(b.subarray(64, 80)) };
}

/** Ids of the maps a loaded program uses (bpf_prog_info.map_ids). */
export function progMapIds(fd: number): number[] {
  const n = objInfo(fd, 232).readUInt32LE(52);
  if (n === 0) return [];
  const ids = Buffer.alloc(4 * n);
  const info = Buffer.alloc(232);
  info.writeUInt32LE(n, 52);
  info.writeBigUInt64LE(addressOf(ids), 56);
  const len = [info.length];
  check('bpf_obj_get_info_by_fd', bpf().obj_info(fd, info, len));
  const got = Math.min(n, info.readUInt32LE(52));
  return Array.from({ length: got }, (_, i) => ids.readUInt32LE(4 * i));
}

/** Information about a netns link. */
export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  netnsIno: number;
  attachType: number;
}

/** bpf_link_info of a link fd. */
export function linkInfo(fd: number): LinkInfo {
  const b = objInfo(fd, 48);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    progId: b.readUInt32LE(8),
    netnsIno: b.readUInt32LE(16),
    attachType: b.readUInt32LE(20),
  };
}

/** Kernel memory a BPF object's fd accounts for (the "memlock" of /proc/self/fdinfo, as bpftool's bytes_memlock). */
export function objMemlock(fd: number): number {
  // One read of a small buffer: a map's fdinfo is a few hundred bytes (readFileSync also stats it).
  const info = fs.openSync(`/proc/self/fdinfo/${fd}`, 'r');
  let text: string;
  try {
    const n = fs.readSync(info, fdinfoBuffer, 0, fdinfoBuffer.length, null);
    text = fdinfoBuffer.toString('latin1', 0, n);
  } finally {
    fs.closeSync(info);
  }
  const m = /^memlock:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Where objMemlock reads fdinfo (memlock comes within its first lines). */
const fdinfoBuffer = Buffer.alloc(1024);

/** fd of a map by id (needs CAP_SYS_ADMIN). */
export function mapFdById(id: number): number {
  return check('bpf_map_get_fd_by_id', bpf().map_fd_by_id(id));
}

/** fd of a program by id (needs CAP_SYS_ADMIN). */
export function progFdById(id: number): number {
  return check('bpf_prog_get_fd_by_id', bpf().prog_fd_by_id(id));
}

/** Attach a program to a target (e.g. a netns or cgroup fd); returns the link fd. */
export function linkCreate(progFd: number, targetFd: number, attachType: number, context = 'cannot attach the dispatcher'): number {
  return check('bpf_link_create', bpf().link_create(progFd, targetFd, attachType, null), context);
}

/**
 * An iterator link (BPF_TRACE_ITER) for a program of an iter/ section; with
 * `pid`, a task iterator visits that process only (kernel >= 6.1).
 * struct bpf_link_create_opts of libbpf 1.1: sz at 0, flags at 8, iter_info
 * at 16, iter_info_len at 24 (64 bytes); union bpf_iter_link_info is 16
 * bytes with task.pid at 4.
 */
export function iterLinkCreate(progFd: number, pid?: number): number {
  if (pid === undefined) return check('bpf_link_create', bpf().link_create(progFd, 0, AttachType.TRACE_ITER, null), 'cannot create an iterator');
  const info = Buffer.alloc(16);
  info.writeUInt32LE(pid, 4);
  const opts = Buffer.alloc(64);
  opts.writeBigUInt64LE(64n, 0);
  opts.writeBigUInt64LE(addressOf(info), 16);
  opts.writeUInt32LE(info.length, 24);
  const ret = bpf().link_create(progFd, 0, AttachType.TRACE_ITER, opts) as number;
  // `info` must stay referenced until here (the opts point into it).
  info.readUInt8(0);
  return check('bpf_link_create', ret, `cannot create an iterator for process ${pid}`);
}

/** A readable fd of a new iterator instance (read it to run the program). */
export function iterCreate(linkFd: number): number {
  return check('bpf_iter_create', bpf().iter_create(linkFd), 'cannot start the iterator');
}

/** fd of a link by id (needs CAP_SYS_ADMIN); null when no such link. */
export function linkFdById(id: number): number | null {
  const ret = bpf().link_fd_by_id(id) as number;
  if (ret === -2) return null;
  return check('bpf_link_get_fd_by_id', ret);
}

/** Information about a cgroup link. */
export interface CgroupLinkInfo {
  type: number;
  id: number;
  progId: number;
  /** 0 once the link is detached (or its cgroup is gone). */
  cgroupId: bigint;
  attachType: number;
}

/** BPF_LINK_TYPE_CGROUP. */
export const LINK_TYPE_CGROUP = 3;

/** bpf_link_info of a cgroup link (cgroup.cgroup_id at 16, cgroup.attach_type at 24). */
export function cgroupLinkInfo(fd: number): CgroupLinkInfo {
  const b = objInfo(fd, 48);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    progId: b.readUInt32LE(8),
    cgroupId: b.readBigUInt64LE(16),
    attachType: b.readUInt32LE(24),
  };
}

/** Replace a link's program atomically (BPF_F_REPLACE with the old program). */
export function linkUpdate(linkFd: number, newProgFd: number, oldProgFd: number): void {
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(BPF_F_REPLACE, 8);
  opts.writeUInt32LE(oldProgFd, 12);
  check('bpf_link_update', bpf().link_update(linkFd, newProgFd, opts), 'cannot replace the dispatcher program');
}

/** Detach a link (the pin stays but points at a dead link). */
export function linkDetach(linkFd: number): void {
  check('bpf_link_detach', bpf().link_detach(linkFd), 'cannot detach the dispatcher');
}

/** Result of a BPF_PROG_TEST_RUN. */
export interface TestRunResult {
  retval: number;
  durationNs: number;
  ctxOut: Buffer;
}

/** BPF_PROG_TEST_RUN with a context (sk_lookup). */
export function progTestRun(progFd: number, ctxIn: Buffer, repeat: number): TestRunResult {
  const opts = Buffer.alloc(80);
  const ctxOut = Buffer.alloc(ctxIn.length);
  opts.writeBigUInt64LE(80n, 0);
  // Pointers inside the opts struct: koffi cannot embed Buffers, so we use
  // addresses that stay valid while the Buffers are referenced here.
  opts.writeBigUInt64LE(addressOf(ctxIn), 32);
  opts.writeBigUInt64LE(addressOf(ctxOut), 40);
  opts.writeUInt32LE(ctxIn.length, 48);
  opts.writeUInt32LE(ctxOut.length, 52);
  opts.writeUInt32LE(repeat, 60);
  check('bpf_prog_test_run_opts', bpf().test_run(progFd, opts));
  return { retval: opts.readUInt32LE(56), durationNs: opts.readUInt32LE(64), ctxOut };
}

function addressOf(buf: Buffer): bigint {
  return koffi().address(buf);
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}
