/**
 * Writes to standard output and standard error for the CLI (src/cli/output.ts) and the
 * event sinks (src/log/journal.ts): one owner, so the two keep their order.
 */
import fs from 'node:fs';

/** fds written through their process stream: later writes go there too, in order. */
const viaStream = new Set<1 | 2>();

/** Where put() writes instead of the fds (tests; see {@link redirectStdio}). */
let redirect: ((fd: 1 | 2, data: string | Uint8Array) => void) | null = null;

/** For tests in one process: what put() writes goes to `sink` (null: to the fds again). */
export function redirectStdio(sink: ((fd: 1 | 2, data: string | Uint8Array) => void) | null): void {
  redirect = sink;
}

/** process.stdout or process.stderr, from now on the way to `fd` (for large or streamed output). */
export function useStream(fd: 1 | 2): NodeJS.WriteStream {
  viaStream.add(fd);
  return fd === 1 ? process.stdout : process.stderr;
}

/**
 * Write to fd 1 or 2. Short commands write with write(2): creating process.stdout or
 * process.stderr costs 2–6 ms (a stream over a file, a pipe or a terminal), more than such a
 * command's own output. On Linux Node writes those streams synchronously too, so the order of
 * the bytes is the same either way. What write(2) does not take (EAGAIN from a non-blocking
 * pipe, EPIPE, an interrupted write) goes to the stream, which handles it as it always did,
 * and so does everything written to that fd afterwards.
 */
export function put(fd: 1 | 2, data: string | Uint8Array): void {
  if (redirect) {
    redirect(fd, data);
    return;
  }
  if (viaStream.has(fd)) {
    useStream(fd).write(data);
    return;
  }
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    return;
  } catch {
    // the stream takes the rest
  }
  useStream(fd).write(off === 0 ? data : buf.subarray(off));
}
