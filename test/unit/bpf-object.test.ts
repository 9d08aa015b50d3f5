/**
 * The committed BPF object: rebuilt byte for byte from source with the
 * Makefile's flags (from another directory, so paths do not leak in), and
 * its BTF layouts match what user space encodes.
 */
import { execFileSync } from 'node:child_process';
import { QUICK_MS } from '../helpers/wait.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../helpers/env.js';
import {
  BINDING_KEY_SIZE, BINDING_VALUE_SIZE, DEST_KEY_SIZE, DEST_VALUE_SIZE, GEN_META_SIZE, META_SIZE, METRICS_SIZE, MAX_DESTINATIONS,
} from '../../src/core/codec.js';

const object = path.join(ROOT, 'bpf', 'manifold.bpf.o');

test('make bpf reproduces the committed object byte for byte', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-bpfbuild-'));
  try {
    fs.mkdirSync(path.join(dir, 'bpf'));
    fs.copyFileSync(path.join(ROOT, 'bpf', 'manifold.bpf.c'), path.join(dir, 'bpf', 'manifold.bpf.c'));
    fs.copyFileSync(path.join(ROOT, 'Makefile'), path.join(dir, 'Makefile'));
    execFileSync('make', ['-s', '-C', dir, 'bpf'], { stdio: 'pipe', timeout: 120_000 });
    const rebuilt = fs.readFileSync(path.join(dir, 'bpf', 'manifold.bpf.o'));
    assert.ok(rebuilt.equals(fs.readFileSync(object)), 'rebuilt object differs from bpf/manifold.bpf.o: run make bpf and commit it');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('BTF struct sizes match the user-space encodings', () => {
  const dump = execFileSync('bpftool', ['btf', 'dump', 'file', object], { encoding: 'utf8', timeout: QUICK_MS });
  const size = (name: string): number => {
    const m = new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(dump);
    assert.ok(m, `struct ${name} in BTF`);
    return Number(m![1]);
  };
  assert.is(size('dest_key'), DEST_KEY_SIZE);
  assert.is(size('dest_value'), DEST_VALUE_SIZE);
  assert.is(size('dest_metrics'), METRICS_SIZE);
  assert.is(size('gen_meta'), GEN_META_SIZE);
  assert.is(size('manifold_meta'), META_SIZE);
  const src = fs.readFileSync(path.join(ROOT, 'bpf', 'manifold.bpf.c'), 'utf8');
  assert.match(src, new RegExp(`#define MAX_DESTINATIONS ${MAX_DESTINATIONS}\\b`));
  assert.is(BINDING_KEY_SIZE, 24);
  assert.is(BINDING_VALUE_SIZE, 8);
});

test('libbpf option struct layouts used by src/sys/bpf.ts match the C headers', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-abi-'));
  try {
    const c = path.join(dir, 'abi.c');
    fs.writeFileSync(
      c,
      `#include <stdio.h>
#include <stddef.h>
#include <bpf/bpf.h>
int main(void) {
  printf("%zu %zu %zu %zu\\n", sizeof(struct bpf_map_create_opts), offsetof(struct bpf_map_create_opts, inner_map_fd), offsetof(struct bpf_map_create_opts, map_flags), sizeof(struct bpf_map_batch_opts));
  printf("%zu %zu %zu %zu %zu\\n", sizeof(struct bpf_obj_get_opts), offsetof(struct bpf_obj_get_opts, file_flags), sizeof(struct bpf_link_update_opts), offsetof(struct bpf_link_update_opts, flags), offsetof(struct bpf_link_update_opts, old_prog_fd));
  printf("%zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct bpf_test_run_opts), offsetof(struct bpf_test_run_opts, ctx_in), offsetof(struct bpf_test_run_opts, ctx_out), offsetof(struct bpf_test_run_opts, ctx_size_in), offsetof(struct bpf_test_run_opts, retval), offsetof(struct bpf_test_run_opts, repeat), offsetof(struct bpf_test_run_opts, duration));
  printf("%zu %zu %zu %zu\\n", offsetof(struct bpf_link_info, prog_id), offsetof(struct bpf_link_info, netns.netns_ino), offsetof(struct bpf_link_info, netns.attach_type), offsetof(struct bpf_map_info, name));
  return 0;
}
`,
    );
    execFileSync('cc', ['-o', path.join(dir, 'abi'), c], { timeout: 60_000 });
    const lines = execFileSync(path.join(dir, 'abi'), { encoding: 'utf8', timeout: QUICK_MS }).trim().split('\n');
    assert.equal(lines, ['48 24 28 24', '16 8 16 8 12', '80 32 40 48 56 60 64', '8 16 20 24']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
