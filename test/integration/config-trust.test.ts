/**
 * Config files and directories that someone other than root can write are
 * refused everywhere (manifold.conf(5), "Who may write the files"):
 * `verify` reports them, `apply --config` refuses the configuration and
 * changes nothing (with --skip-invalid: leaves the file out, logged, applies
 * the rest and exits 1), and the
 * generator skips them (logged). Files are made untrusted by chown to a
 * throw-away uid or by chmod, in temporary directories given through
 * MANIFOLD_CONFIG_DIRS.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/env.js';
import { setup, status, teardown, type Ctx } from '../helpers/suite.js';
import { trustProblem } from '../../src/config/trust.js';
import { listConfigFiles, loadConfig, verifyConfig } from '../../src/config/load.js';

process.umask(0o022);
/** A uid and gid nobody uses. */
const STRANGER = 64999;
const RULE = 'config files and their directories must be writable only by root';
let ctx: Ctx;

test.before(async () => {
  ctx = await setup('trust');
});
test.after(() => teardown(ctx));

function tree(fn: (root: string) => void): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-trust-'));
  try {
    fs.chmodSync(root, 0o755);
    fn(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function file(p: string, text: string): string {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text, { mode: 0o644 });
  return p;
}

test('ownership: a file, a directory on the way, a sticky directory or a link in one owned by another uid', () => {
  tree((root) => {
    const f = file(path.join(root, 'a', 'b', 'c.conf'), '[Label]\n');
    assert.is(trustProblem(f), null);
    fs.chownSync(f, STRANGER, STRANGER);
    fs.chmodSync(f, 0o444);
    assert.is(trustProblem(f), `it is writable by uid ${STRANGER}, its owner: ${RULE}`, 'read-only but its owner can chmod it');
    fs.chownSync(f, 0, 0);
    fs.chownSync(path.join(root, 'a', 'b'), STRANGER, 0);
    assert.is(trustProblem(f), `${path.join(root, 'a', 'b')} is writable by uid ${STRANGER}, its owner: ${RULE}`);
    fs.chownSync(path.join(root, 'a', 'b'), 0, 0);
    fs.chmodSync(path.join(root, 'a'), 0o1777);
    assert.is(trustProblem(f), null, 'sticky and root-owned, like /tmp');
    fs.chownSync(path.join(root, 'a'), STRANGER, STRANGER);
    assert.match(trustProblem(f) ?? '', `${path.join(root, 'a')} is writable by uid ${STRANGER}, its owner`, 'sticky but not root-owned');
    fs.chownSync(path.join(root, 'a'), 0, 0);
    const planted = path.join(root, 'a', 'planted.conf');
    fs.symlinkSync(f, planted);
    assert.is(trustProblem(planted), null);
    fs.lchownSync(planted, STRANGER, STRANGER);
    assert.is(trustProblem(planted), `${planted} is a symbolic link owned by uid ${STRANGER} in ${path.join(root, 'a')}, which others can write to: ${RULE}`);
    // The same link in a directory only root can write is fine: nobody else could have put it there.
    const safe = path.join(root, 'a', 'b', 'link.conf');
    fs.symlinkSync(f, safe);
    fs.lchownSync(safe, STRANGER, STRANGER);
    assert.is(trustProblem(safe), null);
  });
});

test('loader: untrusted files and directories are problems; their names stay claimed', () => {
  tree((root) => {
    const etc = path.join(root, 'etc');
    const run = path.join(root, 'run');
    const lib = path.join(root, 'lib');
    file(path.join(etc, 'a.conf'), '[Label]\nBind=tcp 10.0.0.0/8 80\n');
    file(path.join(etc, 'b.conf'), '[Label]\nBind=tcp 10.1.0.0/16 80\n');
    fs.chownSync(path.join(etc, 'b.conf'), STRANGER, STRANGER);
    file(path.join(run, 'c.conf'), '[Label]\nBind=tcp 10.2.0.0/16 80\n');
    fs.chmodSync(run, 0o777);
    // Lower-priority files of the same names must not take their place.
    file(path.join(lib, 'b.conf'), '[Label]\nBind=tcp 10.3.0.0/16 80\n');
    file(path.join(lib, 'c.conf'), '[Label]\nBind=tcp 10.4.0.0/16 80\n');
    file(path.join(lib, 'd.conf'), '[Label]\nBind=tcp 10.5.0.0/16 80\n');
    const r = loadConfig([etc, run, lib]);
    assert.equal(r.units.map((u) => path.relative(root, u.file)), ['etc/a.conf', 'lib/d.conf']);
    assert.equal(r.problems.map((p) => [path.relative(root, p.file), p.line]), [['run', 0], ['etc/b.conf', 0]]);
    assert.is(r.problems[0]?.message, `it is writable by every user (mode 0777): ${RULE}; the files in it are ignored`);
    assert.is(r.problems[1]?.message, `it is writable by uid ${STRANGER}, its owner: ${RULE}`);
    assert.equal(listConfigFiles([etc, run, lib]).files.map((f) => path.relative(root, f)), ['etc/a.conf', 'lib/d.conf']);
    assert.equal(verifyConfig(undefined, [etc, run, lib]), r.problems);
    assert.is(verifyConfig([path.join(run, 'c.conf')])[0]?.message, `${run} is writable by every user (mode 0777): ${RULE}`);
    // An untrusted empty file cannot mask either.
    fs.chmodSync(run, 0o755);
    fs.writeFileSync(path.join(run, 'd.conf'), '');
    fs.chownSync(path.join(run, 'd.conf'), STRANGER, STRANGER);
    const masked = loadConfig([etc, run, lib]);
    assert.ok(masked.problems.some((p) => p.file === path.join(run, 'd.conf') && p.message.startsWith(`it is writable by uid ${STRANGER}`)));
    assert.not.ok(masked.units.some((u) => u.file.endsWith('d.conf')));
  });
});

function cli(args: string[], dirs: string): ReturnType<typeof ctx.env.cli> {
  return ctx.env.cli(args, { env: { MANIFOLD_CONFIG_DIRS: dirs, MANIFOLD_JOURNAL: '0' } });
}

test('verify and apply --config refuse; --skip-invalid leaves the file out and says so', () => {
  tree((root) => {
    const etc = path.join(root, 'etc');
    file(path.join(etc, 'good.conf'), '[Label]\nBind=tcp 192.0.2.0/24 80\n');
    const evil = file(path.join(etc, 'evil.conf'), '[Label]\nBind=tcp 0.0.0.0/0 0\n');
    fs.chownSync(evil, STRANGER, STRANGER);
    const v = cli(['verify'], etc);
    assert.is(v.code, 1, v.stderr);
    assert.match(v.stdout, `${evil}: it is writable by uid ${STRANGER}, its owner: ${RULE}`);
    const vf = cli(['verify', evil, '--json'], etc);
    assert.is(vf.code, 1);
    assert.is((vf.json as { problems: { message: string }[] }).problems[0]?.message, `it is writable by uid ${STRANGER}, its owner: ${RULE}`);

    const before = status(ctx).bindings;
    const a = cli(['apply', '--config', '--json'], etc);
    assert.is(a.code, 1, a.stderr);
    assert.is((a.json as { error: { code: string } }).error.code, 'ERR_INVALID_CONFIG');
    assert.match(a.stderr, `${evil}: it is writable by uid ${STRANGER}`);
    assert.equal(status(ctx).bindings, before, 'nothing changed');

    // --skip-invalid applies the rest and still fails (exit 1), naming the file.
    const s = cli(['apply', '--config', '--skip-invalid'], etc);
    assert.is(s.code, 1, s.stderr);
    assert.match(s.stderr, `manifold: error: ${evil}: it is writable by uid ${STRANGER}, its owner: ${RULE} (file skipped)`);
    assert.equal(status(ctx).bindings.map((b) => `${b.label} ${b.protocol} ${b.prefix} ${b.port}`), ['good tcp 192.0.2.0/24 80']);

    // Group-writable directory: everything in it is left out; labels applied from it before keep their bindings.
    fs.chownSync(evil, 0, 0);
    fs.chmodSync(etc, 0o775);
    const g = cli(['apply', '--config', '--skip-invalid'], etc);
    assert.is(g.code, 1, g.stderr);
    assert.match(g.stderr, new RegExp(`${etc}: it is writable by group \\S+ \\(gid 0, mode 0775\\)`));
    assert.equal(status(ctx).bindings.map((b) => b.label), ['good'], 'nothing of the untrusted directory applied, nothing removed');
    fs.chmodSync(etc, 0o755);
    fs.rmSync(evil);
    fs.rmSync(path.join(etc, 'good.conf'));
    assert.is(cli(['apply', '--config'], etc).code, 0);
    assert.equal(status(ctx).bindings, [], 'its files removed, the trusted directory empty');
  });
});

test('the generator skips an untrusted file and logs it; the others are written', () => {
  tree((root) => {
    const etc = path.join(root, 'etc');
    const out = path.join(root, 'out');
    fs.mkdirSync(out);
    file(path.join(etc, 'web.conf'), '[Label]\nSocket=web.socket\n');
    const evil = file(path.join(etc, 'evil.conf'), '[Label]\nService=sshd.service\nListen=tcp 127.0.0.1 22\n');
    fs.chmodSync(evil, 0o666);
    const r = spawnSync(path.join(ROOT, 'generators', 'manifold-generator'), [out, out, out], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', MANIFOLD_CONFIG_DIRS: etc, MANIFOLD_GENERATOR_LOG: 'stderr', SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0' },
    });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^<27>manifold-generator\\[\\d+\\]: ${evil}: it is writable by every user \\(mode 0666\\): ${RULE} \\(file skipped\\)$`, 'm'));
    assert.ok(fs.existsSync(path.join(out, 'web.socket.d', '50-manifold.conf')));
    assert.not.ok(fs.existsSync(path.join(out, 'sshd.service.d')), 'no root command from the untrusted file');
  });
});

test.run();
