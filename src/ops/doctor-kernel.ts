/**
 * doctor: what the kernel offers, probed by really creating tiny objects
 * (an sk_lookup program, a SOCKMAP holding a UDP socket, an LPM trie with a
 * batch update), plus the requirements of listener discovery. The objects
 * are never pinned or attached and are closed at once. A probe refused for
 * lack of privileges is reported as not checked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroup2Mount } from '../discovery/cgroup.js';
import { kernelChecks, machineFacts } from '../discovery/kernel.js';
import { BPF_F_NO_PREALLOC, MapType, mapCreate, mapUpdate } from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';
import { bindRaw, closeFd, socket } from '../sys/libc.js';
import { inNetns } from '../sys/netns.js';
import { batchUpdateWorks, loadSkLookupProbe } from '../sys/probe.js';
import { finding, type DoctorContext, type Finding } from './doctor-finding.js';

const NEEDS = 'run "manifold doctor" as root (or with CAP_BPF and CAP_NET_ADMIN) to probe it';

function denied(err: unknown): boolean {
  return err instanceof SysError && (err.errno === 1 || err.errno === 13);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run `fn` with a probe object fd, closing it. */
function withFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

function skLookup(): Finding {
  const id = 'kernel.sk_lookup';
  try {
    withFd(loadSkLookupProbe(), () => undefined);
    return finding(id, 'ok', 'sk_lookup programs load (BPF_PROG_TYPE_SK_LOOKUP)');
  } catch (err) {
    if (denied(err)) return finding(id, 'info', 'sk_lookup support not checked: loading a program was refused', NEEDS);
    return finding(id, 'error', `this kernel cannot load sk_lookup programs: ${errText(err)}`, 'manifold needs Linux >= 5.9 with CONFIG_BPF_SYSCALL and CONFIG_NET (sk_lookup)');
  }
}

/** A bound, unconnected UDP socket (0.0.0.0, any port) in the calling thread's namespace. */
function udpSocket(): number {
  const fd = socket(2 /* AF_INET */, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0);
  try {
    const sin = Buffer.alloc(16);
    sin.writeUInt16LE(2, 0);
    bindRaw(fd, sin);
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

function sockmapUdp(netns: string, ownNetns: boolean): Finding {
  const id = 'kernel.sockmap_udp';
  try {
    withFd(mapCreate(MapType.SOCKMAP, 'mf_probe', 4, 8, 1), (map) => {
      // The socket lives in the target namespace (never the caller's when another one is checked).
      const sock = ownNetns ? udpSocket() : inNetns(netns, udpSocket);
      withFd(sock, (s) => {
        const value = Buffer.alloc(8);
        value.writeBigUInt64LE(BigInt(s), 0);
        mapUpdate(map, Buffer.alloc(4), value);
      });
    });
    return finding(id, 'ok', 'a SOCKMAP holds UDP sockets');
  } catch (err) {
    if (denied(err)) return finding(id, 'info', 'SOCKMAP support for UDP not checked: creating the map was refused', NEEDS);
    if (err instanceof SysError && err.errno === 95) {
      return finding(id, 'error', 'this kernel cannot put UDP sockets into a SOCKMAP (EOPNOTSUPP)', 'UDP bindings need Linux >= 5.13');
    }
    return finding(id, 'error', `SOCKMAP probe failed: ${errText(err)}`, 'manifold needs Linux >= 5.13 with CONFIG_BPF_STREAM_PARSER (sockmap)');
  }
}

function lpmBatch(): Finding {
  const id = 'kernel.lpm_batch';
  try {
    const works = withFd(mapCreate(MapType.LPM_TRIE, 'mf_probe', 8, 4, 1, { flags: BPF_F_NO_PREALLOC }), (map) => {
      const key = Buffer.alloc(8);
      key.writeUInt32LE(32, 0);
      return batchUpdateWorks(map, key, Buffer.alloc(4));
    });
    return works
      ? finding(id, 'ok', 'batch operations work on LPM tries')
      : finding(id, 'warning', 'no batch operations on LPM tries: apply and status fall back to one operation per binding (slow at scale)', 'Linux >= 5.13 has them');
  } catch (err) {
    if (denied(err)) return finding(id, 'info', 'batch operations on LPM tries not checked: creating a map was refused', NEEDS);
    return finding(id, 'warning', `LPM trie probe failed: ${errText(err)}`);
  }
}

/** Listener discovery's requirements: missing ones are warnings when it is enabled, else information. */
function discovery(bpffs: string): Finding[] {
  const enabled = fs.existsSync(path.join(bpffs, 'manifold_discovery'));
  return kernelChecks(machineFacts(cgroup2Mount())).map((c) => {
    const id = `discovery.${c.name.replace(/-/g, '_')}`;
    if (c.ok) return finding(id, 'ok', `listener discovery: ${c.needs}: ${c.found}`);
    const severity = enabled && c.fatal ? 'error' : enabled ? 'warning' : 'info';
    const what = c.fatal ? 'listener discovery cannot run here' : 'listener discovery is limited here';
    return finding(id, severity, `${what}: needs ${c.needs}, found ${c.found}`, c.fatal ? 'only needed for "manifold discovery" (docs/discovery.md)' : undefined);
  });
}

/** Findings about the kernel. */
export function kernelFindings(ctx: DoctorContext): Finding[] {
  return [
    finding('kernel.release', 'ok', `Linux ${os.release()}`),
    skLookup(),
    sockmapUdp(ctx.opts.netns, ctx.ownNetns),
    lpmBatch(),
    ...discovery(ctx.opts.bpffs),
  ];
}
