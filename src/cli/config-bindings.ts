/**
 * Bindings from the manifold config files, for `apply --config`.
 */
import { configBindings, configError, configTargets, formatProblem, loadConfig, type ConfigProblem, type ConfigTarget } from '../config/index.js';
import type { EntryInput } from '../ops/binding-set.js';
import { emitEvent, Priority } from '../log/events.js';
import { info } from './output.js';

/** What `apply --config` takes from the config files. */
export interface ConfigSource {
  /** The Bind= lines of the valid files as apply specs. */
  specs: (EntryInput & { source: string })[];
  /** Labels the valid files define (also those without Bind= lines). */
  labels: Set<string>;
  /** Problems of the files left out (only with skipInvalid; otherwise they throw). */
  problems: ConfigProblem[];
  /** The Target= lines of the valid files, one per destination. */
  targets: ConfigTarget[];
  /** Label → the systemd unit that registers its sockets (Socket= or Service=), for labels that have one. */
  registeredBy: Map<string, string>;
}

/**
 * The configuration for `apply --config`. Any problem refuses the whole
 * configuration (ERR_INVALID_CONFIG), unless `skipInvalid`: then the files
 * with problems are left out and their problems returned.
 */
export function configSource(skipInvalid: boolean): ConfigSource {
  const { units, problems } = loadConfig();
  if (problems.length > 0 && !skipInvalid) throw configError(problems);
  const specs = configBindings(units).map((b) => ({ label: b.label, protocol: b.protocol, prefix: b.prefix, port: b.port, source: b.source }));
  const registeredBy = new Map<string, string>();
  for (const u of units) {
    const unit = u.sockets[0]?.unit ?? u.service?.unit;
    if (unit !== undefined) registeredBy.set(u.name, u.sockets.length > 1 ? `${unit} (and ${u.sockets.length - 1} more)` : unit);
  }
  return { specs, labels: new Set(units.map((u) => u.name)), problems, targets: configTargets(units), registeredBy };
}

/**
 * Report the problems of files `apply --config --skip-invalid` left out: one
 * line each on stderr and, unless `dryRun`, one error event each (the
 * journal at priority err, with the file and line).
 */
export function reportLeftOut(problems: readonly ConfigProblem[], dryRun: boolean): void {
  for (const p of problems) {
    const text = formatProblem(p);
    if (!dryRun) emitEvent('error', Priority.err, `config: ${text} (file skipped)`, { CODE: 'ERR_INVALID_CONFIG', CONFIG_FILE: p.file, CONFIG_LINE: p.line });
    info(`manifold: error: ${text} (file skipped)`);
  }
}
