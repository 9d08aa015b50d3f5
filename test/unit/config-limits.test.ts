/**
 * Config files at their limits: huge numbers of problems (capped per file,
 * never a stack overflow), port indexes fed in any order (O(log n) per
 * claim), file names with characters a unit file cannot carry, and values
 * echoed in messages (cut).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseIni } from '../../src/config/ini.js';
import { checkAcrossFiles, loadConfig, parseConfigText, verifyConfig } from '../../src/config/load.js';
import { PortIndex } from '../../src/config/port-index.js';
import { validateDocument } from '../../src/config/schema.js';
import { clip, FirstProblems, MAX_PROBLEMS_PER_FILE } from '../../src/config/problems.js';
import { configError, countProblems, formatProblem, type LabelConfig } from '../../src/config/types.js';

// Config files must be writable only by root (or the user running the test).
process.umask(0o022);

function withDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-config-limits-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- many problems

test('a file of 130,000 bad lines: no stack overflow, the other files still load, its problems capped and counted', () => {
  withDir((dir) => {
    fs.writeFileSync(path.join(dir, 'bad.conf'), 'x\n'.repeat(130_000));
    fs.writeFileSync(path.join(dir, 'good.conf'), '[Label]\nSocket=good.socket\nBind=tcp 192.0.2.0/24 80\n');
    const r = loadConfig([dir]);
    assert.equal(
      r.units.map((u) => u.name),
      ['good'],
    );
    assert.is(r.problems.length, MAX_PROBLEMS_PER_FILE + 1);
    assert.equal(
      r.problems.slice(0, 3).map((p) => p.line),
      [1, 2, 3],
      'the first problems, in line order',
    );
    const last = r.problems[MAX_PROBLEMS_PER_FILE];
    assert.equal(last, { file: path.join(dir, 'bad.conf'), line: 0, message: `… and 129900 more problems (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`, omitted: 129_900 });
    assert.is(countProblems(r.problems), 130_000);
    // verify says the same, and the error's head counts them all.
    const v = verifyConfig([path.join(dir, 'bad.conf'), path.join(dir, 'good.conf')]);
    assert.is(v.length, MAX_PROBLEMS_PER_FILE + 1);
    const e = configError(v);
    assert.match(e.message, /^invalid configuration \(130000 problems\):\n/);
    assert.ok(e.message.endsWith(`bad.conf: … and 129900 more problems (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`));
    assert.is((e.details as { problems: Array<{ omitted?: number }> }).problems.at(-1)?.omitted, 129_900);
  });
});

test('problems of one file: the first 100 by line, whatever order they are found in (ini and schema mixed)', () => {
  // Invalid UTF-8 lines are found before anything else; schema problems after all the ini ones.
  const parts: Buffer[] = [Buffer.from('[Label]\n')];
  for (let i = 0; i < 300; i++) parts.push(i % 3 === 0 ? Buffer.from('Bind=nonsense\n') : i % 3 === 1 ? Buffer.from('junk\n') : Buffer.from([0x4e, 0x3d, 0xff, 0x0a]));
  const bytes = Buffer.concat(parts);
  const d = parseIni(bytes);
  assert.is(d.problems.length, MAX_PROBLEMS_PER_FILE);
  assert.is(d.omittedProblems, 100);
  const iniLines = d.problems.map((p) => p.line);
  assert.equal(iniLines.slice(0, 4), [3, 4, 6, 7]);
  assert.equal(iniLines, [...iniLines].sort((a, b) => a - b));
  const r = validateDocument(d, '/x.conf');
  assert.is(r.problems.length, MAX_PROBLEMS_PER_FILE + 1);
  assert.equal(
    r.problems.slice(0, MAX_PROBLEMS_PER_FILE).map((p) => p.line),
    Array.from({ length: MAX_PROBLEMS_PER_FILE }, (_, i) => i + 2),
  );
  assert.is(r.problems.at(-1)?.omitted, 200);
  assert.is(countProblems(r.problems), 300);
});

test('FirstProblems keeps the first by line, stable for equal lines, and counts the rest', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(50), { maxLength: 400 }), fc.integer({ min: 0, max: 30 }), (lines, max) => {
      const f = new FirstProblems<{ line: number; seq: number }>(max);
      lines.forEach((line, seq) => f.add({ line, seq }));
      const want = lines.map((line, seq) => ({ line, seq })).sort((a, b) => a.line - b.line || a.seq - b.seq);
      const got = f.result();
      assert.equal(got.problems, want.slice(0, max));
      assert.is(got.omitted, Math.max(0, lines.length - max));
      assert.is(f.total, lines.length);
    }),
  );
});

function label(name: string, file: string, ports: number[]): LabelConfig {
  return {
    name,
    file,
    nameLine: 2,
    binds: ports.map((p, i) => ({ protocols: ['tcp', 'udp'], prefix: { domain: 'ipv6', addr: new Uint8Array(16), len: 0 }, first: p, last: p, line: i + 3 })),
    sockets: [],
    service: null,
    listens: [],
    registration: 'required',
    targets: [],
  };
}

test('conflicts across files: at most 100 problems per file, in the order found, then the count of the rest', () => {
  const ports = Array.from({ length: 60_000 }, (_, i) => i + 1);
  const units = [label('a', '/a.conf', ports)];
  for (let i = 1; i <= 3; i++) units.push(label(`b${i}`, `/b${i}.conf`, ports));
  const r = checkAcrossFiles(units);
  assert.equal(
    r.units.map((u) => u.name),
    ['a'],
  );
  assert.is(r.problems.length, 3 * (MAX_PROBLEMS_PER_FILE + 1));
  assert.is(countProblems(r.problems), 3 * 120_000);
  assert.is(r.problems[0]?.message, 'Bind= tcp ::/0 1 conflicts with tcp ::/0 1 of label "a" (/a.conf:3)');
  assert.is(r.problems[1]?.message, 'Bind= udp ::/0 1 conflicts with udp ::/0 1 of label "a" (/a.conf:3)');
  assert.equal(r.problems[MAX_PROBLEMS_PER_FILE], { file: '/b1.conf', line: 0, message: `… and 119900 more problems (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`, omitted: 119_900 });
  assert.is(formatProblem(r.problems[MAX_PROBLEMS_PER_FILE] as never), `/b1.conf: … and 119900 more problems (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`);
});

test('a file with exactly 100 problems lists them all, with no summary', () => {
  const r = parseConfigText(`[Label]\n${'junk\n'.repeat(MAX_PROBLEMS_PER_FILE)}`, '/x.conf');
  assert.is(r.problems.length, MAX_PROBLEMS_PER_FILE);
  assert.ok(r.problems.every((p) => p.omitted === undefined && p.line > 0));
  const one = parseConfigText(`[Label]\n${'junk\n'.repeat(MAX_PROBLEMS_PER_FILE + 1)}`, '/x.conf');
  assert.is(one.problems.at(-1)?.message, `… and 1 more problem (only the first ${MAX_PROBLEMS_PER_FILE} of a file are listed)`);
});

// ---------------------------------------------------------------- the port index

test('PortIndex: claims in descending port order cost about what ascending ones do (O(log n) each, not O(n))', () => {
  const keys = ['tcp ::/0', 'udp ::/0', 'tcp 0.0.0.0/0', 'udp 0.0.0.0/0'];
  const fill = (descending: boolean): { ms: number; index: PortIndex<number> } => {
    const index = new PortIndex<number>();
    const t0 = performance.now();
    for (const key of keys) {
      for (let i = 0; i <= 65535; i++) {
        const p = descending ? 65535 - i : i;
        if (index.claim(key, p, p, p) !== null) assert.unreachable(`${key} ${p}`);
      }
    }
    return { ms: performance.now() - t0, index };
  };
  const asc = fill(false);
  const desc = fill(true);
  // A sorted array with splice: ascending ~50 ms, descending 1.3-10 s (quadratic). The tree: both ~150 ms.
  assert.ok(desc.ms < 3 * asc.ms + 300, `descending ${Math.round(desc.ms)} ms, ascending ${Math.round(asc.ms)} ms`);
  for (const { index } of [asc, desc]) {
    assert.is(index.find('tcp ::/0', 0, 0), 0);
    assert.is(index.find('tcp ::/0', 300, 400), 300);
    assert.is(index.find('tcp 192.0.2.0/24', 300, 400), null);
    assert.is(index.claim('udp ::/0', 65535, 65535, -1), 65535);
  }
});

test('PortIndex behaves like a list of disjoint intervals, in any order of claims', () => {
  const interval = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 20 })).map(([first, span]) => ({ first, last: first + span }));
  const op = fc.record({ key: fc.constantFrom('a', 'b'), claim: fc.boolean(), iv: interval });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const index = new PortIndex<number>();
      const model: Array<{ key: string; first: number; last: number; owner: number }> = [];
      ops.forEach((o, owner) => {
        const hits = model.filter((m) => m.key === o.key && m.first <= o.iv.last && o.iv.first <= m.last);
        const got = o.claim ? index.claim(o.key, o.iv.first, o.iv.last, owner) : index.find(o.key, o.iv.first, o.iv.last);
        if (hits.length === 0) {
          assert.is(got, null);
          if (o.claim) model.push({ key: o.key, ...o.iv, owner });
        } else {
          assert.ok(hits.some((h) => h.owner === got), `${JSON.stringify(o)} → ${got}`);
        }
      });
    }),
  );
});

// ---------------------------------------------------------------- file names

test('file names with C1 controls, bidi formatting or line separators are refused, the name shown escaped', () => {
  withDir((dir) => {
    const good = '[Label]\nSocket=s.socket\nBind=tcp 192.0.2.0/24 80\n';
    const names = ['csi\u009b.conf', 'rlo\u202e.conf', 'ls\u2028.conf', 'ps\u2029.conf', 'lrm\u200e.conf', 'nl\n.conf'];
    for (const n of names) fs.writeFileSync(path.join(dir, n), good.replace('s.socket', `${names.indexOf(n)}.socket`).replace('80', String(80 + names.indexOf(n))));
    fs.writeFileSync(path.join(dir, 'plain-é.conf'), '[Label]\nName=plain\nSocket=p.socket\nBind=tcp 192.0.2.0/24 1\n');
    const r = loadConfig([dir]);
    assert.equal(
      r.units.map((u) => u.name),
      ['plain'],
    );
    assert.is(r.problems.length, names.length);
    for (const p of r.problems) assert.match(p.message, /^the path contains control, bidirectional-formatting or line-separator characters, which cannot be written into unit files$/);
    for (const line of r.problems.map(formatProblem)) assert.not.match(line, /[\u0080-\u009f\u200e\u2028\u2029\u202e\n\r]/);
    const shown = r.problems.map(formatProblem).join('\n');
    assert.ok(shown.includes('csi\\x9b.conf') && shown.includes('rlo\\u202e.conf') && shown.includes('ls\\u2028.conf'), shown);
    // verify with the file named refuses it the same way.
    const v = verifyConfig([path.join(dir, names[1] as string)]);
    assert.equal(
      v.map((p) => p.message),
      ['the path contains control, bidirectional-formatting or line-separator characters, which cannot be written into unit files'],
    );
  });
});

// ---------------------------------------------------------------- echoed values

test('values echoed in messages are cut: a 1 MB value gives a short message', () => {
  const huge = 'a'.repeat(1_000_000);
  const cases = [
    `[Label]\nService=${huge}.service\nListen=tcp 127.0.0.1 80\n`,
    `[Label]\nService=${huge}\nListen=tcp 127.0.0.1 80\n`,
    `[Label]\nSocket=${huge}.socket\n`,
    `[Label]\nSocket=${huge}\n`,
    `[Label]\nBind=${huge}\n`,
    `[Label]\nBind=tcp ${huge} 80\n`,
    `[Label]\nBind=tcp 192.0.2.0/24 ${huge}\n`,
    `[Label]\nBind=${huge} 192.0.2.0/24 80\n`,
    `[Label]\nListen=tcp ${huge} 80\n`,
    `[Label]\nTarget=${huge}\n`,
    `[Label]\nRegistration=${huge}\n`,
    `[Label]\n${huge}=1\n`,
    `[${huge}]\n`,
    `[Label]\n${huge}\n`,
    `[${huge}\n`,
    `[Label]\n=${huge}\n`,
    `[Label]\nName=${huge}\n`,
  ];
  for (const text of cases) {
    const r = parseConfigText(text, '/x.conf');
    assert.ok(r.problems.length > 0, text.slice(0, 40));
    for (const p of r.problems) assert.ok(p.message.length < 400, `${text.slice(0, 40)}: ${p.message.length} characters: ${p.message.slice(0, 200)}`);
  }
  assert.is(clip('short'), 'short');
  assert.is(clip('x'.repeat(81)), `${'x'.repeat(77)}…`);
});

test('short values are echoed as before', () => {
  const msg = (text: string): string => parseConfigText(text, '/x.conf').problems[0]?.message ?? '';
  assert.is(msg('[Labels]\n'), 'unknown section [Labels] (expected [Label])');
  assert.match(msg('[Label]\nbind=x\n'), /^unknown key bind= in \[Label\]/);
  assert.is(msg('[Label]\nnonsense\n'), `missing '=' in "nonsense"`);
  assert.is(msg('[Label]\nRegistration=maybe\nService=a.service\nListen=tcp 127.0.0.1 80\n'), 'invalid Registration="maybe": expected required or optional');
});

test.run();
