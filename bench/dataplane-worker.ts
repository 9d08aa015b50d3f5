/**
 * Data-plane worker (runs inside a scratch namespace): loads a private
 * copy of the dispatcher, the baseline and the empty program (never
 * attached), fills one binding trie shared by the dispatcher and the
 * baseline, registers a real listening socket, and times lookups with
 * BPF_PROG_TEST_RUN. Argument: JSON of DataplaneConfig. Prints one JSON
 * DataplaneResult on stdout; progress on stderr.
 */
import net from 'node:net';
import { BPF_F_NO_PREALLOC, MapType, mapCreate, mapLookup, mapUpdate, mapUpdateBatch, progTestRun } from '../src/sys/bpf.js';
import { closeFd } from '../src/sys/libc.js';
import { loadObject, type LoadedObject } from '../src/sys/object.js';
import { BINDING_KEY_SIZE, BINDING_VALUE_SIZE, MAX_BINDINGS, PORT_WORDS, u32 } from '../src/core/codec.js';
import { buildBindingSet, type BindingSet, type Probe, type Probes } from './lib/bindset.js';

/** What to measure. */
export interface DataplaneConfig {
  sizes: number[];
  /** Interleaved rounds per size (one sample of every program/probe each). */
  rounds: number;
  /** BPF_PROG_TEST_RUN repeat count per sample. */
  repeat: number;
  objects: { manifold: string; baseline: string; empty: string };
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

function install(set: BindingSet, m: LoadedObject, b: LoadedObject): number {
  const t0 = process.hrtime.bigint();
  const trie = mapCreate(MapType.LPM_TRIE, 'bench_trie', BINDING_KEY_SIZE, BINDING_VALUE_SIZE, MAX_BINDINGS, { flags: BPF_F_NO_PREALLOC });
  try {
    const chunk = 65536;
    for (let off = 0; off < set.size; off += chunk) {
      const n = Math.min(chunk, set.size - off);
      mapUpdateBatch(
        trie,
        set.keys.subarray(off * BINDING_KEY_SIZE, (off + n) * BINDING_KEY_SIZE),
        set.values.subarray(off * BINDING_VALUE_SIZE, (off + n) * BINDING_VALUE_SIZE),
        n, BINDING_KEY_SIZE, BINDING_VALUE_SIZE,
      );
    }
    const fillMs = Number(process.hrtime.bigint() - t0) / 1e6;
    // Generation 0 of both programs points at the same trie.
    mapUpdate(m.mapFd('bindings'), u32(0), u32(trie));
    mapUpdate(b.mapFd('bindings'), u32(0), u32(trie));
    const wordKeys = Buffer.alloc(4 * PORT_WORDS * 4);
    for (let i = 0; i < 4 * PORT_WORDS; i++) wordKeys.writeUInt32LE(i, i * 4); // (gen 0 * 4 + slot) << 10 | word
    mapUpdateBatch(m.mapFd('port_bits'), wordKeys, set.portBits, 4 * PORT_WORDS, 4, 8);
    mapUpdate(m.mapFd('gen_meta'), u32(0), set.genMeta);
    return fillMs;
  } finally {
    closeFd(trie); // the outer maps hold it now
  }
}

function measureSize(size: number, cfg: DataplaneConfig, progs: Record<ProgName, LoadedObject>, cookie: bigint): SizeResult {
  const set = buildBindingSet(size);
  const fillMs = install(set, progs.manifold, progs.baseline);
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
  const progs: Record<ProgName, LoadedObject> = {
    manifold: loadObject(cfg.objects.manifold, 'manifold_dispatch'),
    baseline: loadObject(cfg.objects.baseline, 'baseline_dispatch'),
    empty: loadObject(cfg.objects.empty, 'empty_dispatch'),
  };
  try {
    const fdValue = Buffer.alloc(8);
    fdValue.writeBigUInt64LE(BigInt(fd));
    mapUpdate(progs.manifold.mapFd('sockets'), u32(0), fdValue);
    mapUpdate(progs.baseline.mapFd('sockets'), u32(0), fdValue);
    const cookie = mapLookup(progs.manifold.mapFd('sockets'), u32(0), 8)?.readBigUInt64LE(0) ?? 0n;
    const sizes: SizeResult[] = [];
    for (const size of cfg.sizes) sizes.push(measureSize(size, cfg, progs, cookie));
    process.stdout.write(`${JSON.stringify({ socketCookie: cookie.toString(), sizes } satisfies DataplaneResult)}\n`);
  } finally {
    for (const p of Object.values(progs)) p.close();
    server.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`dataplane worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
