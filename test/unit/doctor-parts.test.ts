/**
 * The pure parts of doctor and of the `ip netns exec` check: local-route
 * parsing and coverage of bound prefixes, the capability set of
 * /proc/self/status, [Install] targets of a unit file, the exit status by
 * worst finding, and recognising the sysfs `ip netns exec` mounts on /sys
 * from mountinfo text.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coverage, parseLocalRoutes, unroutedPrefixes } from '../../src/ops/doctor-routes.js';
import { capabilityNames, effectiveCapabilities } from '../../src/ops/doctor-host.js';
import { installTargets } from '../../src/ops/doctor-systemd.js';
import { doctorExitCode } from '../../src/ops/doctor.js';
import { netnsExecName, refuseNetnsExecBpffs, sysfsSourceAtSys, underSys } from '../../src/ops/netns-exec.js';
import { parsePrefixText, type Prefix } from '../../src/core/net.js';

function p(text: string): Prefix {
  const r = parsePrefixText(text);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

const LOCAL4 = JSON.stringify([
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo' },
  { type: 'local', dst: '127.0.0.1', dev: 'lo' },
  { type: 'broadcast', dst: '127.255.255.255', dev: 'lo' },
  { type: 'local', dst: '192.0.2.0/24', dev: 'lo' },
  { type: 'local', dst: '198.51.100.7', dev: 'eth0' },
]);

test('local routes: only type local, host routes as /32, the other family ignored, garbage is none', () => {
  const routes = parseLocalRoutes(LOCAL4, 'ipv4');
  assert.equal(routes.map((r) => `${r.len}`), ['8', '32', '24', '32']);
  assert.equal(parseLocalRoutes(LOCAL4, 'ipv6'), []);
  assert.equal(parseLocalRoutes('not json', 'ipv4'), []);
  assert.equal(parseLocalRoutes('{"type":"local"}', 'ipv4'), []);
  assert.equal(parseLocalRoutes(JSON.stringify([{ type: 'local', dst: 'default' }]), 'ipv6').map((r) => r.len), [0]);
});

test('coverage: inside a route is full, containing a smaller route is partial, elsewhere none', () => {
  const routes = parseLocalRoutes(LOCAL4, 'ipv4');
  assert.is(coverage(p('192.0.2.128/25'), routes), 'full');
  assert.is(coverage(p('192.0.2.0/24'), routes), 'full');
  assert.is(coverage(p('192.0.0.0/16'), routes), 'partial');
  assert.is(coverage(p('198.51.100.7/32'), routes), 'full');
  assert.is(coverage(p('198.51.100.0/24'), routes), 'partial');
  assert.is(coverage(p('203.0.113.0/24'), routes), 'none');
  assert.is(coverage(p('2001:db8::/64'), routes), 'none', 'other family');
  assert.equal(unroutedPrefixes([p('192.0.2.0/24'), p('203.0.113.0/24'), p('192.0.0.0/16')], routes), { none: ['203.0.113.0/24'], partial: ['192.0.0.0/16'] });
});

test('capabilities from CapEff; a missing or malformed line is unknown', () => {
  const set = effectiveCapabilities('Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n');
  assert.is(set, 0x1ffffffffffn);
  assert.equal(capabilityNames(set as bigint).missing, []);
  const netAdmin = effectiveCapabilities('CapEff:\t0000000000001000\n') as bigint;
  assert.equal(capabilityNames(netAdmin), { present: ['CAP_NET_ADMIN'], missing: ['CAP_SYS_PTRACE', 'CAP_SYS_ADMIN', 'CAP_PERFMON', 'CAP_BPF'] });
  assert.is(effectiveCapabilities('CapPrm:\tffff\n'), null);
  assert.is(effectiveCapabilities('CapEff:\tzz\n'), null);
});

test('[Install] targets: WantedBy/RequiredBy of that section only, several per line', () => {
  const text = '[Unit]\nWantedBy=not-this.target\n[Install]\nWantedBy=sysinit.target multi-user.target\nRequiredBy=x.target\n[Service]\nRequiredBy=no.target\n';
  assert.equal(installTargets(text), { wants: ['sysinit.target', 'multi-user.target'], requires: ['x.target'] });
  assert.equal(installTargets(''), { wants: [], requires: [] });
});

test('doctor exit status: 0 for ok and info, 6 for warnings, 1 for errors', () => {
  assert.equal((['ok', 'info', 'warning', 'error'] as const).map(doctorExitCode), [0, 0, 6, 1]);
});

// mountinfo lines: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER
const HOST = [
  '22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '30 22 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:8 - bpf bpf rw,mode=700',
].join('\n');
const EXEC = `${HOST}\n400 1 0:80 / /sys rw,relatime - sysfs blue rw\n`;

test('the sysfs on /sys: the topmost mount counts; ip netns exec names its source after the namespace', () => {
  assert.is(sysfsSourceAtSys(HOST), 'sysfs');
  assert.is(sysfsSourceAtSys(EXEC), 'blue');
  assert.is(sysfsSourceAtSys(`${EXEC}401 1 0:81 / /sys rw - tmpfs tmpfs rw\n`), null, 'not a sysfs on top');
  assert.is(sysfsSourceAtSys('400 1 0:80 / /sys\\040x rw - sysfs blue rw'), null, 'another mount point');
  assert.is(sysfsSourceAtSys('garbage\n\n'), null);
});

test('not inside ip netns exec when the named namespace does not exist or is not ours; nothing refused then', () => {
  assert.is(netnsExecName(HOST), null);
  assert.is(netnsExecName(EXEC.replace(' blue ', ' mf-no-such-netns-x ')), null);
  assert.is(netnsExecName(EXEC.replace(' blue ', ' ../etc ')), null, 'no path in a name');
  refuseNetnsExecBpffs('/sys/fs/bpf', EXEC.replace(' blue ', ' mf-no-such-netns-x '));
  assert.ok(underSys('/sys/fs/bpf'));
  assert.ok(underSys('/sys'));
  assert.not.ok(underSys('/sysx/bpf'));
  assert.not.ok(underSys('/run/bpf'));
});

test.run();
