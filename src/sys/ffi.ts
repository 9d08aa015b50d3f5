/**
 * The one place that loads koffi and the native libraries.
 *
 * Libraries are opened lazily so that commands that need none of them (and
 * the generator, which never imports this module) pay nothing.
 */
import { createRequire } from 'node:module';
import type * as KoffiTypes from 'koffi';

const require = createRequire(import.meta.url);

/** The koffi module, loaded on first use. */
export type Koffi = typeof KoffiTypes;
/** A loaded shared library. */
export type Lib = KoffiTypes.LibraryHandle;

let koffiModule: Koffi | undefined;

/** koffi itself (CommonJS build, loaded on demand). */
export function koffi(): Koffi {
  koffiModule ??= require('koffi') as Koffi;
  return koffiModule;
}

const libs = new Map<string, Lib | null>();

/**
 * Open a shared library by soname. Returns null when `optional` and the
 * library is missing; throws otherwise.
 */
export function openLib(soname: string, optional = false): Lib | null {
  if (libs.has(soname)) return libs.get(soname) ?? null;
  try {
    const lib = koffi().load(soname);
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
