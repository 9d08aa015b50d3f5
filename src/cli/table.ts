/**
 * Aligned columns for people at a terminal: a header, then rows, each
 * column as wide as its widest cell, separated by two spaces (the last
 * column is not padded). Scripts get tab-separated lines instead; the
 * commands decide which (src/cli/tty.ts).
 */
import { out } from './output.js';

/** Lines of an aligned table (header first). */
export function tableLines(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h) => h.length);
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** Print an aligned table on stdout. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  for (const l of tableLines(header, rows)) out(l);
}
