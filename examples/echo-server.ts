/**
 * A TCP + UDP echo server to put behind manifold.
 *
 *   node build/examples/echo-server.js [address] [port]     (default 127.0.0.1 9999)
 *
 * It prints `ready tcp-fd=N udp-fd=M pid=P`; register those sockets with
 * manifold (e.g. `manifold register` with the pid and fds). UDP answers
 * come from the address and port the client sent to, even when sk_lookup
 * steered the datagram here from elsewhere.
 */
import net from 'node:net';
import { openOrigDstUdp } from '../src/udp.js';

const address = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 9999);
const v6 = net.isIPv6(address);

// TCP: Node binds [::] dual-stack by default; steered IPv6 traffic wants a v6-only socket.
const tcp = net.createServer((conn) => conn.pipe(conn).on('error', () => conn.destroy()));
await new Promise<void>((resolve, reject) => {
  tcp.once('error', reject);
  tcp.listen({ host: address, port, ipv6Only: v6 }, resolve);
});
const tcpFd = (tcp as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;

// UDP: answer every datagram from its original destination.
const udp = await openOrigDstUdp({ address, port });
udp.on('message', (msg, info) => {
  try {
    udp.reply(info, msg);
  } catch (err) {
    console.error(`cannot answer ${info.remote.address}:${info.remote.port}: ${(err as Error).message}`);
  }
});
udp.on('error', (err) => console.error(`udp: ${err.message}`));

console.log(`ready tcp-fd=${tcpFd} udp-fd=${udp.fd} pid=${process.pid}`);

const stop = (): void => {
  udp.close();
  tcp.close();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
