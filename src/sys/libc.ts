/**
 * libc bindings: flock, fcntl, ioctl, syscall (pidfd), socket options.
 *
 * Every wrapper reads errno immediately after a failed call and throws
 * SysError; callers never see koffi types.
 */
import { koffi, lastErrno, lazyLib, openLib, type Lib } from './ffi.js';
import { SysError } from './errno.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface LibcFns {
  flock: Fn;
  fcntl: Fn;
  ioctl: Fn;
  syscall: Fn;
  getsockopt: Fn;
  setsockopt: Fn;
  getsockname: Fn;
  getpeername: Fn;
  close: Fn;
  socket: Fn;
  bind: Fn;
  listen: Fn;
  dup: Fn;
  dup2: Fn;
  recvmsg: Fn;
  sendmsg: Fn;
  shutdown: Fn;
  send: Fn;
  recv: Fn;
}

let fns: LibcFns | undefined;

function libc(): LibcFns {
  if (fns) return fns;
  const lib = lazyLib(() => openLib('libc.so.6') as Lib);
  fns = {
    flock: lib.func('int flock(int fd, int op)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long req, ...)'),
    syscall: lib.func('long syscall(long number, ...)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Inout_ uint8_t *val, _Inout_ uint32_t *len)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const uint8_t *val, uint32_t len)'),
    getsockname: lib.func('int getsockname(int fd, _Inout_ uint8_t *addr, _Inout_ uint32_t *len)'),
    getpeername: lib.func('int getpeername(int fd, _Inout_ uint8_t *addr, _Inout_ uint32_t *len)'),
    close: lib.func('int close(int fd)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
    listen: lib.func('int listen(int fd, int backlog)'),
    dup: lib.func('int dup(int fd)'),
    dup2: lib.func('int dup2(int oldfd, int newfd)'),
    recvmsg: lib.func('long recvmsg(int fd, void *msg, int flags)'),
    sendmsg: lib.func('long sendmsg(int fd, const void *msg, int flags)'),
    shutdown: lib.func('int shutdown(int fd, int how)'),
    send: lib.func('long send(int fd, const uint8_t *buf, size_t len, int flags)'),
    recv: lib.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)'),
  };
  return fns;
}

function check(call: string, ret: number | bigint, context?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(call, lastErrno(), context);
  return n;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/**
 * flock(2). Returns false when LOCK_NB was given and the lock is held
 * elsewhere; throws on any other failure.
 */
export function flock(fd: number, op: number): boolean {
  const ret = libc().flock(fd, op) as number;
  if (ret === 0) return true;
  const errno = lastErrno();
  if (errno === 11 /* EWOULDBLOCK */) return false;
  throw new SysError('flock', errno, 'cannot lock the state directory');
}

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/** Mark an fd close-on-exec. */
export function setCloexec(fd: number): void {
  const flags = check('fcntl', libc().fcntl(fd, F_GETFD));
  check('fcntl', libc().fcntl(fd, F_SETFD, 'int', flags | FD_CLOEXEC));
}

/** True when the fd is open in this process. */
export function fdIsOpen(fd: number): boolean {
  const ret = libc().fcntl(fd, F_GETFD) as number;
  return ret >= 0;
}

/** close(2), ignoring EBADF. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** fcntl(F_DUPFD): duplicate `fd` to the lowest free fd >= `min`. */
export function dupFdAtLeast(fd: number, min: number): number {
  return check('fcntl', libc().fcntl(fd, 0 /* F_DUPFD */, 'int', min));
}

/** dup2(2): make `newFd` a copy of `oldFd` (closing what `newFd` was). */
export function dup2Fd(oldFd: number, newFd: number): number {
  return check('dup2', libc().dup2(oldFd, newFd));
}

/** dup(2). */
export function dupFd(fd: number): number {
  return check('dup', libc().dup(fd));
}

const SIOCGSKNS = 0x894c;

/** ioctl(SIOCGSKNS): an fd for the network namespace a socket lives in. */
export function socketNetnsFd(fd: number): number {
  return check('ioctl', libc().ioctl(fd, SIOCGSKNS), 'cannot find the network namespace of the socket');
}

/** NS_GET_NSTYPE: _IO(0xb7, 0x3). */
const NS_GET_NSTYPE = 0xb703;

/** The kinds of namespace NS_GET_NSTYPE reports (CLONE_NEW* flags), with an article. */
export const NamespaceTypes: Readonly<Record<number, string>> = {
  0x00000080: 'a time',
  0x00020000: 'a mount',
  0x02000000: 'a cgroup',
  0x04000000: 'a UTS',
  0x08000000: 'an IPC',
  0x10000000: 'a user',
  0x20000000: 'a PID',
  0x40000000: 'a network',
};

/** CLONE_NEWNET. */
export const CLONE_NEWNET = 0x40000000;

/** ioctl(NS_GET_NSTYPE) on an nsfs fd: the CLONE_NEW* flag of its namespace. */
export function namespaceType(fd: number): number {
  return check('ioctl', libc().ioctl(fd, NS_GET_NSTYPE), 'cannot tell the type of the namespace');
}

const SYS_pidfd_open = 434;
const SYS_pidfd_getfd = 438;

/** pidfd_open(2). */
export function pidfdOpen(pid: number): number {
  return check('pidfd_open', libc().syscall(SYS_pidfd_open, 'int', pid, 'unsigned int', 0));
}

/** pidfd_getfd(2): duplicate fd `targetFd` of the process behind `pidfd`. */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check('pidfd_getfd', libc().syscall(SYS_pidfd_getfd, 'int', pidfd, 'int', targetFd, 'unsigned int', 0));
}

/** getsockopt(2) returning the raw bytes. */
export function getsockoptRaw(fd: number, level: number, name: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  const len = [size];
  check('getsockopt', libc().getsockopt(fd, level, name, buf, len));
  return buf.subarray(0, len[0]);
}

/** getsockopt(2) for an int option. */
export function getsockoptInt(fd: number, level: number, name: number): number {
  const buf = getsockoptRaw(fd, level, name, 4);
  return buf.length >= 4 ? buf.readInt32LE(0) : 0;
}

/** setsockopt(2) for an int option. */
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value, 0);
  check('setsockopt', libc().setsockopt(fd, level, name, buf, 4));
}

/** getsockname(2): the raw sockaddr. */
export function getsockname(fd: number): Buffer {
  const buf = Buffer.alloc(128);
  const len = [128];
  check('getsockname', libc().getsockname(fd, buf, len));
  return buf.subarray(0, len[0]);
}

/** getpeername(2): the raw sockaddr, or null when not connected. */
export function getpeername(fd: number): Buffer | null {
  const buf = Buffer.alloc(128);
  const len = [128];
  const ret = libc().getpeername(fd, buf, len) as number;
  if (ret < 0) {
    const errno = lastErrno();
    if (errno === 107 /* ENOTCONN */) return null;
    throw new SysError('getpeername', errno);
  }
  return buf.subarray(0, len[0]);
}

/** socket(2). */
export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', libc().socket(domain, type, protocol), 'cannot create a socket');
}

/** send(2) of a whole buffer (a datagram: netlink requests). */
export function sendAll(fd: number, buf: Buffer): void {
  const n = check('send', libc().send(fd, buf, buf.length, 0), 'cannot send the request');
  if (n !== buf.length) throw new SysError('send', 5 /* EIO */, `sent ${n} of ${buf.length} bytes`);
}

/** recv(2) into `buf`; returns the length received. */
export function recvInto(fd: number, buf: Buffer): number {
  return check('recv', libc().recv(fd, buf, buf.length, 0), 'cannot receive the reply');
}

/** bind(2) with a raw sockaddr. */
export function bindRaw(fd: number, addr: Buffer): void {
  check('bind', libc().bind(fd, addr, addr.length), 'cannot bind the socket');
}

/** listen(2). */
export function listen(fd: number, backlog: number): void {
  check('listen', libc().listen(fd, backlog), 'cannot listen on the socket');
}

/** shutdown(2) (how: 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR). */
export function shutdownFd(fd: number, how: number): void {
  check('shutdown', libc().shutdown(fd, how), 'cannot shut the socket down');
}

/** recvmsg(2) on a struct msghdr built by the caller (see udp.ts). */
export function recvmsgRaw(fd: number, msghdr: Buffer, flags: number): number {
  const ret = Number(libc().recvmsg(fd, msghdr, flags));
  if (ret < 0) {
    const errno = lastErrno();
    if (errno === 11) return -11;
    throw new SysError('recvmsg', errno);
  }
  return ret;
}

/** sendmsg(2) on a struct msghdr built by the caller (see udp.ts). */
export function sendmsgRaw(fd: number, msghdr: Buffer, flags: number): number {
  return check('sendmsg', libc().sendmsg(fd, msghdr, flags), 'cannot send the datagram');
}

/** Address of a Buffer's memory, for building C structs that point at it. */
export function bufferAddress(buf: Buffer): bigint {
  return koffi().address(buf);
}
