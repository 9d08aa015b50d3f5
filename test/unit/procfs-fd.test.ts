/**
 * fdHolding (src/ops/procfs.ts): the lowest fd of a process holding one of
 * some socket inodes, read from /proc/PID/fd: the first fds directly, the
 * rest from the directory listing. Real child processes with a socket at a
 * low fd, only at a high fd past gaps, and at both. No root needed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { fdHolding } from '../../src/ops/procfs.js';

let server: net.Server;
let fd = -1;
let inode = 0;
const children: ChildProcess[] = [];

test.before(async () => {
  server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  inode = Number(/^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1]);
  assert.ok(inode > 0);
});
test.after(() => {
  for (const c of children) c.kill('SIGKILL');
  server.close();
});

/**
 * A `sleep` holding the socket at exactly the fds `at` (0-2 /dev/null, no other fd). The socket
 * is passed as fd 3 and moved by the shell: a spawn that placed it at high fds itself would let
 * libuv leave a copy at a lower fd when the parent's fd number is below them.
 */
async function holder(at: number[]): Promise<number> {
  const moves = at.filter((n) => n !== 3).map((n) => `${n}<&3`);
  const script = `${moves.length ? `exec ${moves.join(' ')}${at.includes(3) ? '' : ' 3<&-'}; ` : ''}exec sleep 60`;
  const c = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('spawn', () => resolve());
    c.once('error', reject);
  });
  const pid = c.pid as number;
  // The shell's redirections are done once it has become sleep; the dynamic loader of sleep then
  // opens and closes its libraries (fds that vanish between the listing and their readlink): wait
  // until the holder's fds are settled where asked.
  const want = [...at].sort((a, b) => a - b);
  const link = (n: number): string | null => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      return null;
    }
  };
  const holdingNow = (): number[] => fs.readdirSync(`/proc/${pid}/fd`).map(Number).filter((n) => link(n) === `socket:[${inode}]`).sort((a, b) => a - b);
  const settled = (): boolean => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' && fs.readdirSync(`/proc/${pid}/fd`).length === at.length + 3;
  for (let i = 0; i < 400 && !(settled() && JSON.stringify(holdingNow()) === JSON.stringify(want)); i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(holdingNow(), want, 'the holder has the socket exactly where asked');
  return pid;
}

test('the socket at a low fd, only at a high fd past gaps, at two fds (the lowest), or nowhere', async () => {
  assert.equal(fdHolding(await holder([3]), [inode]), { fd: 3, inode });
  assert.equal(fdHolding(await holder([40]), [inode]), { fd: 40, inode });
  assert.equal(fdHolding(await holder([9, 30]), [inode]), { fd: 9, inode });
  assert.equal(fdHolding(await holder([20, 25]), [999999999, inode]), { fd: 20, inode });
  assert.is(fdHolding(await holder([3]), [999999999]), null);
});

test('a process that does not exist is reported as such', () => {
  assert.throws(() => fdHolding(2 ** 22 + 12345, [inode]), (e: Error) => /no such process/.test(e.message));
});

test.run();
