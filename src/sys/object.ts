/**
 * Loading the dispatcher's BPF object with libbpf (bpf_object__*).
 *
 * libbpf resolves BTF-defined maps (including the map-in-map template),
 * relocations and the verifier log; we only keep fds and close the object.
 */
import fs from 'node:fs';
import { koffi } from './ffi.js';
import { libbpf, mapShape, shapeMismatch } from './bpf.js';
import { BpfObjectError, describeErrno, SysError } from './errno.js';
import { lastErrno } from './ffi.js';

/** Largest file taken for a BPF object (the dispatcher's is about 40 KiB, listener discovery's 150 KiB). */
export const MAX_OBJECT_FILE_BYTES = 64 * 1024 * 1024;

/** Why a file cannot be a BPF object: `text` for a message, `errno` the nearest errno. */
export interface ObjectFileProblem {
  errno: number;
  text: string;
}

/** What a file that is not a regular file is, in words. */
function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Why the file at `path` cannot be handed to libbpf as a BPF object, or null when it can:
 * it must open for reading and be a regular file of at most {@link MAX_OBJECT_FILE_BYTES}.
 * libbpf opens the path with a blocking open(2) and reads it whole: a FIFO without a writer
 * would block forever (with the writers' lock held), a device such as /dev/zero is read
 * until libbpf gives up. So the file is opened here with O_NONBLOCK (Node adds O_CLOEXEC),
 * which never waits, and looked at with fstat(2) before libbpf sees it. (libbpf then opens
 * the path again: whoever can swap the file in between chose the path in the first place.)
 */
export function objectFileProblem(path: string): ObjectFileProblem | null {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const errno = Math.abs(typeof e.errno === 'number' ? e.errno : 5);
    return { errno, text: e.code === 'ENOENT' ? 'no such file' : `cannot open it: ${describeErrno(errno)}` };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { errno: st.isDirectory() ? 21 /* EISDIR */ : 22 /* EINVAL */, text: `${fileKind(st)}, not a regular file` };
    if (st.size > MAX_OBJECT_FILE_BYTES) {
      return { errno: 27 /* EFBIG */, text: `${st.size} bytes, too large for a BPF object (at most ${MAX_OBJECT_FILE_BYTES / (1024 * 1024)} MiB)` };
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** A file that cannot be a BPF object (see {@link objectFileProblem}): never handed to libbpf. */
export class ObjectFileError extends SysError {
  constructor(path: string, problem: ObjectFileProblem) {
    super('bpf_object', problem.errno);
    this.name = 'ObjectFileError';
    this.message = `cannot open BPF object ${path}: ${problem.text}`;
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface ObjFns {
  open_file: Fn;
  load: Fn;
  close: Fn;
  find_map: Fn;
  map_reuse_fd: Fn;
  map_set_max_entries: Fn;
  map_type: Fn;
  map_key_size: Fn;
  map_value_size: Fn;
  map_fd: Fn;
  next_map: Fn;
  map_name: Fn;
  find_prog: Fn;
  prog_fd: Fn;
  set_print: Fn;
  vsnprintf: Fn;
}

let fns: ObjFns | undefined;
const logLines: string[] = [];
let printCallback: unknown;

function obj(): ObjFns {
  if (fns) return fns;
  const k = koffi();
  const lib = libbpf();
  const libc = k.load('libc.so.6');
  k.opaque('bpf_object');
  k.opaque('bpf_map');
  k.opaque('bpf_program');
  const printFn = k.proto('int manifold_libbpf_print_fn(int level, const char *fmt, void *args)');
  fns = {
    open_file: lib.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
    load: lib.func('int bpf_object__load(bpf_object *obj)'),
    close: lib.func('void bpf_object__close(bpf_object *obj)'),
    find_map: lib.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    map_reuse_fd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    map_set_max_entries: lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
    map_type: lib.func('int bpf_map__type(bpf_map *map)'),
    map_key_size: lib.func('uint32_t bpf_map__key_size(bpf_map *map)'),
    map_value_size: lib.func('uint32_t bpf_map__value_size(bpf_map *map)'),
    map_fd: lib.func('int bpf_map__fd(bpf_map *map)'),
    next_map: lib.func('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *map)'),
    map_name: lib.func('const char *bpf_map__name(bpf_map *map)'),
    find_prog: lib.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    prog_fd: lib.func('int bpf_program__fd(bpf_program *prog)'),
    set_print: lib.func('void *libbpf_set_print(manifold_libbpf_print_fn *fn)'),
    vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *args)'),
  };
  const buf = Buffer.alloc(1 << 16);
  printCallback = k.register((level: number, fmt: string, args: unknown) => {
    const n = fns!.vsnprintf(buf, buf.length, fmt, args) as number;
    if (level <= 1 || logLines.length < 2000) logLines.push(buf.subarray(0, Math.min(n, buf.length - 1)).toString('utf8'));
    return 0;
  }, k.pointer(printFn));
  fns.set_print(printCallback);
  return fns;
}

/** A loaded BPF object: the program fd and the fds of its maps. */
export interface LoadedObject {
  progFd: number;
  mapFd(name: string): number;
  /** Close the libbpf object (and the fds it owns). Pin first. */
  close(): void;
}

/** Options of loading an object. */
export interface LoadOptions {
  /** Maps not to create: the given fds are used instead (in-place upgrades, shared maps). */
  reuse?: ReadonlyMap<string, number>;
  /**
   * Maps to reuse when the object has them, keyed by the kernel's name of
   * the map (the object's name cut at 15 characters; global-data maps are
   * never reused): for a copy of a running program on its maps.
   */
  reuseByKernelName?: ReadonlyMap<string, number>;
  /** max_entries of maps sized at load time. */
  maxEntries?: ReadonlyMap<string, number>;
}

/** A loaded BPF object with several programs. */
export interface LoadedMultiObject {
  progFd(name: string): number;
  mapFd(name: string): number;
  /** Close the libbpf object (and the fds it owns). Pin first. */
  close(): void;
}

/**
 * Open and load a BPF object file with all its programs (libbpf resolves
 * section names, CO-RE relocations against the kernel's BTF and iterator
 * targets). `what` names the object in errors.
 */
export function loadObjectAll(path: string, what: string, opts: LoadOptions = {}): LoadedMultiObject {
  const problem = objectFileProblem(path);
  if (problem) throw new ObjectFileError(path, problem);
  const f = obj();
  logLines.length = 0;
  const handle = f.open_file(path, null);
  if (!handle) throw new BpfObjectError(`cannot open BPF object ${path}`, lastErrno(), logLines);
  let closed = false;
  const close = (): void => {
    if (!closed) f.close(handle);
    closed = true;
  };
  const findMap = (name: string): unknown => {
    const map = f.find_map(handle, name);
    if (!map) throw new BpfObjectError(`BPF object has no map named ${name}`, 2, logLines);
    return map;
  };
  try {
    for (const [name, n] of opts.maxEntries ?? []) {
      const ret = f.map_set_max_entries(findMap(name), n) as number;
      if (ret < 0) throw new BpfObjectError(`cannot size the map ${name}`, -ret, logLines);
    }
    // libbpf takes a reused map's definition from the map itself, whatever it is: a pinned
    // map that is not what the program declares must be refused here (the verifier would
    // not notice a larger value, a different type of the same sizes, or an unread map).
    const reuse = (map: unknown, name: string, fd: number): void => {
      const want = { type: f.map_type(map) as number, keySize: f.map_key_size(map) as number, valueSize: f.map_value_size(map) as number };
      const mismatch = shapeMismatch(mapShape(fd), want);
      if (mismatch) throw new BpfObjectError(`the existing map ${name} is not the map the program declares (${mismatch})`, 22, logLines);
      const ret = f.map_reuse_fd(map, fd) as number;
      if (ret < 0) throw new BpfObjectError(`cannot reuse the existing map ${name}`, -ret, logLines);
    };
    for (const [name, fd] of opts.reuse ?? []) reuse(findMap(name), name, fd);
    if (opts.reuseByKernelName) {
      for (let map = f.next_map(handle, null); map; map = f.next_map(handle, map)) {
        const name = String(f.map_name(map));
        const fd = name.includes('.') || opts.reuse?.has(name) ? undefined : opts.reuseByKernelName.get(name.slice(0, 15));
        if (fd === undefined) continue;
        reuse(map, name, fd);
      }
    }
    const ret = f.load(handle) as number;
    if (ret < 0) throw new BpfObjectError(`the kernel rejected the ${what}`, -ret, logLines);
    return {
      progFd(name: string): number {
        const prog = f.find_prog(handle, name);
        if (!prog) throw new BpfObjectError(`BPF object has no program named ${name}`, 2, logLines);
        return f.prog_fd(prog) as number;
      },
      mapFd: (name: string): number => f.map_fd(findMap(name)) as number,
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}

/** Open and load the dispatcher object: its one program `progName` and its maps. */
export function loadObject(path: string, progName: string, opts: LoadOptions = {}): LoadedObject {
  const o = loadObjectAll(path, 'dispatcher program', opts);
  try {
    return { progFd: o.progFd(progName), mapFd: (name) => o.mapFd(name), close: () => o.close() };
  } catch (err) {
    o.close();
    throw err;
  }
}
