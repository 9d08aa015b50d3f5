/**
 * fd-holder worker for the register-pid benchmark (runs inside a scratch
 * namespace, JSON-line RPC). Op hold {fds}: listens on 127.0.0.1:0, opens
 * established loopback connections (both ends) for about half of the
 * wanted fds and /dev/null for the rest, and starts `sleep` inheriting
 * exactly `fds` descriptors (0-2 on /dev/null, 3 = the listener). Answers
 * {pid, port, fds}: the sleep process is the register-pid target.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { serveWorker } from './lib/worker.js';

function fdOf(x: net.Server | net.Socket): number {
  return (x as unknown as { _handle: { fd: number } })._handle.fd;
}

async function connectionPairs(server: net.Server, port: number, pairs: number): Promise<net.Socket[]> {
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const clients: net.Socket[] = [];
  for (let i = 0; i < pairs; i++) {
    clients.push(await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port }, () => resolve(c));
      c.on('error', reject);
    }));
  }
  const deadline = Date.now() + 30_000;
  while (accepted.length < pairs) {
    if (Date.now() > deadline) throw new Error(`only ${accepted.length} of ${pairs} connections accepted within 30 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return [...clients, ...accepted];
}

const children: number[] = [];
// The sleep processes go with the worker (also when the orchestrator dies and stdin closes).
process.on('exit', () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

async function hold(total: number): Promise<{ pid: number; port: number; fds: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  const extra = total - 4; // 0, 1, 2 and the listener
  const pairs = total >= 100 ? Math.floor(extra / 4) : 0; // half of the extra fds are sockets
  const sockets = await connectionPairs(server, port, pairs);
  const devnull = fs.openSync('/dev/null', 'r');
  const stdio: ('ignore' | number)[] = ['ignore', 'ignore', 'ignore', fdOf(server)];
  for (const s of sockets) stdio.push(fdOf(s));
  while (stdio.length < total) stdio.push(devnull);
  const child = spawn('sleep', ['900'], { stdio, detached: false });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  fs.closeSync(devnull);
  const pid = child.pid ?? 0;
  children.push(pid);
  // Report the count once it is stable (the child may still be setting up).
  let fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  for (let i = 0; i < 40 && fds < total; i++) {
    await new Promise((r) => setTimeout(r, 25));
    fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  }
  return { pid, port, fds };
}

serveWorker({
  hold: (r) => hold(Number(r.fds)),
});
