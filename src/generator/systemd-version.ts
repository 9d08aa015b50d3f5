/**
 * Which systemd the generator runs under, to pick how socket registrations are rendered.
 *
 * systemd tells generators nothing about its version (252 and 257 pass SYSTEMD_SCOPE,
 * SYSTEMD_IN_INITRD, SYSTEMD_FIRST_BOOT, SYSTEMD_VIRTUALIZATION, SYSTEMD_ARCHITECTURE), and a
 * generator must not ask the manager. The running manager is PID 1 of the generator's pid
 * namespace, and every Debian/Fedora/Arch build maps its libsystemd-shared-<version>.so: its
 * name in /proc/1/maps is the version of the systemd actually running (not merely installed:
 * after an upgrade without daemon-reexec the old file is still the mapped one).
 */
import { fs } from '../config/node.js';
import { quote } from '../config/problems.js';

/** First systemd version whose socket units know PassFileDescriptorsToExec=. */
export const PASS_FDS_TO_EXEC_SINCE = 256;

/** The running systemd's version as far as the generator can tell. */
export interface SystemdVersion {
  /** Major version, or null when it cannot be told. */
  version: number | null;
  /** Where it came from, or why it is unknown (for the log). */
  source: string;
  /** Set when $MANIFOLD_SYSTEMD_VERSION was given but is not a version number. */
  warning?: string;
}

/** The major version in the libsystemd-shared file name mapped into a process, or null. */
export function versionFromMaps(maps: string): number | null {
  const m = /\/libsystemd-shared-(\d{3,})[^/\n]*\.so\b/.exec(maps);
  return m ? Number(m[1]) : null;
}

/**
 * The running systemd's major version: `$MANIFOLD_SYSTEMD_VERSION` if set (tests; a bad
 * value is reported and ignored), else from /proc/1/maps.
 */
export function runningSystemdVersion(env: NodeJS.ProcessEnv, readMaps: () => string = () => fs.readFileSync('/proc/1/maps', 'utf8')): SystemdVersion {
  const override = env['MANIFOLD_SYSTEMD_VERSION'];
  let warning: string | undefined;
  if (override !== undefined && override !== '') {
    if (/^\d{1,4}$/.test(override)) return { version: Number(override), source: 'MANIFOLD_SYSTEMD_VERSION' };
    warning = `ignoring MANIFOLD_SYSTEMD_VERSION=${quote(override)}: not a version number`;
  }
  const found = ((): SystemdVersion => {
    try {
      const version = versionFromMaps(readMaps());
      return { version, source: version === null ? 'PID 1 maps no libsystemd-shared-<version>.so' : '/proc/1/maps' };
    } catch (err) {
      return { version: null, source: `cannot read /proc/1/maps (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
  })();
  return warning === undefined ? found : { ...found, warning };
}

/** True when socket units of this systemd pass their fds to ExecStartPost= (PassFileDescriptorsToExec=). */
export function passesFdsToExec(v: SystemdVersion): boolean {
  return v.version !== null && v.version >= PASS_FDS_TO_EXEC_SINCE;
}
