/**
 * Writes to standard output and standard error for the CLI (src/cli/output.ts) and the
 * event sinks (src/log/journal.ts): one owner, so the two keep their order.
 *
 * A write that fails (a reader that went away: EPIPE; a full disk or /dev/full: ENOSPC; EIO)
 * never throws and never becomes an unhandled 'error' event of process.stdout or
 * process.stderr: the first failure of each fd is kept ({@link writeFailure}), later writes
 * to that fd are dropped, and the CLI decides at its end what the failure means for its exit
 * status (settleOutput in src/cli/output.ts).
 */
import fs from 'node:fs';
import { errnoOf, fsReason } from '../core/errno-text.js';

/** fds written through their process stream: later writes go there too, in order. */
const viaStream = new Set<1 | 2>();

/** Where put() writes instead of the fds (tests; see {@link redirectStdio}). */
let redirect: ((fd: 1 | 2, data: string | Uint8Array) => void) | null = null;

/** Why writing to fd 1 or 2 failed. */
export interface WriteFailure {
  /** The error's code: an errno name such as EPIPE or ENOSPC (or Node's code when it has no errno). */
  code: string;
  /** The reason in words, for a message: "no space left on device (ENOSPC)". */
  reason: string;
}

/** The first failed write of each fd. */
const failures = new Map<1 | 2, WriteFailure>();

/** Streams that have the 'error' listener of {@link guardStream}. */
const guarded = new WeakSet<NodeJS.WritableStream>();

/** For tests in one process: what put() writes goes to `sink` (null: to the fds again). */
export function redirectStdio(sink: ((fd: 1 | 2, data: string | Uint8Array) => void) | null): void {
  redirect = sink;
}

/** The first failed write to `fd` (put, a stream write, or a flush), or undefined while none failed. */
export function writeFailure(fd: 1 | 2): WriteFailure | undefined {
  return failures.get(fd);
}

/**
 * Remember that writing to `fd` failed with `err` (only the first failure of each fd is kept);
 * later writes to `fd` are dropped. For writers outside this module too, e.g. the callback of
 * the final flush (src/entry/sea.ts).
 */
export function noteWriteFailure(fd: 1 | 2, err: unknown): void {
  if (failures.has(fd)) return;
  const sys = errnoOf(err);
  if (sys) {
    failures.set(fd, { code: sys.code, reason: fsReason(err) });
    return;
  }
  const e = err as Partial<NodeJS.ErrnoException> | null;
  const code = typeof e?.code === 'string' ? e.code : 'EIO';
  // ERR_STREAM_DESTROYED and the like: a stream that an earlier failure ended.
  failures.set(fd, { code, reason: code.startsWith('ERR_') ? 'the stream was closed' : code });
}

/**
 * Give `stream` (process.stdout for fd 1, process.stderr for fd 2) an 'error' listener that
 * records the failure instead of letting Node throw it as an unhandled 'error' event (which
 * prints a stack trace). Idempotent; returns `stream`. Everything that creates these streams
 * should pass them through here: {@link useStream} does, and so does the single executable
 * for any code that touches process.stdout or process.stderr (src/entry/sea.ts).
 */
export function guardStream<S extends NodeJS.WritableStream>(fd: 1 | 2, stream: S): S {
  if (!guarded.has(stream)) {
    guarded.add(stream);
    stream.on('error', (err: unknown) => noteWriteFailure(fd, err));
  }
  return stream;
}

/** process.stdout or process.stderr, from now on the way to `fd` (for large or streamed output); write errors are recorded, never thrown. */
export function useStream(fd: 1 | 2): NodeJS.WriteStream {
  viaStream.add(fd);
  return guardStream(fd, fd === 1 ? process.stdout : process.stderr);
}

/** Write through the stream of `fd` (see {@link useStream}), unless writing to `fd` already failed. */
export function putStream(fd: 1 | 2, data: string | Uint8Array): void {
  if (failures.has(fd)) return;
  useStream(fd).write(data);
}

/**
 * Write to fd 1 or 2. Short commands write with write(2): creating process.stdout or
 * process.stderr costs 2–6 ms (a stream over a file, a pipe or a terminal), more than such a
 * command's own output. On Linux Node writes those streams synchronously too, so the order of
 * the bytes is the same either way. What write(2) does not take for now (EAGAIN from a
 * non-blocking pipe, an interrupted write) goes to the stream, which waits until the fd takes
 * it, and so does everything written to that fd afterwards. Any other error (EPIPE, ENOSPC,
 * EIO, …) is recorded ({@link writeFailure}) and the rest dropped: the output is lost either way.
 */
export function put(fd: 1 | 2, data: string | Uint8Array): void {
  if (redirect) {
    redirect(fd, data);
    return;
  }
  if (failures.has(fd)) return;
  if (viaStream.has(fd)) {
    useStream(fd).write(data);
    return;
  }
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAGAIN' && code !== 'EINTR') {
      noteWriteFailure(fd, err);
      return;
    }
    // the stream takes the rest
  }
  useStream(fd).write(off === 0 ? data : buf.subarray(off));
}
