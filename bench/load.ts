/**
 * Phase 5, upgrade and apply under load: a client opens ~1,000
 * connections/s to a steered address while `upgrade` and `apply`
 * (alternating two binding sets that both steer that address) run again
 * and again. Every failed connection counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BenchNs } from './lib/netns.js';
import { benchTmpDir, CLI, script } from './lib/paths.js';
import { mustRun, timeRun, type Cmd } from './lib/proc.js';
import { fmt, single, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';
import { Worker } from './lib/worker.js';
import { steeringSet, writeApplyFile } from './lib/applyfile.js';
import type { LoopResult } from './traffic-worker.js';

/** Options of the load phase. */
export interface LoadOptions {
  durationMs: number;
  /** Client connections started per second. */
  rate: number;
  /** Unrelated bindings in each apply set. */
  others: number;
  logDir: string;
}

const STEER = { host: '127.0.0.10', port: 9000 };

/** Run the load phase. */
export async function loadPhase(o: LoadOptions): Promise<{ rows: Row[]; description: string }> {
  const ns = BenchNs.create('load');
  const tmp = benchTmpDir('load');
  const cli = (...args: string[]): Cmd => ({ file: CLI, args: [...args, '--netns', ns.netnsPath, '--bpffs', ns.bpffs] });
  try {
    const files = { A: path.join(tmp, 'a.json'), B: path.join(tmp, 'b.json') };
    writeApplyFile(files.A, steeringSet('A', STEER.host, STEER.port, o.others));
    writeApplyFile(files.B, steeringSet('B', STEER.host, STEER.port, o.others));
    const worker = await Worker.start(ns, script('traffic-worker'), [], path.join(o.logDir, 'load-worker.log'));
    const { port } = await worker.call<{ port: number }>('listen', { host: '127.0.0.1' });
    mustRun(cli('load'));
    mustRun(cli('apply', files.A));
    mustRun(cli('register-pid', String(worker.pid), 'steer', 'tcp', '127.0.0.1', String(port)));
    const check = await worker.call<LoopResult>('burst', { ...STEER, durationMs: 300, concurrency: 1 });
    if (check.ok === 0 || check.failed > 0) throw new Error(`steering does not work before the test: ${JSON.stringify(check)}`);

    await worker.call('pacedStart', { ...STEER, rate: o.rate });
    const ops: { name: string; cmd: Cmd }[] = [
      { name: 'upgrade', cmd: cli('upgrade') },
      { name: 'apply', cmd: cli('apply', files.B) },
      { name: 'upgrade', cmd: cli('upgrade') },
      { name: 'apply', cmd: cli('apply', files.A) },
    ];
    const times: Record<string, number[]> = { upgrade: [], apply: [] };
    const cliFailures: string[] = [];
    const end = Date.now() + o.durationMs;
    for (let i = 0; Date.now() < end; i++) {
      const op = ops[i % ops.length]!;
      const r = timeRun(op.cmd, 120_000);
      if (r.code !== 0) cliFailures.push(`${op.name}: exit ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
      times[op.name]!.push(r.ms);
      // Let the client's event loop breathe between commands (both share 2 cores).
      await new Promise((res) => setTimeout(res, 20));
    }
    const res = await worker.call<LoopResult>('pacedStop');
    worker.stop();
    const attempted = res.ok + res.failed;
    const n = `${times.upgrade!.length} upgrades + ${times.apply!.length} applies`;
    const notes = [`${res.ok}/${attempted} connections ok at ${fmt(res.rate, 0)}/s during ${n}`];
    if (res.failed > 0) notes.push(`errors: ${JSON.stringify(res.errors)}`);
    if (cliFailures.length > 0) notes.push(`${cliFailures.length} CLI commands failed, first: ${cliFailures[0]}`);
    const rows = [
      row({
        section: 'load', figure: `failed connections (${n})`, unit: 'count', value: single(res.failed), floor: null,
        target: { text: '= 0 (and every command succeeds)', measured: `${res.failed} of ${attempted}`, pass: res.failed === 0 && cliFailures.length === 0 },
        note: notes.join('; '),
      }),
      row({ section: 'load', figure: 'upgrade under load (wall time)', unit: 'ms', value: summarize(times.upgrade!), floor: null, target: null, detail: true }),
      row({ section: 'load', figure: `apply of ${o.others + 1} bindings under load (wall time)`, unit: 'ms', value: summarize(times.apply!), floor: null, target: null, detail: true }),
    ];
    const description = `A client (in the namespace) starts ${o.rate} TCP connections/s to ${STEER.host}:${STEER.port} (connect, read the answer, close; 3 s timeout) for ${o.durationMs / 1000} s while the orchestrator runs upgrade, apply B, upgrade, apply A, … back to back. Set A steers the address with an exact-port /32 binding, set B with a port-0 127.0.0.8/29 binding; each also has ${o.others} unrelated bindings that differ between the sets.`;
    return { rows, description };
  } finally {
    ns.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
