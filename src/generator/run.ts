/**
 * The systemd generator: `manifold-generator [--dry-run] NORMAL_DIR [EARLY_DIR LATE_DIR]`.
 *
 * Reads the manifold config files and writes drop-ins into NORMAL_DIR (see
 * render.ts). Follows systemd.generator(7): no processes, D-Bus or network;
 * logs to /dev/kmsg; a bad config file is logged and skipped; exits 0 unless
 * it cannot write its output. The output directories must be absolute, as
 * systemd passes them: a relative one is refused before anything is written.
 * `manifold.generator=0` on the kernel command line (read as systemd does:
 * cmdline.ts) turns it off.
 *
 * Socket= lines are rendered for the running systemd (systemd-version.ts):
 * on >= 256 with PassFileDescriptorsToExec=, else with the register template.
 *
 * Environment (for tests): MANIFOLD_CONFIG_DIRS, MANIFOLD_BIN,
 * MANIFOLD_GENERATOR_LOG=stderr, MANIFOLD_SYSTEMD_VERSION (instead of
 * reading the running systemd's version from /proc/1/maps).
 */
import { fs, path } from '../config/node.js';
import { configDirs, loadConfig } from '../config/load.js';
import { clip, quote } from '../config/problems.js';
import { countProblems, type ConfigProblem } from '../config/types.js';
import { hasUnsafeCharacters } from '../core/escape.js';
import { generatorSwitch, kernelCommandLine } from './cmdline.js';
import { GeneratorLog, Level } from './log.js';
import { DEFAULT_MANIFOLD_BIN, renderDropIns, renderLabel, type RenderOptions, type SocketForm } from './render.js';
import { passesFdsToExec, runningSystemdVersion } from './systemd-version.js';
import { dryRunText, writeAll } from './write.js';

/** Most files whose problems are logged one by one. */
const MAX_LOGGED_FILES = 10;

function inInitrd(env: NodeJS.ProcessEnv): boolean {
  const v = env['SYSTEMD_IN_INITRD'];
  if (v !== undefined) return v === '1';
  return fs.existsSync('/etc/initrd-release');
}

function logProblems(log: GeneratorLog, problems: readonly ConfigProblem[]): void {
  const byFile = new Map<string, ConfigProblem[]>();
  for (const p of problems) {
    const list = byFile.get(p.file) ?? [];
    list.push(p);
    byFile.set(p.file, list);
  }
  let shown = 0;
  for (const [file, list] of byFile) {
    if (shown++ === MAX_LOGGED_FILES) {
      log.log(Level.err, `${byFile.size - MAX_LOGGED_FILES} more config files have problems; run "manifold verify"`);
      break;
    }
    const first = list[0] as ConfigProblem;
    const at = first.line > 0 ? `${file}:${first.line}` : file;
    // Problems a file had beyond those recorded count too (src/config/problems.ts).
    const others = countProblems(list) - 1;
    const more = others > 0 ? `; ${others} more problem${others > 1 ? 's' : ''}, run "manifold verify"` : '';
    log.log(Level.err, `${at}: ${first.message} (file skipped${more})`);
  }
}

/** Run the generator; returns the exit status. */
export function run(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, stdout: (s: string) => void = (s) => void fs.writeSync(1, s)): number {
  const dryRun = argv.includes('--dry-run');
  const positional = argv.filter((a) => a !== '--dry-run');
  const log = new GeneratorLog(dryRun || env['MANIFOLD_GENERATOR_LOG'] === 'stderr' ? 'stderr' : 'kmsg');
  try {
    const unknown = positional.find((a) => a.startsWith('-'));
    const countOk = positional.length === 1 || positional.length === 3 || (dryRun && positional.length === 0);
    if (unknown !== undefined || !countOk) {
      log.log(Level.err, `usage: manifold-generator [--dry-run] NORMAL_DIR [EARLY_DIR LATE_DIR]${unknown ? ` (unknown option ${clip(unknown)})` : ''}`);
      return 1;
    }
    // systemd passes absolute paths; a relative one ("" included) would
    // write into whatever directory the generator happens to run in.
    const relative = positional.find((a) => !path.isAbsolute(a));
    if (relative !== undefined) {
      log.log(Level.err, `output directories must be absolute paths, got ${quote(relative)}; nothing generated`);
      return 1;
    }
    const sw = generatorSwitch(kernelCommandLine(env), inInitrd(env));
    for (const w of sw.invalid) log.log(Level.warning, `ignoring ${quote(w)} on the kernel command line: not a boolean`);
    if (!sw.enabled) {
      log.log(Level.info, `disabled by "${sw.word ?? 'manifold.generator=0'}" on the kernel command line; nothing generated`);
      return 0;
    }
    const manifoldBin = env['MANIFOLD_BIN'] || DEFAULT_MANIFOLD_BIN;
    if (!path.isAbsolute(manifoldBin) || hasUnsafeCharacters(manifoldBin)) {
      log.log(Level.err, `MANIFOLD_BIN must be an absolute path without control characters, got ${quote(manifoldBin)}`);
      return 1;
    }
    const config = loadConfig(configDirs(env));
    logProblems(log, config.problems);
    let socketForm: SocketForm = 'register-template';
    if (config.units.some((u) => u.sockets.length > 0)) {
      const systemd = runningSystemdVersion(env);
      if (systemd.warning !== undefined) log.log(Level.warning, systemd.warning);
      if (systemd.version === null) log.log(Level.notice, `cannot tell the systemd version (${systemd.source}): Socket= lines use manifold-register@.service`);
      if (passesFdsToExec(systemd)) socketForm = 'pass-fds';
    }
    const opts: RenderOptions = { manifoldBin, socketForm };
    const dir = positional[0];
    if (dryRun) {
      stdout(dryRunText(dir, renderDropIns(config.units, opts)));
      return 0;
    }
    // Each label's drop-ins are rendered in full, then written all or none.
    let status = 0;
    for (const u of config.units) {
      try {
        writeAll(dir as string, renderLabel(u, opts));
      } catch (err) {
        log.log(Level.err, `${u.file}: label "${u.name}" skipped, none of its drop-ins written: ${(err as Error).message}`);
        status = 1;
      }
    }
    return status;
  } catch (err) {
    log.log(Level.err, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    log.close();
  }
}
