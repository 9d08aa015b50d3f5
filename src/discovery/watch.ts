/**
 * The UDP target registrar (`manifold discovery watch`,
 * manifold-discovery.service).
 *
 * No hook that runs at bind() may put a UDP socket into a sockmap (the
 * verifier refuses it in post_bind and sock_ops, and sock_ops never runs for
 * UDP), so disc_bind4/6 send a disc_event for binds on target addresses and
 * this loop registers the socket by running the task_file iterator over the
 * binding process (kernel >= 6.1; every process before). Until it has run —
 * typically well under a millisecond — traffic *redirected* to that new
 * socket is refused; traffic addressed to the socket itself is not affected
 * (the index is synchronous). TCP needs no watcher: sock_ops registers
 * listeners inside listen().
 *
 * The loop holds no lock (it only reads the ring buffer and runs
 * idempotent iterators), notices a disable, and re-scans every process
 * when it starts and whenever events were lost.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mapLookup, objGet } from '../sys/bpf.js';
import { closeFd } from '../sys/libc.js';
import { RingBuffer } from '../sys/ringbuf.js';
import { possibleCpus } from '../sys/cpus.js';
import { formatAddr } from '../core/net.js';
import { decodeEvent, DISC_KEY_SIZE, DISC_SOCK_SIZE, fromKeyAddr, protoName, COUNTER_NAMES, type DiscEvent } from './codec.js';
import { runIterator, seedProcess, addRecords, emptySummary } from './seed.js';
import { discoveryDir } from './paths.js';
import { DiscoveryState } from './state.js';

/** One registration attempt for an event. */
export interface Registration {
  event: DiscEvent;
  address: string;
  registered: boolean;
  /** Still indexed (false: the socket was closed before it could be registered). */
  open: boolean;
  /** Registered only by the full re-scan (the fd had moved to another process). */
  rescanned: boolean;
}

/** Callbacks of the loop. */
export interface WatchHooks {
  ready(summary: { registered: number }): void;
  registered(r: Registration): void;
  rescan(reason: string, registered: number): void;
}

const LOST = COUNTER_NAMES.indexOf('events_lost');

function counter(fd: number, idx: number): bigint {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(idx, 0);
  const cpus = possibleCpus();
  const v = mapLookup(fd, k, 8 * cpus);
  let sum = 0n;
  if (v) for (let c = 0; c < cpus; c++) sum += v.readBigUInt64LE(c * 8);
  return sum;
}

function has(fd: number, cookie: bigint, size: number): boolean {
  const k = Buffer.alloc(8);
  k.writeBigUInt64LE(cookie, 0);
  return mapLookup(fd, k, size) !== null;
}

/**
 * Run the registrar until `signal` aborts or discovery is disabled. Resolves
 * with the reason it stopped.
 */
export async function watch(bpffs: string, lockTimeoutMs: number, signal: AbortSignal, hooks: WatchHooks): Promise<'stopped' | 'disabled'> {
  // Check the state once under the lock, then keep only our own fds.
  DiscoveryState.open(bpffs, false, lockTimeoutMs).close();
  const dir = discoveryDir(bpffs);
  const dirIno = fs.statSync(dir).ino;
  const fds: number[] = [];
  const open = (name: string): number => {
    const fd = objGet(path.join(dir, name));
    fds.push(fd);
    return fd;
  };
  const fileProg = open('prog_iter_file');
  const targetCk = open('disc_target_ck');
  const socks = open('disc_socks');
  const counters = open('disc_counters');
  const events = open('disc_events');
  const rb = new RingBuffer(events);
  try {
    const sweep = (): number => {
      const s = emptySummary('task_file');
      addRecords(s, runIterator(fileProg), new Set());
      return s.targets;
    };
    hooks.ready({ registered: sweep() });
    let lost = counter(counters, LOST);
    let lastCheck = Date.now();
    while (!signal.aborted) {
      const batch = rb.poll(200).map(decodeEvent).filter((e): e is DiscEvent => e !== null);
      for (const ev of batch) {
        seedProcess(fileProg, ev.tgid);
        let registered = has(targetCk, ev.cookie, DISC_KEY_SIZE);
        const stillOpen = has(socks, ev.cookie, DISC_SOCK_SIZE);
        let rescanned = false;
        if (!registered && stillOpen) {
          sweep();
          registered = has(targetCk, ev.cookie, DISC_KEY_SIZE);
          rescanned = registered;
        }
        hooks.registered({ event: ev, address: formatAddr(fromKeyAddr(ev.addr)), registered, open: stillOpen, rescanned });
      }
      const nowLost = counter(counters, LOST);
      if (nowLost !== lost) {
        lost = nowLost;
        hooks.rescan('UDP bind events were lost (ring buffer full)', sweep());
      }
      if (Date.now() - lastCheck > 1000) {
        lastCheck = Date.now();
        if (!stillEnabled(dir, dirIno)) return 'disabled';
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return 'stopped';
  } finally {
    rb.close();
    for (const fd of fds) closeFd(fd);
  }
}

function stillEnabled(dir: string, ino: number): boolean {
  try {
    return fs.statSync(dir).ino === ino;
  } catch {
    return false;
  }
}

/** Text for a registration (journal MESSAGE and terminal line). */
export function registrationText(r: Registration): string {
  const what = `${protoName(r.event.proto)} ${r.event.family === 10 ? `[${r.address}]` : r.address}:${r.event.port} (socket ${r.event.cookie}, pid ${r.event.tgid})`;
  if (r.registered) return `registered target socket ${what}${r.rescanned ? ' after a re-scan of every process' : ''}`;
  if (!r.open) return `target socket ${what} was closed before it could be registered`;
  return `could not register target socket ${what}: no process holds it`;
}
