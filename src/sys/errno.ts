/**
 * errno numbers to names and plain-language explanations.
 */
import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!names.has(value)) names.set(value, name);
}
names.set(524, 'ENOTSUPP');

const explanations: Record<string, string> = {
  EPERM: 'operation not permitted (needs CAP_BPF/CAP_NET_ADMIN or root)',
  EACCES: 'permission denied',
  ENOENT: 'no such file or object',
  EEXIST: 'already exists',
  E2BIG: 'too many entries (map is full)',
  ENOMEM: 'out of memory',
  ENOSPC: 'no space left (map is full)',
  EINVAL: 'invalid argument',
  EBADF: 'bad file descriptor',
  ESRCH: 'no such process',
  EBUSY: 'resource busy',
  ENOTSUPP: 'not supported by this kernel',
  EOPNOTSUPP: 'operation not supported',
  ENOTSOCK: 'not a socket',
  ESOCKTNOSUPPORT: 'socket type not supported',
};

/** Name of an errno value, e.g. 2 -> "ENOENT". */
export function errnoName(errno: number): string {
  return names.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

/** "no such file or object (ENOENT)". */
export function describeErrno(errno: number): string {
  const name = errnoName(errno);
  const text = explanations[name];
  return text ? `${text} (${name})` : name;
}

/** A failed system or libbpf call, with the errno it returned. */
export class SysError extends Error {
  readonly errno: number;
  readonly errnoName: string;
  readonly call: string;

  constructor(call: string, errno: number, context?: string) {
    const what = context ? `${context}: ` : '';
    super(`${what}${describeErrno(errno)}`);
    this.name = 'SysError';
    this.errno = Math.abs(errno);
    this.errnoName = errnoName(errno);
    this.call = call;
  }
}

/** A failure while opening or loading a BPF object, with libbpf's log (and the verifier's). */
export class BpfObjectError extends SysError {
  readonly log: string;
  constructor(message: string, errno: number, log: string[]) {
    super('bpf_object', errno, message);
    this.name = 'BpfObjectError';
    this.log = log.join('').trim();
  }
}
