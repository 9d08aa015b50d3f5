/**
 * Phase 1, data plane: ns per lookup of the dispatcher (a private,
 * unattached copy) against the two-lookup baseline and the empty program,
 * at several binding-set sizes, with BPF_PROG_TEST_RUN. The work happens in
 * dataplane-worker.ts inside a scratch namespace.
 */
import { compileBenchProgram } from './lib/bpfbuild.js';
import { BenchNs } from './lib/netns.js';
import { script } from './lib/paths.js';
import { ciNote, fmt, summarize, type Summary } from './lib/stats.js';
import { row, type Row } from './lib/types.js';
import { BINDSET_DESCRIPTION } from './lib/bindset.js';
import type { ComboResult, DataplaneConfig, DataplaneResult, ProbeName, SizeResult } from './dataplane-worker.js';

/** Binding-set sizes measured. */
export const SIZES = [1, 1000, 100_000, 1_000_000];

const PROBE_TEXT: Record<ProbeName, string> = {
  hitExact: 'hit (exact /32:port)',
  hitWild: 'hit (port-0 prefix)',
  missBoundPort: 'miss (named port)',
  missUnboundPort: 'miss (unnamed port)',
};

function sizeText(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n);
}

function bindingsText(n: number): string {
  return `${sizeText(n)} binding${n === 1 ? '' : 's'}`;
}

/** Limit of one dataplane worker run. */
const WORKER_MS = 15 * 60_000;

function runWorker(ns: BenchNs, cfg: DataplaneConfig): Promise<DataplaneResult> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, [script('dataplane-worker'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
    });
    // About 20 s normally; a worker that hangs is killed and reported, not waited for.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dataplane worker did not finish within ${WORKER_MS / 1000} s; killed`));
    }, WORKER_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close': after the exit and the end of its output, so the whole JSON is read.
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`dataplane worker exited ${code}`));
      else resolve(JSON.parse(out) as DataplaneResult);
    });
  });
}

function checkNote(c: ComboResult): string | undefined {
  if (c.expectHit && !c.assigned) return `socket NOT assigned (retval ${c.retval}): this is not a real hit`;
  if (!c.expectHit && c.assigned) return 'a socket was assigned on a miss probe';
  return undefined;
}

function sizeRows(s: SizeResult): Row[] {
  const rows: Row[] = [];
  const find = (prog: string, probe: ProbeName): ComboResult | undefined => s.combos.find((c) => c.prog === prog && c.probe === probe);
  const emptyCombo = find('empty', 'hitExact');
  if (!emptyCombo) throw new Error('no floor samples');
  const floor = { name: 'empty program', value: summarize(emptyCombo.samples) };
  rows.push(row({ section: 'dataplane', figure: `empty program (floor), ${sizeText(s.size)}`, unit: 'ns', value: floor.value, floor: null, target: null, detail: true }));
  for (const probe of Object.keys(PROBE_TEXT) as ProbeName[]) {
    const m = find('manifold', probe);
    const b = find('baseline', probe);
    if (!m || !b) continue;
    const mv: Summary = summarize(m.samples);
    const bv: Summary = summarize(b.samples);
    // Per-round ratios: the two samples of a round are close in time.
    const paired = summarize(m.samples.map((x, i) => x / (b.samples[i] ?? Number.NaN)));
    const vsBase = paired.median;
    const measured = `${fmt(vsBase, 2)}× baseline (p10–p90 ${fmt(paired.p10, 2)}–${fmt(paired.p90, 2)}; baseline ${fmt(bv.median, 0)} ns)`;
    let target: Row['target'] = null;
    if (probe === 'hitExact' && s.size >= 100_000) target = { text: '≤ 0.60× baseline', measured, pass: vsBase <= 0.6 };
    if (probe.startsWith('miss')) target = { text: '≤ 1.00× baseline', measured, pass: vsBase <= 1.0 };
    const note = [checkNote(m), target ? ciNote(paired.samples, probe === 'hitExact' ? 0.6 : 1.0, 3) : ''].filter(Boolean).join('; ');
    rows.push(row({
      section: 'dataplane', figure: `${PROBE_TEXT[probe]}, ${bindingsText(s.size)}`, unit: 'ns', value: mv, floor, target, compare: measured,
      ...(note ? { note } : {}),
    }));
    const bNote = checkNote(b);
    rows.push(row({
      section: 'dataplane', figure: `baseline: ${PROBE_TEXT[probe]}, ${bindingsText(s.size)}`, unit: 'ns', value: bv, floor, target: null, detail: true,
      ...(bNote ? { note: bNote } : {}),
    }));
  }
  rows.push(row({
    section: 'dataplane', figure: `apply (manifold's write path), ${bindingsText(s.size)}`, unit: 'ms', value: summarize([s.fillMs]), floor: null, target: null, detail: true,
    note: `${s.exact} exact-port bindings over ${s.ports} ports, ${s.wild} port-0 prefixes`,
  }));
  return rows;
}

/** Run the data-plane phase. */
export async function dataplanePhase(opts: { rounds: number; repeat: number }): Promise<{ rows: Row[]; description: string }> {
  const baseline = compileBenchProgram('baseline');
  const empty = compileBenchProgram('empty');
  const ns = BenchNs.create('dp');
  try {
    const res = await runWorker(ns, { sizes: SIZES, rounds: opts.rounds, repeat: opts.repeat, objects: { baseline, empty }, bpffs: ns.bpffs });
    const rows = res.sizes.flatMap(sizeRows);
    const hits = res.sizes.flatMap((s) => s.combos.filter((c) => c.expectHit));
    const assigned = hits.filter((c) => c.assigned).length;
    const description = `${BINDSET_DESCRIPTION} Hit probes checked before timing: ${assigned} of ${hits.length} assigned the real socket (BPF_PROG_TEST_RUN returned its cookie). Each figure: median of ${opts.rounds} samples, each the kernel's mean over ${opts.repeat} BPF_PROG_TEST_RUN repetitions (integer ns); programs and probes interleaved round by round; "× baseline" is the median of per-round ratios. The dispatcher and the baseline read the same trie; the probe socket is a real listening TCP socket (cookie ${res.socketCookie}).`;
    return { rows, description };
  } finally {
    ns.destroy();
  }
}

