/**
 * register / unregister planned and executed against the in-memory twin
 * (no root): validation before any write, reuseport groups, replace and
 * unchanged, garbage collection of a socket-only destination, counters
 * kept across re-registration, all or nothing for several sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bind } from '../../src/ops/bind.js';
import { registerSockets, unregisterSocket } from '../../src/ops/register.js';
import type { SocketInfo } from '../../src/ops/socket-info.js';
import { parsePrefix } from '../../src/core/net.js';
import { DestKind } from '../../src/core/layout.js';
import { TwinMaps } from '../../src/state/twin-maps.js';
import { ManifoldError } from '../../src/errors.js';

const NETNS = 4026531840;

function sock(cookie: number, over: Partial<SocketInfo> = {}): SocketInfo {
  return {
    fd: 100 + cookie, domain: 'ipv4', protocol: 'tcp', cookie: BigInt(cookie), local: { address: '127.0.0.1', port: 8000 + cookie },
    listening: true, connected: false, v6only: false, reusePort: false, inode: 9000 + cookie, netnsIno: NETNS, ...over,
  };
}

function socketOf(maps: TwinMaps, label: string): bigint | null {
  const d = maps.destinations().find((x) => x.label === label);
  if (!d) return null;
  const info = maps.destInfo(maps.activeGen())[d.id];
  return info && info.kind === DestKind.socket ? maps.socketCookie(info.slot) : null;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ManifoldError) return err.code;
    throw err;
  }
  return 'no error';
}

test('register creates the destination; the same socket again is unchanged; another replaces it', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  const [a] = registerSockets(maps, NETNS, [{ label: 'web', socket: sock(1), what: 'fd 3' }]);
  assert.is(a!.action, 'created');
  assert.is(socketOf(maps, 'web'), 1n);
  const [b] = registerSockets(maps, NETNS, [{ label: 'web', socket: sock(1), what: 'fd 3' }]);
  assert.is(b!.action, 'unchanged');
  const [c] = registerSockets(maps, NETNS, [{ label: 'web', socket: sock(2), what: 'fd 4' }]);
  assert.is(c!.action, 'replaced');
  assert.is(c!.previousCookie, '1');
  assert.is(socketOf(maps, 'web'), 2n);
  const used = [...Array(maps.limits.sockSlots).keys()].filter((s) => maps.socketCookie(s) !== null);
  assert.is(used.length, 1, 'the replaced socket\'s slot is released');
});

test('bad sockets are refused before anything is written', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  const writes = maps.writes;
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'x', socket: sock(1, { listening: false }), what: 'fd 3' }])), 'ERR_BAD_SOCKET');
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'x', socket: sock(1, { protocol: 'udp', connected: true }), what: 'fd 3' }])), 'ERR_BAD_SOCKET');
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'x', socket: sock(1, { domain: 'ipv6', v6only: false }), what: 'fd 3' }])), 'ERR_BAD_SOCKET');
  assert.throws(() => registerSockets(maps, NETNS, [{ label: 'x', socket: sock(1, { domain: 'ipv6', v6only: false }), what: 'fd 3' }]), /dual-stack IPv6 socket: set IPV6_V6ONLY .*in a socket unit: BindIPv6Only=ipv6-only/);
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'x', socket: sock(1, { netnsIno: 1 }), what: 'fd 3' }])), 'ERR_WRONG_NETNS');
  // One good and one bad socket: all or nothing.
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'ok', socket: sock(1), what: 'fd 3' }, { label: 'x', socket: sock(2, { listening: false }), what: 'fd 4' }])), 'ERR_BAD_SOCKET');
  assert.is(maps.writes, writes, 'no write at all');
  assert.equal(maps.destinations(), []);
});

test('two sockets for one destination: only the same socket or one SO_REUSEPORT group', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  assert.is(code(() => registerSockets(maps, NETNS, [{ label: 'w', socket: sock(1), what: 'fd 3' }, { label: 'w', socket: sock(2), what: 'fd 4' }])), 'ERR_BAD_SOCKET');
  const group = { reusePort: true, local: { address: '0.0.0.0', port: 80 } };
  const regs = registerSockets(maps, NETNS, [{ label: 'w', socket: sock(1, group), what: 'fd 3' }, { label: 'w', socket: sock(2, group), what: 'fd 4' }]);
  assert.is(regs.length, 1, 'registered once: the kernel balances the group');
  // Different families are different destinations.
  const both = registerSockets(maps, NETNS, [{ label: 'v', socket: sock(3), what: 'fd 5' }, { label: 'v', socket: sock(4, { domain: 'ipv6', v6only: true, local: { address: '::1', port: 1 } }), what: 'fd 6' }]);
  assert.equal(both.map((r) => r.destination).sort(), ['ipv4:tcp:v', 'ipv6:tcp:v']);
});

test('unregister: a destination with bindings stays (traffic refused), one without is collected', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  bind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.1'), ports: { first: 80, last: 80 } });
  registerSockets(maps, NETNS, [{ label: 'web', socket: sock(1), what: 'fd 3' }, { label: 'solo', socket: sock(2), what: 'fd 4' }]);
  const web = unregisterSocket(maps, { label: 'web', domain: 'ipv4', protocol: 'tcp' });
  assert.is(web.removedDestination, false);
  assert.is(web.cookie, '1');
  assert.is(socketOf(maps, 'web'), null);
  assert.ok(maps.destinations().some((d) => d.label === 'web'));
  const solo = unregisterSocket(maps, { label: 'solo', domain: 'ipv4', protocol: 'tcp' });
  assert.is(solo.removedDestination, true);
  assert.not.ok(maps.destinations().some((d) => d.label === 'solo'));
  assert.is(code(() => unregisterSocket(maps, { label: 'solo', domain: 'ipv4', protocol: 'tcp' })), 'ERR_NOT_FOUND');
  const used = [...Array(maps.limits.sockSlots).keys()].filter((s) => maps.socketCookie(s) !== null);
  assert.equal(used, [], 'no socket slot left behind');
});

test('unregister of a destination without a socket is ERR_NOT_FOUND, as with tubectl (a second unregister too)', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  bind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.1'), ports: { first: 80, last: 80 } });
  const web = { label: 'web', domain: 'ipv4', protocol: 'tcp' } as const;
  assert.is(code(() => unregisterSocket(maps, web)), 'ERR_NOT_FOUND');
  assert.throws(() => unregisterSocket(maps, web), (err: unknown) => err instanceof ManifoldError && err.message === 'ipv4:tcp:web has no socket registered: nothing to unregister');
  registerSockets(maps, NETNS, [{ label: 'web', socket: sock(1), what: 'fd 3' }]);
  assert.is(unregisterSocket(maps, { label: 'web', domain: 'ipv4', protocol: 'tcp' }).cookie, '1');
  assert.is(code(() => unregisterSocket(maps, { label: 'web', domain: 'ipv4', protocol: 'tcp' })), 'ERR_NOT_FOUND', 'the second time');
  assert.ok(maps.destinations().some((d) => d.label === 'web'), 'the destination stays with its binding');
});

test('counters survive re-registration of the same destination', () => {
  const maps = new TwinMaps({ maxIds: 8 });
  registerSockets(maps, NETNS, [{ label: 'web', socket: sock(1), what: 'fd 3' }]);
  const d = maps.destinations().find((x) => x.label === 'web')!;
  maps.count(d.id, 'lookups', 5n);
  const before = maps.counters(d.id);
  assert.is(before.lookups, 5n);
  registerSockets(maps, NETNS, [{ label: 'web', socket: sock(2), what: 'fd 4' }]);
  assert.equal(maps.counters(d.id), before);
  assert.is(maps.destinations().find((x) => x.label === 'web')!.id, d.id, 'same id');
});

test.run();
