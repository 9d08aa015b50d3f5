/**
 * Reload semantics under a real systemd (manifold.conf(5), "RELOADING"):
 * `systemctl reload manifold` with a broken config file fails (the reload
 * job fails, the journal has an err entry naming the file) and the broken
 * file's label keeps the bindings applied last; bindings made by hand
 * (`manifold bind` of a label no config file defines) survive reloads and a
 * restart of manifold.service (what a package upgrade does); a removed
 * file's label loses its bindings; `apply --config --prune` removes the
 * hand-made ones. Real TCP traffic from inside the container checks each
 * state. One container for the file. Root only. Run: node test/run.mjs reload
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventIds } from '../../src/log/events.js';
import { bootSystemd, type Container } from './harness.js';
import { installerFromEnv, type Installation } from './install.js';

let c: Container | undefined;
let inst: Installation | undefined;
const installer = installerFromEnv();
const LIB = '/usr/local/lib/mf-reload';
const WEB = '/etc/manifold/web.conf';
const webConf = (bind: string): string => `[Label]\nBind=${bind}\nSocket=web.socket\n`;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function manifold(...args: string[]): Promise<string> {
  const r = await box().exec([inst?.bin ?? '/usr/bin/manifold', ...args], { timeoutMs: 60_000 });
  assert.is(r.code, 0, `manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function systemctl(...args: string[]): Promise<string> {
  const r = await box().systemctl(...args);
  assert.is(r.code, 0, `systemctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function prop(unit: string, name: string): Promise<string> {
  return (await systemctl('show', '-p', name, '--value', unit)).trim();
}

/** The bindings as "label proto prefix port", sorted. */
async function bindings(): Promise<string[]> {
  const list = JSON.parse(await manifold('bindings', '--json')) as { label: string; protocol: string; prefix: string; port: number }[];
  return list.map((b) => `${b.label} ${b.protocol} ${b.prefix} ${b.port}`).sort();
}

/** Labels status --json reports as defined by the configuration. */
async function configured(): Promise<string[]> {
  const st = JSON.parse(await manifold('status', '--json')) as { destinations: { label: string; configured: boolean }[] };
  return [...new Set(st.destinations.filter((d) => d.configured).map((d) => d.label))].sort();
}

/** Who answers a TCP connection to host:port from inside the container: the tag, or the error. */
async function who(host: string, port: number): Promise<string> {
  const r = await box().exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && timeout 10 cat <&3`], { timeoutMs: 20_000 });
  if (r.code !== 0) return /Connection refused/.test(r.stderr) ? 'refused' : `exit ${r.code}: ${r.stderr.trim()}`;
  return r.stdout.trim().split(' ')[0] ?? '';
}

type Entry = Record<string, string | undefined>;

/**
 * Journal entries after cursor `after` whose fields have the values of
 * `match` (filtered here: journalctl 252 misses entries when --after-cursor
 * is combined with matches), polled until at least `want` arrived.
 */
async function entries(after: string, match: Entry, want = 1): Promise<Entry[]> {
  let found: Entry[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await box().journalctl('-o', 'json', `--after-cursor=${after}`);
    found = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry)
      .filter((e) => Object.entries(match).every(([k, v]) => e[k] === v));
    if (found.length >= want) return found;
    await sleep(100);
  }
  return found;
}

/** The journal's current cursor. */
async function cursor(): Promise<string> {
  const r = await box().journalctl('-n', '0', '--show-cursor');
  const m = /-- cursor: (\S+)/.exec(r.stdout);
  assert.ok(m, `no cursor: ${r.stdout} ${r.stderr}`);
  return m?.[1] ?? '';
}

/** A server answering "TAG PID": socket-activated (fd 3) or listening on its own. */
const SERVER_JS = `import net from 'node:net';
const [tag, port] = process.argv.slice(2);
const server = net.createServer((s) => s.end(tag + ' ' + process.pid + '\\n'));
if (port) server.listen(Number(port), '127.0.0.1'); else server.listen({ fd: 3 });
`;

test.before(async () => {
  c = await bootSystemd({ name: 'reload' });
  const s = await c.waitForSystemRunning();
  assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
  inst = await installer.install(c);
  for (const prefix of ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']) {
    const r = await c.exec(['ip', 'route', 'add', 'local', prefix, 'dev', 'lo']);
    assert.is(r.code, 0, r.stderr);
  }
  await c.writeFile(`${LIB}/server.mjs`, SERVER_JS);
  await c.writeFile('/etc/systemd/system/web.socket', '[Socket]\nListenStream=127.0.0.1:8080\n');
  await c.writeFile('/etc/systemd/system/web.service', `[Service]\nExecStart=${c.nodePath} ${LIB}/server.mjs web\n`);
  await c.writeFile('/etc/systemd/system/hand.service', `[Service]\nExecStart=${c.nodePath} ${LIB}/server.mjs hand 9191\n`);
});

test.after(async () => {
  if (c) await c.shutdown();
});

test('reload applies the config; a binding made by hand survives it', async () => {
  await box().writeFile(WEB, webConf('tcp 192.0.2.0/24 80'));
  await systemctl('daemon-reload');
  await systemctl('start', 'web.socket');
  await systemctl('reload', 'manifold.service');
  // By hand: a service outside the configuration, registered and bound with the CLI.
  await systemctl('start', 'hand.service');
  for (let i = 0; i < 50 && (await who('127.0.0.1', 9191)) !== 'hand'; i++) await sleep(100);
  await manifold('register-pid', await prop('hand.service', 'MainPID'), 'hand', 'tcp', '127.0.0.1', '9191');
  await manifold('bind', 'hand', 'tcp', '198.51.100.0/24', '80');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80', 'web tcp 192.0.2.0/24 80']);
  assert.equal(await configured(), ['web']);

  const at = await cursor();
  await systemctl('reload', 'manifold.service');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80', 'web tcp 192.0.2.0/24 80'], 'the hand-made binding is kept');
  assert.is(await who('192.0.2.10', 80), 'web');
  assert.is(await who('198.51.100.10', 80), 'hand');
  const applied = await entries(at, { SYSLOG_IDENTIFIER: 'manifold', MESSAGE_ID: EventIds.apply });
  assert.is(applied[0]?.MANIFOLD_KEPT_BY_HAND, '1', JSON.stringify(applied));
  const said = await entries(at, { _SYSTEMD_UNIT: 'manifold.service', MESSAGE: 'manifold: kept 1 binding(s) made by hand, of labels no config file defines: hand (1); --prune removes them' });
  assert.is(said.length, 1, 'the reload says what it kept, and why');
});

test('reload with a broken file fails loudly; its label keeps the bindings applied last', async () => {
  await box().writeFile(WEB, webConf('tcp 203.0.113.1/24 80'));
  const at = await cursor();
  const r = await box().systemctl('reload', 'manifold.service');
  assert.is.not(r.code, 0, 'systemctl reload fails');
  assert.match(r.stderr, 'Job for manifold.service failed');
  assert.is(await prop('manifold.service', 'ActiveState'), 'active', 'the dispatcher stays loaded');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80', 'web tcp 192.0.2.0/24 80'], 'nothing changed');
  assert.equal(await configured(), ['web']);
  assert.is(await who('192.0.2.10', 80), 'web');
  assert.is(await who('198.51.100.10', 80), 'hand');
  assert.is(await who('203.0.113.10', 80), 'refused');

  const errs = await entries(at, { SYSLOG_IDENTIFIER: 'manifold', PRIORITY: '3', MANIFOLD_CONFIG_FILE: WEB });
  assert.is(errs.length, 1, JSON.stringify(errs));
  assert.is(errs[0]?.MANIFOLD_CODE, 'ERR_INVALID_CONFIG');
  assert.is(errs[0]?.MANIFOLD_CONFIG_LINE, '2');
  assert.is(errs[0]?._SYSTEMD_UNIT, 'manifold.service');
  assert.match(errs[0]?.MESSAGE ?? '', /^config: \/etc\/manifold\/web\.conf:2: prefix "203\.0\.113\.1\/24" in Bind= has host bits set/);
  const kept = await entries(at, { _SYSTEMD_UNIT: 'manifold.service', MESSAGE: 'manifold: kept 1 binding(s) of labels applied from the configuration before, because files with problems were left out: web (1)' });
  assert.is(kept.length, 1);
  const log = (await box().journalctl('-u', 'manifold.service', `--after-cursor=${at}`, '-o', 'cat')).stdout;
  assert.match(log, /Reload failed for manifold\.service|manifold\.service: Control process exited, code=exited, status=1/);
  const st = await box().systemctl('status', 'manifold.service');
  assert.match(st.stdout, /ExecReload=.*status=1\/FAILURE/, st.stdout);
});

test('the fixed file reloads; a removed file\'s label loses its bindings, the hand-made one stays', async () => {
  await box().writeFile(WEB, webConf('tcp 203.0.113.0/24 80'));
  await systemctl('reload', 'manifold.service');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80', 'web tcp 203.0.113.0/24 80']);
  assert.is(await who('203.0.113.10', 80), 'web');
  assert.is(await who('192.0.2.10', 80), 'refused');

  await box().exec(['rm', WEB]);
  await systemctl('reload', 'manifold.service');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80']);
  assert.equal(await configured(), []);
  assert.is(await who('203.0.113.10', 80), 'refused');
  assert.is(await who('198.51.100.10', 80), 'hand');
});

test('restart of manifold.service (a package upgrade) with a broken file: stays active, keeps everything', async () => {
  await box().writeFile(WEB, webConf('tcp 192.0.2.0/24 80'));
  await systemctl('reload', 'manifold.service');
  await box().writeFile(WEB, webConf('tcp 192.0.2.0/24 80\nBind=bogus'));
  const at = await cursor();
  await systemctl('restart', 'manifold.service');
  assert.is(await prop('manifold.service', 'ActiveState'), 'active', 'the apply fails, the unit does not (ExecStart=-)');
  assert.equal(await bindings(), ['hand tcp 198.51.100.0/24 80', 'web tcp 192.0.2.0/24 80']);
  assert.is(await who('192.0.2.10', 80), 'web');
  assert.is(await who('198.51.100.10', 80), 'hand');
  const errs = await entries(at, { SYSLOG_IDENTIFIER: 'manifold', PRIORITY: '3', MANIFOLD_CONFIG_FILE: WEB });
  assert.is(errs[0]?.MANIFOLD_CONFIG_LINE, '3');
});

test('apply --config --prune removes the bindings made by hand', async () => {
  await box().writeFile(WEB, webConf('tcp 192.0.2.0/24 80'));
  await systemctl('reload', 'manifold.service');
  await manifold('apply', '--config', '--prune');
  assert.equal(await bindings(), ['web tcp 192.0.2.0/24 80']);
  assert.is(await who('198.51.100.10', 80), 'refused');
  assert.is(await who('192.0.2.10', 80), 'web');
  assert.is((await box().systemctl('--failed', '--plain', '--no-legend')).stdout.trim(), '', 'no failed units');
});

test.run();
