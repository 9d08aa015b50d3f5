/**
 * Test helpers for listener discovery: a cgroup of the test (never the
 * root cgroup), the test sk_lookup program (test/fixtures/bpf/
 * discovery-dispatch.bpf.c, compiled here with the Makefile's flags) that
 * uses bpf/discovery.h, target addresses, and agents whose sockets are
 * created inside the cgroup.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ownedName, ROOT, type TestEnv } from './env.js';
import { QUICK_MS, withTimeout } from './wait.js';
import { Agent } from './agent-client.js';
import { cgroup2Mount } from '../../src/discovery/cgroup.js';
import { DISPATCHER_SHARED_MAPS, discoveryDir } from '../../src/discovery/paths.js';
import { DiscoveryState } from '../../src/discovery/state.js';
import { addTarget, removeTarget } from '../../src/discovery/targets.js';
import type { SeedSummary } from '../../src/discovery/seed.js';
import { linkCreate, mapLookup, mapUpdate, mapDelete, objGet, BPF_SK_LOOKUP } from '../../src/sys/bpf.js';
import { closeFd } from '../../src/sys/libc.js';
import { loadObject, type LoadedObject } from '../../src/sys/object.js';
import { netnsCookie } from '../../src/sys/netns.js';
import { parseAddress } from '../../src/core/net.js';

/** A cgroup v2 directory created for one test file. */
export class TestCgroup {
  readonly path: string;

  private constructor(p: string) {
    this.path = p;
  }

  /** Create mf-<prefix>-<pid><random> under the cgroup v2 mount. */
  static create(prefix: string): TestCgroup {
    const mount = cgroup2Mount();
    if (!mount) throw new Error('no cgroup v2 mount');
    const p = path.join(mount, ownedName(prefix, (n) => fs.existsSync(path.join(mount, n))));
    fs.mkdirSync(p);
    return new TestCgroup(p);
  }

  /** Move a process (before it creates its sockets: the cgroup a socket is created in counts). */
  add(pid: number): void {
    fs.writeFileSync(path.join(this.path, 'cgroup.procs'), String(pid));
  }

  /** Processes in the cgroup. */
  pids(): number[] {
    return fs.readFileSync(path.join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /** Remove the cgroup; `kill` is every pid this test put into it. */
  destroy(kill: number[] = []): void {
    for (const pid of kill) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (let i = 0; i < 100; i++) {
      try {
        fs.rmdirSync(this.path);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }
}

/** Start an agent in the namespace and move it into the cgroup before it opens any socket. */
export async function agentIn(env: TestEnv, cg: TestCgroup | null): Promise<Agent> {
  const a = await Agent.start(env);
  if (cg) cg.add(a.pid);
  return a;
}

/** BPF_CFLAGS of the Makefile. */
function bpfCflags(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
  const m = /^BPF_CFLAGS\s*:?=\s*(.*)$/m.exec(text);
  if (!m?.[1]) throw new Error('cannot find BPF_CFLAGS in the Makefile');
  return m[1].replace(/\$\(CURDIR\)/g, ROOT).trim().split(/\s+/);
}

/** Compile test/fixtures/bpf/<name>.bpf.c into a temporary file. */
export function compileFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-fixture-'));
  const out = path.join(dir, `${name}.bpf.o`);
  execFileSync('clang', [...bpfCflags(), '-c', path.join(ROOT, 'test', 'fixtures', 'bpf', `${name}.bpf.c`), '-o', out], { stdio: 'pipe', timeout: 120_000 });
  execFileSync('llvm-strip', ['-g', out], { timeout: QUICK_MS });
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return out;
}

const STATS = ['unmanaged', 'inactive', 'exact', 'redirect', 'own', 'drop', 'assignErr'] as const;
/** Counters of the test dispatcher. */
export type DispatchStats = Record<(typeof STATS)[number], number>;

function addrWords(text: string): { family: number; words: Buffer } {
  const p = parseAddress(text);
  const words = Buffer.alloc(16);
  words.set(p.addr, 0);
  return { family: p.domain === 'ipv4' ? 2 : 10, words };
}

/** The test sk_lookup program attached to a namespace, sharing the pinned discovery maps. */
export class TestDispatcher {
  private readonly obj: LoadedObject;
  private readonly link: number;

  private constructor(obj: LoadedObject, link: number) {
    this.obj = obj;
    this.link = link;
  }

  /** Load the fixture with the discovery maps of `bpffs` and attach it to the namespace. */
  static attach(env: TestEnv, bpffs: string, object: string): TestDispatcher {
    const reuse = new Map<string, number>();
    const dir = discoveryDir(bpffs);
    for (const name of DISPATCHER_SHARED_MAPS) reuse.set(name, objGet(path.join(dir, name)));
    let obj: LoadedObject;
    try {
      obj = loadObject(object, 'test_dispatch', { reuse });
    } finally {
      for (const fd of reuse.values()) closeFd(fd);
    }
    const cfg = Buffer.alloc(8);
    cfg.writeBigUInt64LE(netnsCookie(env.netnsPath), 0);
    mapUpdate(obj.mapFd('test_cfg'), Buffer.alloc(4), cfg);
    const nsFd = fs.openSync(env.netnsPath, 'r');
    try {
      return new TestDispatcher(obj, linkCreate(obj.progFd, nsFd, BPF_SK_LOOKUP));
    } finally {
      fs.closeSync(nsFd);
    }
  }

  private key(proto: 'tcp' | 'udp', family: number, port: number): Buffer {
    const k = Buffer.alloc(4);
    k.writeUInt8(proto === 'tcp' ? 6 : 17, 0);
    k.writeUInt8(family, 1);
    k.writeUInt16LE(port, 2);
    return k;
  }

  /** Map `port` of a family (the target's) to a target address, at the same port or `fixedPort`. */
  map(proto: 'tcp' | 'udp', port: number, target: string, fixedPort = 0): void {
    const { family, words } = addrWords(target);
    const v = Buffer.alloc(20);
    words.copy(v, 0);
    v.writeUInt16LE(fixedPort, 16);
    mapUpdate(this.obj.mapFd('test_map'), this.key(proto, family, port), v);
  }

  /** Remove a mapping. */
  unmap(proto: 'tcp' | 'udp', port: number, family: 'ipv4' | 'ipv6'): void {
    mapDelete(this.obj.mapFd('test_map'), this.key(proto, family === 'ipv4' ? 2 : 10, port));
  }

  /** The program's counters. */
  stats(): DispatchStats {
    const out = {} as DispatchStats;
    STATS.forEach((name, i) => {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(i, 0);
      out[name] = Number(mapLookup(this.obj.mapFd('test_stats'), k, 8)?.readBigUInt64LE(0) ?? 0n);
    });
    return out;
  }

  /** Detach and unload. */
  close(): void {
    closeFd(this.link);
    this.obj.close();
  }
}

/** Make `address` a target of the namespace (through the library, as phase 2's `target` command will). */
export function target(env: TestEnv, bpffs: string, proto: 'tcp' | 'udp', address: string): SeedSummary {
  const state = DiscoveryState.open(bpffs, true, 10_000);
  try {
    const r = addTarget(state, { netns: netnsCookie(env.netnsPath), proto: proto === 'tcp' ? 6 : 17, addr: parseAddress(address).addr }, env.netnsPath);
    return r.registered;
  } finally {
    state.close();
  }
}

/** Drop a target reference. */
export function untarget(env: TestEnv, bpffs: string, proto: 'tcp' | 'udp', address: string): { refs: number; released: number } {
  const state = DiscoveryState.open(bpffs, true, 10_000);
  try {
    return removeTarget(state, { netns: netnsCookie(env.netnsPath), proto: proto === 'tcp' ? 6 : 17, addr: parseAddress(address).addr });
  } finally {
    state.close();
  }
}

/** Poll `fn` until it returns true or `ms` pass; returns the last result. */
export async function eventually(fn: () => Promise<boolean> | boolean, ms = 3000, step = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, step));
  }
}

/**
 * Start `manifold discovery watch` on the environment's bpffs (the UDP target
 * registrar) and wait, bounded, until it says it is watching.
 */
export async function startWatcher(env: TestEnv): Promise<ChildProcess> {
  const child = spawn(BIN, ['discovery', 'watch', '--bpffs', env.bpffs], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid) env.track(child.pid);
  const lines = readline.createInterface({ input: child.stderr! });
  const ready = new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l.includes('watching UDP binds')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the watcher exited with ${code}`)));
    child.once('error', reject);
  });
  await withTimeout(ready, 30_000, 'the discovery watcher to start', () => child.kill('SIGKILL'));
  return child;
}
