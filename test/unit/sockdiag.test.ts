/**
 * register-pid's socket search (src/ops/procfs.ts boundSockets): in its own
 * namespace it asks the kernel (sock_diag, src/sys/sockdiag.ts), elsewhere it
 * reads /proc/PID/net. Both must find the same sockets: listening TCP and
 * unconnected UDP sockets bound exactly to the address and port, not the
 * connections on that port, not other addresses or families. Checked on real
 * sockets of this process. No root needed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setProgramDir } from '../../src/locate.js';
import { boundSockets, tableBoundSockets } from '../../src/ops/procfs.js';
import { diagSockets } from '../../src/sys/sockdiag.js';
import type { Domain, Protocol } from '../../src/core/net.js';

// koffi is found from the program directory (the checkout's node_modules).
setProgramDir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sea'));

const open: { close: () => void }[] = [];
test.after(() => {
  for (const o of open) o.close();
});

async function tcpListen(host: string, port: number): Promise<number> {
  const s = net.createServer((c) => open.push({ close: () => c.destroy() }));
  await new Promise<void>((resolve) => s.listen({ port, host, exclusive: true }, resolve));
  open.push({ close: () => s.close() });
  return (s.address() as net.AddressInfo).port;
}

async function udpBind(type: 'udp4' | 'udp6', host: string, port: number, connectTo?: number): Promise<number> {
  const u = dgram.createSocket({ type, reuseAddr: true });
  await new Promise<void>((resolve) => u.bind(port, host, resolve));
  if (connectTo !== undefined) await new Promise<void>((resolve) => u.connect(connectTo, host, () => resolve()));
  open.push({ close: () => u.close() });
  return u.address().port;
}

const addr = (s: string): Uint8Array => (s.includes(':') ? Uint8Array.from([...Array(15).fill(0), 1]) : Uint8Array.from(s.split('.').map(Number)));

test('sock_diag and /proc/PID/net find the same bound sockets', async () => {
  const port = await tcpListen('127.0.0.1', 0);
  await tcpListen('127.0.0.2', port); // same port, another address
  await tcpListen('::1', port); // same port, IPv6
  // Connections to the listener: their accepted ends have its local address and port (not usable).
  for (let i = 0; i < 20; i++) {
    const c = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => c.on('connect', () => resolve()));
    open.push({ close: () => c.destroy() });
  }
  const uport = await udpBind('udp4', '127.0.0.1', 0);
  await udpBind('udp4', '127.0.0.1', uport, port); // same port, connected: not usable
  await udpBind('udp6', '::1', uport);

  const cases: [Protocol, Domain, string, number][] = [
    ['tcp', 'ipv4', '127.0.0.1', port], ['tcp', 'ipv4', '127.0.0.2', port], ['tcp', 'ipv4', '127.0.0.3', port], ['tcp', 'ipv6', '::1', port],
    ['udp', 'ipv4', '127.0.0.1', uport], ['udp', 'ipv6', '::1', uport], ['udp', 'ipv4', '127.0.0.1', port], ['tcp', 'ipv4', '127.0.0.1', uport],
  ];
  const found: number[] = [];
  for (const [protocol, domain, host, p] of cases) {
    const viaDiag = boundSockets(process.pid, protocol, domain, addr(host), p).sort();
    const viaTable = tableBoundSockets(process.pid, protocol, domain, addr(host), p).sort();
    assert.equal(viaDiag, viaTable, `${protocol} ${host} ${p}`);
    found.push(viaDiag.length);
  }
  // Exactly one usable socket where one was made, none elsewhere (the connections are not listed).
  assert.equal(found, [1, 1, 0, 1, 1, 1, 0, 0]);
  // The kernel dump itself: TCP lists only listeners of the port, UDP every socket on it.
  assert.is(diagSockets('tcp', 'ipv4', port).length, 2);
  assert.is(diagSockets('udp', 'ipv4', uport).length, 2);
  assert.is(diagSockets('udp', 'ipv4', uport).filter((s) => s.unconnected).length, 1);
});

test.run();
