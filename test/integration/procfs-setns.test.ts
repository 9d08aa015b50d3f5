/**
 * register-pid's socket search for a process in another network namespace
 * (src/ops/procfs.ts boundSocketsVia): sock_diag from inside that namespace
 * (setns for the one dump), not the /proc table, and the same sockets as the
 * table lists — listening TCP and unconnected UDP sockets bound exactly to
 * the address and port, not the listener's accepted connections. This
 * process's thread is back in its own namespace afterwards.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setProgramDir } from '../../src/locate.js';
import { boundSocketsVia, namespaceDiag, tableBoundSockets } from '../../src/ops/procfs.js';
import { findSocketOwners, type WantedSocket } from '../../src/ops/socket-owners.js';
import { parseAddress, type Domain, type Protocol } from '../../src/core/net.js';
import { TestEnv } from '../helpers/env.js';

// koffi is found from the program directory (the checkout's node_modules).
setProgramDir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sea'));

// In the namespace: TCP listeners on 127.0.0.1 and ::1 with 20 accepted connections each,
// an unconnected and a connected UDP socket on the same port, a listener on another address.
const HOLDER = `
const net = require('node:net'), dgram = require('node:dgram');
const keep = [];
async function listen(host, port) {
  const s = net.createServer((c) => keep.push(c));
  await new Promise((r) => s.listen({ host, port, exclusive: true }, r));
  for (let i = 0; i < 20; i++) await new Promise((r) => { const c = net.connect(port, host, r); keep.push(c); });
  return s;
}
async function udp(type, host, port, connect) {
  const u = dgram.createSocket({ type, reuseAddr: true });
  await new Promise((r) => u.bind(port, host, r));
  if (connect) await new Promise((r) => u.connect(connect, host, r));
  keep.push(u);
}
(async () => {
  await listen('127.0.0.1', 7001);
  await listen('::1', 7002);
  await listen('127.0.0.2', 7001);
  await udp('udp4', '127.0.0.1', 7003);
  await udp('udp4', '127.0.0.1', 7003, 9);
  await udp('udp6', '::1', 7004);
  process.stdout.write('ready\\n');
})();
setInterval(() => {}, 1000);
`;

let env: TestEnv | undefined;
test.after(() => env?.destroy());

const ownNetns = (): number => fs.statSync('/proc/thread-self/ns/net').ino;

test('a process in another namespace: sock_diag from inside it finds what the table lists', async () => {
  env = TestEnv.create('pset');
  const child = env.spawn(process.execPath, ['-e', HOLDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid as number;
  const lines = readline.createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  assert.is(first, 'ready');
  const before = ownNetns();
  assert.is.not(fs.statSync(`/proc/${pid}/ns/net`).ino, before, 'the holder is in another namespace');

  const cases: [Protocol, Domain, string, number, number][] = [
    ['tcp', 'ipv4', '127.0.0.1', 7001, 1],
    ['tcp', 'ipv6', '::1', 7002, 1],
    ['tcp', 'ipv4', '127.0.0.2', 7001, 1],
    ['tcp', 'ipv4', '127.0.0.3', 7001, 0],
    ['udp', 'ipv4', '127.0.0.1', 7003, 1],
    ['udp', 'ipv6', '::1', 7004, 1],
    ['tcp', 'ipv4', '127.0.0.1', 7003, 0],
  ];
  for (const [protocol, domain, host, port, count] of cases) {
    const addr = parseAddress(host).addr;
    const r = boundSocketsVia(pid, protocol, domain, addr, port);
    const what = `${protocol} ${host} ${port}`;
    assert.is(r.way, 'diag-setns', what);
    assert.is(r.inodes.length, count, what);
    assert.equal([...r.inodes].sort(), tableBoundSockets(pid, protocol, domain, addr, port).sort(), what);
    assert.is(ownNetns(), before, `back in its own namespace after ${what}`);
  }

  // Who holds them, by cookie: sock_diag's cookies and inodes must agree with the probing way
  // (a copy of each candidate through pidfd_getfd, SO_COOKIE), socket by socket.
  const wanted: WantedSocket[] = [];
  for (const [protocol, domain] of [['tcp', 'ipv4'], ['tcp', 'ipv6'], ['udp', 'ipv4'], ['udp', 'ipv6']] as const) {
    const d = namespaceDiag(pid, protocol, domain, 0);
    assert.ok(d, `${protocol} ${domain} dump`);
    for (const s of d.list) wanted.push({ cookie: s.cookie, domain, protocol });
  }
  assert.is(wanted.length, 6, 'three listeners, three UDP sockets');
  wanted.push({ cookie: 12345n, domain: 'ipv4', protocol: 'tcp' });
  const netnsIno = Number(fs.statSync(`/proc/${pid}/ns/net`).ino);
  const viaDiag = findSocketOwners(wanted, netnsIno);
  const viaProbe = findSocketOwners(wanted, netnsIno, { probe: true });
  assert.is(viaProbe.size, 6, 'the probing way finds every real cookie');
  // sock_diag lists every listener of the namespace: a TCP cookie it does not list is not listening
  // (in real use a cookie read from the sockmap: a listener that was shut down). Probing cannot tell.
  assert.equal(viaDiag.get('12345'), { owners: [], usable: false, inode: null });
  viaDiag.delete('12345');
  assert.equal(viaDiag, viaProbe);
  for (const h of viaDiag.values()) assert.equal(h.owners.map((o) => o.pid), [pid]);
  assert.equal([...viaDiag.values()].map((h) => h.usable).sort(), [false, true, true, true, true, true], 'the connected UDP socket is not usable');
  assert.is(ownNetns(), before, 'back in its own namespace after the owner search');
  child.kill('SIGKILL');
});

test.run();
