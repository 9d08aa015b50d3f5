/**
 * Running the exporter's HTTP servers until SIGTERM, SIGINT or SIGHUP.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenTarget } from './listen.js';
import { ManifoldError } from '../errors.js';

/** A started exporter. */
export interface RunningServers {
  /** Human-readable listening addresses (http://host:port, or "fd N"). */
  addresses: string[];
  /** Resolves when every server is closed (after stop()); rejects on a server error. */
  done: Promise<void>;
  /** Close the servers and their connections. */
  stop(): void;
}

function describe(server: http.Server, target: ListenTarget): string {
  const a = server.address();
  if (a && typeof a === 'object') {
    const host = (a as AddressInfo).family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/metrics${target.kind === 'fd' ? ` (fd ${target.fd})` : ''}`;
  }
  if (typeof a === 'string') return `unix:${a} (fd ${target.kind === 'fd' ? target.fd : '?'})`;
  return target.kind === 'fd' ? `fd ${target.fd}` : `${target.host}:${target.port}`;
}

/** Connections open at once, at most (Prometheus needs one or two; more are closed at once). */
export const MAX_CONNECTIONS = 256;
/** A request's headers must arrive within this time (a client that sends nothing is closed). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request, at most. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Requests on one connection before it is closed (bounds the answers a pipelining client can queue). */
const REQUESTS_PER_CONNECTION = 64;

function listenOne(handler: http.RequestListener, target: ListenTarget): Promise<http.Server> {
  const server = http.createServer(
    { keepAliveTimeout: 30_000, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000 },
    handler,
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.maxRequestsPerSocket = REQUESTS_PER_CONNECTION;
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = target.kind === 'fd' ? `fd ${target.fd}` : `${target.host}:${target.port}`;
      const why = err.code === 'EADDRINUSE' ? 'the address is in use (another exporter?)' : err.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : err.code === 'EACCES' ? 'permission denied' : null;
      reject(why ? new ManifoldError(err.code === 'EACCES' ? 'ERR_PERMISSION' : 'ERR_SYSTEM', `cannot listen on ${where}: ${why}`) : err);
    };
    server.once('error', onError);
    const opts = target.kind === 'fd' ? { fd: target.fd } : { host: target.host, port: target.port };
    server.listen(opts, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/** Start one server per target. */
export async function startServers(handler: http.RequestListener, targets: readonly ListenTarget[]): Promise<RunningServers> {
  const servers: http.Server[] = [];
  try {
    for (const t of targets) servers.push(await listenOne(handler, t));
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  let stopping = false;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_resolve, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);
  for (const s of servers) s.on('error', (err) => fail(err));
  let closeAll: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    closeAll = () => {
      let left = servers.length;
      if (left === 0) resolve();
      for (const s of servers) {
        s.close(() => {
          left--;
          if (left === 0) resolve();
        });
        s.closeAllConnections();
      }
    };
  });
  return {
    addresses: servers.map((s, i) => describe(s, targets[i] as ListenTarget)),
    done: Promise.race([closed, failed]),
    stop() {
      if (stopping) return;
      stopping = true;
      closeAll();
    },
  };
}

/**
 * Resolve with the signal's name once SIGTERM or SIGINT arrived and the
 * servers are closed; reject when a server fails.
 */
export async function runUntilSignal(running: RunningServers): Promise<string> {
  let signal = '';
  const onSignal = (sig: NodeJS.Signals): void => {
    signal = sig;
    running.stop();
  };
  // SIGHUP too (a closed terminal, or a reload request there is nothing to reload for): stop cleanly.
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    await running.done;
    return signal;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
