/**
 * The exporter's HTTP answers: /metrics (Prometheus text format), / (a
 * pointer to /metrics), 404 for anything else, 405 for methods other than
 * GET and HEAD. A scrape that cannot read the state answers 503/500 with a
 * one-line text body and is logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { classifyFailure, type ScrapeFailure } from './failure.js';
import { createExporterRegistry, type ExporterRegistry } from './registry.js';
import { SnapshotSource, type MetricsSnapshot } from './snapshot.js';

/** Where failures and recoveries are reported. */
export interface ScrapeLog {
  failed(f: ScrapeFailure): void;
  recovered(): void;
}

/** Result of one scrape. */
export interface ScrapeResult {
  status: number;
  contentType: string;
  body: string;
}

const INDEX = `<!DOCTYPE html>
<html><head><title>manifold metrics</title></head>
<body><h1>manifold metrics</h1><p>Prometheus metrics are at <a href="/metrics">/metrics</a>.</p></body></html>
`;

/** Failures with the same message are logged again at most this often. */
const RELOG_MS = 60_000;

/** Scrapes the state and answers HTTP requests. */
export class MetricsExporter {
  private readonly source: SnapshotSource;
  private readonly reg: ExporterRegistry;
  private readonly log: ScrapeLog;
  /** The scrape running now, and the one every request that came since waits for. */
  private running: Promise<ScrapeResult> | null = null;
  private queued: Promise<ScrapeResult> | null = null;
  private lastFailure: { message: string; at: number } | null = null;

  constructor(read: () => MetricsSnapshot, log: ScrapeLog) {
    this.source = new SnapshotSource(read);
    this.reg = createExporterRegistry(this.source);
    this.log = log;
  }

  /**
   * The result of a scrape that starts no earlier than this call. Scrapes
   * run one at a time, and every request that arrives while one runs shares
   * the next: however many requests come (pipelined, or from many clients),
   * at most two scrapes exist, one running and one waiting.
   */
  scrape(): Promise<ScrapeResult> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    this.queued = this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.queued;
  }

  private start(): Promise<ScrapeResult> {
    this.queued = null;
    const run = this.scrapeNow();
    this.running = run;
    run
      .finally(() => {
        if (this.running === run) this.running = null;
      })
      .catch(() => undefined);
    return run;
  }

  private async scrapeNow(): Promise<ScrapeResult> {
    this.source.begin();
    try {
      const body = await this.reg.registry.metrics();
      if (this.lastFailure) {
        this.lastFailure = null;
        this.log.recovered();
      }
      return { status: 200, contentType: this.reg.registry.contentType, body };
    } catch (err) {
      const f = classifyFailure(err);
      this.reg.collectionError(f.reason);
      const now = Date.now();
      if (!this.lastFailure || this.lastFailure.message !== f.message || now - this.lastFailure.at >= RELOG_MS) {
        this.lastFailure = { message: f.message, at: now };
        this.log.failed(f);
      }
      return { status: f.status, contentType: 'text/plain; charset=utf-8', body: `manifold: cannot read the dispatcher state (${f.code}): ${f.message}\n` };
    } finally {
      this.source.end();
    }
  }

  /** The request listener for http.createServer. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.respond(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', `manifold: internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  };

  private async respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The path as sent, up to any query: "//metrics" is not "/metrics" (a URL parser would read a host).
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let pathname = q < 0 ? url : url.slice(0, q);
    // An absolute-form request target ("GET http://host:port/metrics").
    const abs = /^https?:\/\/[^/]*(\/.*)?$/i.exec(pathname);
    if (abs) pathname = abs[1] ?? '/';
    if (pathname !== '/metrics' && pathname !== '/') {
      send(res, req, 404, 'text/plain; charset=utf-8', 'not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (pathname === '/') {
      send(res, req, 200, 'text/html; charset=utf-8', INDEX);
      return;
    }
    const r = await this.scrape();
    // A client that went away meanwhile gets nothing (its socket is gone).
    if (res.destroyed || req.socket.destroyed) return;
    send(res, req, r.status, r.contentType, r.body);
  }
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}
