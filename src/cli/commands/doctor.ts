/**
 * doctor: check the kernel, the host, the caller, the namespace's state and
 * the systemd installation; one line per finding, the fix below it; exit
 * status by the worst finding (0 ok/info, 6 warning, 1 error).
 */
import type { Argv, CommandModule } from 'yargs';
import { doctorExitCode, runDoctor, type Finding } from '../../ops/doctor.js';
import { commandHelp } from '../help.js';
import { out, outJson } from '../output.js';
import type { GlobalArgs } from '../context.js';

/** Arguments of doctor. */
export interface DoctorArgs extends GlobalArgs {
  root: string;
}

const LABEL: Record<Finding['severity'], string> = { ok: 'ok', info: 'info', warning: 'WARNING', error: 'ERROR' };

function render(findings: readonly Finding[]): void {
  const width = Math.max(...findings.map((f) => f.id.length));
  for (const f of findings) {
    out(`${LABEL[f.severity].padEnd(8)}${f.id.padEnd(width + 2)}${f.message}`);
    if (f.hint && f.severity !== 'ok') out(`${' '.repeat(8 + width + 2)}fix: ${f.hint}`);
  }
  const count = (s: Finding['severity']): number => findings.filter((f) => f.severity === s).length;
  out(`${count('ok')} ok, ${count('info')} info, ${count('warning')} warning(s), ${count('error')} error(s)`);
}

/** `manifold doctor`. */
export const doctorCommand: CommandModule<GlobalArgs, DoctorArgs> = {
  command: 'doctor',
  describe: 'Check the kernel, libraries, permissions, the state, routes, other sk_lookup programs and the systemd units',
  builder: (y) =>
    commandHelp(
      y.option('root', { type: 'string', default: '/', describe: 'look for the systemd units, generator and sysusers.d file under this directory' }) as Argv<DoctorArgs>,
      [
        ['doctor', 'check this network namespace and /sys/fs/bpf'],
        ['doctor --netns /run/netns/blue --json', 'check a named namespace, as JSON'],
        ['doctor; echo $?', 'exit status 0: fine, 6: warnings, 1: errors'],
      ],
    ),
  handler: (args) => {
    const report = runDoctor({ netns: args.netns, bpffs: args.bpffs, root: args.root });
    const code = doctorExitCode(report.worst);
    if (args.json) outJson({ worst: report.worst, exitCode: code, netns: args.netns, bpffs: args.bpffs, findings: report.findings });
    else render(report.findings);
    if (code !== 0) process.exitCode = code;
  },
};
