/**
 * The keys of a manifold config file and the validation of one file.
 *
 * ```
 * [Label]
 * Name=web                          # default: file name without .conf
 * Bind=tcp 192.0.2.0/24 80          # repeatable; PROTOCOL PREFIX PORT[-PORT]
 * Socket=web.socket                 # repeatable; or:
 * Service=nginx.service             # with one or more
 * Listen=tcp 127.0.0.1 8080         # PROTOCOL ADDRESS PORT
 * Registration=required             # or optional (Service= only)
 * Target=127.0.0.5 [PORT]           # or: an address target (listener discovery), one per family
 * ```
 *
 * Sections and keys starting with "X-" are ignored, as in systemd units.
 * docs/manifold.conf.5.md is the user documentation.
 */
import type { Protocol } from '../core/net.js';
import { nonUnicastProblem } from '../core/net.js';
import { labelProblem } from '../core/labels.js';
import type { IniDocument } from './ini.js';
import { formatIp, formatIpPrefix, hostBitsSet, maskPrefix, parseIpPrefix, parsePorts } from './ip.js';
import { PortIndex } from './port-index.js';
import { clip, FirstProblems, omittedProblem, quote } from './problems.js';
import type { BindConfig, ConfigProblem, LabelConfig, ListenConfig, Registration, TargetConfig, UnitRef } from './types.js';
import { fileNameProblem, registerUnitFor, UNIT_NAME_MAX, unitNameProblem } from './unit-name.js';

/** The one section. */
export const SECTION = 'Label';

/** Keys that may be repeated (an empty assignment clears the list). */
const LIST_KEYS = ['Bind', 'Socket', 'Listen', 'Target'] as const;
/** Keys that may appear once, with a value. */
const SINGLE_KEYS = ['Name', 'Service', 'Registration'] as const;

type ListKey = (typeof LIST_KEYS)[number];
type SingleKey = (typeof SINGLE_KEYS)[number];

function isListKey(k: string): k is ListKey {
  return (LIST_KEYS as readonly string[]).includes(k);
}
function isSingleKey(k: string): k is SingleKey {
  return (SINGLE_KEYS as readonly string[]).includes(k);
}

function parseProtocols(word: string, key: string): Protocol[] | string {
  const w = word.toLowerCase();
  if (w === 'tcp' || w === 'udp') return [w];
  if (w === 'any') return ['tcp', 'udp'];
  return `invalid protocol ${quote(word)} in ${key}=: expected tcp, udp or any`;
}

function parseBind(value: string, line: number): BindConfig | string {
  const words = value.split(/[ \t]+/);
  if (words.length !== 3) return `Bind= expects "PROTOCOL PREFIX PORT" such as "tcp 192.0.2.0/24 80", got ${quote(value)}`;
  const [protoText, prefixText, portText] = words as [string, string, string];
  const protocols = parseProtocols(protoText, 'Bind');
  if (typeof protocols === 'string') return protocols;
  const prefix = parseIpPrefix(prefixText);
  if (typeof prefix === 'string') return `invalid prefix ${quote(prefixText)} in Bind=: ${prefix}`;
  if (hostBitsSet(prefix)) {
    return `prefix ${quote(prefixText)} in Bind= has host bits set; did you mean ${formatIpPrefix(maskPrefix(prefix))}?`;
  }
  const ports = parsePorts(portText);
  if (typeof ports === 'string') return `invalid port ${quote(portText)} in Bind=: ${ports}`;
  return { protocols, prefix, first: ports.first, last: ports.last, line };
}

function parseListen(value: string, line: number): ListenConfig | string {
  const words = value.split(/[ \t]+/);
  if (words.length !== 3) return `Listen= expects "PROTOCOL ADDRESS PORT" such as "tcp 127.0.0.1 8080", got ${quote(value)}`;
  const [protoText, addrText, portText] = words as [string, string, string];
  const protocols = parseProtocols(protoText, 'Listen');
  if (typeof protocols === 'string') return protocols;
  if (addrText.includes('/')) return `invalid address ${quote(addrText)} in Listen=: expected a single IP address, not a prefix`;
  const address = parseIpPrefix(addrText);
  if (typeof address === 'string') return `invalid address ${quote(addrText)} in Listen=: ${address}`;
  const ports = parsePorts(portText);
  if (typeof ports === 'string' || ports.first !== ports.last || ports.first === 0) {
    return `invalid port ${quote(portText)} in Listen=: expected the port the service listens on (1-65535)`;
  }
  return { protocols, address, port: ports.first, line };
}

function parseTarget(value: string, line: number): TargetConfig | string {
  const words = value.split(/[ \t]+/);
  if (words.length > 2) return `Target= expects "ADDRESS [PORT]" such as "127.0.0.5" or "127.0.0.5 8080", got ${quote(value)}`;
  const [addrText, portText] = words as [string, string | undefined];
  if (addrText.includes('/')) return `invalid address ${quote(addrText)} in Target=: expected a single IP address, not a prefix`;
  const address = parseIpPrefix(addrText);
  if (typeof address === 'string') return `invalid address ${quote(addrText)} in Target=: ${address}`;
  const nonUnicast = nonUnicastProblem(address.addr);
  if (nonUnicast) return `invalid address ${quote(addrText)} in Target=: ${nonUnicast}; a target is the specific address a daemon listens on`;
  let port = 0;
  if (portText !== undefined) {
    const ports = parsePorts(portText);
    if (typeof ports === 'string' || ports.first !== ports.last || ports.first === 0) {
      return `invalid port ${quote(portText)} in Target=: expected one port (1-65535), or none for the connection's own port`;
    }
    port = ports.first;
  }
  return { address, port, line };
}

/** Key of a Bind= for overlap checks: "tcp 192.0.2.0/24". */
export function bindKey(protocol: Protocol, b: BindConfig): string {
  return `${protocol} ${formatIpPrefix(b.prefix)}`;
}

/** Text of one protocol of a Bind=: "tcp 192.0.2.0/24 80-90". */
export function bindText(protocol: Protocol, b: BindConfig): string {
  return `${bindKey(protocol, b)} ${b.first === b.last ? b.first : `${b.first}-${b.last}`}`;
}

/** The label a file defines by default: its name without ".conf". */
export function defaultLabelFor(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  return base.endsWith('.conf') ? base.slice(0, -'.conf'.length) : base;
}

type Report = (line: number, message: string) => void;

/** What the assignments of one file add up to, before cross-key checks. */
interface Collected {
  single: Map<SingleKey, { value: string; line: number }>;
  binds: BindConfig[];
  sockets: UnitRef[];
  listens: ListenConfig[];
  targets: TargetConfig[];
  /** Non-empty Listen= lines since the last reset, valid or not (avoids follow-up errors). */
  listenLines: number[];
}

/** manifold's own units (units/): a label cannot take its sockets from them or register into them. */
function ownUnit(name: string): boolean {
  return ['manifold.service', 'manifold-discovery.service', 'manifold-metrics.service', 'manifold-metrics.socket'].includes(name) || name.startsWith('manifold-register@');
}

function parseSocket(value: string): string | null {
  const why = unitNameProblem(value, 'socket');
  if (why) return `invalid Socket=: ${why}`;
  if (ownUnit(value)) return `invalid Socket=: ${clip(value)} is part of manifold itself`;
  const register = registerUnitFor(value);
  if (register.length > UNIT_NAME_MAX) return `invalid Socket=: the name of its register unit (${register.length} characters) would exceed ${UNIT_NAME_MAX}`;
  // The generator writes VALUE.d/ and REGISTER.d/ (src/generator/render.ts):
  // what verify accepts, the generator must be able to write.
  const tooLong = fileNameProblem(`${value}.d`, 'its drop-in directory') ?? fileNameProblem(`${register}.d`, 'the drop-in directory of its register unit');
  return tooLong ? `invalid Socket=: ${tooLong}` : null;
}

/**
 * Why the drop-in the generator writes for Service= (src/generator/render.ts:
 * "SERVICE.d/50-manifold-LABEL.conf") cannot be written, or null.
 */
function serviceDropInProblem(service: string, label: string): string | null {
  const dir = fileNameProblem(`${service}.d`, 'its drop-in directory');
  if (dir) return dir;
  const fileName = `50-manifold-${label}.conf`;
  const file = fileNameProblem(fileName, 'the drop-in file');
  return file ? `${file}: use a label of at most ${255 - (fileName.length - label.length)} bytes (Name=)` : null;
}

/** Apply the assignments in order: single keys once, list keys appended or reset. */
function collect(doc: IniDocument, bad: Report): Collected {
  const c: Collected = { single: new Map(), binds: [], sockets: [], listens: [], targets: [], listenLines: [] };
  for (const a of doc.assignments) {
    if (a.section === null) {
      bad(a.line, `assignment ${a.key}= outside of a section (add [${SECTION}] first)`);
      continue;
    }
    if (a.section !== SECTION || a.key.startsWith('X-')) continue;
    if (isSingleKey(a.key)) {
      const prev = c.single.get(a.key);
      if (prev) bad(a.line, `${a.key}= may only be given once (already set on line ${prev.line})`);
      else if (a.value === '') bad(a.line, `${a.key}= needs a value`);
      else c.single.set(a.key, { value: a.value, line: a.line });
    } else if (!isListKey(a.key)) {
      bad(a.line, `unknown key ${clip(a.key)}= in [${SECTION}] (expected one of ${[...SINGLE_KEYS, ...LIST_KEYS].map((k) => `${k}=`).join(', ')})`);
    } else if (a.key === 'Bind') {
      if (a.value === '') c.binds = [];
      else {
        const r = parseBind(a.value, a.line);
        if (typeof r === 'string') bad(a.line, r);
        else c.binds.push(r);
      }
    } else if (a.key === 'Target') {
      if (a.value === '') c.targets = [];
      else {
        const r = parseTarget(a.value, a.line);
        if (typeof r === 'string') bad(a.line, r);
        else c.targets.push(r);
      }
    } else if (a.key === 'Listen') {
      if (a.value === '') {
        c.listens = [];
        c.listenLines = [];
      } else {
        c.listenLines.push(a.line);
        const r = parseListen(a.value, a.line);
        if (typeof r === 'string') bad(a.line, r);
        else c.listens.push(r);
      }
    } else if (a.value === '') {
      c.sockets = [];
    } else {
      const why = parseSocket(a.value);
      if (why) bad(a.line, why);
      else c.sockets.push({ unit: a.value, line: a.line });
    }
  }
  return c;
}

/** Report the first line of each group whose key was already seen. */
function reportRepeats<T>(items: readonly T[], keys: (item: T) => string[], line: (item: T) => number, message: (key: string, first: number) => string, bad: Report): void {
  const seen = new Map<string, number>();
  for (const item of items) {
    for (const key of keys(item)) {
      const prev = seen.get(key);
      if (prev !== undefined) bad(line(item), message(key, prev));
      else seen.set(key, line(item));
    }
  }
}

/** Overlapping Bind= lines, repeated Socket= and Listen= lines within the file. */
function checkRepeats(c: Collected, bad: Report): void {
  const index = new PortIndex<{ line: number; text: string }>();
  for (const b of c.binds) {
    for (const p of b.protocols) {
      const clash = index.claim(bindKey(p, b), b.first, b.last, { line: b.line, text: bindText(p, b) });
      if (clash) bad(b.line, `Bind= ${bindText(p, b)} overlaps ${clash.text} on line ${clash.line}`);
    }
  }
  reportRepeats(c.sockets, (s) => [s.unit], (s) => s.line, (k, first) => `Socket=${k} is already listed on line ${first}`, bad);
  checkListens(c.listens, bad);
}

/**
 * Listen= lines: each socket once, and at most one per family and protocol:
 * the label's destination of a family and protocol holds one socket, so a
 * second line would have its socket replace the first one's at every start.
 */
function checkListens(listens: readonly ListenConfig[], bad: Report): void {
  const lines = new Map<string, number>();
  const dests = new Map<string, { line: number; text: string }>();
  for (const l of listens) {
    for (const p of l.protocols) {
      const text = `${p} ${formatIp(l.address.addr)} ${l.port}`;
      const first = lines.get(text);
      if (first !== undefined) {
        bad(l.line, `Listen= ${text} is already listed on line ${first}`);
        continue;
      }
      lines.set(text, l.line);
      const dest = `${l.address.domain}:${p}`;
      const other = dests.get(dest);
      if (other) {
        bad(l.line, `Listen= ${text} and ${other.text} (line ${other.line}) are both ${dest}: the label's ${dest} destination holds one socket, so one would replace the other; give the other socket a label (a config file) of its own`);
      } else {
        dests.set(dest, { line: l.line, text });
      }
    }
  }
}

/** Service=, Listen=, Socket= and Registration= together. */
function checkSources(c: Collected, bad: Report): Registration {
  const service = c.single.get('Service');
  if (service) {
    const why = unitNameProblem(service.value, 'service');
    if (why) bad(service.line, `invalid Service=: ${why}`);
    else if (ownUnit(service.value)) bad(service.line, `invalid Service=: ${clip(service.value)} is part of manifold itself`);
    const firstSocket = c.sockets[0];
    if (firstSocket) bad(service.line, `Service= and Socket= (line ${firstSocket.line}) are mutually exclusive: sockets come from one or the other`);
    if (c.listenLines.length === 0) bad(service.line, 'Service= needs at least one Listen= line naming the sockets to register');
  } else if (c.listenLines[0] !== undefined) {
    bad(c.listenLines[0], 'Listen= needs Service= (the service whose sockets are registered)');
  }
  const entry = c.single.get('Registration');
  if (!entry) return 'required';
  if (!service) bad(entry.line, 'Registration= only applies with Service= (socket registration is always optional)');
  if (entry.value === 'required' || entry.value === 'optional') return entry.value;
  bad(entry.line, `invalid Registration=${quote(entry.value)}: expected required or optional`);
  return 'required';
}

/** Target=: one per family, each with Bind= lines of its family, never with Socket= or Service=. */
function checkTargets(c: Collected, bad: Report): void {
  const byFamily = new Map<string, number>();
  // Once, not per Target= line: a file of many of both stays linear.
  const bound = new Set(c.binds.map((b) => b.prefix.domain));
  for (const t of c.targets) {
    const family = t.address.domain === 'ipv4' ? 'IPv4' : 'IPv6';
    const prev = byFamily.get(family);
    if (prev !== undefined) bad(t.line, `a label has one ${family} target: Target= is already given on line ${prev}`);
    else byFamily.set(family, t.line);
    if (!bound.has(t.address.domain)) bad(t.line, `Target= ${formatIp(t.address.addr)} serves the label's ${family} bindings, but it has no ${family} Bind= line`);
    const source = c.sockets[0] ?? c.single.get('Service');
    if (source) bad(t.line, `Target= and ${c.sockets[0] ? 'Socket=' : 'Service='} (line ${source.line}) are mutually exclusive: a label is served by its registered sockets or by an address target`);
  }
}

/**
 * Validate one parsed file. `unit` is null when there is any problem;
 * problems are in line order, at most MAX_PROBLEMS_PER_FILE of them, then
 * one standing for the rest (src/config/problems.ts).
 */
export function validateDocument(doc: IniDocument, file: string): { unit: LabelConfig | null; problems: ConfigProblem[] } {
  const found = new FirstProblems<ConfigProblem>();
  for (const p of doc.problems) found.add({ file, line: p.line, message: p.message });
  found.addOmitted(doc.omittedProblems);
  const bad: Report = (line, message) => {
    found.add({ file, line, message });
  };
  for (const s of doc.sections) {
    if (s.name !== SECTION && !s.name.startsWith('X-')) bad(s.line, `unknown section [${clip(s.name)}] (expected [${SECTION}])`);
  }
  const c = collect(doc, bad);
  checkRepeats(c, bad);
  const name = c.single.get('Name');
  const label = name ? name.value : defaultLabelFor(file);
  const labelWhy = labelProblem(label);
  if (labelWhy && name) bad(name.line, `invalid Name=: ${labelWhy}`);
  else if (labelWhy) bad(0, `the file name does not make a valid label (${labelWhy}); set Name=`);
  const registration = checkSources(c, bad);
  checkTargets(c, bad);
  const service = c.single.get('Service');
  if (service && !labelWhy && !unitNameProblem(service.value, 'service')) {
    const why = serviceDropInProblem(service.value, label);
    if (why) bad(service.line, `invalid Service=: ${why}`);
  }

  if (found.total > 0) {
    const { problems, omitted } = found.result();
    if (omitted > 0) problems.push(omittedProblem(file, omitted));
    return { unit: null, problems };
  }
  return {
    unit: {
      name: label,
      file,
      nameLine: name ? name.line : 0,
      binds: c.binds,
      sockets: c.sockets,
      service: service ? { unit: service.value, line: service.line } : null,
      listens: c.listens,
      registration,
      targets: c.targets,
    },
    problems: [],
  };
}
