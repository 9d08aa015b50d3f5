/**
 * The one place that loads koffi and the native libraries.
 *
 * Libraries are opened lazily so that commands that need none of them (and
 * the generator, which never imports this module) pay nothing. koffi is a
 * native addon, never part of the start-up snapshot: it is required from its
 * real path (node_modules/ beside or above the program, see locate.ts) on
 * first use, after the snapshot is deserialised.
 */
import type * as KoffiTypes from 'koffi';
import { findUp, programRequire } from '../locate.js';

/** The koffi module, loaded on first use. */
export type Koffi = typeof KoffiTypes;
/** A loaded shared library. */
export type Lib = KoffiTypes.LibraryHandle;

let koffiModule: Koffi | undefined;

/** koffi itself (loaded on demand). */
export function koffi(): Koffi {
  koffiModule ??= loadKoffi();
  return koffiModule;
}

/** Directory names of koffi's glibc binaries in its platform packages, by Node architecture. */
const KOFFI_ABI: Partial<Record<string, string>> = { x64: 'x64', arm64: 'arm64', ia32: 'ia32', arm: 'armhf', riscv64: 'riscv64d' };

/**
 * koffi's package entry finds this platform's binary through package
 * resolution and an ELF probe of the Node binary, then wraps a few
 * deprecated aliases manifold does not use: together most of the cost of a
 * command that touches BPF. The binary is the module, so it is loaded
 * directly from where koffi's platform package keeps it
 * (node_modules/@koromix/koffi-linux-<arch>/linux_<abi>/koffi.node);
 * anything else (musl, another layout) goes through koffi's own loader.
 */
function loadKoffi(): Koffi {
  const abi = KOFFI_ABI[process.arch];
  const binary = abi && findUp([`node_modules/@koromix/koffi-${process.platform}-${process.arch}/${process.platform}_${abi}/koffi.node`]);
  if (binary) {
    try {
      // What require() does for a .node file, without its module resolution (a realpath of
      // every path component): the path is already the file's.
      const mod = { exports: {} as Partial<Koffi> };
      process.dlopen(mod, binary);
      const native = mod.exports;
      if (typeof native.load === 'function' && typeof native.errno === 'function') return native as Koffi;
    } catch {
      /* koffi's loader below says what is wrong */
    }
  }
  try {
    return programRequire()('koffi') as Koffi;
  } catch (err) {
    // Node's message runs on with a require stack: its first line says what is missing.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new Error(`cannot load koffi, the library manifold calls libbpf and libc through (${why}): the installation is incomplete; reinstall manifold`);
  }
}

const libs = new Map<string, Lib | null>();

/**
 * Open a shared library by soname. Returns null when `optional` and the
 * library is missing; throws otherwise.
 */
export function openLib(soname: string, optional = false): Lib | null {
  if (libs.has(soname)) return libs.get(soname) ?? null;
  // koffi's own failure is not the library's (and never optional).
  const k = koffi();
  try {
    const lib = k.load(soname);
    libs.set(soname, lib);
    return lib;
  } catch (err) {
    if (optional) {
      libs.set(soname, null);
      return null;
    }
    throw new Error(`cannot load ${soname}: ${(err as Error).message}`);
  }
}

/** errno of the last failed libc call (read it right after the call). */
export function lastErrno(): number {
  return koffi().errno();
}

/** A C function bound through koffi. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CFunction = (...args: any[]) => any;

/**
 * A library whose functions are declared up front but bound on first call:
 * declaring a prototype costs about 0.1 ms and a single-shot command calls
 * only a few of them. `open` runs at the first call of any function.
 */
export function lazyLib(open: () => Lib): { func(prototype: string): CFunction } {
  return {
    func(prototype: string): CFunction {
      let bound: CFunction | undefined;
      return (...args: unknown[]) => (bound ??= open().func(prototype) as CFunction)(...args);
    },
  };
}
