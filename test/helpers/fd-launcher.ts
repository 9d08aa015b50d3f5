/**
 * Runs inside a test namespace: creates the sockets described by a JSON
 * spec (argv[2]), starts `manifold register` with them as fds 3, 4, ...
 * (socket activation style: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES), prints
 * the result as one JSON line, then keeps TCP servers answering with their
 * name until stdin closes.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bindRaw, socket as sysSocket } from '../../src/sys/libc.js';
import { BIN } from './env.js';

/** One fd to pass. */
export interface FdSpec {
  kind: 'tcp' | 'udp' | 'tcp6' | 'udp6' | 'dual6' | 'unix' | 'file' | 'connected-tcp' | 'unlistened-tcp' | 'connected-udp' | 'closed';
  host?: string;
  port?: number;
  name?: string;
}

/** The launcher's instructions. */
export interface LaunchSpec {
  fds: FdSpec[];
  args: string[];
  env?: Record<string, string>;
  /** Set LISTEN_PID to the shell's pid (true) or to this value. */
  listenPid?: 'self' | string | null;
  listenFds?: string | null;
  names?: boolean;
  /** Kill `manifold register` after this long (default 60 s) and report it. */
  timeoutMs?: number;
}

async function make(spec: FdSpec, keep: unknown[]): Promise<number> {
  const host = spec.host ?? '127.0.0.1';
  const answer = (s: net.Socket): void => {
    s.on('error', () => undefined);
    s.end(`${spec.name ?? 'fd'}\n`);
  };
  switch (spec.kind) {
    case 'tcp':
    case 'tcp6':
    case 'dual6': {
      const server = net.createServer(answer);
      // The kernel makes sockets bound to a specific IPv6 address v6-only: a dual-stack one binds ::.
      const h = spec.kind === 'tcp' ? host : spec.kind === 'dual6' ? '::' : spec.host ?? '::1';
      await new Promise<void>((r) => server.listen({ host: h, port: spec.port ?? 0, ipv6Only: spec.kind === 'tcp6' }, () => r()));
      keep.push(server);
      return (server as unknown as { _handle: { fd: number } })._handle.fd;
    }
    case 'udp':
    case 'udp6': {
      const s = dgram.createSocket({ type: spec.kind === 'udp' ? 'udp4' : 'udp6', ipv6Only: spec.kind === 'udp6' });
      s.on('message', (_m, r) => s.send(`${spec.name ?? 'fd'}\n`, r.port, r.address));
      await new Promise<void>((r, j) => s.once('error', j).bind({ address: spec.kind === 'udp' ? host : spec.host ?? '::1', port: spec.port ?? 0 }, () => r()));
      keep.push(s);
      return (s as unknown as { _handle: { fd: number } })._handle.fd;
    }
    case 'unix': {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-unix-'));
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      const p = path.join(dir, 's');
      const server = net.createServer(answer);
      await new Promise<void>((r) => server.listen(p, () => r()));
      keep.push(server);
      return (server as unknown as { _handle: { fd: number } })._handle.fd;
    }
    case 'file':
      return fs.openSync('/etc/hostname', 'r');
    case 'connected-tcp': {
      const server = net.createServer(() => undefined);
      await new Promise<void>((r) => server.listen({ host, port: 0 }, () => r()));
      const c = net.connect({ host, port: (server.address() as net.AddressInfo).port });
      await new Promise<void>((r) => c.once('connect', () => r()));
      keep.push(server, c);
      return (c as unknown as { _handle: { fd: number } })._handle.fd;
    }
    case 'unlistened-tcp': {
      const fd = sysSocket(2, 1, 0);
      const sa = Buffer.alloc(16);
      sa.writeUInt16LE(2, 0);
      sa.writeUInt16BE(spec.port ?? 0, 2);
      sa.set([127, 0, 0, 1], 4);
      bindRaw(fd, sa);
      return fd;
    }
    case 'connected-udp': {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind({ address: host, port: 0 }, () => r()));
      await new Promise<void>((r) => s.connect(9, '127.0.0.1', () => r()));
      keep.push(s);
      return (s as unknown as { _handle: { fd: number } })._handle.fd;
    }
    case 'closed':
      return -1;
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LaunchSpec;
  const keep: unknown[] = [];
  const fds: number[] = [];
  for (const f of spec.fds) fds.push(await make(f, keep));
  const passed = fds.filter((fd) => fd >= 0);
  const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env };
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (spec.listenFds !== null) env.LISTEN_FDS = spec.listenFds ?? String(spec.fds.length);
  if (spec.names !== false) env.LISTEN_FDNAMES = spec.fds.map((f) => f.name ?? '').join(':');
  let script = `exec "${BIN}" "$@"`;
  if (spec.listenPid === 'self' || spec.listenPid === undefined) script = `export LISTEN_PID=$$; ${script}`;
  else if (spec.listenPid !== null) env.LISTEN_PID = spec.listenPid;
  const child = spawn('sh', ['-c', script, 'sh', ...spec.args], { env, stdio: ['ignore', 'pipe', 'pipe', ...passed] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  // Bounded: a register that does not end is killed and reported, not waited for.
  const limitMs = spec.timeoutMs ?? 60_000;
  const timer = setTimeout(() => {
    stderr += `launcher: manifold ${spec.args.join(' ')} did not exit within ${limitMs} ms; killed\n`;
    child.kill('SIGKILL');
    // Whatever still holds its pipes must not keep us waiting for 'close'.
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, 2000).unref();
  }, limitMs);
  const code = await new Promise<number>((r) => {
    child.once('error', (err) => {
      stderr += `launcher: ${err.message}\n`;
      r(-1);
    });
    // 'close': after the exit and the end of its output, so nothing written is lost.
    child.once('close', (c) => r(c ?? -1));
  });
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify({ code, stdout, stderr, pid: process.pid })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

main().catch((err: Error) => {
  process.stdout.write(`${JSON.stringify({ code: -1, stdout: '', stderr: `launcher: ${err.message}` })}\n`);
  process.exit(1);
});
