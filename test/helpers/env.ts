/**
 * Test environment: a named network namespace (prefix "mf-") with its own
 * bpffs mount, torn down even when a test fails.
 */
import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The CLI entry point. */
export const BIN = path.join(ROOT, 'bin', 'manifold');

/** Time limit of the quick host commands run here (ip, mount, umount). */
const HOST_MS = 30_000;

/**
 * A name for something a test creates (netns, cgroup, account…):
 * `mf-<prefix>-<pid in base 36><2 random base-36 characters>`. The pid is this
 * process's, so test/run.mjs can tell which file made it and remove it when the
 * file dies before its own cleanup. `taken` rejects names already in use.
 */
export function ownedName(prefix: string, taken: (name: string) => boolean = () => false): string {
  for (let i = 0; ; i++) {
    const rand = Math.floor(Math.random() * 1296).toString(36).padStart(2, '0');
    const name = `mf-${prefix}-${process.pid.toString(36)}${rand}`;
    if (!taken(name) || i >= 100) return name;
  }
}

/** Result of running the CLI. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is JSON. */
  json: unknown;
  /** Set when it did not exit by itself: timed out, killed by a signal, or could not start. */
  failure?: string;
}

/** A network namespace + bpffs for one test file. */
export class TestEnv {
  readonly name: string;
  readonly netnsPath: string;
  readonly bpffs: string;
  private readonly pids = new Set<number>();

  private constructor(name: string, bpffs: string) {
    this.name = name;
    this.netnsPath = `/run/netns/${name}`;
    this.bpffs = bpffs;
  }

  /** Create the namespace (lo up, extra addresses) and mount a private bpffs. */
  static create(prefix: string): TestEnv {
    const name = ownedName(prefix, (n) => fs.existsSync(`/run/netns/${n}`));
    execFileSync('ip', ['netns', 'add', name], { timeout: HOST_MS });
    const bpffs = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-bpffs-`));
    const env = new TestEnv(name, bpffs);
    try {
      env.ip('link', 'set', 'lo', 'up');
      env.ip('-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'lo', 'nodad');
      env.ip('-6', 'route', 'add', 'local', '2001:db8:1::/48', 'dev', 'lo');
      env.ip('-6', 'route', 'add', 'local', 'fd00::/8', 'dev', 'lo');
      env.ip('route', 'add', 'local', '192.0.2.0/24', 'dev', 'lo');
      env.ip('route', 'add', 'local', '198.51.100.0/24', 'dev', 'lo');
      execFileSync('mount', ['-t', 'bpf', 'bpf', bpffs], { timeout: HOST_MS });
    } catch (err) {
      env.destroy();
      throw err;
    }
    return env;
  }

  /** Run `ip` inside the namespace. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', timeout: HOST_MS });
  }

  /**
   * Run the manifold CLI against this namespace and bpffs. `wrap` is a
   * command prefix (e.g. setpriv … --) to run it under.
   */
  cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; global?: boolean; timeoutMs?: number; wrap?: string[] } = {}): CliResult {
    const full = opts.global === false ? args : [...args, '--netns', this.netnsPath, '--bpffs', this.bpffs];
    const argv = [...(opts.wrap ?? []), BIN, ...full];
    const r = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      env: { ...process.env, ...opts.env },
      input: opts.input ?? '',
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 512 * 1024 * 1024,
    });
    let json: unknown = null;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = null;
    }
    const limit = opts.timeoutMs ?? 120_000;
    const failure = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT'
      ? `did not finish within ${limit} ms and was killed`
      : r.error
        ? `could not run: ${r.error.message}`
        : r.signal
          ? `was killed by ${r.signal}`
          : undefined;
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json, ...(failure ? { failure } : {}) };
  }

  /** Run the CLI without blocking (so a test can act while it runs); resolves when it exits (limit 120 s). */
  cliAsync(args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (stderrSoFar: string) => void): Promise<CliResult> {
    const child = spawn(BIN, [...args, '--netns', this.netnsPath, '--bpffs', this.bpffs], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        let json: unknown = null;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = null;
        }
        resolve({ code: code ?? -1, stdout, stderr, json, ...(signal ? { failure: `was killed by ${signal}` } : {}) });
      });
    });
  }

  /** Run the CLI and fail loudly unless it exits 0. */
  ok(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; global?: boolean } = {}): CliResult {
    const r = this.cli(args, opts);
    if (r.code !== 0) throw new Error(`manifold ${args.join(' ')} ${r.failure ?? `exited ${r.code}`}: ${r.stderr}`);
    return r;
  }

  /** Spawn a process inside the namespace (nsenter, no /sys remount). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ReturnType<typeof spawn> {
    const child = spawn('nsenter', [`--net=${this.netnsPath}`, '--', cmd, ...args], opts);
    if (child.pid) this.pids.add(child.pid);
    return child;
  }

  /** Remember a pid to kill at teardown. */
  track(pid: number): void {
    this.pids.add(pid);
  }

  /** Kill every started process, unmount bpffs, delete the namespace. */
  destroy(): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.pids.clear();
    spawnSync('umount', [this.bpffs], { stdio: 'ignore', timeout: HOST_MS });
    try {
      fs.rmdirSync(this.bpffs);
    } catch {
      /* not empty or gone */
    }
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore', timeout: HOST_MS });
  }
}
