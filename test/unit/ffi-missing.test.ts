/**
 * An installation without koffi (the program directory has no
 * node_modules/ with it) says so, instead of blaming the arguments: the
 * namespace check is the first thing that needs it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setProgramDir } from '../../src/locate.js';
import { resolveTarget } from '../../src/state/paths.js';
import { toManifoldError } from '../../src/errors.js';

test('no koffi beside the program: the error names koffi and the installation, not --netns', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-nokoffi-'));
  try {
    setProgramDir(dir);
    let caught: unknown;
    try {
      resolveTarget({ netns: '/proc/self/ns/net', bpffs: dir });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught, 'resolveTarget needs koffi and must fail without it');
    const e = toManifoldError(caught);
    assert.is(e.code, 'ERR_SYSTEM');
    assert.match(e.message, /^cannot load koffi, the library manifold calls libbpf and libc through \(Cannot find module 'koffi'/);
    assert.match(e.message, /the installation is incomplete; reinstall manifold$/);
    assert.not.match(e.message, /network namespace|--netns/);
    assert.not.match(e.message, /\n/, 'one line: no require stack');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
