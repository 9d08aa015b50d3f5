/**
 * Who may write config files (src/config/trust.ts): a file, or a directory
 * on the way to it (through symbolic links too), that an untrusted user can
 * write is refused with a message naming it and why; root-owned sticky
 * directories such as /tmp are fine on the way, but not as a config
 * directory.
 *
 * Runs as any user (modes only); ownership by another user, the loader,
 * verify, apply --config and the generator are tested as root in
 * test/integration/config-trust.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { entryTrustProblem, trustProblem, trustedUids } from '../../src/config/trust.js';

process.umask(0o022);
const ME = process.geteuid?.() ?? 0;
/** Trusted owners: root and the user running the test. */
const NORMAL = [...new Set([0, ME])];

function tree(fn: (root: string) => void): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'manifold-trust-test-'));
  try {
    fs.chmodSync(root, 0o755);
    fn(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function file(p: string, text = '[Label]\nBind=tcp 10.0.0.0/8 80\n'): string {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text, { mode: 0o644 });
  return p;
}

const RULE = 'config files and their directories must be writable only by root';

test('trustedUids: root, plus the effective user when that is not root', () => {
  assert.equal(trustedUids(), NORMAL);
});

test('a root-only path is trusted, through /tmp (sticky, root-owned)', () => {
  tree((root) => {
    const f = file(path.join(root, 'etc', 'a.conf'));
    assert.is(trustProblem(f, { trusted: NORMAL }), null);
    assert.is(trustProblem(path.join(root, 'etc'), { directory: true, trusted: NORMAL }), null);
    assert.is(trustProblem(path.join(root, 'etc', 'missing.conf'), { trusted: NORMAL }), null, 'missing files are reported elsewhere');
  });
});

test('a file writable by group or others is named with the reason', () => {
  tree((root) => {
    const f = file(path.join(root, 'etc', 'a.conf'));
    fs.chmodSync(f, 0o664);
    assert.match(trustProblem(f, { trusted: NORMAL }) ?? '', new RegExp(`^it is writable by group \\S+ \\(gid \\d+, mode 0664\\): ${RULE}`));
    fs.chmodSync(f, 0o646);
    assert.match(trustProblem(f, { trusted: NORMAL }) ?? '', `it is writable by every user (mode 0646): ${RULE}`);
  });
});

test('a directory on the way that others can write is named', () => {
  tree((root) => {
    const f = file(path.join(root, 'a', 'b', 'c.conf'));
    fs.chmodSync(path.join(root, 'a'), 0o775);
    assert.match(trustProblem(f, { trusted: NORMAL }) ?? '', `${path.join(root, 'a')} is writable by group`);
    fs.chmodSync(path.join(root, 'a'), 0o757);
    assert.match(trustProblem(f, { trusted: NORMAL }) ?? '', `${path.join(root, 'a')} is writable by every user (mode 0757)`);
  });
});

test('sticky directories: fine on the way when trusted-owned, never as a config directory', () => {
  tree((root) => {
    const shared = path.join(root, 'shared');
    const f = file(path.join(shared, 'etc', 'a.conf'));
    fs.chmodSync(shared, 0o1777);
    assert.is(trustProblem(f, { trusted: NORMAL }), null, 'like /tmp');
    fs.chmodSync(shared, 0o1775);
    assert.is(trustProblem(f, { trusted: NORMAL }), null, 'group-writable and sticky');
    assert.match(trustProblem(shared, { directory: true, trusted: NORMAL }) ?? '', 'it is writable by group', 'as the config directory itself');
    fs.chmodSync(shared, 0o0777);
    assert.match(trustProblem(f, { trusted: NORMAL }) ?? '', `${shared} is writable by every user (mode 0777)`, 'not sticky');
  });
});

test('symbolic links: the target path is checked; a link planted in a sticky directory is refused', () => {
  tree((root) => {
    const target = file(path.join(root, 'elsewhere', 'real.conf'));
    const link = path.join(root, 'etc', 'a.conf');
    fs.mkdirSync(path.dirname(link));
    fs.symlinkSync('../elsewhere/real.conf', link);
    assert.is(trustProblem(link, { trusted: NORMAL }), null);
    fs.chmodSync(path.join(root, 'elsewhere'), 0o777);
    assert.match(trustProblem(link, { trusted: NORMAL }) ?? '', `${path.join(root, 'elsewhere')} is writable by every user`);
    fs.chmodSync(path.join(root, 'elsewhere'), 0o755);
    fs.chmodSync(target, 0o666);
    assert.match(trustProblem(link, { trusted: NORMAL }) ?? '', `${target} is writable by every user`, 'the target is named');
    fs.chmodSync(target, 0o644);
    // A directory reached through a link: /root/dirlink -> /root/elsewhere, then a group-writable dir below.
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(root, 'dirlink'));
    fs.mkdirSync(path.join(root, 'elsewhere', 'sub'), { mode: 0o775 });
    fs.chmodSync(path.join(root, 'elsewhere', 'sub'), 0o775);
    file(path.join(root, 'elsewhere', 'sub', 'x.conf'));
    assert.match(trustProblem(path.join(root, 'dirlink', 'sub', 'x.conf'), { trusted: NORMAL }) ?? '', `${path.join(root, 'elsewhere', 'sub')} is writable by group`);
    // A link in a sticky, world-writable directory must belong to a trusted user.
    const sticky = path.join(root, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const planted = path.join(sticky, 'p.conf');
    fs.symlinkSync(target, planted);
    assert.is(trustProblem(planted, { trusted: NORMAL }), null, 'owned by a trusted user');
  });
});

test('entryTrustProblem (a file in a directory found trusted) gives the full walk\'s answer; links are left to the walk', () => {
  tree((root) => {
    const dir = path.join(root, 'etc');
    fs.mkdirSync(dir);
    const cases: [string, () => void][] = [
      ['plain.conf', () => file(path.join(dir, 'plain.conf'))],
      ['group.conf', () => fs.chmodSync(file(path.join(dir, 'group.conf')), 0o664)],
      ['others.conf', () => fs.chmodSync(file(path.join(dir, 'others.conf')), 0o606)],
      ['sticky-dir.conf', () => fs.mkdirSync(path.join(dir, 'sticky-dir.conf'), { mode: 0o1777 })],
      ['dir.conf', () => fs.mkdirSync(path.join(dir, 'dir.conf'), { mode: 0o775 })],
      ['empty.conf', () => file(path.join(dir, 'empty.conf'), '')],
      ['null.conf', () => fs.symlinkSync('/dev/null', path.join(dir, 'null.conf'))],
      ['link.conf', () => fs.symlinkSync('plain.conf', path.join(dir, 'link.conf'))],
    ];
    for (const [, make] of cases) make();
    assert.is(trustProblem(dir, { directory: true, trusted: NORMAL }), null);
    for (const [name] of cases) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const quick = entryTrustProblem(st, NORMAL);
      if (st.isSymbolicLink()) assert.is(quick, undefined, `${name}: a link is walked`);
      else assert.is(quick, trustProblem(p, { trusted: NORMAL }), name);
    }
    assert.match(entryTrustProblem(fs.lstatSync(path.join(dir, 'group.conf')), NORMAL) ?? '', /mode 0664/);
  });
});

test('symbolic link loops and links to /dev/null', () => {
  tree((root) => {
    fs.symlinkSync(path.join(root, 'b'), path.join(root, 'a'));
    fs.symlinkSync(path.join(root, 'a'), path.join(root, 'b'));
    assert.match(trustProblem(path.join(root, 'a'), { trusted: NORMAL }) ?? '', 'too many levels of symbolic links');
    fs.symlinkSync('/dev/null', path.join(root, 'masked.conf'));
    assert.is(trustProblem(path.join(root, 'masked.conf'), { trusted: NORMAL }), null, '/dev/null itself is 0666 but only masks');
  });
});

test.run();
