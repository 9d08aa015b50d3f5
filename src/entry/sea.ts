/**
 * Entry of the single executable (build/sea/manifold, /usr/lib/manifold/manifold;
 * scripts/build-sea.mjs): an esbuild CommonJS bundle of the CLI and the
 * generator, evaluated while Node builds the start-up snapshot, so a start
 * only deserialises it and runs {@link start}.
 *
 * Everything that depends on the process (argv, environment, cwd, stdout,
 * the program directory, the version) is read in {@link start}, after
 * deserialisation. The generator is the same executable started under the
 * name `manifold-generator` (a symlink).
 */
import path from 'node:path';
import v8 from 'node:v8';
import { main, prepareParser } from '../cli/main.js';
import { settleOutput } from '../cli/output.js';
import { guardStream, noteWriteFailure } from '../log/stdio.js';
import { run as runGenerator } from '../generator/run.js';
import { setProgramDir } from '../locate.js';
import { WARM_UP_LINES, warmUp } from './warmup.js';
import { warmUpOps } from './warmup-ops.js';

/** At most this many bytes of buffers may be left held by the snapshot's warm-up. */
const SNAPSHOT_BUFFER_BYTES = 64 * 1024;

/** Name under which the executable runs the systemd generator. */
const GENERATOR_NAME = 'manifold-generator';

/** fd of each standard stream. */
const FD = { stdout: 1, stderr: 2 } as const;

/**
 * Which of process.stdout and process.stderr have been created (Node creates them on first
 * use). Each gets the 'error' listener of guardStream when it is created, whoever creates it
 * (yargs' help through console.log, a progress line): a failed write (EPIPE, ENOSPC) is then
 * recorded for settleOutput instead of crashing the process with a stack trace.
 */
function trackStdio(): Set<'stdout' | 'stderr'> {
  const used = new Set<'stdout' | 'stderr'>();
  for (const name of ['stdout', 'stderr'] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name);
    const get = d?.get;
    if (!d || !get) {
      used.add(name);
      if (d?.value) guardStream(FD[name], d.value as NodeJS.WriteStream);
      continue;
    }
    Object.defineProperty(process, name, { ...d, get: () => (used.add(name), guardStream(FD[name], get.call(process) as NodeJS.WriteStream)) });
  }
  return used;
}

function start(): void {
  // Node starts its inspector (remote code execution for anyone who can reach 127.0.0.1:9229)
  // on SIGUSR1 unless JavaScript listens for the signal: manifold runs as root and has no use for it.
  process.on('SIGUSR1', () => {});
  // process.execPath is the executable's real path (symlinks resolved).
  setProgramDir(path.dirname(process.execPath));
  // A single executable's argv is [execPath, argv0, ...arguments].
  const args = process.argv.slice(2);
  if (path.basename(process.argv0) === GENERATOR_NAME) {
    // Exit now rather than by emptying the event loop: that path tears the heap and the
    // environment down first, 1-2 ms at every boot (the generator writes synchronously:
    // nothing is left to flush).
    process.exit(runGenerator(args));
  }
  // Exit only once stdout and stderr are flushed (large JSON documents on a pipe);
  // a stream nothing wrote to is not created just for that. A flush that fails (the
  // reader went away, the disk is full) is recorded like any failed write.
  const used = trackStdio();
  const flush = (s: 'stdout' | 'stderr', then: () => void): void => {
    if (used.has(s)) {
      process[s].write('', (err?: Error | null) => {
        if (err) noteWriteFailure(FD[s], err);
        then();
      });
    } else {
      then();
    }
  };
  // The exit status then depends on whether stdout could be written (settleOutput, which
  // may add an error line on stderr: flushed too). setImmediate: a stream's 'error' event
  // comes on the tick after the failed write's callback.
  let settled = false;
  const finish = (code: number): void =>
    flush('stdout', () =>
      flush('stderr', () =>
        setImmediate(() => {
          settled = true;
          const status = settleOutput(code);
          flush('stderr', () => process.exit(status));
        }),
      ),
    );
  // Something may exit before finish (yargs exits right after printing --help): a stream
  // write that failed then has not emitted its 'error' event yet, but the stream knows.
  process.on('exit', (code) => {
    if (settled) return;
    settled = true;
    for (const s of used) {
      const err = (process[s] as { errored?: Error | null }).errored;
      if (err) noteWriteFailure(FD[s], err);
    }
    const status = settleOutput(code);
    if (status !== code) process.exitCode = status;
  });
  main(args).then(finish, (err: unknown) => {
    process.stderr.write(`manifold: internal error: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    finish(1);
  });
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  v8.startupSnapshot.setDeserializeMainFunction(start);
  // The write path on the in-memory twin first: what it allocates is garbage when it returns, but
  // only a collection says so, and none is run here (a unit test checks that it keeps nothing).
  warmUpOps();
  const external = v8.getHeapStatistics().external_memory;
  // The build runs this in its output directory (scripts/build-sea.mjs).
  warmUp(process.cwd()).then(
    (n) => {
      if (n !== WARM_UP_LINES.length) {
        process.stderr.write(`manifold snapshot: only ${n} of ${WARM_UP_LINES.length} warm-up command lines reached their handler: update src/entry/warmup.ts\n`);
        process.exitCode = 1;
      }
      prepareParser();
      // Buffers a module keeps (a scratch buffer, a cache) are copied into the snapshot and
      // read back on every start: a megabyte costs milliseconds.
      // (process.memoryUsage().arrayBuffers reads 0 while a snapshot is built.)
      const held = v8.getHeapStatistics().external_memory - external;
      if (held > SNAPSHOT_BUFFER_BYTES) {
        process.stderr.write(`manifold snapshot: the warm-up left ${held} bytes of buffers held (at most ${SNAPSHOT_BUFFER_BYTES}): a module keeps a large buffer; allocate it on use instead\n`);
        process.exitCode = 1;
      }
    },
    (err: unknown) => {
      process.stderr.write(`manifold snapshot: warm-up failed: ${err instanceof Error ? (err.stack ?? String(err)) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  start();
}
