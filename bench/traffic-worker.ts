/**
 * Traffic worker (runs inside a scratch namespace, JSON-line RPC, see
 * lib/worker.ts). Ops:
 *  - listen {host}: a TCP server on host:0 that writes "ok\n" to every
 *    accepted connection; answers {port, fd}.
 *  - burst {host, port, durationMs, concurrency}: closed loop of
 *    connect + read the answer + close, `concurrency` in flight; answers
 *    {ok, failed, errors, elapsedMs, rate}.
 *  - pacedStart {host, port, rate}: open loop starting `rate` connections
 *    per second until pacedStop, which answers {ok, failed, errors,
 *    elapsedMs, rate}.
 */
import net from 'node:net';
import { serveWorker } from './lib/worker.js';

/** Outcome of a connection loop. */
export interface LoopResult {
  ok: number;
  failed: number;
  /** Failure counts by error code (ECONNREFUSED, TIMEOUT, WRONG_ANSWER, ...). */
  errors: Record<string, number>;
  elapsedMs: number;
  /** Successful connections per second. */
  rate: number;
  /** CPU time (user + system) this process used meanwhile, in ms. */
  cpuMs: number;
}

const ANSWER = 'ok\n';
const CONNECT_TIMEOUT_MS = 3000;
const servers: net.Server[] = [];

function listen(host: string): Promise<{ port: number; fd: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.write(ANSWER);
  });
  server.on('error', () => undefined);
  servers.push(server);
  return new Promise((resolve) => {
    server.listen({ host, port: 0, backlog: 4096 }, () => {
      const addr = server.address() as net.AddressInfo;
      resolve({ port: addr.port, fd: (server as unknown as { _handle: { fd: number } })._handle.fd });
    });
  });
}

/** One connection: connect, read the whole answer, close. Resolves to null or an error code. */
function once(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    let done = false;
    const finish = (err: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === null) s.resetAndDestroy();
      else s.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => finish('TIMEOUT'), CONNECT_TIMEOUT_MS);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      data += d;
      if (data.length >= ANSWER.length) finish(data === ANSWER ? null : 'WRONG_ANSWER');
    });
    s.on('end', () => finish(data === ANSWER ? null : 'WRONG_ANSWER'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'ERROR'));
  });
}

class Tally {
  ok = 0;
  failed = 0;
  errors: Record<string, number> = {};
  readonly t0 = process.hrtime.bigint();
  private readonly cpu0 = process.cpuUsage();

  count(err: string | null): void {
    if (err === null) this.ok++;
    else {
      this.failed++;
      this.errors[err] = (this.errors[err] ?? 0) + 1;
    }
  }

  result(): LoopResult {
    const elapsedMs = Number(process.hrtime.bigint() - this.t0) / 1e6;
    const cpu = process.cpuUsage(this.cpu0);
    return { ok: this.ok, failed: this.failed, errors: this.errors, elapsedMs, rate: (this.ok * 1000) / elapsedMs, cpuMs: (cpu.user + cpu.system) / 1000 };
  }
}

async function burst(host: string, port: number, durationMs: number, concurrency: number): Promise<LoopResult> {
  const tally = new Tally();
  const end = Date.now() + durationMs;
  const lane = async (): Promise<void> => {
    while (Date.now() < end) tally.count(await once(host, port));
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return tally.result();
}

let paced: { tally: Tally; timer: NodeJS.Timeout; inflight: Set<Promise<void>> } | null = null;

function pacedStart(host: string, port: number, rate: number): void {
  if (paced) throw new Error('paced loop already running');
  const tally = new Tally();
  const inflight = new Set<Promise<void>>();
  let started = 0;
  const tick = (): void => {
    const due = Math.floor((Number(process.hrtime.bigint() - tally.t0) / 1e9) * rate);
    for (; started < due; started++) {
      const p: Promise<void> = once(host, port).then((err) => {
        tally.count(err);
        inflight.delete(p);
      });
      inflight.add(p);
    }
  };
  paced = { tally, timer: setInterval(tick, 5), inflight };
}

async function pacedStop(): Promise<LoopResult> {
  if (!paced) throw new Error('no paced loop running');
  const p = paced;
  paced = null;
  clearInterval(p.timer);
  await Promise.all([...p.inflight]);
  return p.tally.result();
}

serveWorker({
  listen: (r) => listen(String(r.host)),
  burst: (r) => burst(String(r.host), Number(r.port), Number(r.durationMs), Number(r.concurrency ?? 1)),
  pacedStart: (r) => pacedStart(String(r.host), Number(r.port), Number(r.rate)),
  pacedStop: () => pacedStop(),
});
