/**
 * The committed BPF object and the map ABI: the object is rebuilt byte for
 * byte from source with the Makefile's flags (from another directory, so
 * paths do not leak in); its BTF struct sizes, and the constants and index
 * formulas of bpf/manifold.h (compiled into a probe), match
 * src/core/layout.ts; libbpf's option structs match src/sys/bpf.ts.
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
  DEFAULT_MAX_IDS, destInfoIndex, EXACT_LENS, GEN_DIRTY, GEN_STALE, MANIFOLD_ABI, MAX_BINDINGS, MAX_LABEL_BYTES, PORT_FIRST, PORT_OTHER, PORT_WORDS,
  portShift, portWordIndex, SLOTS, Sizes, slotOf, trieSlot, DestKind,
} from '../../src/core/layout.js';

const object = path.join(ROOT, 'bpf', 'manifold.bpf.o');

function compileAndRun(source: string, extra: string[] = []): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-probe-'));
  try {
    const c = path.join(dir, 'probe.c');
    fs.writeFileSync(c, source);
    execFileSync('cc', ['-o', path.join(dir, 'probe'), ...extra, c], { timeout: 60_000 });
    return execFileSync(path.join(dir, 'probe'), { encoding: 'utf8', timeout: QUICK_MS }).trim().split('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('make bpf reproduces the committed object byte for byte', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-bpfbuild-'));
  try {
    fs.mkdirSync(path.join(dir, 'bpf'));
    for (const f of ['manifold.bpf.c', 'manifold.h']) fs.copyFileSync(path.join(ROOT, 'bpf', f), path.join(dir, 'bpf', f));
    fs.copyFileSync(path.join(ROOT, 'Makefile'), path.join(dir, 'Makefile'));
    execFileSync('make', ['-s', '-C', dir, 'bpf'], { stdio: 'pipe', timeout: 120_000 });
    const rebuilt = fs.readFileSync(path.join(dir, 'bpf', 'manifold.bpf.o'));
    assert.ok(rebuilt.equals(fs.readFileSync(object)), 'rebuilt object differs from bpf/manifold.bpf.o: run make bpf and commit it');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('BTF struct sizes of the object match src/core/layout.ts', () => {
  const dump = execFileSync('bpftool', ['btf', 'dump', 'file', object], { encoding: 'utf8', timeout: QUICK_MS });
  const size = (name: string): number => {
    const m = new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(dump);
    assert.ok(m, `struct ${name} in BTF`);
    return Number(m![1]);
  };
  assert.is(size('dest_key'), Sizes.destKey);
  assert.is(size('dest_value'), Sizes.destValue);
  assert.is(size('dest_metrics'), Sizes.metrics);
  assert.is(size('dest_info'), Sizes.destInfo);
  assert.is(size('gen_meta'), Sizes.genMeta);
  assert.is(size('gen_state'), Sizes.genState);
  assert.is(size('manifold_meta'), Sizes.meta);
  assert.is(size('manifold_config'), Sizes.config);
});

test('constants and index formulas of bpf/manifold.h match src/core/layout.ts', () => {
  const samples = [[0, 0, 0], [1, 3, 65535], [0, 2, 80], [1, 1, 4097], [1, 0, 31], [0, 3, 32]];
  const calls = samples.map(([g, s, p]) => `printf("%u %u %u %u %u\\n", MANIFOLD_PORT_WORD(${g}, ${s}, ${p}), MANIFOLD_PORT_SHIFT(${p}), MANIFOLD_TRIE_SLOT(${g}, ${s! & 1}), MANIFOLD_DEST_INFO(${p}, ${g}), MANIFOLD_SLOT(${s! & 2}, ${s! & 1}));`).join('\n');
  const lines = compileAndRun(
    `#include <stdio.h>
#include "manifold.h"
int main(void) {
  printf("%d %d %d %d %d %d %d\\n", MANIFOLD_ABI, MANIFOLD_MAX_LABEL_LEN, MANIFOLD_MAX_BINDINGS, MANIFOLD_DEFAULT_MAX_IDS, MANIFOLD_PORT_WORDS, MANIFOLD_SLOTS, MANIFOLD_EXACT_LENS);
  printf("%d %d %u %u %d %d\\n", MANIFOLD_PORT_FIRST, MANIFOLD_PORT_OTHER, MANIFOLD_GEN_DIRTY, MANIFOLD_GEN_STALE, MANIFOLD_DEST_NONE, MANIFOLD_DEST_SOCKET);
  printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct binding_key), sizeof(struct binding_value), sizeof(port_word_t), sizeof(struct gen_meta), sizeof(struct gen_state), sizeof(struct dest_info), sizeof(struct dest_key), sizeof(struct dest_value), sizeof(struct dest_metrics), sizeof(struct manifold_meta), sizeof(struct manifold_config));
  ${calls}
  return 0;
}
`,
    [`-I${path.join(ROOT, 'bpf')}`],
  );
  assert.is(lines[0], [MANIFOLD_ABI, MAX_LABEL_BYTES, MAX_BINDINGS, DEFAULT_MAX_IDS, PORT_WORDS, SLOTS, EXACT_LENS].join(' '));
  assert.is(lines[1], [PORT_FIRST, PORT_OTHER, GEN_DIRTY, GEN_STALE, DestKind.none, DestKind.socket].join(' '));
  assert.is(lines[2], [Sizes.bindingKey, Sizes.bindingValue, Sizes.portWord, Sizes.genMeta, Sizes.genState, Sizes.destInfo, Sizes.destKey, Sizes.destValue, Sizes.metrics, Sizes.meta, Sizes.config].join(' '), 'struct sizes');
  samples.forEach(([g, s, p], i) => {
    const slot = slotOf(s! & 2 ? 'ipv6' : 'ipv4', s! & 1 ? 'udp' : 'tcp');
    assert.is(lines[i + 3], [portWordIndex(g!, s!, p!), portShift(p!), trieSlot(g!, (s! & 1) === 1), destInfoIndex(p!, g!), slot].join(' '), `sample ${i}`);
  });
});

test('libbpf option struct layouts used by src/sys/bpf.ts match the C headers', () => {
  const lines = compileAndRun(`#include <stdio.h>
#include <stddef.h>
#include <bpf/bpf.h>
int main(void) {
  printf("%zu %zu %zu %zu\\n", sizeof(struct bpf_map_create_opts), offsetof(struct bpf_map_create_opts, inner_map_fd), offsetof(struct bpf_map_create_opts, map_flags), sizeof(struct bpf_map_batch_opts));
  printf("%zu %zu %zu %zu %zu\\n", sizeof(struct bpf_obj_get_opts), offsetof(struct bpf_obj_get_opts, file_flags), sizeof(struct bpf_link_update_opts), offsetof(struct bpf_link_update_opts, flags), offsetof(struct bpf_link_update_opts, old_prog_fd));
  printf("%zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct bpf_test_run_opts), offsetof(struct bpf_test_run_opts, ctx_in), offsetof(struct bpf_test_run_opts, ctx_out), offsetof(struct bpf_test_run_opts, ctx_size_in), offsetof(struct bpf_test_run_opts, retval), offsetof(struct bpf_test_run_opts, repeat), offsetof(struct bpf_test_run_opts, duration));
  printf("%zu %zu %zu %zu\\n", offsetof(struct bpf_link_info, prog_id), offsetof(struct bpf_link_info, netns.netns_ino), offsetof(struct bpf_link_info, netns.attach_type), offsetof(struct bpf_map_info, name));
  return 0;
}
`);
  assert.equal(lines, ['48 24 28 24', '16 8 16 8 12', '80 32 40 48 56 60 64', '8 16 20 24']);
});

test.run();
