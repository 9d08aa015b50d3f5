/**
 * load, unload, upgrade, version.
 */
import type { Argv } from 'yargs';
import { load, unload, upgrade } from '../../state/lifecycle.js';
import { MANIFOLD_ABI } from '../../core/codec.js';
import { manifoldVersion } from '../../version.js';
import { emitEvent, Priority } from '../../log/events.js';
import { info, out, outJson } from '../output.js';
import { targetOf, type GlobalArgs } from '../context.js';
import { resolveGroup } from '../groups.js';

/** Register the lifecycle commands. */
export function lifecycleCommands(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command(
      'load',
      'Load the dispatcher into the network namespace and attach it',
      (a) => a.option('group', { type: 'string', describe: 'group that may read the state (status, bindings, metrics); default: your group' }),
      (argv) => {
        const args = argv as unknown as GlobalArgs & { group?: string };
        const gid = args.group === undefined ? undefined : resolveGroup(args.group);
        const r = load({ ...targetOf(args), ...(gid === undefined ? {} : { gid }) });
        if (r.alreadyLoaded) {
          info(`manifold: already loaded in network namespace ${r.netnsIno} (${r.stateDir}); nothing changed`);
        } else {
          if (r.replacedStale) info(`manifold: replaced a stale state directory: ${r.replacedStale}`);
          emitEvent('load', Priority.notice, `loaded dispatcher into network namespace ${r.netnsIno}`, { NETNS: r.netnsIno, STATE_DIR: r.stateDir });
          info(`manifold: loaded dispatcher into network namespace ${r.netnsIno} (${r.stateDir})`);
        }
        if (args.json) outJson({ loaded: true, alreadyLoaded: r.alreadyLoaded, stateDir: r.stateDir, netnsIno: r.netnsIno, replacedStale: r.replacedStale });
      },
    )
    .command(
      'unload',
      'Detach the dispatcher and remove its state (traffic returns to normal socket lookup)',
      (a) => a,
      (argv) => {
        const args = argv as unknown as GlobalArgs;
        const r = unload(targetOf(args));
        emitEvent('unload', Priority.notice, `unloaded dispatcher (${r.stateDir})`, { STATE_DIR: r.stateDir });
        info(`manifold: unloaded${r.stale ? ' stale state' : ''} ${r.stateDir}`);
        if (args.json) outJson({ unloaded: true, stateDir: r.stateDir, stale: r.stale });
      },
    )
    .command(
      'upgrade',
      'Replace the running dispatcher program in place, keeping bindings, sockets and counters',
      (a) => a,
      (argv) => {
        const args = argv as unknown as GlobalArgs;
        const r = upgrade(targetOf(args));
        emitEvent('upgrade', Priority.notice, `upgraded dispatcher from ${r.previousVersion} to ${r.version}`, { STATE_DIR: r.stateDir, VERSION: r.version });
        info(`manifold: upgraded dispatcher (${r.previousVersion} -> ${r.version})`);
        if (args.json) outJson({ upgraded: true, ...r });
      },
    )
    .command(
      'version',
      'Print the manifold version and the BPF map ABI version',
      (a) => a,
      (argv) => {
        const args = argv as unknown as GlobalArgs;
        if (args.json) outJson({ version: manifoldVersion(), abi: MANIFOLD_ABI });
        else out(`manifold ${manifoldVersion()} (BPF ABI ${MANIFOLD_ABI})`);
      },
    );
}
