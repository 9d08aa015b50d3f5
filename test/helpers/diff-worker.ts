/**
 * Differential worker (runs inside a test namespace, as root): applies one
 * seeded random sequence of operations — bind, unbind, apply, apply --config, register,
 * close a socket, unregister, target, untarget, policy — to the real maps of a freshly loaded state
 * AND to the in-memory twin, and after every operation compares everything
 * both hold. Argument: JSON {bpffs, seed, steps}. Prints one JSON line
 * {ok, steps, mismatch?}.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { BindingList } from '../../src/core/binding-list.js';
import { DestKind } from '../../src/core/layout.js';
import { parseAddress, parsePrefix, type Protocol } from '../../src/core/net.js';
import { removeTargets, setPolicy, setTargets } from '../../src/ops/target.js';
import { apply } from '../../src/ops/apply.js';
import { applyConfig } from '../../src/ops/apply-config.js';
import { BindingSetBuilder, type BuiltSet } from '../../src/ops/binding-set.js';
import { bind, unbind } from '../../src/ops/bind.js';
import { registerSockets, unregisterSocket } from '../../src/ops/register.js';
import { inspectSocket, type SocketInfo } from '../../src/ops/socket-info.js';
import { ManifoldError } from '../../src/errors.js';
import type { DispatcherMaps, Gen } from '../../src/state/maps.js';
import { State } from '../../src/state/state.js';
import { TwinMaps } from '../../src/state/twin-maps.js';

interface Config {
  bpffs: string;
  seed: number;
  steps: number;
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function snapshot(maps: DispatcherMaps): string {
  const gens = ([0, 1] as Gen[]).map((g) => {
    const l = maps.readBindings(g);
    const bindings: string[] = [];
    for (let i = 0; i < l.count; i++) bindings.push(`${l.key(i).toString('hex')}=${l.tag(i)}`);
    const words: string[] = [];
    maps.portWords(g).forEach((w, i) => {
      if (w !== 0n) words.push(`${i}:${w.toString(16)}`);
    });
    const info: string[] = [];
    maps.destInfo(g).forEach((d, id) => {
      const t = d.target ? `/${d.target.domain}/${Buffer.from(d.target.addr).toString('hex')}/${d.target.port}` : '';
      if (d.kind !== DestKind.none || d.slot !== 0) info.push(`${id}:${d.kind}/${d.slot}${t}`);
    });
    const st = maps.genState(g);
    return { state: `${st.seq}/${st.flags}/${st.exactCapacity}/${st.exactCount}/${st.txid}`, meta: JSON.stringify(maps.genMeta(g)), words, bindings: bindings.sort(), info };
  });
  const dests = maps.destinations().map((d) => `${d.domain}:${d.protocol}:${d.label}=${d.id}/${d.refs.join(',')}/${d.flags}`).sort();
  const slots: string[] = [];
  for (let s = 0; s < maps.limits.sockSlots; s++) {
    const c = maps.socketCookie(s);
    if (c !== null) slots.push(`${s}:${c}`);
  }
  const record = maps.applyRecord();
  return JSON.stringify({ active: maps.activeGen(), gens, dests, slots, record: record ? `${record.seq}/${record.digest}` : null }, null, 1);
}

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof ManifoldError) return err.code;
    throw err;
  }
}

const LABELS = ['a', 'b', 'c', 'web', 'dns'];
const PREFIXES4 = ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.0/28', '10.1.2.3/32', '10.1.2.4/32', '192.0.2.0/24', '192.0.2.77/32', '10.1.2.0/25', '10.1.2.0/26', '10.1.2.0/27', '10.1.2.0/29', '10.1.2.0/30'];
const TARGETS4 = ['127.0.0.5', '127.0.0.6', '0.0.0.0'];
const TARGETS6 = ['fd00::5', 'fd00::6', '::'];
const PREFIXES6 = ['::/0', '2001:db8::/32', '2001:db8::/64', '2001:db8::1/128', 'fd00::5/128'];

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
  const r = rng(cfg.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const state = State.open({ netns: '/proc/self/ns/net', bpffs: cfg.bpffs, write: true, lockTimeoutMs: 10_000 });
  const kernel = state.maps;
  const twin = new TwinMaps(kernel.limits);
  const netnsIno = state.target.netnsIno;
  const sockets: { info: SocketInfo; close: () => Promise<void> }[] = [];
  let step = 0;
  /** A copy of the set applied last (apply FILE), to apply it again. */
  let lastSet: (() => BuiltSet) | null = null;
  const fail = (why: string): never => {
    process.stdout.write(`${JSON.stringify({ ok: false, steps: step, mismatch: why })}\n`);
    process.exit(1);
  };
  const compare = (what: string): void => {
    const a = snapshot(kernel);
    const b = snapshot(twin);
    if (a !== b) {
      const al = a.split('\n');
      const bl = b.split('\n');
      const i = al.findIndex((l, j) => l !== bl[j]);
      fail(`after step ${step} (${what}): kernel and twin differ at line ${i}: kernel ${al[i]} / twin ${bl[i]}`);
    }
  };
  const both = (what: string, op: (m: DispatcherMaps) => unknown): void => {
    const k = outcome(() => op(kernel));
    const t = outcome(() => op(twin));
    if (k !== t) fail(`step ${step} (${what}): kernel ${k}, twin ${t}`);
    compare(what);
  };
  try {
    for (step = 0; step < cfg.steps; step++) {
      const op = r();
      const protocol: Protocol = r() < 0.6 ? 'tcp' : 'udp';
      const v6 = r() < 0.3;
      const prefix = parsePrefix(pick(v6 ? PREFIXES6 : PREFIXES4));
      const label = pick(LABELS);
      const port = r() < 0.3 ? 0 : 80 + Math.floor(r() * 5);
      const last = port !== 0 && r() < 0.3 ? port + Math.floor(r() * 40) : port;
      if (op < 0.35) {
        both(`bind ${label} ${protocol} ${prefix.len} ${port}-${last}`, (m) => bind(m, { label, protocol, prefix, ports: { first: port, last }, force: true }));
      } else if (op < 0.5) {
        both(`unbind ${label} ${protocol} ${prefix.len} ${port}-${last}`, (m) => unbind(m, { label, protocol, prefix, ports: { first: port, last } }));
      } else if (op < 0.58) {
        const builder = new BindingSetBuilder(kernel.limits.maxBindings);
        const n = Math.floor(r() * (r() < 0.2 ? 300 : 12));
        for (let i = 0; i < n; i++) {
          const p6 = r() < 0.3;
          builder.add({ label: pick(LABELS), prefix: pick(p6 ? PREFIXES6 : PREFIXES4), port: r() < 0.3 ? 0 : 1000 + Math.floor(r() * 200), protocol: r() < 0.5 ? 'tcp' : 'udp' }, `e${i}`);
        }
        if (!builder.ok) continue;
        const set = builder.build();
        if (!builder.ok) continue;
        const copy = (): typeof set => ({ list: BindingList.from(Buffer.from(set.list.keys), Uint32Array.from(set.list.tags), set.list.count), labels: set.labels });
        if (lastSet && r() < 0.25) {
          // The set applied last, again: the apply record lets it skip the diff when nothing was written since.
          const again = lastSet;
          both(`apply ${again().list.count} (again)`, (m) => apply(m, again(), false, { force: true }));
        } else if (r() < 0.5) {
          lastSet = copy;
          both(`apply ${set.list.count}`, (m) => apply(m, copy(), false, { force: true }));
        } else {
          // apply --config: the set's labels plus some without bindings; files left out or not; prune or not.
          const labels = new Set([...set.labels, ...LABELS.filter(() => r() < 0.2)]);
          const incomplete = r() < 0.3;
          const prune = r() < 0.3;
          both(`apply --config ${set.list.count} ${[...labels].join(',')}${incomplete ? ' incomplete' : ''}${prune ? ' prune' : ''}`, (m) => applyConfig(m, { set: copy(), labels, incomplete, prune }, false, { force: true }));
        }
      } else if (op < 0.7) {
        let info: SocketInfo;
        let close: () => Promise<void>;
        if (protocol === 'tcp') {
          const srv = net.createServer();
          await new Promise<void>((res) => srv.listen({ host: v6 ? '::1' : '127.0.0.1', port: 0, ipv6Only: v6 }, res));
          info = inspectSocket((srv as unknown as { _handle: { fd: number } })._handle.fd, 'test socket');
          close = () => new Promise<void>((res) => srv.close(() => res()));
        } else {
          const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
          await new Promise<void>((res) => sock.bind({ address: v6 ? '::1' : '127.0.0.1', port: 0 }, res));
          info = inspectSocket((sock as unknown as { _handle: { fd: number } })._handle.fd, 'test socket');
          close = () => new Promise<void>((res) => sock.close(() => res()));
        }
        sockets.push({ info, close });
        both(`register ${label} ${info.protocol}`, (m) => registerSockets(m, netnsIno, [{ label, socket: info, what: 'test socket' }]));
      } else if (op < 0.78) {
        const address = parseAddress(pick(v6 ? TARGETS6 : TARGETS4));
        const tport = r() < 0.6 ? 0 : 8080 + Math.floor(r() * 2);
        const protocols: Protocol[] = r() < 0.5 ? [protocol] : ['tcp', 'udp'];
        const assignments = protocols.map((p) => ({ key: { label, domain: address.domain, protocol: p }, target: { domain: address.domain, addr: address.addr, port: tport } }));
        both(`target ${label} ${protocols.join('+')} ${Buffer.from(address.addr).toString('hex')} ${tport}`, (m) => setTargets(m, assignments));
      } else if (op < 0.83) {
        const req = r() < 0.5 ? { label } : { label, domain: v6 ? ('ipv6' as const) : ('ipv4' as const), protocol };
        both(`untarget ${JSON.stringify(req)}`, (m) => removeTargets(m, req));
      } else if (op < 0.86) {
        const explicitFirst = r() < 0.5;
        both(`policy explicit-first ${explicitFirst}`, (m) => setPolicy(m, { explicitFirst }));
      } else if (op < 0.92 && sockets.length > 0) {
        const i = Math.floor(r() * sockets.length);
        const s = sockets.splice(i, 1)[0]!;
        await s.close();
        twin.closeSocket(s.info.cookie);
        // The kernel drops a closed socket from the sockmap at close().
        compare(`close ${s.info.protocol}`);
      } else {
        both(`unregister ${label} ${v6 ? 'ipv6' : 'ipv4'} ${protocol}`, (m) => unregisterSocket(m, { label, domain: v6 ? 'ipv6' : 'ipv4', protocol }));
      }
    }
    process.stdout.write(`${JSON.stringify({ ok: true, steps: step })}\n`);
  } finally {
    for (const s of sockets) await s.close();
    state.close();
  }
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, mismatch: `worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` })}\n`);
  process.exit(1);
});
