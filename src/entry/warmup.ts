/**
 * Build-time warm-up of the single executable's start-up snapshot (see
 * sea.ts): V8 compiles a function on its first call, and the snapshot keeps
 * what was compiled while it was built. Parsing typical command lines up to
 * the command handler, rendering the help (yargs renders a command's help on
 * every run) and running the generator on a few config files moves that
 * work from every start to the build.
 *
 * Runs only while the snapshot is built, so it must capture nothing from the
 * build's environment: the parser gets a fixed width and version, no handler
 * runs (a global middleware stops each parse just before it), and nothing
 * here reads the program directory, stdout or the clock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cliParser, type ParserEnvironment } from '../cli/main.js';
import { run as runGenerator } from '../generator/run.js';
import { runningSystemdVersion } from '../generator/systemd-version.js';

/** Paths that exist nowhere, in case a handler ran anyway. */
const NS = ['--netns', '/nonexistent/netns', '--bpffs', '/nonexistent/bpffs'];

/** Command lines whose parse is compiled into the snapshot: every single-shot command. */
export const WARM_UP_LINES: readonly (readonly string[])[] = [
  ['version', ...NS],
  ['version', '--json', ...NS],
  ['bind', 'web', 'tcp', '192.0.2.0/24', '80', ...NS],
  ['bind', 'web', 'udp', '2001:db8::/64', '8000-8080', '--json', ...NS],
  ['unbind', 'web', 'tcp', '192.0.2.0/24', '80', ...NS],
  ['bindings', ...NS],
  ['status', ...NS],
  ['status', 'web', '--json', ...NS],
  ['register', 'web', ...NS],
  ['register-pid', '1', 'web', 'tcp', '127.0.0.1', '80', ...NS],
  ['unregister', 'web', 'ipv4', 'tcp', ...NS],
  ['lookup', 'tcp', '192.0.2.1', '80', ...NS],
  ['load', ...NS],
  ['unload', ...NS],
  ['upgrade', ...NS],
  ['apply', '/nonexistent/bindings.json', ...NS],
  ['verify', '/nonexistent/web.conf', ...NS],
];

/** Config files for the generator's warm-up: every key, both sources, ranges, IPv6, comments. */
const WARM_UP_CONFIGS: Record<string, string> = {
  'web.conf': '# web\n[Label]\nBind=tcp 192.0.2.0/24 80\nBind=tcp 192.0.2.0/24 443\nBind=tcp 2001:db8:80::/48 80\nSocket=web.socket\n',
  'dns.conf': '[Label]\nName=dns\nBind=any 198.51.100.0/24 53\nBind=any 198.51.100.0/24 5300-5399\nService=unbound.service\nListen=any 127.0.0.1 53\nRegistration=optional\n',
  'api.conf': '[Label]\nName=api\nBind=udp 203.0.113.7 0\nBind=tcp 2001:db8::/64 8000-8080\nService=api.service\nListen=tcp 127.0.0.1 8443\nListen=udp ::1 8443\nX-Note=kept\n',
  'mail.conf': '[Label]\nName=mail\nBind=tcp 203.0.113.0/28 25\nSocket=smtp.socket\nSocket=submission.socket\n',
  'empty.conf': '',
};

/**
 * Run the generator for real (write mode) on WARM_UP_CONFIGS in `dir`
 * (created and removed here). The snapshot keeps some of the strings of
 * that run (paths among them) and Node's buffer of the last stat(2) result:
 * the directory is always the same (the build's, see scripts/build-sea.mjs)
 * and the stat buffers are cleared, so that two builds give the same bytes.
 */
function warmUpGenerator(dir: string): void {
  const tmp = path.join(dir, 'warm-up');
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    const conf = path.join(tmp, 'conf');
    const out = path.join(tmp, 'out');
    fs.mkdirSync(conf);
    fs.mkdirSync(out);
    for (const [name, text] of Object.entries(WARM_UP_CONFIGS)) fs.writeFileSync(path.join(conf, name), text);
    // Both renderings of Socket= (systemd before and from 256), the version given (the build
    // machine's PID 1 is nobody's business); then its detection, on a made-up /proc/1/maps line.
    for (const version of ['252', '257']) {
      const env = { MANIFOLD_CONFIG_DIRS: conf, SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0', MANIFOLD_GENERATOR_LOG: 'stderr', MANIFOLD_SYSTEMD_VERSION: version };
      runGenerator([out, out, out], env, () => {});
      runGenerator(['--dry-run'], env, () => {});
    }
    runningSystemdVersion({}, () => '7f0000000000-7f0000001000 r-xp 00000000 fe:01 1 /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so\n');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    clearStatBuffers();
  }
}

/** Zero the buffers Node's fs binding returns stat(2) results in (timestamps of the warm-up's files). */
function clearStatBuffers(): void {
  const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding('fs');
  for (const key of ['statValues', 'bigintStatValues', 'statFsValues', 'bigintStatFsValues']) {
    const a = binding[key];
    if (a instanceof Float64Array) a.fill(0);
    else if (a instanceof BigInt64Array) a.fill(0n);
  }
}

class Stop extends Error {}

/**
 * Warm up, working in `dir` (the build directory); resolves to the number of
 * lines that reached the point just before their handler (all of them unless
 * the CLI changed: the build checks).
 */
export async function warmUp(dir: string): Promise<number> {
  const env: ParserEnvironment = { columns: 100, version: '0.0.0-warm-up' };
  let stopped = 0;
  for (const argv of WARM_UP_LINES) {
    const parser = cliParser([...argv], env)
      .middleware(() => {
        throw new Stop();
      }, false)
      .fail((_msg, err) => {
        throw err ?? new Error(_msg);
      })
      .exitProcess(false);
    try {
      await parser.parseAsync();
    } catch (err) {
      if (err instanceof Stop) stopped++;
    }
  }
  await cliParser([], env).getHelp();
  warmUpGenerator(dir);
  return stopped;
}
