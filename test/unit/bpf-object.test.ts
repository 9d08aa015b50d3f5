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
  COUNTER_NAMES, DISC_ABI, DISC_CONFIG_SIZE, DISC_EVENT_SIZE, DISC_INDEX_MAX, DISC_INDEX_SLOTS, DISC_KEY_SIZE, DISC_MAGIC, DISC_META_SIZE,
  DISC_NO_SLOT, DISC_OVERFLOW_MAX, DISC_SEED_REC_SIZE, DISC_SLOT_FILTER_ONLY, DISC_SLOT_OVERFLOW, DISC_SOCK_SIZE, DISC_TARGET_SLOTS, DISC_TARGET_SOCKS_MAX,
  DISC_TARGETS_MAX,
} from '../../src/discovery/codec.js';
import { AttachType, LINK_TYPE_CGROUP, MapType } from '../../src/sys/bpf.js';
import { CLONE_NEWNET, SO_NETNS_COOKIE } from '../../src/sys/netns.js';
import {
  DEFAULT_MAX_IDS, destInfoIndex, EXACT_LENS, GEN_DIRTY, GEN_STALE, MANIFOLD_ABI, MAX_BINDINGS, MAX_LABEL_BYTES, PORT_FIRST, PORT_OTHER, PORT_WORDS,
  portShift, portWordIndex, destConfigBit, POLICY_EXPLICIT_FIRST, SLOTS, Sizes, slotOf, trieSlot, DestKind,
} from '../../src/core/layout.js';

const object = path.join(ROOT, 'bpf', 'manifold.bpf.o');
const discoveryObject = path.join(ROOT, 'bpf', 'discovery.bpf.o');

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

test('make bpf reproduces the committed objects byte for byte', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-bpfbuild-'));
  try {
    fs.mkdirSync(path.join(dir, 'bpf'));
    for (const f of fs.readdirSync(path.join(ROOT, 'bpf'))) {
      if (f.endsWith('.c') || f.endsWith('.h')) fs.copyFileSync(path.join(ROOT, 'bpf', f), path.join(dir, 'bpf', f));
    }
    fs.copyFileSync(path.join(ROOT, 'Makefile'), path.join(dir, 'Makefile'));
    execFileSync('make', ['-s', '-C', dir, 'bpf'], { stdio: 'pipe', timeout: 120_000 });
    for (const name of ['manifold.bpf.o', 'discovery.bpf.o']) {
      const rebuilt = fs.readFileSync(path.join(dir, 'bpf', name));
      assert.ok(rebuilt.equals(fs.readFileSync(path.join(ROOT, 'bpf', name))), `rebuilt object differs from bpf/${name}: run make bpf and commit it`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('discovery: BTF and source layouts match src/discovery/codec.ts', () => {
  const dump = execFileSync('bpftool', ['btf', 'dump', 'file', discoveryObject], { encoding: 'utf8' });
  const size = (name: string): number => {
    const m = new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(dump);
    assert.ok(m, `struct ${name} in BTF`);
    return Number(m![1]);
  };
  assert.is(size('disc_key'), DISC_KEY_SIZE);
  assert.is(size('disc_sock'), DISC_SOCK_SIZE);
  assert.is(size('disc_meta'), DISC_META_SIZE);
  assert.is(size('disc_config'), DISC_CONFIG_SIZE);
  const header = fs.readFileSync(path.join(ROOT, 'bpf', 'discovery.h'), 'utf8');
  const source = fs.readFileSync(path.join(ROOT, 'bpf', 'discovery.bpf.c'), 'utf8');
  // Structs that only live on the stack are not in BTF: their sizes are _Static_asserts.
  assert.match(source, new RegExp(`sizeof\\(struct disc_event\\) == ${DISC_EVENT_SIZE}\\b`));
  assert.match(source, new RegExp(`sizeof\\(struct disc_seed_rec\\) == ${DISC_SEED_REC_SIZE}\\b`));
  const defines: [string, number][] = [
    ['DISC_ABI', DISC_ABI], ['DISC_INDEX_SLOTS', DISC_INDEX_SLOTS], ['DISC_TARGET_SLOTS', DISC_TARGET_SLOTS], ['DISC_INDEX_MAX', DISC_INDEX_MAX],
    ['DISC_TARGETS_MAX', DISC_TARGETS_MAX], ['DISC_TARGET_SOCKS_MAX', DISC_TARGET_SOCKS_MAX], ['DISC_OVERFLOW_MAX', DISC_OVERFLOW_MAX],
    ['DISC_NO_SLOT', DISC_NO_SLOT], ['DISC_SLOT_OVERFLOW', DISC_SLOT_OVERFLOW], ['DISC_SLOT_FILTER_ONLY', DISC_SLOT_FILTER_ONLY],
  ];
  for (const [name, value] of defines) {
    const m = new RegExp(`#define ${name} (0x[0-9a-f]+|\\d+)\\b`).exec(header);
    assert.ok(m, `${name} in discovery.h`);
    assert.is(Number(m![1]), value, name);
  }
  assert.match(header, new RegExp(`#define DISC_MAGIC 0x${DISC_MAGIC.toString(16)}ULL`));
  // The counter enum, in order.
  const body = /enum \{\s*(DISC_C_[\s\S]*?)DISC_C_MAX,/.exec(source);
  assert.ok(body, 'counter enum');
  const names = [...body![1]!.matchAll(/DISC_C_([A-Z_]+),/g)].map((m) => m[1]!.toLowerCase());
  assert.equal(names, [...COUNTER_NAMES]);
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
  assert.is(size('dest_target'), Sizes.destTarget);
  assert.is(size('dest_metrics2'), Sizes.metrics2);
  assert.is(size('ns_metrics'), Sizes.nsMetrics);
  assert.is(size('gen_meta'), Sizes.genMeta);
  assert.is(size('gen_state'), Sizes.genState);
  assert.is(size('manifold_meta'), Sizes.meta);
  assert.is(size('manifold_config'), Sizes.config);
});

test('constants and index formulas of bpf/manifold.h match src/core/layout.ts', () => {
  const samples = [[0, 0, 0], [1, 3, 65535], [0, 2, 80], [1, 1, 4097], [1, 0, 31], [0, 3, 32]];
  const calls = samples.map(([g, s, p]) => `printf("%u %u %u %u %u %u\\n", MANIFOLD_PORT_WORD(${g}, ${s}, ${p}), MANIFOLD_PORT_SHIFT(${p}), MANIFOLD_TRIE_SLOT(${g}, ${s! & 1}), MANIFOLD_DEST_INFO(${p}, ${g}), MANIFOLD_SLOT(${s! & 2}, ${s! & 1}), MANIFOLD_DEST_CONFIG(${g}));`).join('\n');
  const lines = compileAndRun(
    `#include <stdio.h>
#include <stddef.h>
#include "manifold.h"
int main(void) {
  printf("%d %d %d %d %d %d %d\\n", MANIFOLD_ABI, MANIFOLD_MAX_LABEL_LEN, MANIFOLD_MAX_BINDINGS, MANIFOLD_DEFAULT_MAX_IDS, MANIFOLD_PORT_WORDS, MANIFOLD_SLOTS, MANIFOLD_EXACT_LENS);
  printf("%d %d %u %u %d %d %d %u\\n", MANIFOLD_PORT_FIRST, MANIFOLD_PORT_OTHER, MANIFOLD_GEN_DIRTY, MANIFOLD_GEN_STALE, MANIFOLD_DEST_NONE, MANIFOLD_DEST_SOCKET, MANIFOLD_DEST_TARGET, MANIFOLD_POLICY_EXPLICIT_FIRST);
  printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct binding_key), sizeof(struct binding_value), sizeof(port_word_t), sizeof(struct gen_meta), sizeof(struct gen_state), sizeof(struct dest_info), sizeof(struct dest_key), sizeof(struct dest_value), sizeof(struct dest_metrics), sizeof(struct manifold_meta), sizeof(struct manifold_config), sizeof(struct dest_target), sizeof(struct dest_metrics2), sizeof(struct ns_metrics));
  printf("%zu %zu %zu\\n", offsetof(struct gen_meta, flags), offsetof(struct dest_target, port), offsetof(struct dest_target, family));
  ${calls}
  return 0;
}
`,
    [`-I${path.join(ROOT, 'bpf')}`],
  );
  assert.is(lines[0], [MANIFOLD_ABI, MAX_LABEL_BYTES, MAX_BINDINGS, DEFAULT_MAX_IDS, PORT_WORDS, SLOTS, EXACT_LENS].join(' '));
  assert.is(lines[1], [PORT_FIRST, PORT_OTHER, GEN_DIRTY, GEN_STALE, DestKind.none, DestKind.socket, DestKind.target, POLICY_EXPLICIT_FIRST].join(' '));
  assert.is(lines[2], [Sizes.bindingKey, Sizes.bindingValue, Sizes.portWord, Sizes.genMeta, Sizes.genState, Sizes.destInfo, Sizes.destKey, Sizes.destValue, Sizes.metrics, Sizes.meta, Sizes.config, Sizes.destTarget, Sizes.metrics2, Sizes.nsMetrics].join(' '), 'struct sizes');
  // Offsets the codec (src/state/kernel-codec.ts) writes at: gen_meta.flags, dest_target.port and .family.
  assert.is(lines[3], '5 16 18', 'field offsets');
  samples.forEach(([g, s, p], i) => {
    const slot = slotOf(s! & 2 ? 'ipv6' : 'ipv4', s! & 1 ? 'udp' : 'tcp');
    assert.is(lines[i + 4], [portWordIndex(g!, s!, p!), portShift(p!), trieSlot(g!, (s! & 1) === 1), destInfoIndex(p!, g!), slot, destConfigBit(g!)].join(' '), `sample ${i}`);
  });
});

test('libbpf option struct layouts and constants used by src/sys match the C headers', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-abi-'));
  try {
    const c = path.join(dir, 'abi.c');
    fs.writeFileSync(
      c,
      `#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <sched.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
int main(void) {
  printf("%zu %zu %zu %zu\\n", sizeof(struct bpf_map_create_opts), offsetof(struct bpf_map_create_opts, inner_map_fd), offsetof(struct bpf_map_create_opts, map_flags), sizeof(struct bpf_map_batch_opts));
  printf("%zu %zu %zu %zu %zu\\n", sizeof(struct bpf_obj_get_opts), offsetof(struct bpf_obj_get_opts, file_flags), sizeof(struct bpf_link_update_opts), offsetof(struct bpf_link_update_opts, flags), offsetof(struct bpf_link_update_opts, old_prog_fd));
  printf("%zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct bpf_test_run_opts), offsetof(struct bpf_test_run_opts, ctx_in), offsetof(struct bpf_test_run_opts, ctx_out), offsetof(struct bpf_test_run_opts, ctx_size_in), offsetof(struct bpf_test_run_opts, retval), offsetof(struct bpf_test_run_opts, repeat), offsetof(struct bpf_test_run_opts, duration));
  printf("%zu %zu %zu %zu\\n", offsetof(struct bpf_link_info, prog_id), offsetof(struct bpf_link_info, netns.netns_ino), offsetof(struct bpf_link_info, netns.attach_type), offsetof(struct bpf_map_info, name));
  printf("%zu %zu %zu %zu %zu\\n", sizeof(struct bpf_link_create_opts), offsetof(struct bpf_link_create_opts, iter_info), offsetof(struct bpf_link_create_opts, iter_info_len), sizeof(union bpf_iter_link_info), offsetof(union bpf_iter_link_info, task.pid));
  printf("%zu %zu\\n", offsetof(struct bpf_link_info, cgroup.cgroup_id), offsetof(struct bpf_link_info, cgroup.attach_type));
  printf("%d %d\\n", SO_NETNS_COOKIE, CLONE_NEWNET);
  printf("%d %d %d %d %d %d %d %d %d\\n", BPF_CGROUP_SOCK_OPS, BPF_CGROUP_INET4_POST_BIND, BPF_CGROUP_INET6_POST_BIND, BPF_TRACE_ITER, BPF_CGROUP_INET_SOCK_RELEASE, BPF_SK_LOOKUP, BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_RINGBUF, BPF_LINK_TYPE_CGROUP);
  return 0;
}
`,
    );
    execFileSync('cc', ['-o', path.join(dir, 'abi'), c], { timeout: 60_000 });
    const lines = execFileSync(path.join(dir, 'abi'), { encoding: 'utf8', timeout: QUICK_MS }).trim().split('\n');
    assert.equal(lines, [
      '48 24 28 24', '16 8 16 8 12', '80 32 40 48 56 60 64', '8 16 20 24', '64 16 24 16 4', '16 24', `${SO_NETNS_COOKIE} ${CLONE_NEWNET}`,
      [AttachType.CGROUP_SOCK_OPS, AttachType.CGROUP_INET4_POST_BIND, AttachType.CGROUP_INET6_POST_BIND, AttachType.TRACE_ITER,
        AttachType.CGROUP_INET_SOCK_RELEASE, AttachType.SK_LOOKUP, MapType.SOCKHASH, MapType.RINGBUF, LINK_TYPE_CGROUP].join(' '),
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
