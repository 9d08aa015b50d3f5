/**
 * Config files (manifold.conf(5)): the INI reader, every validation error
 * (with file:line), checks across files, layering and masking, and the
 * dependency-free address/port parsers against src/core/net.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseIni } from '../../src/config/ini.js';
import { configBindings, configTargets } from '../../src/config/bindings.js';
import { formatIpPrefix, hostBitsSet, maskPrefix, parseIpPrefix, parsePorts } from '../../src/config/ip.js';
import { configDirs, DEFAULT_CONFIG_DIRS, listConfigFiles, loadConfig, parseConfigFile, parseConfigText, verifyConfig } from '../../src/config/load.js';
import { configError, formatProblem, type LabelConfig } from '../../src/config/types.js';
import { formatPrefix, parsePortRange, parsePrefix } from '../../src/core/net.js';
import { ManifoldError } from '../../src/errors.js';

// Config files must be writable only by root (or the user running the test).
process.umask(0o022);

const FILE = '/etc/manifold/web.conf';

/** Problems of one file as "line: message". */
function problems(text: string, file = FILE): string[] {
  return parseConfigText(text, file).problems.map((p) => `${p.line}: ${p.message}`);
}

function ok(text: string, file = FILE): LabelConfig {
  const r = parseConfigText(text, file);
  assert.equal(r.problems, [], 'no problems');
  assert.ok(r.unit);
  return r.unit as LabelConfig;
}

/** Assert exactly one problem, on `line`, matching `re`. */
function bad(text: string, line: number, re: RegExp): void {
  const p = problems(text);
  assert.is(p.length, 1, p.join('\n'));
  assert.match(p[0] ?? '', new RegExp(`^${line}: .*?${re.source}`));
  assert.is(parseConfigText(text, FILE).unit, null);
}

function withTree(files: Record<string, string | { symlink: string } | { dir: true }>, fn: (root: string) => void): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-config-test-'));
  try {
    for (const [rel, content] of Object.entries(files)) {
      const full = path.join(root, rel);
      fs.mkdirSync(path.dirname(full), { recursive: true });
      if (typeof content === 'string') fs.writeFileSync(full, content);
      else if ('symlink' in content) fs.symlinkSync(content.symlink, full);
      else fs.mkdirSync(full);
    }
    fn(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const dirsIn = (root: string): string[] => ['etc', 'run', 'lib'].map((d) => path.join(root, d));

// ---------------------------------------------------------------- INI reader

test('ini: comments, blanks, sections, stripping', () => {
  const d = parseIni('# c\n ; c2\n\n[Label]\n  Key = a value  \n\t# indented comment\nK2=\n');
  assert.equal(d.problems, []);
  assert.equal(d.sections, [{ name: 'Label', line: 4 }]);
  assert.equal(d.assignments, [
    { section: 'Label', key: 'Key', value: 'a value', line: 5 },
    { section: 'Label', key: 'K2', value: '', line: 7 },
  ]);
});

test('ini: line continuation, comments inside it, escaped backslash, EOF', () => {
  const d = parseIni('[S]\nA=one \\\n  two\\\n# skipped\nthree\nB=x\\\\\nC=y\\');
  assert.equal(d.problems, []);
  assert.equal(
    d.assignments.map((a) => [a.key, a.value, a.line]),
    [
      ['A', 'one    two three', 2],
      ['B', 'x\\\\', 6],
      ['C', 'y', 7],
    ],
  );
});

test('ini: BOM, CRLF, problems with lines', () => {
  const d = parseIni('\uFEFF[S]\r\nA=1\r\nnoequals\r\n=v\r\n[broken\r\n');
  assert.equal(d.assignments.map((a) => [a.key, a.value]), [['A', '1']]);
  assert.equal(
    d.problems.map((p) => p.line),
    [3, 4, 5],
  );
  assert.match(d.problems[0]?.message ?? '', /missing '='/);
  assert.match(d.problems[1]?.message ?? '', /missing key name/);
  assert.match(d.problems[2]?.message ?? '', /invalid section header/);
});

test('ini: invalid UTF-8 is reported on its line', () => {
  const bytes = Buffer.concat([Buffer.from('[Label]\nBind=tcp 10.0.0.0/8 80\nName='), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
  const d = parseIni(bytes);
  assert.equal(d.problems, [{ line: 3, message: 'line is not valid UTF-8' }]);
  assert.is(d.assignments.length, 1);
});

test('ini: a file of 300,000 continued lines reads as one value (the reader is linear)', () => {
  const d = parseIni(`[Label]\nBind=${'a\\\n'.repeat(300_000)}z\n`);
  assert.equal(d.problems, []);
  assert.is(d.assignments.length, 1);
  assert.is(d.assignments[0]?.value.length, 600_001);
  assert.ok(d.assignments[0]?.value.endsWith('a a z'));
});

test('parseConfigFile: a FIFO or an oversized file is refused without blocking or reading it all', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-config-test-'));
  try {
    const fifo = path.join(dir, 'fifo.conf');
    const mk = spawnSync('mkfifo', [fifo]);
    assert.is(mk.status, 0);
    assert.equal(parseConfigFile(fifo).problems.map((p) => p.message), ['is not a regular file']);
    const big = path.join(dir, 'big.conf');
    fs.writeFileSync(big, `[Label]\n${'#'.repeat(1024 * 1024)}\n`);
    assert.equal(parseConfigFile(big).problems.map((p) => p.message), ['is larger than 1048576 bytes']);
    const exact = path.join(dir, 'exact.conf');
    fs.writeFileSync(exact, `[Label]\n${'#'.repeat(1024 * 1024 - 9)}\n`);
    assert.is(fs.statSync(exact).size, 1024 * 1024);
    assert.equal(parseConfigFile(exact).problems, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('parseConfigFile: a file whose size fstat understates is read whole (the buffer grows)', () => {
  // procfs reports a size of 0 for files with content: the reader starts small and grows.
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const lines = text.split('\n').length - 1;
  assert.ok(text.length > 1024, 'mountinfo is longer than the first read');
  assert.is(fs.statSync('/proc/self/mountinfo').size, 0);
  const problems = parseConfigFile('/proc/self/mountinfo').problems;
  assert.ok(problems.length > 0);
  assert.is(Math.max(...problems.map((p) => p.line)), lines, 'the last line was read and reported');
});

// ---------------------------------------------------------------- one file

test('a complete socket-sourced file', () => {
  const u = ok('[Label]\nBind=tcp 192.0.2.0/24 80\nBind=ANY 2001:DB8::/32 8000-8080\nSocket=web.socket\n');
  assert.is(u.name, 'web');
  assert.is(u.nameLine, 0);
  assert.equal(u.sockets, [{ unit: 'web.socket', line: 4 }]);
  assert.is(u.service, null);
  assert.equal(u.binds.map((b) => [b.protocols, formatIpPrefix(b.prefix), b.first, b.last, b.line]), [
    [['tcp'], '192.0.2.0/24', 80, 80, 2],
    [['tcp', 'udp'], '2001:db8::/32', 8000, 8080, 3],
  ]);
});

test('Target=: address targets serve the protocols of the Bind= lines of their family', () => {
  const u = ok('[Label]\nBind=tcp 127.0.0.0/8 80\nBind=any 0.0.0.0/0 53\nBind=udp fd00::/16 0\nTarget=127.0.0.5\nTarget=fd00::5 5353\n');
  assert.equal(u.targets.map((t) => [formatIpPrefix(t.address), t.port, t.line]), [['127.0.0.5/32', 0, 5], ['fd00::5/128', 5353, 6]]);
  assert.equal(configTargets([u]).map((t) => `${t.label} ${t.domain} ${t.protocol} ${Buffer.from(t.addr).toString('hex')} ${t.port} ${t.source}`), [
    `web ipv4 tcp 7f000005 0 ${FILE}:5`,
    `web ipv4 udp 7f000005 0 ${FILE}:5`,
    `web ipv6 udp fd000000000000000000000000000005 5353 ${FILE}:6`,
  ]);
  assert.equal(ok('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5\nTarget=\n').targets, [], 'an empty assignment resets the list');
});

test('errors: Target=', () => {
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 80 90\n', 3, /Target= expects "ADDRESS \[PORT\]"/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.0/8\n', 3, /not a prefix/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=0.0.0.0\n', 3, /Target=: the wildcard, not a specific address/);
  bad('[Label]\nBind=tcp ::/0 80\nTarget=::\n', 3, /Target=: the wildcard, not a specific address/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=224.0.0.1\n', 3, /Target=: a multicast address; a target is the specific address a daemon listens on/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=255.255.255.255\n', 3, /Target=: the limited broadcast address/);
  bad('[Label]\nBind=tcp ::/0 80\nTarget=ff02::1\n', 3, /Target=: a multicast address/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=::ffff:127.0.0.5\n', 3, /IPv4-mapped/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 0\n', 3, /expected one port/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 70000\n', 3, /expected one port/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 80-81\n', 3, /expected one port/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 +80\n', 3, /expected one port/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5\nTarget=127.0.0.6\n', 4, /one IPv4 target: Target= is already given on line 3/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=fd00::5\n', 3, /no IPv6 Bind= line/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nSocket=web.socket\nTarget=127.0.0.5\n', 4, /Target= and Socket= \(line 3\) are mutually exclusive/);
  bad('[Label]\nBind=tcp 127.0.0.0/8 80\nService=web.service\nListen=tcp 127.0.0.1 80\nTarget=127.0.0.5\n', 5, /Target= and Service= \(line 3\) are mutually exclusive/);
});

test('a complete service-sourced file', () => {
  const u = ok('[Label]\nName=api\nService=api.service\nListen=tcp 127.0.0.1 8080\nListen=udp ::1 53\nRegistration=optional\n');
  assert.is(u.name, 'api');
  assert.is(u.nameLine, 2);
  assert.equal(u.service, { unit: 'api.service', line: 3 });
  assert.is(u.listens.length, 2);
  assert.is(u.registration, 'optional');
  assert.is(ok('[Label]\nService=a.service\nListen=tcp 127.0.0.1 1\n').registration, 'required');
});

test('Listen= and Target= keep the one-port range form files always accepted ("8080-8080"), unlike the command line', () => {
  assert.is(ok('[Label]\nService=a.service\nListen=tcp 127.0.0.1 8080-8080\n').listens[0]?.port, 8080);
  assert.is(ok('[Label]\nBind=tcp 127.0.0.0/8 80\nTarget=127.0.0.5 8080-8080\n').targets[0]?.port, 8080);
});

test('empty assignments reset lists', () => {
  const u = ok('[Label]\nBind=tcp 10.0.0.0/8 80\nSocket=a.socket\nBind=\nSocket=\nBind=tcp 10.0.0.0/8 80\nSocket=b.socket\n');
  assert.is(u.binds.length, 1);
  assert.is(u.binds[0]?.line, 6);
  assert.equal(u.sockets.map((s) => s.unit), ['b.socket']);
  const s = ok('[Label]\nService=a.service\nListen=tcp 127.0.0.1 1\nListen=\nListen=tcp 127.0.0.1 2\n');
  assert.equal(s.listens.map((l) => l.port), [2]);
});

test('repeated [Label] sections merge; X- sections and keys are ignored', () => {
  const u = ok('[X-Vendor]\nAnything=goes\n[Label]\nBind=tcp 10.0.0.0/8 80\nX-Note=hi\n[Label]\nSocket=a.socket\n');
  assert.is(u.binds.length, 1);
  assert.is(u.sockets.length, 1);
});

test('a file without sources is valid (registration done elsewhere)', () => {
  assert.is(ok('[Label]\nBind=tcp 10.0.0.0/8 0\n').binds[0]?.first, 0);
  assert.is(ok('# only comments\n[Label]\n').binds.length, 0);
});

test('errors: structure', () => {
  bad('Bind=tcp 10.0.0.0/8 80\n[Label]\n', 1, /assignment Bind= outside of a section/);
  bad('[Labels]\nBind=tcp 10.0.0.0/8 80\n', 1, /unknown section \[Labels\]/);
  bad('[Label]\nbind=tcp 10.0.0.0/8 80\n', 2, /unknown key bind= in \[Label\]/);
  bad('[Label]\nName=a\nName=b\n', 3, /Name= may only be given once \(already set on line 2\)/);
  bad('[Label]\nName=\n', 2, /Name= needs a value/);
  bad('[Label]\nService=a.service\nService=b.service\nListen=tcp 127.0.0.1 1\n', 3, /Service= may only be given once/);
  bad('[Label]\nnonsense\n', 2, /missing '='/);
});

test('errors: Bind=', () => {
  bad('[Label]\nBind=tcp 10.0.0.0/8\n', 2, /Bind= expects "PROTOCOL PREFIX PORT"/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 80 90\n', 2, /Bind= expects/);
  bad('[Label]\nBind=sctp 10.0.0.0/8 80\n', 2, /invalid protocol "sctp" in Bind=: expected tcp, udp or any/);
  bad('[Label]\nBind=tcp 10.0.0.256/8 80\n', 2, /invalid prefix "10\.0\.0\.256\/8" in Bind=: not a valid IPv4 address/);
  bad('[Label]\nBind=tcp 10.0.0.0/33 80\n', 2, /invalid prefix .*prefix length must be between 0 and 32/);
  bad('[Label]\nBind=tcp ::ffff:10.0.0.0/104 80\n', 2, /IPv4-mapped/);
  bad('[Label]\nBind=tcp fe80::1%eth0 80\n', 2, /not a valid IPv6 address/);
  bad('[Label]\nBind=tcp 10.1.2.3/8 80\n', 2, /host bits set; did you mean 10\.0\.0\.0\/8\?/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 65536\n', 2, /invalid port "65536" in Bind=: ports range from 0 to 65535/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 90-80\n', 2, /the range is backwards/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 1-5000\n', 2, /at most 4096 ports/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 0-10\n', 2, /cannot include port 0/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 http\n', 2, /invalid port "http"/);
});

test('errors: overlapping Bind= lines in one file', () => {
  bad('[Label]\nBind=tcp 10.0.0.0/8 80\nBind=tcp 10.0.0.0/8 80\n', 3, /Bind= tcp 10\.0\.0\.0\/8 80 overlaps tcp 10\.0\.0\.0\/8 80 on line 2/);
  bad('[Label]\nBind=tcp 10.0.0.0/8 80-90\nBind=any 10.0.0.0/8 85\n', 3, /Bind= tcp 10\.0\.0\.0\/8 85 overlaps tcp 10\.0\.0\.0\/8 80-90 on line 2/);
  bad('[Label]\nBind=udp 2001:db8::/32 0\nBind=udp 2001:0db8:0::/32 0\n', 3, /overlaps udp 2001:db8::\/32 0 on line 2/);
  // Not overlaps: other protocol, other prefix, port 0 next to a port, adjacent ranges.
  ok('[Label]\nBind=tcp 10.0.0.0/8 80\nBind=udp 10.0.0.0/8 80\nBind=tcp 10.0.0.0/9 80\nBind=tcp 10.0.0.0/8 0\nBind=tcp 10.0.0.0/8 81-90\nBind=tcp 10.0.0.0/8 91\n');
});

test('errors: Socket=, Service=, Listen=, Registration=', () => {
  bad('[Label]\nSocket=web.service\n', 2, /invalid Socket=: "web\.service" is not a \.socket unit name/);
  bad('[Label]\nSocket=web@.socket\n', 2, /is a template; name an instance/);
  bad('[Label]\nSocket=we b.socket\n', 2, /may only contain letters/);
  bad(`[Label]\nSocket=${'a'.repeat(240)}.socket\n`, 2, /the name of its register unit \(266 characters\) would exceed 255/);
  bad('[Label]\nService=manifold.service\nListen=tcp ::1 1\n', 2, /manifold\.service is part of manifold itself/);
  for (const own of ['manifold-discovery.service', 'manifold-metrics.service', 'manifold-register@web.service']) {
    bad(`[Label]\nService=${own}\nListen=tcp ::1 1\n`, 2, new RegExp(`invalid Service=: ${own.replace(/[.@]/g, '\\$&')} is part of manifold itself`));
  }
  bad('[Label]\nSocket=manifold-metrics.socket\n', 2, /invalid Socket=: manifold-metrics\.socket is part of manifold itself/);
  bad('[Label]\nSocket=a.socket\nSocket=a.socket\n', 3, /Socket=a\.socket is already listed on line 2/);
  bad('[Label]\nService=web\nListen=tcp 127.0.0.1 1\n', 2, /invalid Service=: "web" is not a \.service unit name/);
  bad('[Label]\nSocket=a.socket\nService=a.service\nListen=tcp 127.0.0.1 1\n', 3, /Service= and Socket= \(line 2\) are mutually exclusive/);
  bad('[Label]\nService=a.service\n', 2, /Service= needs at least one Listen=/);
  bad('[Label]\nListen=tcp 127.0.0.1 1\n', 2, /Listen= needs Service=/);
  bad('[Label]\nService=a.service\nListen=tcp 127.0.0.0/8 1\n', 3, /expected a single IP address, not a prefix/);
  bad('[Label]\nService=a.service\nListen=tcp 127.0.0.1 0\n', 3, /invalid port "0" in Listen=/);
  bad('[Label]\nService=a.service\nListen=tcp 127.0.0.1 1-2\n', 3, /invalid port "1-2" in Listen=/);
  bad('[Label]\nService=a.service\nListen=tcp 127.0.0.1\n', 3, /Listen= expects "PROTOCOL ADDRESS PORT"/);
  bad('[Label]\nService=a.service\nListen=any ::1 53\nListen=udp 0:0::1 53\n', 4, /Listen= udp ::1 53 is already listed on line 3/);
  bad('[Label]\nService=a.service\nListen=tcp 127.0.0.1 9090\nListen=tcp 127.0.0.1 9091\n', 4, /Listen= tcp 127\.0\.0\.1 9091 and tcp 127\.0\.0\.1 9090 \(line 3\) are both ipv4:tcp: the label's ipv4:tcp destination holds one socket/);
  bad('[Label]\nService=a.service\nListen=udp ::1 53\nListen=any ::2 53\n', 4, /Listen= udp ::2 53 and udp ::1 53 \(line 3\) are both ipv6:udp/);
  bad('[Label]\nService=a.service\nListen=tcp ::1 1\nRegistration=maybe\n', 4, /invalid Registration="maybe": expected required or optional/);
  bad('[Label]\nSocket=a.socket\nRegistration=optional\n', 3, /Registration= only applies with Service=/);
});

test('errors: labels', () => {
  bad('[Label]\nName=-bad\n', 2, /invalid Name=: label "-bad" may only contain/);
  const p = parseConfigText('[Label]\n', '/etc/manifold/bad name.conf').problems;
  assert.equal(p.map(formatProblem), ['/etc/manifold/bad name.conf: the file name does not make a valid label (label "bad name" may only contain letters, digits and _ . @ + = - (and must not start with . @ + = -)); set Name=']);
  ok('[Label]\nName=good\n', '/etc/manifold/bad name.conf');
});

test('every problem of a file is reported, in line order', () => {
  const p = problems('[Label]\nBind=tcp 10.0.0.0/8 x\nFoo=1\nSocket=x\n[Other]\n');
  assert.equal(
    p.map((s) => s.split(':')[0]),
    ['2', '3', '4', '5'],
  );
});

// ---------------------------------------------------------------- across files

test('across files: a label defined twice, a socket shared, a binding claimed twice', () => {
  withTree(
    {
      'etc/a.conf': '[Label]\nName=web\nBind=tcp 192.0.2.0/24 80-90\nSocket=web.socket\n',
      'etc/b.conf': '[Label]\nName=web\n',
      'etc/c.conf': '[Label]\n\nSocket=web.socket\n',
      'etc/d.conf': '[Label]\nBind=any 192.0.2.0/24 85\n',
      'etc/e.conf': '[Label]\nBind=udp 192.0.2.0/24 85\nBind=tcp 192.0.2.0/24 91\n',
    },
    (root) => {
      const r = loadConfig(dirsIn(root));
      const e = path.join(root, 'etc');
      assert.equal(r.problems.map(formatProblem), [
        `${e}/b.conf:2: label "web" is already defined in ${e}/a.conf:2`,
        `${e}/c.conf:3: Socket=web.socket is already used by label "web" (${e}/a.conf:4); a socket's fds are registered under one label`,
        `${e}/d.conf:2: Bind= tcp 192.0.2.0/24 85 conflicts with tcp 192.0.2.0/24 80-90 of label "web" (${e}/a.conf:3)`,
      ]);
      // d.conf was rejected as a whole, so its udp binding does not block e.conf.
      assert.equal(r.units.map((u) => u.name), ['web', 'e']);
      assert.equal(verifyConfig(undefined, dirsIn(root)), r.problems);
    },
  );
});

test('a label defined twice where the second takes its name from the file name', () => {
  withTree({ 'etc/a.conf': '[Label]\nName=b\n', 'etc/b.conf': '[Label]\n' }, (root) => {
    const p = loadConfig(dirsIn(root)).problems.map(formatProblem);
    assert.equal(p, [`${root}/etc/b.conf: label "b" is already defined in ${root}/etc/a.conf:2`]);
  });
});

test('a config file name that is not UTF-8 is refused with its bytes shown, and does not mask a file whose name decodes alike', () => {
  withTree({ 'etc/keep.conf': '[Label]\nBind=tcp 192.0.2.1 80\n', 'lib/inv\uFFFDx.conf': '[Label]\nName=lower\nBind=tcp 192.0.2.2 80\n' }, (root) => {
    // inv<0xff>x.conf: Node reads its name back as "inv\uFFFDx.conf", a path that does not exist.
    fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/etc/inv`), Buffer.from([0xff, 0x1b]), Buffer.from('x.conf')]), '[Label]\nName=bad\n');
    fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/etc/notes`), Buffer.from([0xff])]), 'not a config file');
    const r = loadConfig(dirsIn(root));
    assert.equal(r.problems.map(formatProblem), [`${root}/etc/inv\\xff\\x1bx.conf: the file name is not valid UTF-8: the file is ignored (rename it)`]);
    assert.equal(r.units.map((u) => u.name).sort(), ['keep', 'lower'], 'the lower directory\'s file of the decoded name is read');
  });
});

// ---------------------------------------------------------------- layering

test('layering: /etc over /run over /usr/lib; /dev/null symlinks and empty files mask', () => {
  withTree(
    {
      'lib/a.conf': '[Label]\nSocket=vendor.socket\n',
      'run/a.conf': '[Label]\nSocket=runtime.socket\n',
      'lib/b.conf': '[Label]\nSocket=b.socket\n',
      'etc/b.conf': { symlink: '/dev/null' },
      'run/c.conf': '[Label]\nSocket=c.socket\n',
      'etc/c.conf': '',
      'lib/d.conf': '[Label]\nSocket=d.socket\n',
      'etc/e.conf': { symlink: '../other/real.conf' },
      'other/real.conf': '[Label]\nSocket=e.socket\n',
      'etc/.hidden.conf': '[Label]\n',
      'etc/notes.txt': 'x',
      'etc/.conf': 'x',
    },
    (root) => {
      const r = loadConfig(dirsIn(root));
      assert.equal(r.problems, []);
      assert.equal(
        r.units.map((u) => [u.name, path.relative(root, u.file), u.sockets[0]?.unit]),
        [
          ['a', 'run/a.conf', 'runtime.socket'],
          ['d', 'lib/d.conf', 'd.socket'],
          ['e', 'etc/e.conf', 'e.socket'],
        ],
      );
    },
  );
});

test('layering: files are processed in file-name order whatever their directory', () => {
  withTree(
    {
      'lib/a.conf': '[Label]\nName=x\n',
      'etc/b.conf': '[Label]\nName=x\n',
    },
    (root) => {
      const r = loadConfig(dirsIn(root));
      assert.equal(r.units.map((u) => path.relative(root, u.file)), ['lib/a.conf']);
      assert.match(r.problems[0]?.file ?? '', /etc\/b\.conf$/);
    },
  );
});

test('layering: directories, dangling symlinks and unreadable entries are problems; missing dirs are not', () => {
  withTree(
    {
      'etc/dir.conf': { dir: true },
      'etc/dangling.conf': { symlink: '/nonexistent/x' },
      'lib/ok.conf': '[Label]\n',
    },
    (root) => {
      const r = listConfigFiles([...dirsIn(root), path.join(root, 'missing')]);
      assert.equal(r.files, [path.join(root, 'lib/ok.conf')]);
      assert.equal(
        r.problems.map((p) => [path.relative(root, p.file), p.line, p.message]),
        [
          ['etc/dangling.conf', 0, 'no such file (or a dangling symlink)'],
          ['etc/dir.conf', 0, 'is a directory'],
        ],
      );
    },
  );
});

test('layering: a config directory that is a file is a problem; a /proc file that says size 0 does not mask', () => {
  withTree(
    {
      'etc/env.conf': { symlink: '/proc/self/environ' },
      'lib/env.conf': '[Label]\nSocket=hidden.socket\n',
      'notadir': 'x',
    },
    (root) => {
      const r = listConfigFiles([...dirsIn(root), path.join(root, 'notadir')]);
      // Read, not taken for an empty (masking) file: environ has content though stat says 0 bytes.
      assert.equal(r.files, [path.join(root, 'etc/env.conf')]);
      assert.equal(
        r.problems.map((p) => [path.relative(root, p.file), p.message]),
        [['notadir', 'is not a directory; no configuration is read from it']],
      );
    },
  );
});

test('configDirs: defaults and MANIFOLD_CONFIG_DIRS', () => {
  assert.equal(configDirs({}), ['/etc/manifold', '/run/manifold', '/usr/lib/manifold']);
  assert.equal(configDirs({ MANIFOLD_CONFIG_DIRS: '' }), [...DEFAULT_CONFIG_DIRS]);
  assert.equal(configDirs({ MANIFOLD_CONFIG_DIRS: '/a::/b/' }), ['/a', '/b']);
  assert.equal(configDirs({ MANIFOLD_CONFIG_DIRS: 'rel' }), [path.resolve('rel')]);
});

test('verifyConfig(files): the files alone, as a set', () => {
  withTree(
    {
      'x/a.conf': '[Label]\nBind=tcp 10.0.0.0/8 80\n',
      'x/b.conf': '[Label]\nBind=tcp 10.0.0.0/8 80\n',
      'x/empty.conf': '',
      'x/wrong.txt': '[Label]\n',
    },
    (root) => {
      const f = (n: string): string => path.join(root, 'x', n);
      assert.equal(verifyConfig([f('a.conf')]), []);
      assert.equal(verifyConfig([f('a.conf'), f('empty.conf')]), []);
      assert.equal(verifyConfig([f('a.conf'), f('b.conf')]).map(formatProblem), [`${f('b.conf')}:2: Bind= tcp 10.0.0.0/8 80 conflicts with tcp 10.0.0.0/8 80 of label "a" (${f('a.conf')}:2)`]);
      assert.match(formatProblem(verifyConfig([f('wrong.txt')])[0] ?? { file: '', line: 0, message: '' }), /wrong\.txt: config file names must end in \.conf/);
      assert.match(verifyConfig([f('none.conf')])[0]?.message ?? '', /no such file/);
    },
  );
});

// ---------------------------------------------------------------- API for apply --config

test('configBindings: one entry per protocol, canonical prefix, port text, source', () => {
  withTree({ 'etc/web.conf': '[Label]\nBind=any 2001:DB8:0::/48 8000-8080\nBind=tcp 192.0.2.7 0\n' }, (root) => {
    const { units, problems } = loadConfig(dirsIn(root));
    assert.equal(problems, []);
    const src = path.join(root, 'etc/web.conf');
    assert.equal(configBindings(units), [
      { label: 'web', protocol: 'tcp', prefix: '2001:db8::/48', port: '8000-8080', source: `${src}:2` },
      { label: 'web', protocol: 'udp', prefix: '2001:db8::/48', port: '8000-8080', source: `${src}:2` },
      { label: 'web', protocol: 'tcp', prefix: '192.0.2.7/32', port: '0', source: `${src}:3` },
    ]);
    // The output goes through the CLI's own parsers unchanged.
    for (const b of configBindings(units)) assert.is(formatPrefix(parsePrefix(b.prefix)), b.prefix);
  });
});

test('configError: ERR_INVALID_CONFIG listing every problem', () => {
  const e = configError([
    { file: '/a.conf', line: 2, message: 'bad' },
    { file: '/b.conf', line: 0, message: 'worse' },
  ]);
  assert.instance(e, ManifoldError);
  assert.is(e.code, 'ERR_INVALID_CONFIG');
  assert.is(e.message, 'invalid configuration (2 problems):\n  /a.conf:2: bad\n  /b.conf: worse');
});

// ---------------------------------------------------------------- parsers agree with src/core/net.ts

function netParse(text: string): string | null {
  try {
    return formatPrefix(parsePrefix(text));
  } catch {
    return null;
  }
}

function ourParse(text: string): string | null {
  const p = parseIpPrefix(text);
  return typeof p === 'string' ? null : formatIpPrefix(maskPrefix(p));
}

const SAMPLES = [
  '0.0.0.0/0', '10.0.0.0/8', '192.0.2.1', '255.255.255.255/32', '1.2.3.4/0', '01.2.3.4', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4/', '1.2.3.4/08', '1.2.3.4/33', ' 1.2.3.4',
  '::', '::/0', '::1', '2001:db8::/32', '2001:DB8::1/128', '2001:db8:0:0:0:0:0:1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8::', '1::2::3', ':1::', '1:::2',
  '::ffff:1.2.3.4', '::ffff:0:0/96', '::ffff:0.0.0.0/0', '64:ff9b::192.0.2.1/120', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.04', 'fe80::1%eth0', '12345::', 'g::1', '2001:db8::/129', '2001:db8::/-1',
  '1:0:0:1:0:0:0:1', '1:0:0:0:1:0:0:1', '0:0:1::', '1:0::', '',
];

test('parseIpPrefix agrees with net.ts parsePrefix on tricky inputs', () => {
  for (const s of SAMPLES) assert.is(ourParse(s), netParse(s), JSON.stringify(s));
});

test('parseIpPrefix agrees with net.ts parsePrefix (property)', () => {
  const v6text = fc
    .tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 8 }), fc.boolean())
    .map(([g, a, b, upper]) => {
      const lo = Math.min(a, b);
      const hi = Math.max(a, b);
      const groups = g.map((x, i) => (i >= lo && i < hi ? 0 : x));
      let text = groups.map((x) => x.toString(16)).join(':');
      if (hi - lo >= 1) text = `${groups.slice(0, lo).map((x) => x.toString(16)).join(':')}::${groups.slice(hi).map((x) => x.toString(16)).join(':')}`;
      return upper ? text.toUpperCase() : text;
    });
  const v4text = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }).map((o) => o.join('.'));
  const prefix = fc.tuple(fc.oneof(v4text, v6text), fc.option(fc.integer({ min: 0, max: 130 }), { nil: undefined })).map(([a, l]) => (l === undefined ? a : `${a}/${l}`));
  fc.assert(
    fc.property(prefix, (s) => {
      assert.is(ourParse(s), netParse(s), s);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-fA-F:.\/]{0,20}$/), (s) => {
      assert.is(ourParse(s), netParse(s), s);
    }),
    { numRuns: 3000 },
  );
});

test('hostBitsSet', () => {
  const p = (s: string) => {
    const r = parseIpPrefix(s);
    if (typeof r === 'string') throw new Error(r);
    return r;
  };
  assert.ok(hostBitsSet(p('10.0.0.1/8')));
  assert.not.ok(hostBitsSet(p('10.0.0.0/8')));
  assert.not.ok(hostBitsSet(p('10.0.0.1')));
  assert.ok(hostBitsSet(p('2001:db8::1/64')));
});

test('parsePorts agrees with net.ts parsePortRange', () => {
  const net = (s: string): string => {
    try {
      const r = parsePortRange(s);
      return `${r.first}-${r.last}`;
    } catch (e) {
      return (e as Error).message.replace(/^invalid port "[^"]*": /, '');
    }
  };
  const ours = (s: string): string => {
    const r = parsePorts(s);
    return typeof r === 'string' ? r : `${r.first}-${r.last}`;
  };
  for (const s of ['0', '80', '65535', '65536', '00080', '1-4096', '1-4097', '0-1', '9-8', '1-', '-1', 'x', '', '1 ', '123456', '80-80']) assert.is(ours(s), net(s), s);
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9-]{0,12}$/), (s) => {
      assert.is(ours(s), net(s), s);
    }),
    { numRuns: 2000 },
  );
});

test.run();
