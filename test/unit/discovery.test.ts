/**
 * Listener discovery, pure parts: kernel requirement checks, the seeding
 * method, the cgroup v2 mount, and the map encodings.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atLeast, kernelChecks, parseRelease, requireKernel } from '../../src/discovery/kernel.js';
import { seedMethod, addRecords, emptySummary } from '../../src/discovery/seed.js';
import { cgroup2FromMountinfo } from '../../src/discovery/cgroup.js';
import { unescapeMountPath } from '../../src/core/mountinfo.js';
import {
  decodeConfig, decodeEvent, decodeKey, decodeMeta, decodeSeedRecords, DISC_EVENT_SIZE, DISC_MAGIC, encodeConfig, encodeKey, encodeMeta,
  fromKeyAddr, isMapped, SeedBits, targetKey, toKeyAddr,
} from '../../src/discovery/codec.js';
import { ManifoldError } from '../../src/errors.js';

test('kernel releases: parsed and compared', () => {
  assert.equal(parseRelease('6.18.44-fc-v595'), [6, 18, 44]);
  assert.equal(parseRelease('5.15'), [5, 15, 0]);
  assert.is(parseRelease('garbage'), null);
  assert.ok(atLeast('5.15.0-91-generic', 5, 15));
  assert.ok(atLeast('6.1.0', 5, 15));
  assert.not.ok(atLeast('5.14.21', 5, 15));
  assert.not.ok(atLeast('4.19.0', 5, 15));
  assert.not.ok(atLeast('', 5, 15));
});

test('kernel checks: < 5.15 or no BTF or no cgroup2 is fatal, < 6.5 and < 6.10 only limit seeding', () => {
  const ok = { release: '6.18.4', btf: true, cgroup2: '/sys/fs/cgroup' };
  assert.ok(kernelChecks(ok).every((c) => c.ok));
  requireKernel(kernelChecks(ok));
  const old = kernelChecks({ ...ok, release: '5.10.0' });
  assert.is(old.find((c) => c.name === 'kernel')?.ok, false);
  try {
    requireKernel(old);
    assert.unreachable('must throw');
  } catch (err) {
    assert.instance(err, ManifoldError);
    assert.is((err as ManifoldError).code, 'ERR_INCOMPATIBLE');
    assert.match((err as Error).message, /needs Linux >= 5\.15.*found 5\.10\.0/);
  }
  assert.throws(() => requireKernel(kernelChecks({ ...ok, btf: false })), /BTF/);
  assert.throws(() => requireKernel(kernelChecks({ ...ok, cgroup2: null })), /cgroup v2/);
  const mid = kernelChecks({ ...ok, release: '6.1.55' });
  requireKernel(mid);
  assert.is(mid.find((c) => c.name === 'iterator-seeding')?.ok, false);
  assert.is(mid.find((c) => c.name === 'seeded-shutdown')?.ok, false);
  const late = kernelChecks({ ...ok, release: '6.6.0' });
  assert.is(late.find((c) => c.name === 'iterator-seeding')?.ok, true);
  assert.is(late.find((c) => c.name === 'seeded-shutdown')?.ok, false);
});

test('seeding method: iterators from 6.5, task_file before; MANIFOLD_DISCOVERY_SEED is checked', () => {
  assert.is(seedMethod('6.18.0', undefined), 'iterators');
  assert.is(seedMethod('6.5.0', ''), 'iterators');
  assert.is(seedMethod('6.4.16', undefined), 'task_file');
  assert.is(seedMethod('5.15.0', undefined), 'task_file');
  assert.is(seedMethod('6.18.0', 'task_file'), 'task_file');
  assert.is(seedMethod('6.18.0', 'iterators'), 'iterators');
  assert.throws(() => seedMethod('6.1.0', 'iterators'), (e: unknown) => (e as ManifoldError).code === 'ERR_INCOMPATIBLE');
  assert.throws(() => seedMethod('6.18.0', 'proc'), (e: unknown) => (e as ManifoldError).code === 'ERR_INVALID_ENV');
});

test('cgroup v2 mount from mountinfo: the root mount preferred, escapes decoded', () => {
  const text = [
    '25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw',
    '30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs ro',
    '31 30 0:27 /sub /mnt/some\\040where rw - cgroup2 cgroup2 rw',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.is(cgroup2FromMountinfo(text), '/sys/fs/cgroup/unified');
  assert.is(cgroup2FromMountinfo(text.split('\n').slice(0, 3).join('\n')), '/mnt/some where');
  assert.is(cgroup2FromMountinfo('25 1 0:23 / /sys rw - sysfs sysfs rw'), null);
  assert.is(unescapeMountPath('a\\011b\\134c'), 'a\tb\\c');
});

test('keys: IPv4 is stored IPv4-mapped, encodings round-trip', () => {
  const a4 = Uint8Array.from([127, 0, 0, 5]);
  const k = toKeyAddr(a4);
  assert.ok(isMapped(k));
  assert.equal([...fromKeyAddr(k)], [127, 0, 0, 5]);
  const a6 = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
  assert.not.ok(isMapped(toKeyAddr(a6)));
  assert.is(fromKeyAddr(toKeyAddr(a6)).length, 16);
  const key = { netns: 0x1122334455667788n, addr: k, port: 8080, proto: 17, slot: 3 };
  const b = encodeKey(key);
  assert.is(b.length, 32);
  assert.equal(decodeKey(b), key);
  const t = targetKey(4n, 6, a4);
  assert.is(t.readUInt16LE(24), 0, 'targets: port 0');
  assert.is(t.readUInt8(27), 0, 'slot 0');
  assert.throws(() => toKeyAddr(Uint8Array.from([1, 2, 3])));
});

test('meta and config round-trip; long cgroup paths are cut, not overflowed', () => {
  const meta = { magic: DISC_MAGIC, abi: 1, active: 1, cgroupId: 1234n, enabledAt: 1_700_000_000_000, version: '0.1.0' };
  assert.equal(decodeMeta(encodeMeta(meta)), meta);
  const cfg = { cgroupId: 99n, scopeAll: true, cgroupPath: '/sys/fs/cgroup/x' };
  assert.equal(decodeConfig(encodeConfig(cfg)), cfg);
  const long = decodeConfig(encodeConfig({ ...cfg, cgroupPath: `/${'a'.repeat(400)}` }));
  assert.is(long.cgroupPath.length, 239);
});

test('events and seed records decode; short input is ignored', () => {
  const ev = Buffer.alloc(DISC_EVENT_SIZE);
  ev.writeBigUInt64LE(7n, 0);
  ev.writeBigUInt64LE(9n, 8);
  ev.set(toKeyAddr(Uint8Array.from([127, 0, 0, 5])), 16);
  ev.writeUInt16LE(5353, 32);
  ev.writeUInt8(17, 34);
  ev.writeUInt8(2, 35);
  ev.writeUInt32LE(4242, 36);
  const d = decodeEvent(ev);
  assert.ok(d);
  assert.is(d!.port, 5353);
  assert.is(d!.tgid, 4242);
  assert.is(decodeEvent(ev.subarray(0, 10)), null);
  const recs = Buffer.alloc(16 * 3 + 5);
  recs.writeBigUInt64LE(1n, 0);
  recs.writeUInt8(6, 8);
  recs.writeUInt8(SeedBits.INDEXED | SeedBits.NO_STATECB, 9);
  recs.writeBigUInt64LE(2n, 16);
  recs.writeUInt8(17, 24);
  recs.writeUInt8(SeedBits.INDEXED | SeedBits.TARGET, 25);
  recs.writeBigUInt64LE(3n, 32);
  recs.writeUInt8(6, 40);
  recs.writeUInt8(SeedBits.OUT_OF_SCOPE, 41);
  const list = decodeSeedRecords(recs);
  assert.is(list.length, 3, 'the partial record is dropped');
  const s = emptySummary('iterators');
  const seen = new Set<bigint>();
  addRecords(s, list, seen);
  addRecords(s, [list[2]!], seen);
  assert.equal(s.indexed, { tcp: 1, udp: 1 });
  assert.is(s.targets, 1);
  assert.is(s.noStateCb, 1);
  assert.is(s.outOfScope, 1, 'a socket out of scope counts once across passes');
});

test.run();
