/**
 * Probes for `manifold doctor`: load a two-instruction sk_lookup program,
 * try a batch update on an LPM trie, walk the kernel's BPF links, read
 * libbpf's version and where a shared library was loaded from. Each probe
 * creates only unpinned objects and closes them before it returns.
 */
import fs from 'node:fs';
import { libbpf } from './bpf.js';
import { SysError } from './errno.js';
import { openLib } from './ffi.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface ProbeFns {
  prog_load: Fn;
  link_next_id: Fn;
  update_batch: Fn;
  major: Fn;
  minor: Fn;
  version: Fn;
}

let fns: ProbeFns | undefined;

function probe(): ProbeFns {
  if (fns) return fns;
  const lib = libbpf();
  fns = {
    prog_load: lib.func('int bpf_prog_load(int type, const char *name, const char *license, const uint8_t *insns, size_t insn_cnt, const uint8_t *opts)'),
    link_next_id: lib.func('int bpf_link_get_next_id(uint32_t start_id, _Out_ uint32_t *next_id)'),
    update_batch: lib.func('int bpf_map_update_batch(int fd, const uint8_t *keys, const uint8_t *values, _Inout_ uint32_t *count, const uint8_t *opts)'),
    major: lib.func('uint32_t libbpf_major_version(void)'),
    minor: lib.func('uint32_t libbpf_minor_version(void)'),
    version: lib.func('const char *libbpf_version_string(void)'),
  };
  return fns;
}

/** BPF_PROG_TYPE_SK_LOOKUP. */
const PROG_TYPE_SK_LOOKUP = 30;
/** BPF_SK_LOOKUP (enum bpf_attach_type). */
const ATTACH_SK_LOOKUP = 36;

/**
 * Load `r0 = SK_PASS; exit` as an sk_lookup program (not attached) and
 * return its fd; the caller closes it. struct bpf_prog_load_opts is given
 * with sz 16: size_t sz at 0, int attempts at 8, expected_attach_type at 12
 * (libbpf accepts a shorter struct from older callers).
 */
export function loadSkLookupProbe(): number {
  const insns = Buffer.from([
    0xb7, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // r0 = 1 (SK_PASS)
    0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
  ]);
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(ATTACH_SK_LOOKUP, 12);
  const ret = probe().prog_load(PROG_TYPE_SK_LOOKUP, 'mf_probe', 'GPL', insns, 2, opts) as number;
  if (ret < 0) throw new SysError('bpf_prog_load', -ret, 'cannot load an sk_lookup program');
  return ret;
}

/**
 * Update one element of a map with BPF_MAP_UPDATE_BATCH: true when the
 * kernel supports batch operations on it, false when it says it does not
 * (ENOTSUPP, EOPNOTSUPP, EINVAL); other failures throw.
 */
export function batchUpdateWorks(fd: number, key: Buffer, value: Buffer): boolean {
  const opts = Buffer.alloc(24);
  opts.writeBigUInt64LE(24n, 0);
  const ret = probe().update_batch(fd, key, value, [1], opts) as number;
  if (ret === 0) return true;
  if (ret === -524 || ret === -95 || ret === -22) return false;
  throw new SysError('bpf_map_update_batch', -ret);
}

/** The id of the next BPF link after `id` (0: the first), or null at the end. */
export function nextLinkId(id: number): number | null {
  const next = [0];
  const ret = probe().link_next_id(id, next) as number;
  if (ret === -2) return null;
  if (ret < 0) throw new SysError('bpf_link_get_next_id', -ret, 'cannot list BPF links');
  return next[0] ?? null;
}

/** libbpf's version ("1.1") and where it was loaded from. */
export function libbpfVersion(): { version: string; file: string | null } {
  const f = probe();
  let version: string;
  try {
    version = String(f.version() as string).replace(/^v/, '');
  } catch {
    version = `${f.major() as number}.${f.minor() as number}`;
  }
  return { version, file: loadedLibrary('libbpf.so') };
}

/** Load a shared library by soname (null when it cannot be loaded) and say where it came from. */
export function findLibrary(soname: string): { file: string | null } | null {
  const lib = openLib(soname, true);
  if (!lib) return null;
  return { file: loadedLibrary(soname) };
}

/** The file a loaded library was mapped from (its real name carries the version: libsystemd.so.0.35.0). */
export function loadedLibrary(prefix: string): string | null {
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return null;
  }
  for (const line of maps.split('\n')) {
    const file = line.slice(line.indexOf('/'));
    if (line.includes('/') && file.split('/').pop()?.startsWith(prefix)) return file.trim();
  }
  return null;
}
