/**
 * Running `manifold metrics` inside a test namespace and scraping it from
 * inside that namespace (nsenter + node's fetch), so nothing listens in
 * the machine's own network namespace.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { BIN, type TestEnv } from './env.js';
import { withTimeout } from './wait.js';

/** An HTTP answer. */
export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

const FETCH = `const [url, method] = process.argv.slice(1);
fetch(url, { method }).then(async (r) => {
  process.stdout.write(JSON.stringify({ status: r.status, contentType: r.headers.get('content-type') ?? '', body: await r.text() }));
}, (e) => { process.stdout.write(JSON.stringify({ status: -1, contentType: '', body: String(e && e.cause ? e.cause.code || e.cause : e) })); });`;

/** GET (or another method) a URL from inside the namespace of `netnsPath`. */
export function httpIn(netnsPath: string, url: string, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', FETCH, url, method], { encoding: 'utf8', timeout: 30_000 }, (err, stdout) => {
      if (err && !stdout) reject(err);
      else resolve(JSON.parse(stdout) as HttpAnswer);
    });
  });
}

/** Options of {@link Exporter.start}. */
export interface ExporterOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port, read back from the startup line). */
  port?: number;
  /** Command prefix, e.g. setpriv … to run as another user, or systemd-socket-activate …. */
  wrap?: string[];
  /** Arguments after `metrics` instead of host and port (e.g. [] with socket activation). */
  listenArgs?: string[];
  /** Port to reach when listenArgs hides it (socket activation). */
  knownPort?: number;
  /** stderr pattern meaning "ready" (default: the exporter's "serving metrics on" line). */
  ready?: RegExp;
}

/** A running exporter. */
export class Exporter {
  readonly child: ChildProcess;
  readonly port: number;
  private readonly env: TestEnv;
  private readonly errBox: { text: string };
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(env: TestEnv, child: ChildProcess, port: number, err: { text: string }, exited: Exporter['exited']) {
    this.env = env;
    this.child = child;
    this.port = port;
    this.exited = exited;
    this.errBox = err;
  }

  /** Start the exporter and wait for its "serving metrics on" line. */
  static async start(env: TestEnv, opts: ExporterOptions = {}): Promise<Exporter> {
    const listen = opts.listenArgs ?? [opts.host ?? '127.0.0.1', String(opts.port ?? 0)];
    const argv = [...(opts.wrap ?? []), BIN, 'metrics', ...listen, '--netns', env.netnsPath, '--bpffs', env.bpffs];
    const [cmd, ...args] = argv;
    const child = env.spawn(cmd ?? 'false', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const err = { text: '' };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stdout?.resume();
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`exporter did not start: ${err.text}`)), 20_000);
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        err.text += d;
        const m = (opts.ready ?? /serving metrics on http:\/\/[^ ]*?:(\d+)\/metrics/).exec(err.text);
        if (m) {
          clearTimeout(timer);
          resolve(opts.knownPort ?? Number(m[1]));
        }
      });
      void exited.then((r) => {
        clearTimeout(timer);
        reject(new Error(`exporter exited (${r.code ?? r.signal}) before serving: ${err.text}`));
      });
    });
    return new Exporter(env, child, port, err, exited);
  }

  /** Everything the exporter wrote to stderr so far. */
  get stderr(): string {
    return this.errBox.text;
  }

  /** Request a path from inside the namespace. */
  get(path = '/metrics', method = 'GET', host = '127.0.0.1'): Promise<HttpAnswer> {
    return httpIn(this.env.netnsPath, `http://${host}:${this.port}${path}`, method);
  }

  /** Send a signal and wait for the exit (SIGKILL after `timeoutMs`, give up 10 s later). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const t0 = Date.now();
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      // `exited` listens since the start: an exit that already happened is not missed.
      const r = await withTimeout(this.exited, timeoutMs + 10_000, `the exit of manifold metrics after ${signal} (stderr: ${this.errBox.text})`);
      return { ...r, ms: Date.now() - t0 };
    } finally {
      clearTimeout(timer);
    }
  }
}
