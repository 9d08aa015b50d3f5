/**
 * End to end under a real systemd 252 (issue 4 acceptance): manifold
 * installed like a package (test/systemd/install.ts; set $MANIFOLD_TEST_DEB
 * to test a .deb instead of the checkout), config files in /etc/manifold, the
 * generator run by daemon-reload, a socket-activated service and a
 * Type=notify service registered through the generated drop-ins, real TCP
 * traffic to steered addresses from inside the container's netns, restarts,
 * `systemctl reload manifold`, a broken config file, `systemd-analyze verify`
 * of the shipped units, and nothing left behind. One container for the file.
 * Root only. Run: node test/run.mjs e2e
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { EventIds } from '../../src/log/events.js';
import { bootSystemd, type Container } from './harness.js';
import { installerFromEnv, type Installation } from './install.js';

let c: Container | undefined;
let inst: Installation | undefined;
let shutDown = false;
const installer = installerFromEnv();

/** Scripts of the test services, inside the container. */
const LIB = '/usr/local/lib/mf-e2e';
const GEN = '/run/systemd/generator';
const WEB_CONF = `[Label]
Bind=tcp 192.0.2.0/24 80
Socket=web.socket
`;
const API_CONF = `[Label]
Service=api.service
Listen=tcp 127.0.0.1 9090
Bind=tcp 198.51.100.0/24 0
`;

function box(): Container {
  if (!c) throw new Error('container did not boot');
  return c;
}

function installed(): Installation {
  if (!inst) throw new Error('manifold is not installed');
  return inst;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the installed manifold command inside the container (as root, outside any unit). */
async function manifold(...args: string[]): Promise<string> {
  const r = await box().exec([installed().bin, ...args], { timeoutMs: 60_000 });
  assert.is(r.code, 0, `manifold ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function systemctl(...args: string[]): Promise<string> {
  const r = await box().systemctl(...args);
  assert.is(r.code, 0, `systemctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function show(unit: string, props: string): Promise<Record<string, string>> {
  const out = await systemctl('show', '-p', props, unit);
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

interface BindingJson {
  label: string;
  protocol: string;
  prefix: string;
  port: number;
}

interface Destination {
  label: string;
  domain: string;
  protocol: string;
  socket: string | null;
  alive: boolean;
  usable: boolean | null;
  owner: { pid: number; comm: string } | null;
}

async function status(): Promise<{ bindings: BindingJson[]; destinations: Destination[]; warnings: unknown[] }> {
  return JSON.parse(await manifold('status', '--json')) as { bindings: BindingJson[]; destinations: Destination[]; warnings: unknown[] };
}

async function cookieOf(label: string): Promise<string | null> {
  const d = (await status()).destinations.find((x) => x.label === label && x.domain === 'ipv4' && x.protocol === 'tcp');
  return d?.socket ?? null;
}

const byKey = (a: BindingJson, b: BindingJson): number => JSON.stringify(a).localeCompare(JSON.stringify(b));

async function bindings(): Promise<BindingJson[]> {
  return (JSON.parse(await manifold('bindings', '--json')) as BindingJson[]).sort(byKey);
}

/** One TCP connection from inside the container: the server's one-line answer, or throws with the error. */
async function request(host: string, port: number): Promise<string> {
  const r = await box().exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && timeout 10 cat <&3`], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`connect ${host}:${port}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Asserts a connection is refused (nothing listens on, or is registered for, host:port). */
async function refused(host: string, port: number): Promise<void> {
  const r = await box().exec(['bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], { timeoutMs: 20_000 });
  assert.not.equal(r.code, 0, `${host}:${port} should refuse`);
  assert.match(r.stderr, 'Connection refused');
}

/** The answer `tag PID` of a test service. */
function tagged(answer: string, tag: string): number {
  const m = new RegExp(`^${tag} (\\d+)$`).exec(answer);
  assert.ok(m, `expected "${tag} PID", got ${JSON.stringify(answer)}`);
  return Number(m?.[1]);
}

async function mainPid(unit: string): Promise<number> {
  return Number((await show(unit, 'MainPID')).MainPID);
}

type Entry = Record<string, string | undefined>;

/** Journal entries (JSON) matching `args`, polled until at least `want` arrived. */
async function entries(args: string[], want = 1): Promise<Entry[]> {
  let found: Entry[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await box().journalctl('-o', 'json', ...args);
    found = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
    if (found.length >= want) return found;
    await sleep(100);
  }
  return found;
}

/**
 * Waits for a run of manifold-register@INSTANCE.service that started after
 * `previous` (its InvocationID before) to finish; returns its properties.
 */
async function registerRun(instance: string, previous: string, result = 'success'): Promise<Record<string, string>> {
  const unit = `manifold-register@${instance}.service`;
  const props = 'ActiveState,Result,InvocationID,StatusText,ExecMainStatus';
  let p: Record<string, string> = {};
  for (let i = 0; i < 200; i++) {
    p = await show(unit, props);
    const done = p.ActiveState === 'inactive' || p.ActiveState === 'failed';
    if (p.InvocationID && p.InvocationID !== previous && done && p.Result === result) return p;
    await sleep(100);
  }
  const journal = (await box().journalctl('-u', unit, '-n', '20')).stdout;
  throw new Error(`no run of ${unit} ended with result ${result} (last: ${JSON.stringify(p)}); journal:\n${journal}`);
}

async function invocation(unit: string): Promise<string> {
  return (await show(unit, 'InvocationID')).InvocationID ?? '';
}

/** Lines the generator wrote to /dev/kmsg (the container console) after `from` characters. */
function generatorLines(from: number): string[] {
  return box().console().slice(from).split('\n').filter((l) => /manifold-generator\[\d+\]:/.test(l));
}

const WEB_JS = `import net from 'node:net';
// Socket-activated (Accept=no): the listening socket is fd 3.
if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
  console.error('web: no socket passed'); process.exit(1);
}
net.createServer((s) => s.end('web ' + process.pid + '\\n')).listen({ fd: 3 });
`;

function apiJs(workTree: string): string {
  return `import net from 'node:net';
import { notifyReady } from 'file://${workTree}/build/src/log/notify.js';
// Type=notify: READY=1 only once listening, so ExecStartPost= finds the socket.
const server = net.createServer((s) => s.end('api ' + process.pid + '\\n'));
server.listen(9090, '127.0.0.1', () => { notifyReady('serving on 127.0.0.1:9090'); });
`;
}

/** Connects to host:port in a loop for `ms` milliseconds; prints {ok, fail, errors}. */
const LOOP_JS = `import net from 'node:net';
const [host, port, ms, tag] = process.argv.slice(2);
const end = Date.now() + Number(ms);
let ok = 0, fail = 0; const errors = {};
while (Date.now() < end) {
  await new Promise((resolve) => {
    let settled = false;
    const done = () => { if (!settled) { settled = true; s.destroy(); resolve(); } };
    const s = net.connect({ host, port: Number(port) });
    let data = '';
    s.setTimeout(2000, () => { if (!settled) { fail++; errors.TIMEOUT = (errors.TIMEOUT ?? 0) + 1; } done(); });
    s.setEncoding('utf8').on('data', (d) => { data += d; });
    s.on('end', () => { if (settled) return; if (data.startsWith(tag + ' ')) ok++; else { fail++; errors[data] = (errors[data] ?? 0) + 1; } done(); });
    s.on('error', (e) => { if (settled) return; fail++; errors[e.code] = (errors[e.code] ?? 0) + 1; done(); });
  });
  await new Promise((r) => setTimeout(r, 2));
}
process.stdout.write(JSON.stringify({ ok, fail, errors }));
`;

test.before(async () => {
  c = await bootSystemd({ name: 'e2e' });
  const s = await c.waitForSystemRunning();
  assert.equal(s.failed, [], `failed units: ${s.failed.join(' ')}`);
  console.log(`  installing manifold from the ${installer.name}`);
  inst = await installer.install(c);
  // Steered prefixes are local addresses of this netns (sk_lookup runs for local delivery).
  for (const prefix of ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']) {
    const r = await c.exec(['ip', 'route', 'add', 'local', prefix, 'dev', 'lo']);
    assert.is(r.code, 0, r.stderr);
  }
});

test.after(async () => {
  if (c && !shutDown) {
    await c.shutdown().catch((e: Error) => {
      console.error(`# ${e.message}`);
      process.exitCode = 1;
    });
  }
});

test('installed: manifold.service loaded the dispatcher with group "manifold", no bindings yet', async () => {
  const p = await show('manifold.service', 'ActiveState,SubState,Result,UnitFileState');
  assert.equal([p.ActiveState, p.SubState, p.Result, p.UnitFileState], ['active', 'exited', 'success', 'enabled']);
  const group = (await box().exec(['getent', 'group', 'manifold'])).stdout;
  assert.match(group, /^manifold:x:\d+:/, 'sysusers.d created the group');
  const gid = group.split(':')[2];
  const st = await box().exec(['stat', '-c', '%g %a', ...(await box().exec(['sh', '-c', 'ls -d /sys/fs/bpf/*_manifold'])).stdout.trim().split('\n')]);
  assert.is(st.stdout.trim(), `${gid} 750`, 'state directory readable by the group');
  assert.equal(await bindings(), []);
  for (const f of [installed().bin, installed().generator]) assert.is((await box().exec(['test', '-x', f])).code, 0, `${f} is executable`);
});

test('daemon-reload runs the generator: drop-ins in /run/systemd/generator, shown by systemctl cat', async () => {
  await box().writeFile('/etc/manifold/web.conf', WEB_CONF);
  await box().writeFile('/etc/manifold/api.conf', API_CONF);
  await box().writeFile(`${LIB}/web.mjs`, WEB_JS);
  await box().writeFile(`${LIB}/api.mjs`, apiJs(box().workTree));
  await box().writeFile(`${LIB}/loop.mjs`, LOOP_JS);
  await box().writeFile('/etc/systemd/system/web.socket', '[Unit]\nDescription=e2e web socket\n\n[Socket]\nListenStream=127.0.0.1:8080\nAccept=no\n');
  await box().writeFile('/etc/systemd/system/web.service', `[Unit]\nDescription=e2e web server\n\n[Service]\nExecStart=${box().nodePath} ${LIB}/web.mjs\n`);
  await box().writeFile('/etc/systemd/system/api.service', `[Unit]\nDescription=e2e api server\n\n[Service]\nType=notify\nExecStart=${box().nodePath} ${LIB}/api.mjs\n`);
  const mark = box().console().length;
  const t0 = Date.now();
  await systemctl('daemon-reload');
  console.log(`  daemon-reload with the generator: ${Date.now() - t0} ms`);

  const socketDropIn = await box().readFile(`${GEN}/web.socket.d/50-manifold.conf`);
  assert.match(socketDropIn, '# Automatically generated by manifold-generator from /etc/manifold/web.conf.');
  assert.match(socketDropIn, /^Wants=manifold-register@web\.service$/m);
  assert.match(await box().readFile(`${GEN}/manifold-register@web.service.d/50-manifold.conf`), /^Environment=MANIFOLD_LABEL=web$/m);
  const apiDropIn = await box().readFile(`${GEN}/api.service.d/50-manifold-api.conf`);
  assert.match(apiDropIn, /^After=manifold\.service$/m);
  assert.match(apiDropIn, new RegExp(`^ExecStartPost=\\+${installed().bin} register-pid \\$MAINPID api tcp 127\\.0\\.0\\.1 9090$`, 'm'));

  const cat = await systemctl('cat', 'web.socket');
  assert.match(cat, '# /etc/systemd/system/web.socket');
  assert.match(cat, `# ${GEN}/web.socket.d/50-manifold.conf\n`);
  assert.match(cat, 'Wants=manifold-register@web.service');
  assert.match(await systemctl('cat', 'api.service'), `# ${GEN}/api.service.d/50-manifold-api.conf\n`);
  assert.match((await show('web.socket', 'Wants')).Wants ?? '', 'manifold-register@web.service');
  const reg = await show('manifold-register@web.service', 'Environment,TriggeredBy,Description');
  assert.is(reg.Environment, 'MANIFOLD_LABEL=web');
  assert.is(reg.TriggeredBy, 'web.socket', 'Sockets=%i.socket names web.socket');
  assert.is(reg.Description, 'manifold: register the sockets of web.socket');
  assert.equal(generatorLines(mark), [], 'a valid configuration logs nothing');
});

test('systemctl reload manifold applies the Bind= lines', async () => {
  await systemctl('reload', 'manifold.service');
  assert.equal(await bindings(), [
    { label: 'web', protocol: 'tcp', prefix: '192.0.2.0/24', port: 80 },
    { label: 'api', protocol: 'tcp', prefix: '198.51.100.0/24', port: 0 },
  ].sort(byKey));
  const applied = await entries(['-t', 'manifold', '-u', 'manifold.service', `MESSAGE_ID=${EventIds.apply}`, 'MANIFOLD_ADDED=2']);
  assert.is(applied.length, 1, 'one apply event with 2 bindings added');
});

test('socket activation: registered by manifold-register@web, activation not blocked, steered traffic reaches the service', async () => {
  const before = await invocation('manifold-register@web.service');
  await systemctl('start', 'web.socket');
  // Right away, while the register helper (Sockets=web.socket) still runs: the connection is
  // served; systemd activates web.service once the helper has exited.
  const first = tagged(await request('127.0.0.1', 8080), 'web');
  const run = await registerRun('web', before);
  assert.is(run.Result, 'success', JSON.stringify(run));
  const helperExit = Number((await show('manifold-register@web.service', 'ExecMainExitTimestampMonotonic')).ExecMainExitTimestampMonotonic);
  const serviceStart = Number((await show('web.service', 'ExecMainStartTimestampMonotonic')).ExecMainStartTimestampMonotonic);
  console.log(`  web.service started ${((serviceStart - helperExit) / 1000).toFixed(1)} ms after the register helper exited`);
  assert.is(first, await mainPid('web.service'), 'web.service was activated by that connection');
  // While its service runs, a socket's state is "running".
  assert.equal(Object.values(await show('web.socket', 'ActiveState,SubState')).sort(), ['active', 'running']);

  const cookie = await cookieOf('web');
  assert.ok(cookie, 'web has a socket');
  const dest = (await status()).destinations.find((d) => d.label === 'web');
  assert.is(dest?.alive, true);
  assert.is(dest?.usable, true);

  // Stop the service: the next (steered) connection must activate it again.
  await systemctl('stop', 'web.service');
  assert.is((await show('web.socket', 'SubState')).SubState, 'listening', 'the socket listens again, not "running"');
  assert.is((await show('web.service', 'ActiveState')).ActiveState, 'inactive');
  const pid = tagged(await request('192.0.2.10', 80), 'web');
  assert.is(pid, await mainPid('web.service'), 'answered by the freshly activated web.service');
  assert.not.equal(pid, first);
  assert.is(tagged(await request('192.0.2.254', 80), 'web'), pid, 'the whole /24 is steered');
  await refused('192.0.2.10', 81);
  assert.is(await cookieOf('web'), cookie, 'same socket');
});

test('systemctl status manifold-register@web.service shows manifold\'s STATUS= text', async () => {
  const cookie = await cookieOf('web');
  const r = await box().systemctl('status', 'manifold-register@web.service');
  assert.is(r.code, 3, 'inactive (exited) unit: systemctl status exits 3');
  assert.match(r.stdout, `Status: "registered ipv4:tcp:web (socket ${cookie}, `);
  assert.match(r.stdout, /Active: inactive \(dead\)/);
  assert.match(r.stdout, /status=0\/SUCCESS/);
});

test('journal: the register event, by label', async () => {
  const cookie = await cookieOf('web');
  const found = (await entries(['-t', 'manifold', 'MANIFOLD_LABEL=web'])).filter((e) => e.MESSAGE_ID === EventIds.register);
  assert.is(found.length, 1, 'one register event for web so far');
  const e = found[0] as Entry;
  assert.is(e.MESSAGE, `registered ipv4:tcp:web socket ${cookie} (created)`);
  assert.is(e.MANIFOLD_SOCKET_COOKIE, cookie);
  assert.is(e.MANIFOLD_EVENT, 'register');
  assert.is(e.MANIFOLD_PROTOCOL, 'tcp');
  assert.is(e.MANIFOLD_DOMAIN, 'ipv4');
  assert.is(e.PRIORITY, '5');
  assert.is(e.SYSLOG_IDENTIFIER, 'manifold');
  // journald finds an entry's unit in /proc/PID/cgroup when it reads the entry; the helper may
  // have exited by then (journald of systemd < 254 keeps no pidfd), so the unit can be missing.
  // Then the entry's trusted _PID must be the helper's.
  if (e._SYSTEMD_UNIT !== undefined) assert.is(e._SYSTEMD_UNIT, 'manifold-register@web.service');
  else assert.is(e._PID, (await show('manifold-register@web.service', 'ExecMainPID')).ExecMainPID, 'the entry comes from the register helper');
});

test('Type=notify service: registered by the generated ExecStartPost=, receives steered traffic', async () => {
  await systemctl('start', 'api.service');
  const p = await show('api.service', 'ActiveState,SubState,StatusText,MainPID');
  assert.equal([p.ActiveState, p.SubState], ['active', 'running']);
  assert.is(p.StatusText, 'serving on 127.0.0.1:9090', 'the service\'s own status is kept');
  const pid = Number(p.MainPID);
  const dest = (await status()).destinations.find((d) => d.label === 'api');
  assert.ok(dest?.socket, 'api has a socket');
  assert.is(dest?.owner?.pid, pid, 'the socket is the main process\'s');
  for (const [host, port] of [['198.51.100.1', 80], ['198.51.100.200', 5432], ['198.51.100.7', 65535]] as const) {
    assert.is(tagged(await request(host, port), 'api'), pid, `${host}:${port}`);
  }
  const e = (await entries(['-t', 'manifold', 'MANIFOLD_LABEL=api', `MESSAGE_ID=${EventIds.register}`]))[0] as Entry;
  assert.is(e._SYSTEMD_UNIT, 'api.service', 'logged by the ExecStartPost= of api.service');
  assert.is(e.MANIFOLD_SOCKET_COOKIE, dest?.socket ?? undefined);
  const st = await systemctl('status', 'api.service');
  assert.match(st, `ExecStartPost=${installed().bin} register-pid $MAINPID api tcp 127.0.0.1 9090 (code=exited, status=0/SUCCESS)`);
});

test('restarts: the service keeps its socket; a new socket or process is registered again', async () => {
  // web.service restarted: same listening socket (owned by web.socket), no re-registration needed.
  const webCookie = await cookieOf('web');
  const oldWeb = await mainPid('web.service');
  await systemctl('restart', 'web.service');
  const newWeb = await mainPid('web.service');
  assert.not.equal(newWeb, oldWeb);
  assert.is(tagged(await request('192.0.2.10', 80), 'web'), newWeb);
  assert.is(await cookieOf('web'), webCookie);

  // web.socket restarted (its service stopped first: systemd refuses to start a socket whose
  // service is running): a new socket, registered again by a new run of the register helper.
  await systemctl('stop', 'web.service');
  const before = await invocation('manifold-register@web.service');
  await systemctl('restart', 'web.socket');
  const run = await registerRun('web', before);
  assert.is(run.Result, 'success');
  const newCookie = await cookieOf('web');
  assert.ok(newCookie);
  assert.not.equal(newCookie, webCookie, 'a new socket cookie');
  assert.match(run.StatusText ?? '', `registered ipv4:tcp:web (socket ${newCookie}, `);
  const pid = tagged(await request('192.0.2.10', 80), 'web');
  assert.is(pid, await mainPid('web.service'), 'activated by steered traffic');

  // api.service restarted: a new process with a new socket, registered by ExecStartPost= again.
  const apiCookie = await cookieOf('api');
  const oldApi = await mainPid('api.service');
  await systemctl('restart', 'api.service');
  const newApi = await mainPid('api.service');
  assert.not.equal(newApi, oldApi);
  const apiNew = await cookieOf('api');
  assert.ok(apiNew);
  assert.not.equal(apiNew, apiCookie, 'a new socket cookie');
  assert.is(tagged(await request('198.51.100.1', 443), 'api'), newApi);
  const events = await entries(['-t', 'manifold', 'MANIFOLD_LABEL=api', `MESSAGE_ID=${EventIds.register}`], 2);
  assert.is(events.length, 2);
  assert.is(events[1]?.MANIFOLD_SOCKET_COOKIE, apiNew);
});

test('systemctl reload manifold applies a changed Bind= atomically; traffic follows, other labels undisturbed', async () => {
  await box().writeFile('/etc/manifold/web.conf', WEB_CONF.replace('Bind=tcp 192.0.2.0/24 80', 'Bind=tcp 203.0.113.0/24 80\nBind=tcp 192.0.2.128/25 8000-8009'));
  // Keep connecting to the api label while the web label's bindings change.
  const loop = box().exec([box().nodePath, `${LIB}/loop.mjs`, '198.51.100.50', '8443', '3000', 'api'], { timeoutMs: 30_000 });
  await sleep(500);
  await systemctl('reload', 'manifold.service');
  const l = await loop;
  assert.is(l.code, 0, l.stderr);
  const counts = JSON.parse(l.stdout) as { ok: number; fail: number; errors: Record<string, number> };
  assert.ok(counts.ok > 10, `connections during the reload: ${l.stdout}`);
  assert.is(counts.fail, 0, `no connection to the other label failed: ${l.stdout}`);

  assert.equal(await bindings(), [
    { label: 'web', protocol: 'tcp', prefix: '203.0.113.0/24', port: 80 },
    { label: 'web', protocol: 'tcp', prefix: '192.0.2.128/25', port: 8000 },
    { label: 'web', protocol: 'tcp', prefix: '192.0.2.128/25', port: 8009 },
    ...Array.from({ length: 8 }, (_, i) => ({ label: 'web', protocol: 'tcp', prefix: '192.0.2.128/25', port: 8001 + i })),
    { label: 'api', protocol: 'tcp', prefix: '198.51.100.0/24', port: 0 },
  ].sort(byKey));
  const pid = await mainPid('web.service');
  assert.is(tagged(await request('203.0.113.9', 80), 'web'), pid);
  assert.is(tagged(await request('192.0.2.200', 8005), 'web'), pid);
  await refused('192.0.2.10', 80);
  await refused('192.0.2.200', 80);
  await refused('192.0.2.10', 8005);
  const e = await entries(['-t', 'manifold', `MESSAGE_ID=${EventIds.apply}`, 'MANIFOLD_ADDED=11', 'MANIFOLD_REMOVED=1']);
  assert.is(e.length, 1, 'one apply event: 11 added, 1 removed');
  assert.is(e[0]?.MANIFOLD_TOTAL, '12');
});

test('a broken config file: logged on the console and in the journal, the reload fails, the other labels unaffected', async () => {
  await box().writeFile('/etc/manifold/broken.conf', '[Label]\nBind=tcp 192.0.2.1/24 443\nSocket=broken.socket\n');
  // Valid on its own, but claims web's binding: rejected as the later file.
  await box().writeFile('/etc/manifold/zz-thief.conf', '[Label]\nBind=tcp 203.0.113.0/24 80\nSocket=thief.socket\n');
  const mark = box().console().length;
  await systemctl('daemon-reload');
  await box().waitForConsole(/manifold-generator\[\d+\]: .*zz-thief\.conf/);
  const lines = generatorLines(mark);
  assert.is(lines.length, 2, lines.join('\n'));
  assert.match(lines[0] ?? '', /^<27>manifold-generator\[\d+\]: \/etc\/manifold\/broken\.conf:2: prefix "192\.0\.2\.1\/24" in Bind= has host bits set; did you mean 192\.0\.2\.0\/24\? \(file skipped\)$/);
  assert.match(lines[1] ?? '', /^<27>manifold-generator\[\d+\]: \/etc\/manifold\/zz-thief\.conf:2: .*203\.0\.113\.0\/24.*web.*\(file skipped\)$/);
  for (const f of ['web.socket.d/50-manifold.conf', 'manifold-register@web.service.d/50-manifold.conf', 'api.service.d/50-manifold-api.conf']) {
    assert.is((await box().exec(['test', '-f', `${GEN}/${f}`])).code, 0, `${f} still generated`);
  }
  for (const f of ['broken.socket.d', 'thief.socket.d', 'manifold-register@broken.service.d', 'manifold-register@thief.service.d']) {
    assert.is.not((await box().exec(['test', '-e', `${GEN}/${f}`])).code, 0, `${f} not generated`);
  }

  const before = await bindings();
  // The reload fails (the valid files are applied, the broken ones left out); the unit stays active.
  const reload = await box().systemctl('reload', 'manifold.service');
  assert.is.not(reload.code, 0, 'systemctl reload reports the problems');
  assert.is((await show('manifold.service', 'ActiveState')).ActiveState, 'active');
  assert.equal(await bindings(), before, 'the valid files\' bindings stay applied, nothing of the broken ones');
  // One error per file, and the failure of the command.
  const all = await entries(['-t', 'manifold', '-p', 'err', '-u', 'manifold.service', 'MANIFOLD_CODE=ERR_INVALID_CONFIG'], 3);
  const errs = all.filter((e) => e.MANIFOLD_CONFIG_FILE !== undefined);
  assert.equal(errs.map((e) => e.MANIFOLD_CONFIG_FILE).sort(), ['/etc/manifold/broken.conf', '/etc/manifold/zz-thief.conf']);
  assert.match(all.find((e) => e.MANIFOLD_CONFIG_FILE === undefined)?.MESSAGE ?? '', /^2 problems in the configuration: the files with problems were left out, the rest was applied/);
  for (const e of errs) {
    assert.is(e.MESSAGE_ID, EventIds.error);
    assert.is(e.MANIFOLD_CONFIG_LINE, '2');
    assert.match(e.MESSAGE ?? '', /^config: \/etc\/manifold\/.*\(file skipped\)$/);
  }
  const verify = await box().exec([installed().bin, 'verify'], { timeoutMs: 60_000 });
  assert.not.equal(verify.code, 0, 'manifold verify reports the problems');
  assert.match(verify.stdout, 'broken.conf:2:');

  // Traffic and registration of the valid labels still work, including after restarts.
  assert.is(tagged(await request('203.0.113.9', 80), 'web'), await mainPid('web.service'));
  await systemctl('restart', 'api.service');
  assert.is(tagged(await request('198.51.100.1', 80), 'api'), await mainPid('api.service'));

  await box().exec(['rm', '/etc/manifold/broken.conf', '/etc/manifold/zz-thief.conf']);
  const clean = box().console().length;
  await systemctl('daemon-reload');
  await systemctl('reload', 'manifold.service');
  assert.equal(generatorLines(clean), []);
  assert.is((await box().exec([installed().bin, 'verify'])).code, 0);
});

test('fail-open: failed registrations never take the socket down; quick socket restarts work', async () => {
  const breakIn = '/etc/systemd/system/manifold-register@web.service.d/99-break.conf';
  const sockState = async (): Promise<Array<string | undefined>> => {
    const p = await show('web.socket', 'ActiveState,SubState,Result');
    return [p.ActiveState, p.SubState, p.Result];
  };
  // manifold register itself fails (invalid label): the socket still listens and activates.
  await box().writeFile(breakIn, '[Service]\nEnvironment=MANIFOLD_LABEL=-bad\n');
  await systemctl('daemon-reload');
  await systemctl('stop', 'web.service');
  let before = await invocation('manifold-register@web.service');
  await systemctl('restart', 'web.socket');
  const failed = await registerRun('web', before, 'exit-code');
  assert.is(failed.ExecMainStatus, '2', 'ERR_INVALID_ENV-style usage failure');
  assert.equal(await sockState(), ['active', 'listening', 'success']);
  assert.is(tagged(await request('127.0.0.1', 8080), 'web'), await mainPid('web.service'));
  await refused('203.0.113.9', 80);

  // More failures than the default start limit (5 in 10 s): not propagated to the socket.
  await box().writeFile(breakIn, '[Service]\nExecStart=\nExecStart=/bin/false\n');
  await systemctl('daemon-reload');
  for (let i = 0; i < 7; i++) assert.is((await box().systemctl('start', 'manifold-register@web.service')).code, 1, `failing start ${i}`);
  assert.is((await show('manifold-register@web.service', 'Result')).Result, 'exit-code', 'no start-limit-hit');
  assert.is((await show('web.socket', 'ActiveState')).ActiveState, 'active');

  // Repaired; two restarts in a row, the second while the helper of the first still runs.
  await box().exec(['rm', breakIn]);
  await systemctl('daemon-reload');
  await systemctl('stop', 'web.service');
  before = await invocation('manifold-register@web.service');
  await systemctl('restart', 'web.socket');
  await systemctl('restart', 'web.socket');
  await registerRun('web', before);
  assert.equal(await sockState(), ['active', 'listening', 'success']);
  const cookie = await cookieOf('web');
  assert.match((await show('manifold-register@web.service', 'StatusText')).StatusText ?? '', `socket ${cookie},`);
  assert.is(tagged(await request('203.0.113.9', 80), 'web'), await mainPid('web.service'), 'registered again: steered traffic flows');
});

test('systemd-analyze verify passes on the shipped units and the generated drop-ins', async () => {
  const { unitDir } = installed();
  // The Documentation= man page is checked when it is installed (a package), not from the checkout.
  const man = (await box().exec(['man', '-w', '5', 'manifold.conf'])).code === 0 ? 'yes' : 'no';
  if (man === 'no') console.log('  manifold.conf(5) is not installed: systemd-analyze verify --man=no');
  const shipped = installed().units.map((u) => `${unitDir}/${u.replace('@.', '@web.')}`);
  const r = await box().exec(['systemd-analyze', 'verify', `--man=${man}`, ...shipped], { timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr.trim(), '', 'no warnings');
  const users = await box().exec(['systemd-analyze', 'verify', `--man=${man}`, '--generators=yes',
    '/etc/systemd/system/web.socket', '/etc/systemd/system/web.service', '/etc/systemd/system/api.service'], { timeoutMs: 60_000 });
  assert.is(users.code, 0, users.stderr);
  assert.is(users.stderr.trim(), '', 'no warnings');
});

test('nothing is left behind: clean poweroff, no processes, cgroup, netns or host files', async () => {
  const { id, cgroupPath } = box();
  const failed = await box().systemctl('--failed', '--plain', '--no-legend');
  assert.is(failed.stdout.trim(), '', 'no failed units');
  shutDown = true;
  await box().shutdown();
  assert.not.ok(fs.existsSync(cgroupPath));
  assert.not.ok(fs.existsSync(`/run/netns/${id}`));
});

test.run();
