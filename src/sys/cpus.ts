/**
 * Number of possible CPUs (the per-CPU map value multiplier).
 */
import fs from 'node:fs';

let cached: number | undefined;

/** Count of possible CPUs from /sys/devices/system/cpu/possible ("0-3,5"). */
export function possibleCpus(): number {
  if (cached !== undefined) return cached;
  let n = 0;
  try {
    const text = fs.readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    for (const part of text.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (a === undefined || Number.isNaN(a)) continue;
      n += b === undefined || Number.isNaN(b) ? 1 : b - a + 1;
    }
  } catch {
    n = 0;
  }
  cached = n > 0 ? n : 1;
  return cached;
}
