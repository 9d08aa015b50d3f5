/**
 * A strict parser-validator for the Prometheus text exposition format
 * (version 0.0.4), for tests: throws on anything a Prometheus server would
 * reject or that the format forbids (bad names, bad escapes, TYPE after
 * samples, families split apart, duplicate series, negative counters).
 */

/** One sample line. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

/** A metric family. */
export interface PromFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function fail(lineNo: number, line: string, why: string): never {
  throw new Error(`prometheus text line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
}

function unescapeHelp(text: string, lineNo: number, line: string): string {
  return text.replace(/\\(.?)/g, (_m, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    return fail(lineNo, line, `invalid escape \\${c} in HELP`);
  });
}

function parseValue(text: string, lineNo: number, line: string): number {
  if (!FLOAT.test(text)) fail(lineNo, line, `invalid value ${JSON.stringify(text)}`);
  if (/inf/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (text === 'NaN') return NaN;
  return Number(text);
}

/** Parse `{a="b",c="d"}` starting at `pos` (pointing at "{"); returns labels and the position after "}". */
function parseLabels(line: string, pos: number, lineNo: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = pos + 1;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!m) fail(lineNo, line, `invalid label name at column ${i + 1}`);
    const name = m[0];
    if (name.startsWith('__')) fail(lineNo, line, `reserved label name ${name}`);
    if (!LABEL_NAME.test(name)) fail(lineNo, line, `invalid label name ${name}`);
    if (name in labels) fail(lineNo, line, `duplicate label ${name}`);
    i += name.length;
    if (line[i] !== '=' || line[i + 1] !== '"') fail(lineNo, line, `expected =" after label ${name}`);
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) fail(lineNo, line, 'unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else fail(lineNo, line, `invalid escape \\${e ?? ''} in label value`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++;
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] !== '}') fail(lineNo, line, `expected , or } after label ${name}`);
  }
}

function familyOf(sample: string, families: Map<string, PromFamily>): string {
  if (families.has(sample)) return sample;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return base;
    }
  }
  return sample;
}

/** Parse and validate an exposition; returns the families by name. */
export function parsePromText(text: string): Map<string, PromFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('prometheus text must end with a newline');
  const families = new Map<string, PromFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  const typed = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  lines.pop();
  const enter = (name: string, lineNo: number, line: string): PromFamily => {
    if (current !== name) {
      if (closed.has(name)) fail(lineNo, line, `family ${name} is split apart`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: null, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kw, name = '', rest = ''] = m;
      if (!METRIC_NAME.test(name)) fail(lineNo, line, `invalid metric name ${name}`);
      const f = enter(name, lineNo, line);
      if (kw === 'HELP') {
        if (f.help !== null) fail(lineNo, line, `second HELP for ${name}`);
        f.help = unescapeHelp(rest, lineNo, line);
      } else {
        const type = rest.trim();
        if (!TYPES.has(type)) fail(lineNo, line, `invalid type ${type}`);
        if (f.samples.length > 0) fail(lineNo, line, `TYPE for ${name} after its samples`);
        if (typed.has(name)) fail(lineNo, line, `second TYPE for ${name}`);
        typed.add(name);
        f.type = type as PromFamily['type'];
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) fail(lineNo, line, 'invalid metric name');
    const name = nm[0];
    let pos = name.length;
    let labels: Record<string, string> = {};
    if (line[pos] === '{') {
      const r = parseLabels(line, pos, lineNo);
      labels = r.labels;
      pos = r.end;
    }
    const rest = line.slice(pos);
    const vm = /^ +(\S+)(?: +(-?\d+))?$/.exec(rest);
    if (!vm) fail(lineNo, line, 'expected " value [timestamp]" after the name and labels');
    const value = parseValue(vm[1] ?? '', lineNo, line);
    const fam = enter(familyOf(name, families), lineNo, line);
    if (fam.type === 'counter') {
      if (name !== fam.name) fail(lineNo, line, `counter sample ${name} does not match its family ${fam.name}`);
      if (!(value >= 0)) fail(lineNo, line, `counter ${name} has a negative or NaN value`);
    }
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
    if (series.has(key)) fail(lineNo, line, `duplicate series ${key}`);
    series.add(key);
    fam.samples.push({ name, labels, value, ...(vm[2] === undefined ? {} : { timestamp: Number(vm[2]) }) });
  });
  return families;
}

/** The value of the sample `name` whose labels include `labels`; undefined when absent, throws when ambiguous. */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches: PromSample[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) matches.push(s);
    }
  }
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}
