/**
 * Robust summaries of repeated measurements: medians and percentiles, so a
 * few samples disturbed by other work on the machine do not move a figure.
 */

/** Summary of a list of samples. */
export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  /** 10th and 90th percentiles (linear interpolation). */
  p10: number;
  p90: number;
  min: number;
  max: number;
  /** The samples in the order they were taken. */
  samples: number[];
}

/** Percentile `p` (0..100) of sorted values, linear interpolation. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

/** Summarise samples (must be non-empty to be meaningful). */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((x, y) => x - y);
  return {
    n: samples.length,
    median: percentile(sorted, 50),
    p10: percentile(sorted, 10),
    p90: percentile(sorted, 90),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    samples: [...samples],
  };
}

/** A summary of a single value (e.g. a count). */
export function single(value: number): Summary {
  return summarize([value]);
}

/** Format a number with `digits` significant decimals, trimming noise. */
export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/**
 * Per-round differences a[i] - b[i] of two interleaved sample lists. The two
 * runs of a round are adjacent in time, so their difference cancels slow
 * drift in machine load better than the difference of two medians.
 */
export function pairedDelta(a: readonly number[], b: readonly number[]): Summary {
  const n = Math.min(a.length, b.length);
  return summarize(Array.from({ length: n }, (_, i) => (a[i] ?? 0) - (b[i] ?? 0)));
}

/**
 * Distribution-free ~95% confidence interval of the median (order
 * statistics of a binomial(n, 1/2)); null for fewer than 6 samples.
 */
export function medianCi95(samples: readonly number[]): [number, number] | null {
  const n = samples.length;
  if (n < 6) return null;
  const sorted = [...samples].sort((x, y) => x - y);
  const k = Math.max(1, Math.floor(n / 2 - 0.98 * Math.sqrt(n)));
  return [sorted[k - 1] ?? Number.NaN, sorted[n - k] ?? Number.NaN];
}

/** "95% CI a–b" of the median of `samples`, flagged when it straddles `limit` (empty when too few samples). */
export function ciNote(samples: readonly number[], limit: number, digits = 1): string {
  const ci = medianCi95(samples);
  if (!ci) return '';
  const straddles = ci[0] <= limit && ci[1] >= limit;
  return `95% CI of the median ${fmt(ci[0], digits)}–${fmt(ci[1], digits)}${straddles ? ' (straddles the target: the verdict is within noise)' : ''}`;
}
