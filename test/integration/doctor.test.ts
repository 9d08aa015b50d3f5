/**
 * `manifold doctor` against a real test namespace and bpffs: the exit status
 * follows the worst finding (0 fine, 6 warnings, 1 errors); a bound prefix
 * without a local route is named (and no longer once the route exists); a
 * second, foreign sk_lookup program (bench/bpf/empty.bpf.c, loaded and
 * attached here, after manifold and before it) is reported with the attach
 * order and what it means, a second manifold on another bpffs as such; a
 * missing or non-bpffs --bpffs is an error finding, a bpffs the state's group
 * cannot search a warning; a DIRTY generation left
 * by a killed write and leftovers of a killed unload are reported; doctor
 * changes nothing in the bpffs; the systemd installation is checked under
 * --root (units, generator, sysusers.d file, enabled, masked); run by an
 * unprivileged user, what it may not check is info with the fix (exit 0).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, type CliResult } from '../helpers/env.js';
import { setup, teardown, type Ctx } from '../helpers/suite.js';
import { makefileBpfCflags } from '../../bench/lib/bpfbuild.js';
import { linkCreate, linkInfo, BPF_SK_LOOKUP } from '../../src/sys/bpf.js';
import { closeFd } from '../../src/sys/libc.js';
import { loadObject } from '../../src/sys/object.js';

interface Finding {
  id: string;
  severity: 'ok' | 'info' | 'warning' | 'error';
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}
interface Report {
  worst: string;
  exitCode: number;
  findings: Finding[];
}

let ctx: Ctx;
let tmp: string;

function doctor(extra: string[] = []): { r: CliResult; doc: Report } {
  const r = ctx.env.cli(['doctor', '--json', '--root', tmp, ...extra]);
  assert.not.ok(r.failure, r.failure);
  assert.ok(r.json, `doctor --json printed JSON: ${r.stdout} ${r.stderr}`);
  return { r, doc: r.json as Report };
}

function get(doc: Report, id: string): Finding {
  const f = doc.findings.find((x) => x.id === id);
  assert.ok(f, `finding ${id} in ${doc.findings.map((x) => x.id).join(', ')}`);
  return f as Finding;
}

/** Names under the bpffs, recursively (what doctor must not change). */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(`${p} ${fs.statSync(p).mode.toString(8)}`);
    if (e.isDirectory()) out.push(...tree(p));
  }
  return out.sort();
}

test.before(async () => {
  ctx = await setup('doc', { load: false });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-doc-root-'));
  process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
});

test.after(() => teardown(ctx));

test('not loaded: every finding has an id, a severity and (unless ok) a fix; exit 0', () => {
  const { r, doc } = doctor();
  assert.is(r.code, 0, r.stderr);
  assert.is(doc.exitCode, 0);
  for (const f of doc.findings) {
    assert.match(f.id, /^[a-z0-9]+\.[a-z0-9_]+$/, f.id);
    assert.ok(['ok', 'info', 'warning', 'error'].includes(f.severity), f.id);
    assert.ok(f.message.length > 0, f.id);
  }
  for (const id of ['kernel.sk_lookup', 'kernel.sockmap_udp', 'kernel.lpm_batch', 'discovery.kernel', 'discovery.cgroup2', 'discovery.iterator_seeding',
    'host.bpffs', 'host.bpffs_mode', 'host.libbpf', 'host.libsystemd', 'host.node', 'host.capabilities', 'netns.other_sk_lookup']) {
    assert.is(get(doc, id).severity, 'ok', `${id}: ${get(doc, id).message}`);
  }
  assert.match(get(doc, 'host.libbpf').message, /^libbpf 1\.\d+/);
  assert.match(get(doc, 'host.capabilities').message, /CAP_BPF/);
  const loaded = get(doc, 'state.loaded');
  assert.is(loaded.severity, 'info');
  assert.is(loaded.hint, 'manifold load');
  // Nothing installed under --root: systemd units are reported as not installed.
  assert.is(get(doc, 'systemd.units').severity, 'info');
});

test('the text form: one line per finding, the fix below, a summary; same exit status', () => {
  const r = ctx.env.cli(['doctor', '--root', tmp]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ok {6}kernel\.release {2,}Linux /m);
  assert.match(r.stdout, /^info {4}state\.loaded {2,}the dispatcher is not loaded/m);
  assert.match(r.stdout, /^ {10,}fix: manifold load$/m);
  assert.match(r.stdout, /^\d+ ok, \d+ info, 0 warning\(s\), 0 error\(s\)$/m);
});

test('a bound prefix without a local route is a warning naming it (exit 6); a routed one is not', () => {
  ctx.env.ok(['load']);
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  ctx.env.ok(['bind', 'web', 'tcp', '203.0.113.0/24', '80']);
  ctx.env.ok(['bind', 'web6', 'tcp', '2001:db8:2::/48', '443']);
  const before = tree(ctx.env.bpffs);
  const { r, doc } = doctor();
  assert.equal(tree(ctx.env.bpffs), before, 'doctor changed nothing in the bpffs');
  assert.is(r.code, 6, r.stderr);
  assert.is(doc.worst, 'warning');
  const routes = get(doc, 'routes.unrouted_prefixes');
  assert.is(routes.severity, 'warning');
  assert.equal((routes.details as { none: string[] }).none.sort(), ['2001:db8:2::/48', '203.0.113.0/24']);
  assert.not.match(routes.message, '192.0.2.0/24');
  assert.match(routes.hint ?? '', /ip route add local (203\.0\.113\.0\/24|2001:db8:2::\/48) dev lo/);
  // No socket registered: the destinations cannot take their traffic.
  const dests = get(doc, 'state.destinations');
  assert.is(dests.severity, 'warning');
  assert.match(dests.message, /ipv4:tcp:web/);
  assert.is(get(doc, 'state.loaded').severity, 'ok');
  assert.is(get(doc, 'state.generations').severity, 'ok');

  ctx.env.ip('route', 'add', 'local', '203.0.113.0/24', 'dev', 'lo');
  ctx.env.ip('-6', 'route', 'add', 'local', '2001:db8:2::/48', 'dev', 'lo');
  const after = doctor().doc;
  assert.is(get(after, 'routes.unrouted_prefixes').severity, 'ok', get(after, 'routes.unrouted_prefixes').message);
});

test('a route covering only part of a bound prefix is named as partly covered', () => {
  ctx.env.ok(['bind', 'wide', 'udp', '198.51.0.0/16', '53']);
  const routes = get(doctor().doc, 'routes.unrouted_prefixes');
  assert.equal((routes.details as { partial: string[] }).partial, ['198.51.0.0/16']);
  assert.match(routes.message, /only partly covered: 198\.51\.0\.0\/16/);
  ctx.env.ok(['unbind', 'wide', 'udp', '198.51.0.0/16', '53']);
});

/**
 * Compile bench/bpf/empty.bpf.c (its program renamed `name`), attach it to the test's namespace
 * and run `fn` with the link's id; detached and removed afterwards, even when `fn` fails.
 */
function withForeignProgram(name: string, fn: (linkId: number) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-doc-bpf-'));
  const source = path.join(dir, 'prog.bpf.c');
  const object = path.join(dir, 'prog.bpf.o');
  fs.writeFileSync(source, fs.readFileSync(path.join(ROOT, 'bench', 'bpf', 'empty.bpf.c'), 'utf8').replace('int empty_dispatch(', `int ${name}(`));
  try {
    execFileSync('clang', [...makefileBpfCflags(), '-c', source, '-o', object], { stdio: 'pipe', timeout: 120_000 });
    const obj = loadObject(object, name);
    let link = -1;
    try {
      const nsFd = fs.openSync(ctx.env.netnsPath, 'r');
      try {
        link = linkCreate(obj.progFd, nsFd, BPF_SK_LOOKUP, 'cannot attach the test program');
      } finally {
        fs.closeSync(nsFd);
      }
      fn(linkInfo(link).id);
    } finally {
      if (link >= 0) closeFd(link);
      obj.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a foreign sk_lookup program attached after manifold: warning with the attach order; gone once detached', () => {
  withForeignProgram('empty_dispatch', (linkId) => {
    const { r, doc } = doctor();
    assert.is(r.code, 6, r.stderr);
    const other = get(doc, 'netns.other_sk_lookup');
    assert.is(other.severity, 'warning');
    assert.match(other.message, /^1 other sk_lookup program is attached to this network namespace/);
    assert.match(other.message, new RegExp(`manifold \\(link \\d+\\), then "empty_dispatch" \\(link ${linkId}, program \\d+\\)`));
    assert.match(other.message, 'the last program to assign a socket wins');
    assert.match(other.message, '1 of them runs after manifold and overrides the sockets it picks');
    assert.match(other.hint ?? '', 'bpftool link detach id');
    const links = (other.details as { links: { linkId: number; program: string; manifold: boolean }[] }).links;
    assert.equal(links.map((l) => [l.program, l.manifold]), [['manifold_dispat', true], ['empty_dispatch', false]]);
  });
  assert.is(get(doctor().doc, 'netns.other_sk_lookup').severity, 'ok', 'detached: no other program');
});

test('a foreign program attached before manifold: manifold runs last and its choice wins', () => {
  ctx.env.ok(['unload']);
  withForeignProgram('empty_dispatch', () => {
    ctx.env.ok(['load']);
    const other = get(doctor().doc, 'netns.other_sk_lookup');
    assert.is(other.severity, 'warning');
    assert.match(other.message, /\("empty_dispatch" \(link \d+, program \d+\), then manifold \(link \d+\)\)/);
    assert.match(other.message, 'manifold runs last, so its choice wins wherever it assigns a socket');
  });
});

test('load refuses a second manifold dispatcher for the namespace from another bpffs; nothing is left there', () => {
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-doc-bpffs2-'));
  execFileSync('mount', ['-t', 'bpf', 'bpf', other], { timeout: 30_000 });
  try {
    const second = ctx.env.cli(['load', '--netns', ctx.env.netnsPath, '--bpffs', other, '--json'], { global: false });
    assert.is(second.code, 1, second.stderr);
    assert.is((second.json as { error?: { code?: string } } | null)?.error?.code, 'ERR_ALREADY_LOADED');
    assert.match(second.stderr, /a manifold dispatcher is already attached to network namespace \d+ \(link \d+\), with its state under another bpffs than /);
    assert.equal(fs.readdirSync(other).filter((n) => n.includes('manifold')), [], 'no state, no lock directory (a fresh bpffs holds only maps.debug and progs.debug)');
    assert.is(get(doctor().doc, 'netns.other_sk_lookup').severity, 'ok', 'still one dispatcher');
  } finally {
    spawnSync('umount', [other], { timeout: 30_000 });
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('a second manifold dispatcher whose state is on another bpffs is named as such', () => {
  // load refuses to make one (above); an older manifold, or one attached by hand, is still named.
  withForeignProgram('manifold_dispatch', () => {
    const f = get(doctor().doc, 'netns.other_sk_lookup');
    assert.is(f.severity, 'warning');
    assert.match(f.message, `a manifold dispatcher whose state is not under ${ctx.env.bpffs}`);
  });
});

test('a write killed after staging leaves a DIRTY generation: reported, then repaired by the next write', () => {
  const killed = ctx.env.cli(['bind', 'web', 'tcp', '192.0.2.0/24', '81'], { env: { MANIFOLD_TEST_KILL_AT: 'staging-filled' } });
  assert.is(killed.failure, 'was killed by SIGKILL', killed.stderr);
  const gen = get(doctor().doc, 'state.generations');
  assert.is(gen.severity, 'warning');
  assert.match(gen.message, /was left DIRTY by an interrupted write; the live generation \d is intact/);
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '81']);
  assert.is(get(doctor().doc, 'state.generations').severity, 'ok');
});

test('an unload killed after renaming the state leaves leftovers: reported with the fix', () => {
  const killed = ctx.env.cli(['unload'], { env: { MANIFOLD_TEST_KILL_AT: 'unload-renamed' } });
  assert.is(killed.failure, 'was killed by SIGKILL', killed.stderr);
  const { doc } = doctor();
  const left = get(doc, 'state.leftovers');
  assert.is(left.severity, 'warning');
  assert.match(left.message, `left over by an interrupted load, unload or upgrade: ${ctx.env.bpffs}/`);
  assert.match(left.hint ?? '', 'manifold unload');
  ctx.env.ok(['unload']);
  assert.is(get(doctor().doc, 'state.leftovers').severity, 'ok');
});

test('--bpffs that does not exist or is not a bpffs: an error finding with the fix, exit 1', () => {
  const plain = fs.mkdtempSync(path.join(tmp, 'plain-'));
  for (const bpffs of [path.join(tmp, 'missing'), plain]) {
    const rr = ctx.env.cli(['doctor', '--json', '--root', tmp, '--netns', ctx.env.netnsPath, '--bpffs', bpffs], { global: false });
    assert.is(rr.code, 1, rr.stderr);
    const doc = rr.json as Report;
    assert.is(doc.worst, 'error');
    const f = get(doc, 'host.bpffs');
    assert.is(f.severity, 'error');
    assert.match(f.message, bpffs);
    assert.match(f.hint ?? '', 'mount -t bpf');
    // The kernel checks still run.
    assert.is(get(doc, 'kernel.sk_lookup').severity, 'ok');
  }
  assert.equal(fs.readdirSync(plain), [], 'nothing created in the directory');
  assert.not.ok(fs.existsSync(path.join(tmp, 'missing')), 'missing directory not created');
});

test('--root with the units, generator and sysusers.d file: not enabled is a warning, enabled and the group present is ok', () => {
  const root = fs.mkdtempSync(path.join(tmp, 'root-'));
  const unitDir = path.join(root, 'usr/lib/systemd/system');
  fs.mkdirSync(unitDir, { recursive: true });
  for (const u of ['manifold.service', 'manifold-register@.service', 'manifold-metrics.socket']) fs.copyFileSync(path.join(ROOT, 'units', u), path.join(unitDir, u));
  const run = (): Report => ctx.env.cli(['doctor', '--json', '--root', root]).json as Report;
  let doc = run();
  assert.is(get(doc, 'systemd.units').severity, 'warning');
  assert.match(get(doc, 'systemd.units').message, /^units missing: manifold-metrics\.service/);
  assert.is(get(doc, 'systemd.generator').severity, 'warning');
  assert.is(get(doc, 'systemd.sysusers').severity, 'warning');
  assert.is(get(doc, 'systemd.enabled').severity, 'warning');
  assert.is(get(doc, 'systemd.enabled').hint, 'systemctl enable --now manifold.service');

  fs.copyFileSync(path.join(ROOT, 'units', 'manifold-metrics.service'), path.join(unitDir, 'manifold-metrics.service'));
  fs.mkdirSync(path.join(root, 'usr/lib/systemd/system-generators'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'generators', 'manifold-generator'), path.join(root, 'usr/lib/systemd/system-generators/manifold-generator'));
  fs.mkdirSync(path.join(root, 'usr/lib/sysusers.d'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'units', 'manifold.sysusers'), path.join(root, 'usr/lib/sysusers.d/manifold.conf'));
  fs.mkdirSync(path.join(root, 'etc/systemd/system/sysinit.target.wants'), { recursive: true });
  fs.symlinkSync('/usr/lib/systemd/system/manifold.service', path.join(root, 'etc/systemd/system/sysinit.target.wants/manifold.service'));
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nmanifold:x:998:\n');
  doc = run();
  for (const id of ['systemd.units', 'systemd.generator', 'systemd.sysusers', 'systemd.enabled']) assert.is(get(doc, id).severity, 'ok', `${id}: ${get(doc, id).message}`);

  fs.symlinkSync('/dev/null', path.join(root, 'etc/systemd/system/manifold.service'));
  const masked = get(run(), 'systemd.enabled');
  assert.is(masked.severity, 'warning');
  assert.match(masked.message, 'manifold.service is masked');
});

test('run by an unprivileged user: what it cannot check is info with the fix, never a crash', () => {
  ctx.env.ok(['load']);
  try {
    const r = ctx.env.cli(['doctor', '--json', '--root', tmp], { wrap: ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--'] });
    assert.not.ok(r.failure, r.failure);
    const doc = r.json as Report;
    assert.ok(doc, r.stderr);
    const caps = get(doc, 'host.capabilities');
    assert.is(caps.severity, 'info');
    assert.match(caps.message, /^the caller lacks CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF/);
    assert.match(caps.hint ?? '', 'run manifold as root');
    const other = get(doc, 'netns.other_sk_lookup');
    assert.is(other.severity, 'info');
    assert.match(other.message, 'needs CAP_SYS_ADMIN');
    assert.is(get(doc, 'kernel.release').severity, 'ok');
    const state = get(doc, 'state.abi');
    assert.is(state.severity, 'info', 'a state this user may not read is not an error of the state');
    assert.match(state.message, /^the state was not checked: permission denied/);
    assert.is(r.code, 0, 'nothing wrong was found, only things not checked');
    for (const f of doc.findings) assert.ok(f.severity !== 'error' || f.hint, `${f.id}: an error names its fix`);
  } finally {
    ctx.env.ok(['unload']);
  }
});

test('a bpffs its group cannot search (systemd mounts it 0700): a warning with the chmod; root-only state: info', () => {
  const mode = fs.statSync(ctx.env.bpffs).mode & 0o7777;
  try {
    fs.chmodSync(ctx.env.bpffs, 0o700);
    ctx.env.ok(['load', '--group', '65534']);
    const f = get(doctor().doc, 'host.bpffs_mode');
    assert.is(f.severity, 'warning');
    assert.match(f.message, 'has mode 700: members of the state\'s group (gid 65534) cannot reach the state');
    assert.is(f.hint, `chmod o+x ${ctx.env.bpffs}`);
    ctx.env.ok(['unload']);
    ctx.env.ok(['load', '--group', '0']);
    assert.is(get(doctor().doc, 'host.bpffs_mode').severity, 'info');
    fs.chmodSync(ctx.env.bpffs, 0o711);
    assert.is(get(doctor().doc, 'host.bpffs_mode').severity, 'ok');
  } finally {
    fs.chmodSync(ctx.env.bpffs, mode);
    ctx.env.cli(['unload']);
  }
});

test('paths in findings are printed with control characters escaped', () => {
  const r = ctx.env.cli(['doctor', '--root', `${tmp}/x\ny`, '--netns', ctx.env.netnsPath, '--bpffs', `${tmp}/no\x1b[31mpe`], { global: false });
  assert.is(r.code, 1);
  assert.not.match(r.stdout, '\x1b', 'no raw escape');
  assert.match(r.stdout, `no bpffs at ${tmp}/no\\x1b[31mpe`);
  assert.match(r.stdout, `under ${tmp}/x\\x0ay (no units`);
});

test('a --netns that is not a network namespace is a usage error, not a report', () => {
  const r = ctx.env.cli(['doctor', '--json', '--netns', '/proc/self/ns/mnt', '--bpffs', ctx.env.bpffs], { global: false });
  assert.is(r.code, 2, r.stderr);
  assert.match(JSON.stringify(r.json), /--netns/);
});

test("names another user made under manifold's names are never walked or removed as root; load and unload go on", () => {
  ctx.env.ok(['load']);
  const stateDir = (ctx.env.ok(['status', '--json']).json as { stateDir: string }).stateDir;
  const ino = path.basename(stateDir).replace(/_manifold$/, '');
  const fake = path.join(ctx.env.bpffs, `${ino}_manifold-foreign`);
  const lock = path.join(ctx.env.bpffs, `${ino}_manifold_lock`);
  const made: string[] = [fake];
  const nested = (dir: string): void => {
    let d = dir;
    for (let i = 0; i < 40; i++) {
      d = path.join(d, 'n');
      fs.mkdirSync(d, { recursive: true });
    }
    // (bpffs holds directories and pinned objects only: a tree of directories.)
    for (let p = d; p.startsWith(dir); p = path.dirname(p)) fs.chownSync(p, 65534, 65534);
  };
  try {
    nested(fake);
    ctx.env.ok(['unload']);
    // The lock directory squatted by that user, not empty.
    fs.rmSync(lock, { recursive: true, force: true });
    nested(lock);
    const load = ctx.env.ok(['load']);
    assert.match(load.stderr, /replaced a lock directory this manifold did not create: .*moved aside as .*-foreign-\d+-0, not empty/);
    const aside = fs.readdirSync(ctx.env.bpffs).filter((n) => n.startsWith(`${ino}_manifold_lock-foreign-`)).map((n) => path.join(ctx.env.bpffs, n));
    made.push(...aside);
    assert.is(aside.length, 1, 'moved aside, kept');
    assert.ok(fs.existsSync(path.join(fake, 'n', 'n', 'n')), 'the other user\'s tree is left alone');
    const f = get(doctor().doc, 'state.foreign_names');
    assert.is(f.severity, 'warning');
    assert.match(f.message, `made by other users under manifold's names, which manifold does not remove: `);
    assert.match(f.message, fake);
    assert.match(f.hint ?? '', 'chmod 0700');
    ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
    ctx.env.ok(['unbind', 'web', 'tcp', '192.0.2.0/24', '80']);
  } finally {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  }
  assert.is(doctor().doc.findings.find((x) => x.id === 'state.foreign_names'), undefined);
});

test.run();
