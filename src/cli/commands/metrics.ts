/**
 * metrics: a Prometheus exporter for the dispatcher's counters.
 */
import type { CommandModule } from 'yargs';
import { emitEvent, Priority } from '../../log/events.js';
import { info } from '../output.js';
import { targetOf, type GlobalArgs } from '../context.js';
import { commandHelp } from '../help.js';
import fs from 'node:fs';
import { ManifoldError } from '../../errors.js';

/** Arguments of metrics. */
export interface MetricsArgs extends GlobalArgs {
  address?: string | undefined;
  port?: string | undefined;
}

/** `manifold metrics`: a long-running exporter (unlike every other command). */
export const metricsCommand: CommandModule<GlobalArgs, MetricsArgs> = {
  command: 'metrics [address] [port]',
  describe: 'Serve Prometheus metrics over HTTP at /metrics (address and port, or socket activation)',
  builder: (y) =>
    commandHelp(
      y
        .positional('address', { type: 'string', describe: 'IP address to listen on (not with socket activation)' })
        .positional('port', { type: 'string', describe: 'TCP port to listen on (0: any free port)' }),
      [
        ['metrics 127.0.0.1 9733', 'serve http://127.0.0.1:9733/metrics until SIGTERM'],
        ['metrics', 'with socket activation (manifold-metrics.socket)'],
      ],
    ),
  handler: async (args) => {
    // Loaded here so that other commands never pay for prom-client and http.
    const [{ MetricsExporter }, { listenTargets }, { runUntilSignal, startServers }, { readSnapshot }] = await Promise.all([
      import('../../metrics/handler.js'),
      import('../../metrics/listen.js'),
      import('../../metrics/serve.js'),
      import('../../metrics/snapshot.js'),
    ]);
    const target = targetOf(args);
    // A --netns or --bpffs that does not exist is said now, not as a failure of every scrape
    // (a state that is not loaded yet, even a bpffs not mounted yet, is fine: scrapes answer 503/500 until it is).
    for (const [option, p] of [['--netns', target.netns], ['--bpffs', target.bpffs]] as const) {
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (!st) throw new ManifoldError('ERR_USAGE', `${option} ${p}: no such file`);
      if (option === '--bpffs' && !st.isDirectory()) throw new ManifoldError('ERR_USAGE', `${option} ${p}: not a directory`);
    }
    // A scrape reads without the writers' lock (see docs/metrics.md); the timeout is carried only because the read path takes one.
    const lockTimeoutMs = target.lockTimeoutMs;
    const targets = listenTargets(args.address, args.port);
    const exporter = new MetricsExporter(() => readSnapshot({ netns: target.netns, bpffs: target.bpffs, lockTimeoutMs }), {
      failed(f) {
        info(`manifold: metrics: scrape failed (HTTP ${f.status}, ${f.code}): ${f.message}`);
        emitEvent('metrics', Priority.warning, `metrics scrape failed: ${f.message}`, { ERROR_CODE: f.code, REASON: f.reason });
      },
      recovered() {
        info('manifold: metrics: scrapes read the state again');
        emitEvent('metrics', Priority.info, 'metrics scrapes read the state again');
      },
    });
    const running = await startServers(exporter.handle, targets);
    info(`manifold: serving metrics on ${running.addresses.join(', ')} (state: ${target.bpffs}, network namespace ${target.netns})`);
    emitEvent('metrics', Priority.info, `serving metrics on ${running.addresses.join(', ')}`, { ADDRESSES: running.addresses.join(' ') });
    const signal = await runUntilSignal(running);
    info(`manifold: metrics exporter stopped${signal ? ` (${signal})` : ''}`);
  },
};
