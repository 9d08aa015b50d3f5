/**
 * Phase "discovery": the data-plane cost of bpf/discovery.h's paths — the
 * explicit-listener check (rule 1) and the target assignment (rule 2) — in
 * the seed's dispatcher (test/fixtures/bpf/discovery-dispatch.bpf.c),
 * against the empty program, with BPF_PROG_TEST_RUN. The worker runs in a
 * scratch namespace and a scratch cgroup (mf-bench-<pid>-disc under the
 * cgroup v2 mount, never the root cgroup), with discovery enabled there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBenchProgram } from './lib/bpfbuild.js';
import { BenchNs } from './lib/netns.js';
import { script } from './lib/paths.js';
import { fmt, summarize } from './lib/stats.js';
import { row, type Row } from './lib/types.js';
import { cgroup2Mount } from '../src/discovery/cgroup.js';
import type { DiscoveryBenchConfig, DiscoveryBenchResult, DiscoveryCombo, DiscoveryProbe } from './discovery-worker.js';

const TEXT: Record<DiscoveryProbe, string> = {
  unmanaged: 'unmanaged port (no mapping): SK_PASS',
  exact: 'rule 1, exact listener: SK_PASS',
  wildcard: 'rule 1, 0.0.0.0 listener: SK_PASS',
  redirect: 'rule 2, assign the target socket',
  drop: 'rule 3, no target socket: SK_DROP',
};

/** Limit for the worker (a few seconds normally); a worker that hangs is killed and reported. */
const WORKER_MS = 300_000;

function runWorker(ns: BenchNs, cfg: DiscoveryBenchConfig): Promise<DiscoveryBenchResult> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, [script('discovery-worker'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`discovery worker did not finish within ${WORKER_MS / 1000} s; killed`));
    }, WORKER_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close': after the exit and the end of its output, so the whole JSON is read.
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`discovery worker exited ${code}`));
      else resolve(JSON.parse(out) as DiscoveryBenchResult);
    });
  });
}

function checkNote(c: DiscoveryCombo, target: string): string | undefined {
  const assigned = c.assigned !== '0';
  if (c.retval !== c.expect.retval) return `retval ${c.retval}, expected ${c.expect.retval}: not the path named`;
  if (c.expect.assigned === 'target' && c.assigned !== target) return `the target socket was NOT assigned (${c.assigned})`;
  if (c.expect.assigned === 'none' && assigned) return `a socket was assigned (${c.assigned})`;
  return undefined;
}

function removeCgroup(dir: string): void {
  for (let i = 0; i < 100; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Remove scratch cgroups of earlier runs whose process is gone. */
function removeStaleCgroups(mount: string): void {
  for (const name of fs.readdirSync(mount)) {
    const m = /^mf-bench-(\d+)-disc$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !fs.existsSync(`/proc/${m[1]}`)) removeCgroup(path.join(mount, name));
  }
}

/** Run the discovery phase. */
export async function discoveryPhase(opts: { rounds: number; repeat: number }): Promise<{ rows: Row[]; description: string }> {
  const mount = cgroup2Mount();
  if (!mount) throw new Error('no cgroup v2 mount');
  const dispatch = compileBenchProgram('discovery-dispatch', 'test/fixtures/bpf/discovery-dispatch.bpf.c');
  const empty = compileBenchProgram('empty');
  removeStaleCgroups(mount);
  const cgroup = path.join(mount, `mf-bench-${process.pid}-disc`);
  fs.mkdirSync(cgroup);
  const ns = BenchNs.create('disc');
  try {
    const res = await runWorker(ns, { rounds: opts.rounds, repeat: opts.repeat, bpffs: ns.bpffs, cgroup, objects: { dispatch, empty } });
    const floorCombo = res.combos.find((c) => c.prog === 'empty');
    if (!floorCombo) throw new Error('no floor samples');
    const floor = { name: 'empty program', value: summarize(floorCombo.samples) };
    const rows: Row[] = [row({ section: 'discovery', figure: 'empty program (floor)', unit: 'ns', value: floor.value, floor: null, target: null, detail: true })];
    for (const c of res.combos.filter((x) => x.prog === 'dispatch')) {
      const v = summarize(c.samples);
      const delta = summarize(c.samples.map((x, i) => x - (floorCombo.samples[i] ?? Number.NaN)));
      const note = checkNote(c, res.targetCookie);
      rows.push(row({
        section: 'discovery', figure: TEXT[c.probe], unit: 'ns', value: v, floor, target: null,
        compare: `+${fmt(delta.median, 0)} ns over the empty program (p10–p90 ${fmt(delta.p10, 0)}–${fmt(delta.p90, 0)})`,
        ...(note ? { note } : {}),
      }));
    }
    rows.push(row({ section: 'discovery', figure: 'discovery enable (load, attach, seed a scratch namespace)', unit: 'ms', value: summarize([res.enableMs]), floor: null, target: null, detail: true }));
    const checked = res.combos.filter((c) => c.prog === 'dispatch' && !checkNote(c, res.targetCookie)).length;
    const description = `The seed's dispatcher (test/fixtures/bpf/discovery-dispatch.bpf.c) calling discovery_has_listener() and discovery_target_sk() from bpf/discovery.h, with listener discovery enabled on a scratch cgroup and real listeners (127.0.0.9:7000 exact, 127.0.0.5:7000 target, 0.0.0.0:7100), against the empty sk_lookup program. Outcomes checked before timing: ${checked} of ${res.combos.length - 1} probes gave the expected verdict and socket. Each figure: median of ${opts.rounds} samples, each the kernel's mean over ${opts.repeat} BPF_PROG_TEST_RUN repetitions; probes interleaved round by round; "over the empty program" is the median of per-round differences.`;
    return { rows, description };
  } finally {
    ns.destroy();
    removeCgroup(cgroup);
  }
}
