/**
 * Address targets planned and executed against the in-memory twin with an
 * in-memory discovery registry (no root): target/untarget/policy, a socket
 * replacing a target and back, the registry's reference counts following
 * the live targets (shared addresses, removal), apply --config's exact
 * targets, and garbage collection of target-served destinations.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bind, unbind } from '../../src/ops/bind.js';
import { registerSockets } from '../../src/ops/register.js';
import { planExactTargets, readPolicy, removeTargets, setPolicy, setTargets, type TargetAssignment } from '../../src/ops/target.js';
import { execute } from '../../src/ops/executor.js';
import { emptyPlan } from '../../src/ops/plan.js';
import { View } from '../../src/ops/view.js';
import type { SocketInfo } from '../../src/ops/socket-info.js';
import { parseAddress, parsePrefix, type Protocol } from '../../src/core/net.js';
import { DestKind, POLICY_EXPLICIT_FIRST } from '../../src/core/layout.js';
import { TwinMaps, TwinRegistry } from '../../src/state/twin-maps.js';
import { unregisterSocket } from '../../src/ops/register.js';
import { ManifoldError } from '../../src/errors.js';

const NETNS = 4026531840;

function assign(label: string, address: string, protocol: Protocol = 'tcp', port = 0): TargetAssignment {
  const a = parseAddress(address);
  return { key: { label, domain: a.domain, protocol }, target: { domain: a.domain, addr: a.addr, port } };
}

function registered(r: TwinRegistry): string[] {
  return r.registered().map((e) => `${e.address.protocol} ${Buffer.from(e.address.addr).toString('hex')} ${e.refs}`).sort();
}

function kindOf(maps: TwinMaps, label: string, protocol: Protocol = 'tcp'): number | null {
  const d = maps.destinations().find((x) => x.label === label && x.protocol === protocol);
  return d ? (maps.destInfo(maps.activeGen())[d.id]?.kind ?? null) : null;
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

test('target creates a target-served destination in both generations and registers its address once per address', () => {
  const reg = new TwinRegistry();
  const maps = new TwinMaps({ maxIds: 16 }, reg);
  const r = setTargets(maps, [assign('a', '127.0.0.5'), assign('b', '127.0.0.5')]);
  assert.equal(r.changes.map((c) => `${c.destination} ${c.action}`), ['ipv4:tcp:a created', 'ipv4:tcp:b created']);
  assert.is(r.discovery, true);
  assert.equal(registered(reg), ['tcp 7f000005 2'], 'two destinations share the address: 2 references');
  assert.equal(reg.seeded, ['tcp 7f000005'], 'the sockets already there were registered once');
  for (const g of [0, 1] as const) {
    const kinds = maps.destInfo(g).filter((d) => d.kind === DestKind.target).length;
    assert.is(kinds, 2, `generation ${g} holds both targets`);
  }
  assert.is(setTargets(maps, [assign('a', '127.0.0.5')]).changes[0]!.action, 'unchanged');
  setTargets(maps, [assign('a', '127.0.0.6')]);
  assert.equal(registered(reg), ['tcp 7f000005 1', 'tcp 7f000006 1']);
  removeTargets(maps, { label: 'b' });
  assert.equal(registered(reg), ['tcp 7f000006 1'], 'the last reference gone: the address is released');
  assert.is(kindOf(maps, 'b'), null, 'no bindings, no target: collected');
  assert.is(kindOf(maps, 'a'), DestKind.target, 'a target keeps a destination without bindings (its daemon may restart)');
});

test('bad targets and untargets change nothing', () => {
  const reg = new TwinRegistry();
  const maps = new TwinMaps({ maxIds: 16 }, reg);
  const before = maps.writes;
  assert.is(code(() => setTargets(maps, [assign('a', '0.0.0.0')])), 'ERR_INVALID_PREFIX');
  assert.is(code(() => setTargets(maps, [{ ...assign('a', '127.0.0.5'), key: { label: 'a', domain: 'ipv6', protocol: 'tcp' } }])), 'ERR_INVALID_PREFIX');
  assert.is(code(() => setTargets(maps, [assign('a', '127.0.0.5', 'tcp', 70000)])), 'ERR_INVALID_PORT');
  assert.is(code(() => setTargets(maps, [assign('a', '127.0.0.5'), assign('a', '127.0.0.6')])), 'ERR_USAGE');
  assert.is(code(() => removeTargets(maps, { label: 'a' })), 'ERR_NOT_FOUND');
  assert.is(maps.writes, before);
  assert.equal(registered(reg), []);
});

test('a socket replaces a target and a target replaces a socket; the registry follows', () => {
  const reg = new TwinRegistry();
  const maps = new TwinMaps({ maxIds: 16 }, reg);
  bind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.0/24'), ports: { first: 80, last: 80 }, force: true });
  setTargets(maps, [assign('web', '127.0.0.5')]);
  const sock: SocketInfo = {
    fd: 7, domain: 'ipv4', protocol: 'tcp', cookie: 42n, local: { address: '127.0.0.1', port: 8080 }, listening: true, connected: false, v6only: false, reusePort: false, inode: 1, netnsIno: NETNS,
  };
  const [reg1] = registerSockets(maps, NETNS, [{ label: 'web', socket: sock, what: 'fd 7' }]);
  assert.equal([reg1!.action, reg1!.previousTarget], ['replaced', '127.0.0.5']);
  assert.is(kindOf(maps, 'web'), DestKind.socket);
  assert.equal(registered(reg), [], 'no destination targets 127.0.0.5 any more');
  const back = setTargets(maps, [assign('web', '127.0.0.5', 'tcp', 8080)]);
  assert.equal([back.changes[0]!.action, back.changes[0]!.previous], ['replaced', 'socket 42']);
  assert.equal(registered(reg), ['tcp 7f000005 1']);
  const used = [...Array(maps.limits.sockSlots).keys()].filter((s) => maps.socketCookie(s) !== null);
  assert.equal(used, [], 'the socket slot is released');
  unbind(maps, { label: 'web', protocol: 'tcp', prefix: parsePrefix('192.0.2.0/24'), ports: { first: 80, last: 80 } });
  assert.is(kindOf(maps, 'web'), DestKind.target);
});

test('the policy switches with the generation; an unchanged policy writes nothing', () => {
  const maps = new TwinMaps({ maxIds: 16 });
  assert.equal(readPolicy(maps), { explicitFirst: false });
  const r = setPolicy(maps, { explicitFirst: true });
  assert.equal([r.changed, r.discovery], [true, false]);
  for (const g of [0, 1] as const) assert.is(maps.genMeta(g).flags & POLICY_EXPLICIT_FIRST, POLICY_EXPLICIT_FIRST, `generation ${g}`);
  const writes = maps.writes;
  assert.is(setPolicy(maps, { explicitFirst: true }).changed, false);
  assert.is(maps.writes, writes);
  // The next write rebuilds a STALE generation from the live one: the policy comes along.
  const other = maps.activeGen() === 0 ? 1 : 0;
  maps.setGenMeta(other, { ...maps.genMeta(other), flags: 0 });
  maps.setGenState(other, { ...maps.genState(other), flags: 2 });
  bind(maps, { label: 'x', protocol: 'tcp', prefix: parsePrefix('192.0.2.1'), ports: { first: 80, last: 80 }, force: true });
  assert.is(maps.activeGen(), other, 'the rebuilt generation is live');
  assert.is(maps.genMeta(other).flags, POLICY_EXPLICIT_FIRST, 'and carries the policy');
});

test('apply --config: exactly the configured targets (others removed, sockets left alone) and the policy, in one plan', () => {
  const reg = new TwinRegistry();
  const maps = new TwinMaps({ maxIds: 16 }, reg);
  setTargets(maps, [assign('old', '127.0.0.9'), assign('keep', '127.0.0.5')]);
  const view = new View(maps);
  const plan = emptyPlan();
  const r = planExactTargets(view, plan, [assign('keep', '127.0.0.5'), assign('new', 'fd00::5', 'udp')], { explicitFirst: true });
  assert.equal(r.changes.map((c) => `${c.destination} ${c.action}`), ['ipv4:tcp:keep unchanged', 'ipv6:udp:new created', 'ipv4:tcp:old removed']);
  assert.equal(r.policy, { explicitFirst: true });
  execute(maps, plan);
  assert.equal(registered(reg), ['tcp 7f000005 1', 'udp fd000000000000000000000000000005 1']);
  assert.equal(readPolicy(maps), { explicitFirst: true });
  assert.is(kindOf(maps, 'old'), null);
});

test('unregister of a target-served destination is refused and changes nothing: the target is untarget\'s', () => {
  const reg = new TwinRegistry();
  const maps = new TwinMaps({ maxIds: 16 }, reg);
  setTargets(maps, [assign('t1', '127.0.0.7')]);
  const before = { kind: kindOf(maps, 't1'), registered: registered(reg), writes: maps.writes };
  let message = '';
  try {
    unregisterSocket(maps, { label: 't1', domain: 'ipv4', protocol: 'tcp' });
  } catch (err) {
    assert.instance(err, ManifoldError);
    assert.is((err as ManifoldError).code, 'ERR_NOT_FOUND');
    message = (err as Error).message;
  }
  assert.is(message, 'ipv4:tcp:t1 has no registered socket: the address target 127.0.0.7 serves it ("manifold untarget t1" removes that)');
  assert.equal({ kind: kindOf(maps, 't1'), registered: registered(reg), writes: maps.writes }, before);
});

test('a target must be a unicast address: wildcard, multicast and broadcast are refused', () => {
  const maps = new TwinMaps({ maxIds: 16 }, new TwinRegistry());
  for (const [addr, why] of [['0.0.0.0', 'the wildcard'], ['224.0.0.1', 'a multicast address'], ['239.255.255.250', 'a multicast address'], ['255.255.255.255', 'the limited broadcast address'], ['ff02::1', 'a multicast address'], ['::', 'the wildcard']] as const) {
    try {
      setTargets(maps, [assign('m', addr)]);
      assert.unreachable(`${addr} accepted`);
    } catch (err) {
      assert.instance(err, ManifoldError);
      assert.is((err as ManifoldError).code, 'ERR_INVALID_PREFIX', addr);
      assert.match((err as Error).message, `is ${why}`, addr);
    }
  }
  assert.equal(maps.destinations(), []);
  setTargets(maps, [assign('m', '127.0.0.9')]);
});

test.run();
