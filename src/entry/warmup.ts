/**
 * Build-time warm-up of the single executable's start-up snapshot (see
 * sea.ts): V8 compiles a function on its first call, and the snapshot keeps
 * what was compiled while it was built. Parsing typical command lines up to
 * the command handler, rendering the help (yargs renders a command's help on
 * every run) and running the generator on example configs moves that work
 * from every start to the build.
 *
 * Runs only while the snapshot is built, so it must capture nothing from the
 * build's environment: the parser gets a fixed width and version, no handler
 * runs (a global middleware stops each parse just before it), and nothing
 * here reads the program directory, stdout or the clock.
 */
import { cliParser, type ParserEnvironment } from '../cli/main.js';
import { run as runGenerator } from '../generator/run.js';

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
  ['load', ...NS],
  ['unload', ...NS],
  ['upgrade', ...NS],
  ['apply', '/nonexistent/bindings.json', ...NS],
  ['verify', '/nonexistent/web.conf', ...NS],
];

class Stop extends Error {}

/**
 * Warm up; resolves to the number of lines that reached the point just
 * before their handler (all of them unless the CLI changed: the build checks).
 * `configDirs` (colon-separated) feed one dry run of the generator.
 */
export async function warmUp(configDirs: string | undefined): Promise<number> {
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
  if (configDirs) {
    runGenerator(['--dry-run'], { MANIFOLD_CONFIG_DIRS: configDirs, SYSTEMD_PROC_CMDLINE: '', SYSTEMD_IN_INITRD: '0' }, () => {});
  }
  return stopped;
}
