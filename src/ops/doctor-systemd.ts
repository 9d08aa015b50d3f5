/**
 * doctor: is manifold installed for systemd — its units, the generator,
 * the sysusers.d file and group `manifold`, and is manifold.service enabled
 * (a symlink in a `.wants/` or `.requires/` directory of one of the targets
 * its [Install] section names) and not masked. Files are looked for under
 * `root` (default /) in systemd's search paths, so an image can be checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { finding, type DoctorContext, type Finding } from './doctor-finding.js';

const UNIT_DIRS = ['etc/systemd/system', 'run/systemd/system', 'usr/local/lib/systemd/system', 'usr/lib/systemd/system', 'lib/systemd/system'];
const GENERATOR_DIRS = ['etc/systemd/system-generators', 'run/systemd/system-generators', 'usr/local/lib/systemd/system-generators', 'usr/lib/systemd/system-generators', 'lib/systemd/system-generators'];
const SYSUSERS_DIRS = ['etc/sysusers.d', 'run/sysusers.d', 'usr/local/lib/sysusers.d', 'usr/lib/sysusers.d'];

/** Units the package installs (manifold-discovery.service is opt-in and not required). */
export const UNITS = ['manifold.service', 'manifold-register@.service', 'manifold-metrics.socket', 'manifold-metrics.service'];

/** The first existing file `name` in `dirs` under `root` (symlinks not followed), or null. */
function find(root: string, dirs: readonly string[], name: string): string | null {
  for (const d of dirs) {
    const p = path.join(root, d, name);
    try {
      fs.lstatSync(p);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Targets named by WantedBy=/RequiredBy= of a unit file's [Install] section. */
export function installTargets(unitText: string): { wants: string[]; requires: string[] } {
  const wants: string[] = [];
  const requires: string[] = [];
  let section = '';
  for (const raw of unitText.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    else if (section === '[Install]') {
      const m = /^(WantedBy|RequiredBy)\s*=\s*(.*)$/.exec(line);
      if (m) (m[1] === 'WantedBy' ? wants : requires).push(...(m[2] as string).split(/\s+/).filter(Boolean));
    }
  }
  return { wants, requires };
}

function masked(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink() && fs.readlinkSync(file) === '/dev/null';
  } catch {
    return false;
  }
}

function enabled(root: string, unit: string, file: string): Finding {
  const id = 'systemd.enabled';
  const etc = path.join(root, 'etc/systemd/system', unit);
  if (masked(etc) || masked(file)) return finding(id, 'warning', `${unit} is masked: the dispatcher is not loaded at boot`, `systemctl unmask ${unit} && systemctl enable ${unit}`);
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* unreadable: no targets */
  }
  const { wants, requires } = installTargets(text);
  const links = [...wants.map((t) => `${t}.wants/${unit}`), ...requires.map((t) => `${t}.requires/${unit}`)];
  const found = links.map((l) => find(root, UNIT_DIRS, l)).filter((p): p is string => p !== null);
  if (found.length > 0) return finding(id, 'ok', `${unit} is enabled (${found.join(', ')})`);
  return finding(id, 'warning', `${unit} is installed but not enabled: the dispatcher is not loaded and the configured bindings not applied at boot`, `systemctl enable --now ${unit}`);
}

function groupExists(root: string, name: string): boolean {
  try {
    return fs.readFileSync(path.join(root, 'etc/group'), 'utf8').split('\n').some((l) => l.split(':')[0] === name);
  } catch {
    return false;
  }
}

/** Findings about the systemd installation. */
export function systemdFindings(ctx: DoctorContext): Finding[] {
  const root = ctx.opts.root;
  const units = UNITS.map((u) => ({ unit: u, file: find(root, UNIT_DIRS, u) }));
  const generator = find(root, GENERATOR_DIRS, 'manifold-generator');
  const sysusers = find(root, SYSUSERS_DIRS, 'manifold.conf');
  const present = units.filter((u) => u.file !== null);
  if (present.length === 0 && generator === null && sysusers === null) {
    return [finding('systemd.units', 'info', `manifold is not installed for systemd under ${root} (no units, generator or sysusers.d file): fine when run by hand or from a checkout`, 'install the package (make deb; apt install ./manifold_*.deb) to load the dispatcher at boot')];
  }
  const out: Finding[] = [];
  const missing = units.filter((u) => u.file === null).map((u) => u.unit);
  out.push(missing.length
    ? finding('systemd.units', 'warning', `units missing: ${missing.join(', ')} (found ${present.map((u) => u.file).join(', ') || 'none'})`, 'reinstall the package (or make install)', { units })
    : finding('systemd.units', 'ok', `units installed: ${present.map((u) => u.file).join(', ')}`, undefined, { units }));
  out.push(generator
    ? finding('systemd.generator', 'ok', `generator installed: ${generator}`)
    : finding('systemd.generator', 'warning', 'the generator manifold-generator is missing: config files do not register any socket', 'reinstall the package (or make install)'));
  if (!sysusers) out.push(finding('systemd.sysusers', 'warning', 'sysusers.d/manifold.conf is missing: group "manifold" (the state\'s readers) is not created at boot', 'reinstall the package (or make install)'));
  else if (!groupExists(root, 'manifold')) out.push(finding('systemd.sysusers', 'warning', `${sysusers} is installed but group "manifold" does not exist yet`, 'systemd-sysusers (or reboot)'));
  else out.push(finding('systemd.sysusers', 'ok', `${sysusers} installed and group "manifold" exists`));
  const service = units.find((u) => u.unit === 'manifold.service')?.file;
  if (service) out.push(enabled(root, 'manifold.service', service));
  return out;
}
