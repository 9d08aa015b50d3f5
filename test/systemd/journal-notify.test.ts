/**
 * Readiness and journal under a real systemd 252 (test harness): sd_notify
 * STATUS=/READY=1/ERRNO= through libsystemd reach the manager (also from a
 * oneshot process that exits at once: sd_notify_barrier), events become
 * structured journal entries (the CLI's too: a port range is one entry, a
 * usage error is notice), and the `<N>` stderr fallback keeps priorities.
 * Root only. Run: node test/run.mjs journal-notify
 */
import { test } from 'uvu';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { EventIds } from '../../src/log/events.js';
import { bootSystemd, type Container } from './harness.js';

let c: Container | undefined;
const LIB = '/usr/local/lib/mf-journal';

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

/** An ES module script importing manifold's build output by absolute path. */
function script(body: string): string {
  const m = (f: string): string => `file://${box().workTree}/build/src/${f}`;
  return `import { emitEvent, Priority } from '${m('log/events.js')}';
import { installLogSinks, logTarget, stderrIsJournal } from '${m('log/sinks.js')}';
import { logError } from '${m('log/error.js')}';
import { notifyStatus, notifyReady, notifyError } from '${m('log/notify.js')}';
${body}
`;
}

async function unit(name: string, body: string, service: string): Promise<void> {
  await box().writeFile(`${LIB}/${name}.mjs`, script(body));
  await box().writeFile(`/etc/systemd/system/${name}.service`, `[Service]
${service.trim()}
ExecStart=${box().nodePath} ${LIB}/${name}.mjs
`);
  const r = await box().systemctl('daemon-reload');
  assert.is(r.code, 0, r.stderr);
}

async function show(name: string, props: string): Promise<Record<string, string>> {
  const r = await box().systemctl('show', '-p', props, `${name}.service`);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

type Entry = Record<string, string | string[] | undefined>;

/** Journal entries matching `args` (JSON), polled until `want` of them arrived. */
async function entries(args: string[], want = 1): Promise<Entry[]> {
  let found: Entry[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await box().journalctl('-o', 'json', ...args);
    found = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
    if (found.length >= want) return found;
    await new Promise((res) => setTimeout(res, 100));
  }
  return found;
}

test.before(async () => {
  c = await bootSystemd({ name: 'journal' });
  const { state, failed } = await c.waitForSystemRunning();
  assert.equal(failed, [], `failed units: ${failed.join(' ')}`);
  assert.is(state, 'running');
});

test.after(async () => {
  if (c) await c.shutdown();
});

test('an event is one journal entry with MESSAGE_ID, PRIORITY, SYSLOG_IDENTIFIER and MANIFOLD_ fields', async () => {
  await unit('mf-bind', `
installLogSinks();
process.stdout.write(logTarget() + '\\n');
emitEvent('bind', Priority.info, 'bound tcp 10.0.0.0/8 port 80 -> web', {
  LABEL: 'web', PROTOCOL: 'tcp', PREFIX: '10.0.0.0/8', PORT: 80, SOCKET_COOKIE: '4097', NETNS: 4026531840, NOTHING: null,
});
`, 'Type=oneshot');
  const r = await box().systemctl('start', 'mf-bind.service');
  assert.is(r.code, 0, r.stderr);
  assert.match((await box().journalctl('-u', 'mf-bind.service', '-o', 'cat')).stdout, /^journal$/m, 'sink chosen: journal');
  const found = await entries(['-t', 'manifold', 'MANIFOLD_LABEL=web']);
  assert.is(found.length, 1, 'exactly one entry');
  const e = found[0] as Entry;
  assert.is(e.MESSAGE, 'bound tcp 10.0.0.0/8 port 80 -> web');
  assert.is(e.MESSAGE_ID, EventIds.bind);
  assert.is(e.PRIORITY, '6');
  assert.is(e.SYSLOG_IDENTIFIER, 'manifold');
  assert.is(e.MANIFOLD_EVENT, 'bind');
  assert.is(e.MANIFOLD_PROTOCOL, 'tcp');
  assert.is(e.MANIFOLD_PREFIX, '10.0.0.0/8');
  assert.is(e.MANIFOLD_PORT, '80');
  assert.is(e.MANIFOLD_SOCKET_COOKIE, '4097');
  assert.is(e.MANIFOLD_NETNS, '4026531840');
  assert.is(e.MANIFOLD_NOTHING, undefined);
  assert.is(e._SYSTEMD_UNIT, 'mf-bind.service', 'attributed to the unit that logged it');
  const byId = await entries([`MESSAGE_ID=${EventIds.bind}`]);
  assert.is(byId.length, 1);
});

test('logError: priority err, MANIFOLD_CODE, ERRNO; found with -p err', async () => {
  await unit('mf-error', `
installLogSinks();
logError('ERR_PERMISSION', 'permission denied: run as root', 13);
`, 'Type=oneshot');
  const r = await box().systemctl('start', 'mf-error.service');
  assert.is(r.code, 0, r.stderr);
  const found = await entries(['-t', 'manifold', '-p', 'err', `MESSAGE_ID=${EventIds.error}`]);
  assert.is(found.length, 1);
  const e = found[0] as Entry;
  assert.is(e.MESSAGE, 'permission denied: run as root');
  assert.is(e.PRIORITY, '3');
  assert.is(e.MANIFOLD_EVENT, 'error');
  assert.is(e.MANIFOLD_CODE, 'ERR_PERMISSION');
  assert.is(e.ERRNO, '13');
  assert.equal(await entries(['-t', 'manifold', '-p', 'err', 'MANIFOLD_LABEL=web'], 0), [], 'the bind event is not an error');
});

test('the CLI: a port range is one entry (MANIFOLD_PORT=8000-8080); a usage error is notice, not err', async () => {
  const cli = (...args: string[]) => box().exec([path.join(box().workTree, 'bin', 'manifold'), ...args], { timeoutMs: 60_000 });
  const load = await cli('load');
  assert.is(load.code, 0, load.stderr);
  try {
    const bind = await cli('bind', 'range', 'tcp', '192.0.2.0/24', '8000-8080');
    assert.is(bind.code, 0, bind.stderr);
    const found = await entries(['-t', 'manifold', `MESSAGE_ID=${EventIds.bind}`, 'MANIFOLD_LABEL=range']);
    assert.is(found.length, 1, 'one entry for 81 ports');
    assert.is(found[0]?.MANIFOLD_PORT, '8000-8080');
    const bad = await cli('bind', 'range');
    assert.is(bad.code, 2, bad.stderr);
    const usage = await entries(['-t', 'manifold', `MESSAGE_ID=${EventIds.error}`, 'MANIFOLD_CODE=ERR_USAGE']);
    assert.is(usage.length, 1);
    assert.is(usage[0]?.PRIORITY, '5');
    assert.match(String(usage[0]?.MESSAGE ?? ''), 'missing arguments PROTOCOL PREFIX PORT of "bind"');
    const errs = await entries(['-t', 'manifold', '-p', 'err', 'MANIFOLD_CODE=ERR_USAGE'], 0);
    assert.is(errs.length, 0, 'not listed by journalctl -p err');
    // An apply is one entry naming each label it changed (a repeated MANIFOLD_LABEL field).
    await box().writeFile('/root/set.json', JSON.stringify({ bindings: [
      { label: 'alpha', prefix: '198.51.100.1', port: 80, protocol: 'tcp' },
      { label: 'beta', prefix: '198.51.100.2', port: 80, protocol: 'tcp' },
    ] }));
    const apply = await cli('apply', '/root/set.json');
    assert.is(apply.code, 0, apply.stderr);
    for (const label of ['alpha', 'beta', 'range']) {
      const byLabel = await entries(['-t', 'manifold', 'MANIFOLD_EVENT=apply', `MANIFOLD_LABEL=${label}`]);
      assert.is(byLabel.length, 1, `the apply is found by MANIFOLD_LABEL=${label} (range: its binding removed)`);
      assert.equal([...(byLabel[0]?.MANIFOLD_LABEL ?? [])].sort(), ['alpha', 'beta', 'range'], 'the field once per label (journald keeps its own order)');
      assert.is(byLabel[0]?.MANIFOLD_ADDED, '2');
    }
  } finally {
    await cli('unload');
  }
});

test('Type=notify: READY=1 makes the unit active, STATUS= shows in StatusText and systemctl status', async () => {
  await unit('mf-ready', `
notifyStatus('starting');
await new Promise((r) => setTimeout(r, 200));
const res = notifyReady('serving web (socket 4097)');
process.stdout.write('ready: ' + JSON.stringify(res) + '\\n');
setInterval(() => {}, 60_000);
`, 'Type=notify\nTimeoutStartSec=15');
  const r = await box().systemctl('start', 'mf-ready.service');
  assert.is(r.code, 0, r.stderr);
  const p = await show('mf-ready', 'ActiveState,SubState,StatusText');
  assert.is(p.ActiveState, 'active');
  assert.is(p.SubState, 'running');
  assert.is(p.StatusText, 'serving web (socket 4097)');
  assert.match((await box().systemctl('status', 'mf-ready.service')).stdout, 'Status: "serving web (socket 4097)"');
  assert.match((await box().journalctl('-u', 'mf-ready.service', '-o', 'cat')).stdout, 'ready: "sent"');
  assert.is((await box().systemctl('stop', 'mf-ready.service')).code, 0);
});

test('ERRNO= shows in StatusErrno', async () => {
  await unit('mf-errno', `
notifyError(98, 'cannot bind 10.0.0.1:80: address in use');
notifyReady();
setInterval(() => {}, 60_000);
`, 'Type=notify\nTimeoutStartSec=15');
  const r = await box().systemctl('start', 'mf-errno.service');
  assert.is(r.code, 0, r.stderr);
  const p = await show('mf-errno', 'StatusText,StatusErrno');
  assert.is(p.StatusErrno, '98');
  assert.is(p.StatusText, 'cannot bind 10.0.0.1:80: address in use');
  assert.is((await box().systemctl('stop', 'mf-errno.service')).code, 0);
});

test('a oneshot that exits right after STATUS= keeps it (sd_notify_barrier)', async () => {
  await unit('mf-oneshot', `
const res = notifyStatus('registered web (socket 4097)');
process.stdout.write('status: ' + JSON.stringify(res) + '\\n');
process.exit(0);
`, 'Type=oneshot\nRemainAfterExit=yes\nNotifyAccess=main');
  for (let i = 0; i < 5; i++) {
    if (i) assert.is((await box().systemctl('stop', 'mf-oneshot.service')).code, 0);
    const r = await box().systemctl('start', 'mf-oneshot.service');
    assert.is(r.code, 0, r.stderr);
    const p = await show('mf-oneshot', 'ActiveState,StatusText');
    assert.is(p.ActiveState, 'active');
    assert.is(p.StatusText, 'registered web (socket 4097)', `run ${i}`);
  }
  assert.match((await box().journalctl('-u', 'mf-oneshot.service', '-o', 'cat')).stdout, 'status: "sent"');
});

test('without $NOTIFY_SOCKET nothing is sent', async () => {
  const r = await box().exec([box().nodePath, '--input-type=module', '-e', script(`
process.stdout.write(JSON.stringify([notifyStatus('x'), notifyReady(), notifyError(1, 'y')]));
`)]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '["no-socket","no-socket","no-socket"]');
});

test('<N> fallback (libsystemd missing, stderr is the journal stream) keeps the priority', async () => {
  await unit('mf-stderr', `
installLogSinks({ disabled: false, libsystemd: false, journalSocket: true, stderrIsJournal: stderrIsJournal() });
process.stdout.write('target: ' + logTarget() + '\\n');
emitEvent('unregister', Priority.warning, 'unregistered web (had no socket)', { LABEL: 'web' });
`, 'Type=oneshot\nStandardOutput=journal\nStandardError=journal');
  const r = await box().systemctl('start', 'mf-stderr.service');
  assert.is(r.code, 0, r.stderr);
  assert.match((await box().journalctl('-u', 'mf-stderr.service', '-o', 'cat')).stdout, 'target: stderr-prefix');
  const found = await entries(['-u', 'mf-stderr.service', '-p', 'warning', 'MESSAGE=unregistered web (had no socket)']);
  assert.is(found.length, 1);
  assert.is((found[0] as Entry).PRIORITY, '4');
});

test.run();
