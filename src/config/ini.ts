/**
 * A reader for systemd's INI dialect (systemd.syntax(7)), as implemented by
 * systemd's conf-parser:
 *
 * - a line whose first non-blank character is `#` or `;` is a comment, also
 *   in the middle of a continued line;
 * - a line ending in an unescaped backslash continues on the next line (the
 *   backslash becomes a space);
 * - `[Section]` headers; `Key=Value` assignments, key and value stripped of
 *   blanks; no quoting at this level (values are split by their key's parser);
 * - a UTF-8 byte order mark at the start is skipped; CRLF line ends are accepted.
 *
 * Problems carry the line where a logical line starts. At most
 * MAX_PROBLEMS_PER_FILE are kept (the first, by line); the rest are counted.
 */
import { isUtf8 } from './node.js';
import { FirstProblems, quote } from './problems.js';

/** One `Key=Value` line. `section` is null before the first header. */
export interface IniAssignment {
  section: string | null;
  key: string;
  value: string;
  line: number;
}

/** One `[Section]` header. */
export interface IniSection {
  name: string;
  line: number;
}

/** A problem at a line. */
export interface IniProblem {
  line: number;
  message: string;
}

/** Everything read from one file, in order. */
export interface IniDocument {
  sections: IniSection[];
  assignments: IniAssignment[];
  /** The first problems, in line order (at most MAX_PROBLEMS_PER_FILE). */
  problems: IniProblem[];
  /** How many more problems there were. */
  omittedProblems: number;
}

const BLANK = ' \t\n\r';

/** Strip systemd's WHITESPACE (space, tab, CR, LF) from both ends. */
export function strip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && BLANK.includes(s[a] as string)) a++;
  while (b > a && BLANK.includes(s[b - 1] as string)) b--;
  return s.slice(a, b);
}

/**
 * True when the line ends in a backslash that is not itself escaped: an odd
 * run of backslashes at its end. Only the physical line is looked at (a
 * continued part ends in the blank that replaced its backslash), so reading
 * stays linear however many lines are continued.
 */
function endsEscaped(s: string): boolean {
  let run = 0;
  while (run < s.length && s[s.length - 1 - run] === '\\') run++;
  return run % 2 === 1;
}

function splitLines(input: string | Uint8Array, problems: FirstProblems<IniProblem>): string[] {
  if (typeof input === 'string') return input.split('\n');
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (isUtf8(bytes)) return bytes.toString('utf8').split('\n');
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    const line = bytes.subarray(start, i);
    if (isUtf8(line)) {
      lines.push(line.toString('utf8'));
    } else {
      problems.add({ line: lines.length + 1, message: 'line is not valid UTF-8' });
      lines.push('');
    }
    start = i + 1;
  }
  return lines;
}

/** Parse a document (a string, or bytes that must be UTF-8). */
export function parseIni(input: string | Uint8Array): IniDocument {
  const problems = new FirstProblems<IniProblem>();
  const doc: IniDocument = { sections: [], assignments: [], problems: [], omittedProblems: 0 };
  const lines = splitLines(input, problems);
  let section: string | null = null;
  let pending: { parts: string[]; line: number } | null = null;

  const handle = (text: string, line: number): void => {
    const l = strip(text);
    if (l === '') return;
    if (l.includes('\0')) {
      problems.add({ line, message: 'line contains a NUL character' });
      return;
    }
    if (l.startsWith('[')) {
      const name = l.endsWith(']') ? l.slice(1, -1) : '';
      if (name === '' || name.includes('[') || name.includes(']')) {
        problems.add({ line, message: `invalid section header ${quote(l)}` });
        section = '';
        return;
      }
      section = name;
      doc.sections.push({ name, line });
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      problems.add({ line, message: `missing '=' in ${quote(l)}` });
      return;
    }
    const key = strip(l.slice(0, eq));
    if (key === '') {
      problems.add({ line, message: `missing key name before '=' in ${quote(l)}` });
      return;
    }
    doc.assignments.push({ section, key, value: strip(l.slice(eq + 1)), line });
  };

  lines.forEach((raw, i) => {
    let text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (i === 0 && text.startsWith('\uFEFF')) text = text.slice(1);
    const first = strip(text)[0];
    if (first === '#' || first === ';') return;
    const line: number = pending ? pending.line : i + 1;
    const parts: string[] = pending ? pending.parts : [];
    if (endsEscaped(text)) {
      parts.push(`${text.slice(0, -1)} `);
      pending = { parts, line };
      return;
    }
    parts.push(text);
    pending = null;
    handle(parts.join(''), line);
  });
  const rest = pending as { parts: string[]; line: number } | null;
  if (rest) handle(rest.parts.join(''), rest.line);
  const kept = problems.result();
  doc.problems = kept.problems;
  doc.omittedProblems = kept.omitted;
  return doc;
}
