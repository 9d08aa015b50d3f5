/**
 * errno numbers to names and plain-language explanations.
 */
import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!names.has(value)) names.set(value, name);
}
names.set(524, 'ENOTSUPP');

/**
 * libbpf's own error numbers (enum libbpf_errno in libbpf.h, from __LIBBPF_ERRNO__START =
 * 4000), which libbpf returns and leaves in errno like system errors, with what they mean
 * (libbpf_strerror's texts, in words for a message).
 */
const LIBBPF_ERRNOS: readonly [string, string][] = [
  ['LIBBPF_ERRNO__LIBELF', 'libelf could not read the file'],
  ['LIBBPF_ERRNO__FORMAT', 'not a valid BPF object file (BPF object format invalid)'],
  ['LIBBPF_ERRNO__KVERSION', "the object's 'version' section is incorrect or missing"],
  ['LIBBPF_ERRNO__ENDIAN', 'the object was built for the other byte order (endianness mismatch)'],
  ['LIBBPF_ERRNO__INTERNAL', 'internal error in libbpf'],
  ['LIBBPF_ERRNO__RELOC', 'relocating the object failed'],
  ['LIBBPF_ERRNO__LOAD', 'loading a program failed for an unknown reason'],
  ['LIBBPF_ERRNO__VERIFY', 'the kernel verifier rejected a program'],
  ['LIBBPF_ERRNO__PROG2BIG', 'a program is too big'],
  ['LIBBPF_ERRNO__KVER', 'incorrect kernel version'],
  ['LIBBPF_ERRNO__PROGTYPE', 'the kernel does not support a program type of the object'],
  ['LIBBPF_ERRNO__WRNGPID', 'wrong pid in a netlink message'],
  ['LIBBPF_ERRNO__INVSEQ', 'invalid netlink sequence'],
  ['LIBBPF_ERRNO__NLPARSE', 'a netlink message could not be parsed'],
];
/** First of libbpf's error numbers (LIBBPF_ERRNO__START). */
const LIBBPF_ERRNO_START = 4000;
const libbpfTexts = new Map<string, string>();
LIBBPF_ERRNOS.forEach(([name, text], i) => {
  names.set(LIBBPF_ERRNO_START + i, name);
  libbpfTexts.set(name, text);
});

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

/**
 * "no such file or object (ENOENT)"; libbpf's own numbers in words only
 * ("not a valid BPF object file (BPF object format invalid)"), never as "errno 4001".
 */
export function describeErrno(errno: number): string {
  const name = errnoName(errno);
  const libbpfText = libbpfTexts.get(name);
  if (libbpfText) return libbpfText;
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
