/**
 * Network namespaces: entering one with setns(2) for the duration of a
 * synchronous call, and its cookie (SO_NETNS_COOKIE, kernel >= 5.14).
 *
 * setns(CLONE_NEWNET) changes only the calling thread; every manifold call
 * that needs the namespace (socket(), bpf_iter_create()) is synchronous on
 * the main thread, which is switched back before the function returns.
 */
import fs from 'node:fs';
import { lastErrno, openLib, type Lib } from './ffi.js';
import { SysError } from './errno.js';
import { closeFd, getsockoptRaw, socket } from './libc.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

let setnsFn: Fn | undefined;

/** CLONE_NEWNET. */
export const CLONE_NEWNET = 0x40000000;
const SOL_SOCKET = 1;
/** SO_NETNS_COOKIE (asm-generic/socket.h). */
export const SO_NETNS_COOKIE = 71;

/** setns(2). */
export function setns(fd: number, nstype: number): void {
  setnsFn ??= (openLib('libc.so.6') as Lib).func('int setns(int fd, int nstype)');
  if ((setnsFn(fd, nstype) as number) < 0) throw new SysError('setns', lastErrno(), 'cannot enter the network namespace');
}

/** The cookie of the network namespace the calling thread is in. */
export function currentNetnsCookie(): bigint {
  const fd = socket(2 /* AF_INET */, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0);
  try {
    const b = getsockoptRaw(fd, SOL_SOCKET, SO_NETNS_COOKIE, 8);
    if (b.length !== 8) throw new SysError('getsockopt', 22, 'SO_NETNS_COOKIE returned a short value');
    return b.readBigUInt64LE(0);
  } finally {
    closeFd(fd);
  }
}

/**
 * Run `fn` with the main thread inside the network namespace at `netnsPath`
 * (an nsfs file: /proc/PID/ns/net, /run/netns/NAME); always switches back.
 */
export function inNetns<T>(netnsPath: string, fn: () => T): T {
  const self = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = fs.openSync(netnsPath, 'r');
    try {
      setns(target, CLONE_NEWNET);
    } finally {
      fs.closeSync(target);
    }
    try {
      return fn();
    } finally {
      setns(self, CLONE_NEWNET);
    }
  } finally {
    fs.closeSync(self);
  }
}

/** The cookie of the network namespace at `netnsPath`. */
export function netnsCookie(netnsPath: string): bigint {
  return inNetns(netnsPath, currentNetnsCookie);
}
