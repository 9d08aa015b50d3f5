/**
 * Discovery data-plane worker (runs inside a scratch namespace, moved into
 * a scratch cgroup): enables listener discovery on that cgroup and the
 * namespace's bpffs, opens real listeners, loads a private copy of the
 * seed's dispatcher (test/fixtures/bpf/discovery-dispatch.bpf.c, on
 * bpf/discovery.h) and the empty program, checks each probe's outcome, then
 * times them with BPF_PROG_TEST_RUN. Argument: JSON of DiscoveryBenchConfig;
 * prints one JSON DiscoveryBenchResult on stdout.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { mapUpdate, objGet, progTestRun } from '../src/sys/bpf.js';
import { closeFd } from '../src/sys/libc.js';
import { loadObject, type LoadedObject } from '../src/sys/object.js';
import { currentNetnsCookie } from '../src/sys/netns.js';
import { disable, enable } from '../src/discovery/lifecycle.js';
import { DiscoveryState } from '../src/discovery/state.js';
import { addTarget } from '../src/discovery/targets.js';
import { DISPATCHER_SHARED_MAPS, discoveryDir } from '../src/discovery/paths.js';

/** What to measure. */
export interface DiscoveryBenchConfig {
  rounds: number;
  repeat: number;
  bpffs: string;
  cgroup: string;
  objects: { dispatch: string; empty: string };
}

/** Probe names. */
export type DiscoveryProbe = 'unmanaged' | 'exact' | 'wildcard' | 'redirect' | 'drop';

/** Samples of one program on one probe. */
export interface DiscoveryCombo {
  prog: 'dispatch' | 'empty';
  probe: DiscoveryProbe;
  samples: number[];
  /** The checked outcome: SK_PASS (1) or SK_DROP (0), and the socket assigned (cookie or 0). */
  retval: number;
  assigned: string;
  /** What the probe must give. */
  expect: { retval: number; assigned: 'target' | 'none' };
}

/** Whole result. */
export interface DiscoveryBenchResult {
  targetCookie: string;
  enableMs: number;
  combos: DiscoveryCombo[];
}

const PROBES: Record<DiscoveryProbe, { addr: number; port: number; retval: number; assigned: 'target' | 'none' }> = {
  unmanaged: { addr: 0x7f000007, port: 9999, retval: 1, assigned: 'none' },
  exact: { addr: 0x7f000009, port: 7000, retval: 1, assigned: 'none' },
  wildcard: { addr: 0x7f000007, port: 7100, retval: 1, assigned: 'none' },
  redirect: { addr: 0x7f000007, port: 7000, retval: 1, assigned: 'target' },
  drop: { addr: 0x7f000007, port: 7200, retval: 0, assigned: 'none' },
};

function ctxFor(addr: number, port: number): Buffer {
  const b = Buffer.alloc(72);
  b.writeUInt32LE(2, 8); // AF_INET
  b.writeUInt32LE(6, 12); // TCP
  b.writeUInt32BE(0xc6336407, 16); // remote 198.51.100.7
  b.writeUInt16BE(40000, 36);
  b.writeUInt32BE(addr, 40);
  b.writeUInt32LE(port, 60);
  return b;
}

function listen(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject).listen({ host, port }, () => resolve(s));
  });
}

function mapping(obj: LoadedObject, port: number, addr: number, fixed = 0): void {
  const k = Buffer.alloc(4);
  k.writeUInt8(6, 0);
  k.writeUInt8(2, 1);
  k.writeUInt16LE(port, 2);
  const v = Buffer.alloc(20);
  v.writeUInt32BE(addr, 0);
  v.writeUInt16LE(fixed, 16);
  mapUpdate(obj.mapFd('test_map'), k, v);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as DiscoveryBenchConfig;
  // Sockets count for the cgroup they are created in: move first.
  fs.writeFileSync(path.join(cfg.cgroup, 'cgroup.procs'), String(process.pid));
  const t0 = process.hrtime.bigint();
  enable({ bpffs: cfg.bpffs, cgroup: cfg.cgroup, seedNetns: ['/proc/self/ns/net'], lockTimeoutMs: 10_000 });
  const enableMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const servers: net.Server[] = [];
  let dispatch: LoadedObject | null = null;
  let empty: LoadedObject | null = null;
  try {
    servers.push(await listen('127.0.0.9', 7000), await listen('127.0.0.5', 7000), await listen('0.0.0.0', 7100), await listen('127.0.0.5', 7101));
    const state = DiscoveryState.open(cfg.bpffs, true, 10_000);
    try {
      addTarget(state, { netns: currentNetnsCookie(), proto: 6, addr: Uint8Array.from([127, 0, 0, 5]) }, '/proc/self/ns/net');
    } finally {
      state.close();
    }
    const reuse = new Map<string, number>();
    for (const name of DISPATCHER_SHARED_MAPS) reuse.set(name, objGet(path.join(discoveryDir(cfg.bpffs), name)));
    try {
      dispatch = loadObject(cfg.objects.dispatch, 'test_dispatch', { reuse });
    } finally {
      for (const fd of reuse.values()) closeFd(fd);
    }
    empty = loadObject(cfg.objects.empty, 'empty_dispatch');
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(currentNetnsCookie(), 0);
    mapUpdate(dispatch.mapFd('test_cfg'), Buffer.alloc(4), c);
    mapping(dispatch, 7000, 0x7f000005);
    mapping(dispatch, 7100, 0x7f000005, 7101);
    mapping(dispatch, 7200, 0x7f000005);
    const targetFd = (servers[1] as unknown as { _handle: { fd: number } })._handle.fd;
    const cookieBuf = Buffer.alloc(8);
    // SO_COOKIE of the target listener, to check that the redirect assigns it.
    const { getsockoptRaw } = await import('../src/sys/libc.js');
    getsockoptRaw(targetFd, 1, 57, 8).copy(cookieBuf);
    const targetCookie = cookieBuf.readBigUInt64LE(0);
    const combos: (DiscoveryCombo & { fd: number; ctx: Buffer })[] = [];
    const progs = { dispatch, empty };
    for (const [probe, p] of Object.entries(PROBES) as [DiscoveryProbe, (typeof PROBES)[DiscoveryProbe]][]) {
      for (const prog of probe === 'exact' ? (['empty', 'dispatch'] as const) : (['dispatch'] as const)) {
        const ctx = ctxFor(p.addr, p.port);
        const fd = progs[prog].progFd;
        const r = progTestRun(fd, ctx, 1);
        combos.push({
          prog, probe, samples: [], retval: r.retval, assigned: r.ctxOut.readBigUInt64LE(0).toString(),
          expect: prog === 'empty' ? { retval: 1, assigned: 'none' } : { retval: p.retval, assigned: p.assigned }, fd, ctx,
        });
      }
    }
    for (const cb of combos) progTestRun(cb.fd, cb.ctx, Math.min(cfg.repeat, 10_000));
    for (let r = 0; r < cfg.rounds; r++) {
      for (let i = 0; i < combos.length; i++) {
        const cb = combos[(i + r) % combos.length]!;
        cb.samples.push(progTestRun(cb.fd, cb.ctx, cfg.repeat).durationNs);
      }
    }
    const result: DiscoveryBenchResult = { targetCookie: targetCookie.toString(), enableMs, combos: combos.map(({ fd: _f, ctx: _c, ...rest }) => rest) };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    dispatch?.close();
    empty?.close();
    for (const s of servers) s.close();
    disable({ bpffs: cfg.bpffs, lockTimeoutMs: 10_000 });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`discovery worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
