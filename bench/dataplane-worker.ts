/**
 * Data-plane worker (runs inside a scratch namespace): loads a private
 * copy of the dispatcher, the baseline and the empty program (never
 * attached), fills one binding trie shared by the dispatcher and the
 * baseline, registers a real listening socket, and times lookups with
 * BPF_PROG_TEST_RUN. Argument: JSON of DataplaneConfig. Prints one JSON
 * DataplaneResult on stdout; progress on stderr.
 */
import net from 'node:net';
import path from 'node:path';
import { BPF_F_NO_PREALLOC, MapType, mapCreate, mapLookup, mapUpdate, mapUpdateBatch, objGet, progTestRun } from '../src/sys/bpf.js';
import { closeFd } from '../src/sys/libc.js';
import { loadObject, type LoadedObject } from '../src/sys/object.js';
import { MAX_BINDINGS, Sizes } from '../src/core/layout.js';
import { u32 } from '../src/state/kernel-codec.js';
import { withState } from '../src/state/state.js';
import { load } from '../src/ops/lifecycle.js';
import { apply } from '../src/ops/apply.js';
import { registerSockets } from '../src/ops/register.js';
import { inspectSocket } from '../src/ops/socket-info.js';
import { buildBindingSet, type BindingSet, type Probe, type Probes } from './lib/bindset.js';

/** What to measure. */
export interface DataplaneConfig {
  sizes: number[];
  /** Interleaved rounds per size (one sample of every program/probe each). */
  rounds: number;
  /** BPF_PROG_TEST_RUN repeat count per sample. */
  repeat: number;
  objects: { baseline: string; empty: string };
  /** bpffs of the scratch namespace (the dispatcher is loaded there, through manifold's own write path). */
  bpffs: string;
}

/** Program names. */
export type ProgName = 'manifold' | 'baseline' | 'empty';
/** Probe names. */
export type ProbeName = keyof Probes;

/** Samples (ns per run, as reported by the kernel) of one program on one probe. */
export interface ComboResult {
  prog: ProgName;
  probe: ProbeName;
  samples: number[];
  /** Outcome of a single checked run: retval (1 = SK_PASS) and whether the probe socket was assigned. */
  retval: number;
  assigned: boolean;
  expectHit: boolean;
}

/** Results at one binding-set size. */
export interface SizeResult {
  size: number;
  exact: number;
  wild: number;
  ports: number;
  fillMs: number;
  combos: ComboResult[];
}

/** Whole result. */
export interface DataplaneResult {
  socketCookie: string;
  sizes: SizeResult[];
}

const SK_LOOKUP_CTX_SIZE = 72;
const REMOTE = 0xc6336407; // 198.51.100.7

function ctxFor(p: Probe): Buffer {
  const b = Buffer.alloc(SK_LOOKUP_CTX_SIZE);
  b.writeUInt32LE(2, 8); // family AF_INET
  b.writeUInt32LE(6, 12); // protocol TCP
  b.writeUInt32BE(REMOTE, 16); // remote_ip4
  b.writeUInt16BE(40000, 36); // remote_port (network order)
  b.writeUInt32BE(p.addr, 40); // local_ip4
  b.writeUInt32LE(p.port, 60); // local_port (host order); everything after stays 0
  return b;
}

function log(msg: string): void {
  process.stderr.write(`  dataplane: ${msg}\n`);
}

const LABELS = Array.from({ length: 64 }, (_, i) => `d${i}`);

/** Install a set: the dispatcher through apply (the real write path), the baseline into one trie. */
function install(set: BindingSet, baseline: LoadedObject, bpffs: string): number {
  const target = { netns: '/proc/self/ns/net', bpffs, lockTimeoutMs: 10_000 };
  const t0 = process.hrtime.bigint();
  withState({ ...target, write: true }, (s) => apply(s.maps, { list: set.list, labels: LABELS }, false, { force: true }));
  const fillMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const trie = mapCreate(MapType.LPM_TRIE, 'bench_trie', Sizes.bindingKey, Sizes.bindingValue, MAX_BINDINGS, { flags: BPF_F_NO_PREALLOC });
  try {
    const values = Buffer.alloc(set.size * Sizes.bindingValue);
    for (let i = 0; i < set.size; i++) {
      values.writeUInt32LE(set.list.tag(i), i * Sizes.bindingValue);
      values.writeUInt32LE(set.list.len(i), i * Sizes.bindingValue + 4);
    }
    mapUpdateBatch(trie, set.list.packedKeys(), values, set.size, Sizes.bindingKey, Sizes.bindingValue);
    mapUpdate(baseline.mapFd('bindings'), u32(0), u32(trie));
  } finally {
    closeFd(trie);
  }
  return fillMs;
}

function measureSize(size: number, cfg: DataplaneConfig, progs: Record<ProgName, { progFd: number }> & { baseline: LoadedObject }, cookie: bigint): SizeResult {
  const set = buildBindingSet(size);
  const fillMs = install(set, progs.baseline, cfg.bpffs);
  log(`${size} bindings installed in ${fillMs.toFixed(0)} ms (${set.exact} exact-port over ${set.ports} ports, ${set.wild} port-0)`);
  const combos: (ComboResult & { ctx: Buffer; fd: number })[] = [];
  const add = (prog: ProgName, probe: ProbeName, p: Probe): void => {
    const ctx = ctxFor(p);
    const fd = progs[prog].progFd;
    const r = progTestRun(fd, ctx, 1);
    const got = r.ctxOut.readBigUInt64LE(0);
    combos.push({ prog, probe, samples: [], retval: r.retval, assigned: got !== 0n && got === cookie, expectHit: p.expectHit, ctx, fd });
  };
  add('empty', 'hitExact', set.probes.hitExact);
  for (const prog of ['baseline', 'manifold'] as const) {
    for (const probe of ['hitExact', 'hitWild', 'missBoundPort', 'missUnboundPort'] as const) {
      const p = set.probes[probe];
      if (p) add(prog, probe, p);
    }
  }
  for (const c of combos) progTestRun(c.fd, c.ctx, Math.min(cfg.repeat, 10_000)); // warm-up
  for (let r = 0; r < cfg.rounds; r++) {
    // Rotate the order every round so no combo always runs first or last.
    for (let i = 0; i < combos.length; i++) {
      const c = combos[(i + r) % combos.length]!;
      c.samples.push(progTestRun(c.fd, c.ctx, cfg.repeat).durationNs);
    }
  }
  return {
    size, exact: set.exact, wild: set.wild, ports: set.ports, fillMs,
    combos: combos.map(({ ctx: _c, fd: _f, ...rest }) => rest),
  };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as DataplaneConfig;
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const target = { netns: '/proc/self/ns/net', bpffs: cfg.bpffs, lockTimeoutMs: 10_000 };
  const loaded = load({ ...target, maxDestinations: 1024 });
  const baseline = loadObject(cfg.objects.baseline, 'baseline_dispatch');
  const empty = loadObject(cfg.objects.empty, 'empty_dispatch');
  const manifoldProg = objGet(path.join(loaded.stateDir, 'program'));
  try {
    const info = inspectSocket(fd, 'the probe socket');
    withState({ ...target, write: true }, (s) => registerSockets(s.maps, s.target.netnsIno, [{ label: LABELS[0] as string, socket: info, what: 'the probe socket' }]));
    const fdValue = Buffer.alloc(8);
    fdValue.writeBigUInt64LE(BigInt(fd));
    mapUpdate(baseline.mapFd('sockets'), u32(0), fdValue);
    const cookie = mapLookup(baseline.mapFd('sockets'), u32(0), 8)?.readBigUInt64LE(0) ?? 0n;
    const progs = { manifold: { progFd: manifoldProg }, baseline, empty };
    const sizes: SizeResult[] = [];
    for (const size of cfg.sizes) sizes.push(measureSize(size, cfg, progs, cookie));
    process.stdout.write(`${JSON.stringify({ socketCookie: cookie.toString(), sizes } satisfies DataplaneResult)}\n`);
  } finally {
    closeFd(manifoldProg);
    baseline.close();
    empty.close();
    server.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`dataplane worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
