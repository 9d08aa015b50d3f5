/**
 * A failed system call in words with its errno name ("no such device or
 * address (ENXIO)"): the one way messages and the output layer say why a
 * call failed, without Node's wrapping ("ENXIO: no such device or address,
 * open 'sock'") — the caller names the path once, in its own words.
 */
import { getSystemErrorMap } from 'node:util';

/** Syscall names Node appends to an fs error's message (", open 'path'"). */
const SYSCALL_TAIL = /, (?:open|read|stat|lstat|scandir|readlink|mkdir|rename|write|close|fstat|access|unlink|rmdir|statfs)(?: |$)/;

/** The errno name and words of a Node system error, or null when it carries no known errno. */
export function errnoOf(err: unknown): { code: string; words: string } | null {
  const errno = (err as Partial<NodeJS.ErrnoException> | null | undefined)?.errno;
  if (typeof errno !== 'number') return null;
  const sys = getSystemErrorMap().get(-Math.abs(errno));
  return sys ? { code: sys[0], words: sys[1] } : null;
}

/** Why a call failed: "words (CODE)" for a system error, else the error's message. */
export function fsReason(err: unknown): string {
  const sys = errnoOf(err);
  if (sys) return `${sys.words} (${sys.code})`;
  const e = err as NodeJS.ErrnoException | null | undefined;
  const message = e instanceof Error ? e.message : String(err);
  const code = typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? e.code : null;
  if (code === null) return message;
  const words = message.startsWith(`${code}: `) ? message.slice(code.length + 2).split(SYSCALL_TAIL)[0] : null;
  return words ? `${words} (${code})` : code;
}
