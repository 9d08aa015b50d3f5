/**
 * load, unload, upgrade, version.
 */
import type { CommandModule } from 'yargs';
import { MANIFOLD_ABI } from '../../core/layout.js';
import { quote } from '../../core/net.js';
import { load, unload, upgrade, upgradeAll } from '../../ops/lifecycle.js';
import { toManifoldError, ManifoldError } from '../../errors.js';
import { manifoldVersion } from '../../version.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import { targetOf, type GlobalArgs } from '../context.js';
import { resolveGroup } from '../groups.js';
import { commandHelp } from '../help.js';

/** Arguments of load. */
export interface LoadArgs extends GlobalArgs {
  group?: string | undefined;
  'max-destinations'?: string | undefined;
  'max-bindings'?: string | undefined;
}

/** A limit given on the command line: plain decimal digits (range checked by the loader), else a usage error. */
function count(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(value)) throw new ManifoldError('ERR_USAGE', `invalid ${option} ${quote(value)}: expected a whole number in plain decimal digits`);
  return Number(value);
}

/** `manifold load`. */
export const loadCommand: CommandModule<GlobalArgs, LoadArgs> = {
  command: 'load',
  describe: 'Load the dispatcher into the network namespace and attach it (idempotent)',
  builder: (y) =>
    commandHelp(
      y
        .option('group', { type: 'string', describe: 'group that may read the state (status, bindings, metrics); default: your group' })
        .option('max-destinations', { type: 'string', describe: 'destinations the state can hold (default 1024, at most 16384); sizes its kernel memory' })
        .option('max-bindings', { type: 'string', describe: 'bindings the state can hold (default 2097152)' }),
      [
        ['load', 'attach the dispatcher to this network namespace'],
        ['load --group manifold', 'let members of group manifold read the state (status, metrics)'],
        ['load --netns /run/netns/blue --bpffs /sys/fs/bpf', 'a named namespace (instead of "ip netns exec blue manifold load")'],
      ],
    ),
  handler: (args) => {
    const gid = args.group === undefined ? undefined : resolveGroup(args.group);
    const maxDestinations = count(args['max-destinations'], '--max-destinations');
    const maxBindings = count(args['max-bindings'], '--max-bindings');
    const r = load({ ...targetOf(args), gid, maxDestinations, maxBindings });
    if (r.replacedLock) info(`manifold: warning: replaced a lock directory this manifold did not create: ${r.replacedLock}`);
    if (r.alreadyLoaded) {
      info(`manifold: already loaded in network namespace ${r.netnsIno} (${r.stateDir}); nothing changed`);
    } else {
      if (r.replacedStale) info(`manifold: replaced a state directory that was not a healthy manifold state: ${r.replacedStale}`);
      emitEvent('load', Priority.notice, `loaded dispatcher into network namespace ${r.netnsIno}`, { NETNS: r.netnsIno, STATE_DIR: r.stateDir });
      info(`manifold: loaded dispatcher into network namespace ${r.netnsIno} (${r.stateDir})`);
    }
    if (args.json) {
      outJson({
        loaded: true, alreadyLoaded: r.alreadyLoaded, stateDir: r.stateDir, netnsIno: r.netnsIno, replacedStale: r.replacedStale,
        maxDestinations: r.limits.maxIds / 2, maxBindings: r.limits.maxBindings,
      });
    }
  },
};

/** `manifold unload`. */
export const unloadCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'unload',
  describe: 'Detach the dispatcher and remove its state (traffic returns to normal socket lookup); nothing to do when not loaded',
  builder: (y) => commandHelp(y, [['unload', 'detach and remove (exit 0 also when nothing is loaded)']]),
  handler: (args) => {
    const r = unload(targetOf(args));
    if (!r.wasLoaded) info(`manifold: not loaded (${r.stateDir}); nothing to do${r.leftovers ? ` (removed ${r.leftovers} leftover director${r.leftovers === 1 ? 'y' : 'ies'} of an interrupted command)` : ''}`);
    else {
      emitEvent('unload', Priority.notice, `unloaded dispatcher (${r.stateDir})`, { STATE_DIR: r.stateDir });
      info(`manifold: unloaded${r.stale ? ' stale state' : ''} ${r.stateDir}`);
    }
    if (args.json) outJson({ unloaded: r.wasLoaded, wasLoaded: r.wasLoaded, stateDir: r.stateDir, stale: r.stale });
  },
};

/** Arguments of upgrade. */
export interface UpgradeArgs extends GlobalArgs {
  all?: boolean | undefined;
}

function upgradeEverything(args: UpgradeArgs): void {
  const t = targetOf(args);
  const results = upgradeAll({ bpffs: t.bpffs, lockTimeoutMs: t.lockTimeoutMs });
  let failed = 0;
  const codes = new Set<string>();
  for (const e of results) {
    if (e.result) {
      const abi = e.result.previousAbi !== e.result.abi ? `, map ABI ${e.result.previousAbi} -> ${e.result.abi}` : '';
      emitEvent('upgrade', Priority.notice, `upgraded dispatcher of network namespace ${e.netnsIno} from ${e.result.previousVersion} to ${e.result.version}${abi}`, { STATE_DIR: e.stateDir, VERSION: e.result.version, NETNS: e.netnsIno });
      info(`manifold: upgraded ${e.stateDir} (${e.result.previousVersion} -> ${e.result.version}${abi})`);
    } else {
      failed++;
      codes.add(toManifoldError(e.error).code);
      info(`manifold: warning: ${e.stateDir} not upgraded: ${toManifoldError(e.error).message}`);
    }
  }
  if (args.json) {
    outJson(results.map((e) => ({ stateDir: e.stateDir, netnsIno: e.netnsIno, netns: e.netns, upgraded: e.result !== null, ...(e.result ?? {}), ...(e.error ? { error: { code: toManifoldError(e.error).code, message: toManifoldError(e.error).message } } : {}) })));
  }
  if (results.length === 0) info(`manifold: no dispatcher state under ${t.bpffs}; nothing to upgrade`);
  // Every failure a permission problem (not root): say that, with its exit status.
  const code = codes.size === 1 && codes.has('ERR_PERMISSION') ? 'ERR_PERMISSION' : 'ERR_STALE_STATE';
  if (failed > 0) throw new ManifoldError(code, `${failed} of ${results.length} states could not be upgraded (see above)`);
}

/** `manifold upgrade`. */
export const upgradeCommand: CommandModule<GlobalArgs, UpgradeArgs> = {
  command: 'upgrade',
  describe: 'Replace the running dispatcher program in place, keeping bindings, sockets and counters (migrates older map ABIs)',
  builder: (y) =>
    commandHelp(y.option('all', { type: 'boolean', default: false, describe: 'upgrade the state of every network namespace on the bpffs (as the package does)' }), [
      ['upgrade', "replace this namespace's program with this version's"],
      ['upgrade --all', 'every namespace with a state on the bpffs'],
    ]),
  handler: (args) => {
    if (args.all) {
      upgradeEverything(args);
      return;
    }
    const r = upgrade(targetOf(args));
    const abi = r.previousAbi !== r.abi ? `, map ABI ${r.previousAbi} -> ${r.abi}` : '';
    emitEvent('upgrade', Priority.notice, `upgraded dispatcher from ${r.previousVersion} to ${r.version}${abi}`, { STATE_DIR: r.stateDir, VERSION: r.version, ABI: r.abi });
    info(`manifold: upgraded dispatcher (${r.previousVersion} -> ${r.version}${abi})`);
    if (args.json) outJson({ upgraded: true, ...r });
  },
};

/** `manifold version`. */
export const versionCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'version',
  describe: 'Print the manifold version and the BPF map ABI version',
  builder: (y) => commandHelp(y, [['version --json', 'as JSON: {"version","abi"}']]),
  handler: (args) => {
    if (args.json) outJson({ version: manifoldVersion(), abi: MANIFOLD_ABI });
    else out(`manifold ${manifoldVersion()} (BPF ABI ${MANIFOLD_ABI})`);
  },
};
