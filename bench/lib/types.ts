/**
 * The result model shared by every benchmark phase and the report.
 */
import type { Summary } from './stats.js';

/** Units of a figure. */
export type Unit = 'ns' | 'ms' | 'conn/s' | 'KiB' | 'MiB' | 'count';

/** A target and whether the figure met it. */
export interface TargetCheck {
  /** The target as written in the issue, e.g. "≤ 0.80× baseline". */
  text: string;
  /** The measured quantity the target is about, e.g. "0.62× baseline (141 ns)". */
  measured: string;
  pass: boolean;
}

/** One figure of the benchmark. */
export interface Row {
  /** Phase: dataplane, connrate, cli, startup, generator, load. */
  section: string;
  /** What was measured, e.g. "hit, exact /32:port, 100k bindings". */
  figure: string;
  unit: Unit;
  /** Null when the figure could not be measured (see `note`). */
  value: Summary | null;
  /** The floor measured in the same run, or null when the figure has none. */
  floor: { name: string; value: Summary } | null;
  /** value.median / floor.median (connrate: the median of per-round ratios, see its method). */
  ratio: number | null;
  target: TargetCheck | null;
  note?: string;
  /** A comparison shown even without a target, e.g. "0.91× baseline (210 ns)". */
  compare?: string;
  /** Detail rows go to results.md and results.json but not the console table. */
  detail?: boolean;
}

/** Ratio of two summaries' medians (null when undefined). */
export function ratioOf(value: Summary | null, floor: Summary | null): number | null {
  if (!value || !floor || floor.median === 0) return null;
  return value.median / floor.median;
}

/** Build a row, computing the ratio to the floor. */
export function row(r: Omit<Row, 'ratio'>): Row {
  return { ...r, ratio: ratioOf(r.value, r.floor?.value ?? null) };
}
