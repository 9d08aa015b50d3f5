/**
 * discovery enable | disable | status | watch (docs/discovery.md).
 */
import type { CommandModule } from 'yargs';
import { enable, disable } from '../../discovery/lifecycle.js';
import { discoveryStatus, type DiscoveryStatus } from '../../discovery/status.js';
import { registrationText, watch } from '../../discovery/watch.js';
import type { SeedSummary } from '../../discovery/seed.js';
import type { DispatcherRelink } from '../../ops/discovery-dispatchers.js';
import { emitEvent, Priority } from '../../log/events.js';
import { notifyReady, notifyStatus } from '../../log/notify.js';
import { info, out, outJson } from '../output.js';
import { targetOf, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';

/** Arguments of discovery. */
export interface DiscoveryArgs extends GlobalArgs {
  action: 'enable' | 'disable' | 'status' | 'watch';
  cgroup?: string | undefined;
}

function dispatcherLines(list: DispatcherRelink[], enabled: boolean): void {
  for (const d of list) {
    if (d.error) info(`manifold: warning: dispatcher ${d.stateDir}: ${d.error}`);
    else info(`manifold: dispatcher ${d.stateDir} ${enabled ? `uses listener discovery (${d.targets} target address(es) registered)` : 'no longer uses listener discovery'}`);
  }
}

function seedText(s: SeedSummary): string {
  const parts = [`${s.indexed.tcp} TCP listener(s) and ${s.indexed.udp} UDP socket(s) indexed`];
  if (s.targets) parts.push(`${s.targets} target socket(s) registered`);
  if (s.outOfScope) parts.push(`${s.outOfScope} created outside the cgroup ignored`);
  if (s.failed) parts.push(`${s.failed} NOT indexed (map full)`);
  const how = s.method === 'iterators' ? `iter/tcp + iter/udp in ${s.namespaces} namespace(s), then every process's files` : "every process's files (task_file)";
  return `${parts.join(', ')} [${how}]`;
}

function printStatus(d: DiscoveryStatus): void {
  out(`listener discovery: ${d.enabled ? (d.active ? 'enabled' : 'enabled, NOT active') : 'not enabled'} (${d.stateDir})`);
  if (d.enabled) {
    out(`  cgroup: ${d.cgroup?.path ?? '?'} (id ${d.cgroup?.id ?? '?'}); enabled ${d.enabledAt ?? '?'} by manifold ${d.version ?? '?'}`);
    out('  programs:');
    for (const l of d.links) out(`    ${l.program.padEnd(14)} ${l.attached ? `attached (link ${l.id})` : 'NOT attached'}`);
    if (d.links.length === 0) out('    (run as root to inspect the links)');
    if (d.maps) {
      out('  maps:');
      for (const [name, f] of Object.entries(d.maps)) out(`    ${name.padEnd(14)} ${f.entries} / ${f.max}`);
    }
    if (d.counters) {
      out('  counters:');
      for (const [name, v] of Object.entries(d.counters)) out(`    ${name.padEnd(14)} ${v}`);
    }
    out(`  targets: ${d.targets.length === 0 ? 'none' : ''}`);
    for (const t of d.targets) {
      const socks = t.sockets.map((s) => `${s.port}${s.registered ? '' : ' (not registered)'}`).join(', ');
      out(`    netns ${t.netns} ${t.protocol} ${t.address}: ${socks || 'no socket'}`);
    }
  }
  out(`  seeding: ${d.seedMethod ?? 'unavailable'}`);
  out('  kernel:');
  for (const c of d.kernel) out(`    ${c.name.padEnd(16)} ${c.ok ? 'ok' : c.fatal ? 'MISSING' : 'limited'}  (${c.found}; needs ${c.needs})`);
  for (const w of d.warnings) info(`manifold: warning: ${w}`);
}

/** `manifold discovery enable|disable|status|watch`. */
export const discoveryCommand: CommandModule<GlobalArgs, DiscoveryArgs> = {
  command: 'discovery <action>',
  describe: 'Host-wide listener discovery: index every listening/bound socket, keep target sockets (docs/discovery.md)',
  builder: (y) =>
    commandHelp(
      y
        .positional('action', { choices: ['enable', 'disable', 'status', 'watch'] as const, demandOption: true, describe: 'enable | disable | status | watch' })
        .option('cgroup', { type: 'string', describe: 'cgroup v2 directory to attach to (default: the root of the cgroup v2 mount)' }),
      [
        ['discovery enable', 'attach to the root cgroup and index the sockets that exist'],
        ['discovery status --json', 'attachment, map fill levels, counters, kernel requirements'],
        ['discovery disable', 'detach and remove everything'],
      ],
    ),
  handler: async (args) => {
    const t = targetOf(args);
    switch (args.action) {
      case 'enable': {
        const r = enable({ bpffs: t.bpffs, cgroup: args.cgroup, seedNetns: [t.netns], lockTimeoutMs: t.lockTimeoutMs });
        const text = seedText(r.seed);
        if (r.alreadyEnabled) {
          info(`manifold: listener discovery already enabled on cgroup ${r.cgroup.path}; re-seeded: ${text}`);
        } else {
          if (r.replaced) info(`manifold: replaced broken discovery state (${r.replaced})`);
          emitEvent('discovery-enable', Priority.notice, `enabled listener discovery on cgroup ${r.cgroup.path}: ${text}`, {
            CGROUP: r.cgroup.path, CGROUP_ID: r.cgroup.id, STATE_DIR: r.stateDir, SEED_METHOD: r.seed.method,
            SEEDED_TCP: r.seed.indexed.tcp, SEEDED_UDP: r.seed.indexed.udp,
          });
          info(`manifold: enabled listener discovery on cgroup ${r.cgroup.path}: ${text}`);
        }
        dispatcherLines(r.dispatchers, true);
        if (args.json) {
          outJson({ enabled: true, alreadyEnabled: r.alreadyEnabled, stateDir: r.stateDir, cgroup: { path: r.cgroup.path, id: r.cgroup.id }, replaced: r.replaced, seed: r.seed, dispatchers: r.dispatchers });
        }
        return;
      }
      case 'disable': {
        const r = disable({ bpffs: t.bpffs, cgroup: args.cgroup, lockTimeoutMs: t.lockTimeoutMs });
        emitEvent('discovery-disable', Priority.notice, `disabled listener discovery${r.cgroupPath ? ` on cgroup ${r.cgroupPath}` : ''}`, {
          CGROUP: r.cgroupPath, STATE_DIR: r.stateDir,
        });
        dispatcherLines(r.dispatchers, false);
        info(`manifold: disabled listener discovery (detached ${r.detached.length ? r.detached.join(', ') : 'nothing'}; removed ${r.stateDir})`);
        if (args.json) outJson({ disabled: true, ...r });
        return;
      }
      case 'status': {
        const d = discoveryStatus(t.bpffs, t.lockTimeoutMs);
        if (args.json) outJson(d);
        else printStatus(d);
        return;
      }
      default: {
        const ac = new AbortController();
        const stop = (): void => ac.abort();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        try {
          const why = await watch(t.bpffs, t.lockTimeoutMs, ac.signal, {
            ready: (s) => {
              info(`manifold: watching UDP binds on target addresses (${s.registered} socket(s) registered by the initial scan)`);
              notifyReady(`watching UDP binds on target addresses`);
            },
            registered: (r) => {
              const text = registrationText(r);
              emitEvent('discovery-register', r.registered || !r.open ? Priority.info : Priority.warning, text, {
                PROTOCOL: r.event.proto === 6 ? 'tcp' : 'udp', ADDRESS: r.address, PORT: r.event.port, SOCKET_COOKIE: r.event.cookie,
                PID: r.event.tgid, NETNS_COOKIE: r.event.netns,
              });
              info(`manifold: ${text}`);
            },
            rescan: (reason, n) => {
              info(`manifold: ${reason}: re-scanned every process, ${n} socket(s) registered`);
            },
          });
          if (why === 'disabled') {
            info('manifold: listener discovery was disabled; the watcher stops');
            notifyStatus('listener discovery disabled');
          }
        } finally {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
        }
      }
    }
  },
};
