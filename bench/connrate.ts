/**
 * Phase 2, connection rate: TCP connect + accept + read + close through the
 * dispatcher against the same listener without any dispatcher, in one
 * namespace, in alternating rounds (A B B A ...) to cancel drift.
 */
import path from 'node:path';
import { BenchNs } from './lib/netns.js';
import { CLI, script } from './lib/paths.js';
import { mustRun, type Cmd } from './lib/proc.js';
import { ciNote, fmt, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';
import { Worker } from './lib/worker.js';
import type { LoopResult } from './traffic-worker.js';

/** Options of the connection-rate phase. */
export interface ConnrateOptions {
  /** Rounds per mode. */
  rounds: number;
  roundMs: number;
  /** Connections in flight. */
  concurrency: number;
  logDir: string;
}

const STEERED = { host: '127.0.0.2', port: 8080 };
const SETTLE_MS = 400;

function log(msg: string): void {
  process.stderr.write(`  connrate: ${msg}\n`);
}

/** Run the connection-rate phase. */
export async function connratePhase(o: ConnrateOptions): Promise<{ rows: Row[]; description: string }> {
  const ns = BenchNs.create('conn');
  const cli = (...args: string[]): Cmd => ({ file: CLI, args: [...args, '--netns', ns.netnsPath, '--bpffs', ns.bpffs] });
  try {
    const worker = await Worker.start(ns, script('traffic-worker'), [], path.join(o.logDir, 'connrate-worker.log'));
    const { port } = await worker.call<{ port: number }>('listen', { host: '127.0.0.1' });
    let loaded = false;
    const setMode = (dispatcher: boolean): void => {
      if (dispatcher === loaded) return;
      if (dispatcher) {
        mustRun(cli('load'));
        mustRun(cli('bind', 'conn', 'tcp', `${STEERED.host}/32`, String(STEERED.port)));
        mustRun(cli('register-pid', String(worker.pid), 'conn', 'tcp', '127.0.0.1', String(port)));
      } else {
        mustRun(cli('unload'));
      }
      loaded = dispatcher;
    };
    const burst = async (dispatcher: boolean, ms: number): Promise<LoopResult> => {
      const t = dispatcher ? STEERED : { host: '127.0.0.1', port };
      if (dispatcher !== loaded) {
        setMode(dispatcher);
        // Untimed settle run after a switch: the CLI processes just exited
        // and the kernel may still be freeing or setting up state.
        await worker.call<LoopResult>('burst', { ...t, durationMs: SETTLE_MS, concurrency: o.concurrency });
      }
      return worker.call<LoopResult>('burst', { ...t, durationMs: ms, concurrency: o.concurrency });
    };
    // Warm-up of both paths (JIT, caches); also proves that steering works.
    await burst(false, 1000);
    const check = await burst(true, 1000);
    if (check.ok === 0) throw new Error(`nothing reached the listener through the dispatcher: ${JSON.stringify(check.errors)}`);
    const direct: LoopResult[] = [];
    const through: LoopResult[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? [false, true] : [true, false];
      for (const d of order) (d ? through : direct).push(await burst(d, o.roundMs));
      log(`round ${r + 1}/${o.rounds}: direct ${fmt(direct[r]!.rate, 0)}/s, dispatcher ${fmt(through[r]!.rate, 0)}/s`);
    }
    worker.stop();
    const dv = summarize(direct.map((x) => x.rate));
    const tv = summarize(through.map((x) => x.rate));
    // Each round's two runs are adjacent in time: their ratio cancels slow
    // drift in machine load, so the target is judged on the median of those.
    const pairs = summarize(through.map((x, i) => x.rate / direct[i]!.rate));
    const ratio = pairs.median;
    const failed = [...direct, ...through].reduce((n, x) => n + x.failed, 0);
    const errors: Record<string, number> = {};
    for (const x of [...direct, ...through]) for (const [k, v] of Object.entries(x.errors)) errors[k] = (errors[k] ?? 0) + v;
    // Connections per CPU-second of the client+server process: far less
    // sensitive to other work on the machine than wall-clock rates.
    const perCpu = summarize(through.map((x, i) => (x.ok / x.cpuMs) / (direct[i]!.ok / direct[i]!.cpuMs)));
    const notes = [
      ciNote(pairs.samples, 0.97, 3),
      `ratio of the two medians ${fmt(tv.median / dv.median, 3)}×`,
      `connections per CPU-second of the client/server process: ${fmt(perCpu.median, 3)}× (p10–p90 ${fmt(perCpu.p10, 3)}–${fmt(perCpu.p90, 3)})`,
    ].filter(Boolean);
    if (failed > 0) notes.push(`${failed} failed connections: ${JSON.stringify(errors)}`);
    const main = row({
      section: 'connrate', figure: 'connections/s through the dispatcher', unit: 'conn/s', value: tv, floor: { name: 'same listener, no dispatcher', value: dv },
      target: { text: '≥ 0.97× floor', measured: `${fmt(ratio, 3)}× (median of per-round ratios; p10–p90 ${fmt(pairs.p10, 3)}–${fmt(pairs.p90, 3)})`, pass: ratio >= 0.97 },
      note: notes.join('; '),
    });
    main.ratio = ratio; // the paired figure, as judged (see the method)
    const rows = [
      row({ section: 'connrate', figure: 'connections/s, no dispatcher (floor)', unit: 'conn/s', value: dv, floor: null, target: null, detail: true }),
      main,
    ];
    const description = `One node process in a scratch namespace runs both the listener (127.0.0.1, writes "ok") and a client loop with ${o.concurrency} connections in flight (connect, accept, read the answer, close with a reset so no TIME_WAIT sockets accumulate). Floor: the client connects to 127.0.0.1:port with no dispatcher loaded. Figure: the dispatcher is loaded, ${STEERED.host}/32 port ${STEERED.port} is bound to the listener (register-pid) and the client connects there. ${o.rounds} rounds of ${o.roundMs / 1000} s per mode, alternating A B B A …; the dispatcher is loaded/unloaded between modes, followed by an untimed ${SETTLE_MS} ms run. The target is judged on the median of the per-round ratios (the two runs of a round are adjacent in time); the ×floor column shows that paired figure too. The note adds a 95% confidence interval of that median, the ratio of the two medians, and connections per CPU-second of the client/server process (user + system time; much less sensitive to other load, though kernel work done in softirq context may be charged elsewhere).`;
    return { rows, description };
  } finally {
    ns.destroy();
  }
}
