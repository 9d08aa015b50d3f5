/**
 * `manifold doctor`: checks of the kernel, the host, the caller, the
 * namespace's dispatcher state, its routes and the systemd installation,
 * each reported as findings with a stable id, a severity and a fix hint.
 * Read-only: probes create unpinned objects only and close them; nothing
 * pinned, attached or configured changes.
 *
 * The checks live in doctor-*.ts by subject; a check that throws becomes a
 * warning finding "<group>.unchecked" instead of ending the run.
 */
import { kernelFindings } from './doctor-kernel.js';
import { hostFindings } from './doctor-host.js';
import { stateFindings } from './doctor-state.js';
import { systemdFindings } from './doctor-systemd.js';
import fs from 'node:fs';
import { toManifoldError } from '../errors.js';
import { resolveTarget, type ResolvedTarget } from '../state/paths.js';
import { finding, worse, type DoctorContext, type DoctorOptions, type Finding, type Severity } from './doctor-finding.js';
import { netnsExecName } from './netns-exec.js';

export { finding, SEVERITIES, type DoctorOptions, type Finding, type Severity } from './doctor-finding.js';

/** The result of a run. */
export interface DoctorReport {
  findings: Finding[];
  worst: Severity;
}

/** Exit status of doctor for its worst finding: 0 ok or info, 6 warning, 1 error. */
export function doctorExitCode(worst: Severity): number {
  return worst === 'error' ? 1 : worst === 'warning' ? 6 : 0;
}

/** Run a group of checks; an exception becomes one warning finding. */
export function guarded(group: string, fn: () => Finding[]): Finding[] {
  try {
    return fn();
  } catch (err) {
    return [finding(`${group}.unchecked`, 'warning', `could not check ${group}: ${toManifoldError(err).message}`, 'run "manifold doctor" as root to check everything')];
  }
}

/**
 * Resolve what every check needs. A --netns that is not a network
 * namespace is a usage error (thrown); an unusable --bpffs is a finding.
 */
function context(opts: DoctorOptions): DoctorContext {
  let target: ResolvedTarget | null = null;
  let bpffsError: string | null = null;
  try {
    target = resolveTarget(opts);
  } catch (err) {
    const m = toManifoldError(err);
    if (!m.message.startsWith('--bpffs')) throw m;
    bpffsError = m.message.replace(/^--bpffs \S+: /, '');
  }
  const ino = Number(fs.statSync(opts.netns).ino);
  let own = false;
  try {
    own = Number(fs.statSync('/proc/self/ns/net').ino) === ino;
  } catch {
    own = false;
  }
  return { opts, target, bpffsError, netnsIno: ino, ownNetns: own, netnsExec: netnsExecName() };
}

/** Run every check. */
export function runDoctor(opts: DoctorOptions): DoctorReport {
  const ctx = context(opts);
  const findings = [
    ...guarded('kernel', () => kernelFindings(ctx)),
    ...guarded('host', () => hostFindings(ctx)),
    ...guarded('state', () => stateFindings(ctx)),
    ...guarded('systemd', () => systemdFindings(ctx)),
  ];
  return { findings, worst: findings.reduce<Severity>((w, f) => worse(w, f.severity), 'ok') };
}
