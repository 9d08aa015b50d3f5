/**
 * doctor: the host and the caller — the bpffs mount and its mode, `ip
 * netns exec`, libbpf and libsystemd, the Node.js runtime, and the
 * caller's capabilities.
 */
import fs from 'node:fs';
import { findLibrary, libbpfVersion } from '../sys/probe.js';
import { underSys } from './netns-exec.js';
import { finding, type DoctorContext, type Finding } from './doctor-finding.js';

/** Capabilities doctor reports, by bit number (linux/capability.h). */
export const CAPABILITIES = { CAP_NET_ADMIN: 12, CAP_SYS_PTRACE: 19, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;

/** The effective capability set from /proc/PID/status text, or null. */
export function effectiveCapabilities(status: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : null;
}

/** Names of the reported capabilities present in a set, and those missing. */
export function capabilityNames(set: bigint): { present: string[]; missing: string[] } {
  const present: string[] = [];
  const missing: string[] = [];
  for (const [name, bit] of Object.entries(CAPABILITIES)) ((set >> BigInt(bit)) & 1n ? present : missing).push(name);
  return { present, missing };
}

function capabilities(): Finding {
  const id = 'host.capabilities';
  const set = effectiveCapabilities(fs.readFileSync('/proc/self/status', 'utf8'));
  if (set === null) return finding(id, 'info', 'the capabilities of the caller are unknown (no CapEff in /proc/self/status)');
  const { present, missing } = capabilityNames(set);
  const details = { effective: `0x${set.toString(16)}`, present, missing };
  const has = (n: keyof typeof CAPABILITIES): boolean => present.includes(n);
  if (missing.length === 0) return finding(id, 'ok', `the caller has ${present.join(', ')}`, undefined, details);
  const can: string[] = [];
  if (has('CAP_BPF') && has('CAP_NET_ADMIN')) can.push('change the state');
  else can.push('only read the state (as a member of its group): status, bindings, metrics');
  if (!has('CAP_SYS_ADMIN')) can.push('not repair a state after an interrupted write, nor check other sk_lookup programs (CAP_SYS_ADMIN)');
  if (!has('CAP_SYS_PTRACE')) can.push("not take other users' sockets with register-pid (CAP_SYS_PTRACE)");
  return finding(id, 'info', `the caller lacks ${missing.join(', ')}: it can ${can.join('; ')}`, 'run manifold as root (or with the capabilities named) to change the state', details);
}

function bpffs(ctx: DoctorContext): Finding[] {
  const dir = ctx.opts.bpffs;
  if (ctx.netnsExec !== null && underSys(dir)) {
    return [finding('host.ip_netns_exec', 'error',
      `running inside "ip netns exec ${ctx.netnsExec}": its /sys is a private mount that ends with the command, so state under ${dir} would vanish and a dispatcher loaded there be detached`,
      `run manifold outside it: manifold --netns /run/netns/${ctx.netnsExec} … (or give --bpffs PATH of a bpffs mounted outside /sys)`)];
  }
  if (ctx.bpffsError !== null || ctx.target === null) {
    return [finding('host.bpffs', 'error', `no bpffs at ${dir}: ${ctx.bpffsError ?? 'unusable'}`, `mount one: mount -t bpf bpf ${dir} (systemd mounts /sys/fs/bpf at boot)`)];
  }
  const out = [finding('host.bpffs', 'ok', `bpffs mounted at ${dir}`)];
  const st = fs.statSync(dir);
  const mode = st.mode & 0o7777;
  let stateGid: number | null = null;
  try {
    stateGid = fs.statSync(ctx.target.stateDir).gid;
  } catch {
    /* not loaded */
  }
  const reach = (mode & 0o001) !== 0 || ((mode & 0o010) !== 0 && stateGid !== null && st.gid === stateGid);
  const details = { mode: mode.toString(8), uid: st.uid, gid: st.gid, stateGid };
  if (reach) out.push(finding('host.bpffs_mode', 'ok', `${dir} (mode ${mode.toString(8)}) can be searched by the state's readers`, undefined, details));
  else if (stateGid !== null && stateGid !== 0) {
    out.push(finding('host.bpffs_mode', 'warning', `${dir} has mode ${mode.toString(8)}: members of the state's group (gid ${stateGid}) cannot reach the state (status, bindings, metrics fail for them)`, `chmod o+x ${dir}`, details));
  } else {
    out.push(finding('host.bpffs_mode', 'info', `${dir} has mode ${mode.toString(8)}: only root can reach the state`, `to let a group read it: manifold load --group NAME, and chmod o+x ${dir}`, details));
  }
  return out;
}

function libraries(): Finding[] {
  const out: Finding[] = [];
  try {
    const v = libbpfVersion();
    out.push(finding('host.libbpf', 'ok', `libbpf ${v.version}${v.file ? ` (${v.file})` : ''}`, undefined, { version: v.version, file: v.file }));
  } catch (err) {
    out.push(finding('host.libbpf', 'error', `libbpf.so.1 cannot be loaded: ${(err as Error).message}`, 'install libbpf 1.x (Debian: apt install libbpf1)'));
  }
  const sd = findLibrary('libsystemd.so.0');
  if (sd === null) {
    out.push(finding('host.libsystemd', 'warning', 'libsystemd.so.0 cannot be loaded: no journal entries and no readiness notifications', 'install libsystemd (Debian: apt install libsystemd0)'));
  } else {
    const version = sd.file ? /\.so\.([\d.]+)$/.exec(sd.file)?.[1] ?? null : null;
    out.push(finding('host.libsystemd', 'ok', `libsystemd${version ? ` ${version}` : ''}${sd.file ? ` (${sd.file})` : ''}`, undefined, { version, file: sd.file }));
  }
  return out;
}

/** Whether this process is a Node.js single executable (node:sea). */
function isSingleExecutable(): boolean {
  try {
    // process.getBuiltinModule (Node >= 20.16): not an import, which the single executable's bundle could not resolve.
    const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
    const sea = get?.('node:sea') as { isSea?: () => boolean } | undefined;
    return sea?.isSea?.() === true;
  } catch {
    return false;
  }
}

function node(): Finding {
  const major = Number(/^v(\d+)/.exec(process.version)?.[1] ?? 0);
  const bundled = isSingleExecutable();
  const where = bundled ? `the runtime built into ${process.execPath}` : process.execPath;
  const details = { version: process.version, execPath: process.execPath, bundled };
  if (major < 20) return finding('host.node', 'error', `Node.js ${process.version} (${where}) is too old`, bundled ? 'manifold needs Node.js >= 20: rebuild the executable (make build) with a newer node, or install a newer manifold package' : 'manifold needs Node.js >= 20', details);
  return finding('host.node', 'ok', `Node.js ${process.version} (${where})`, undefined, details);
}

/** Findings about the host and the caller. */
export function hostFindings(ctx: DoctorContext): Finding[] {
  return [...bpffs(ctx), ...libraries(), node(), capabilities()];
}
