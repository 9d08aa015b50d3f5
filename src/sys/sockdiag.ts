/**
 * The sockets of this process's network namespace bound to one port, from
 * the kernel's sock_diag netlink interface (NETLINK_SOCK_DIAG, inet_diag):
 * what /proc/PID/net/{tcp,tcp6,udp,udp6} lists, for one port, without its
 * cost. Reading /proc/net/tcp walks every bucket of the TCP established hash
 * (262,144 on the reference machine: ~4.5 ms however few sockets there are,
 * and more with every connection), while a dump of listening TCP sockets
 * filtered by local port walks only the listening hash (the kernel checks
 * the port: inet_diag_dump_icsk, udp_dump).
 */
import { SysError } from './errno.js';
import { closeFd, recvInto, sendAll, socket } from './libc.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDR = 16;
/** struct inet_diag_req_v2. */
const REQ_SIZE = 56;
/** struct inet_diag_msg. */
const MSG_SIZE = 72;
const TCP_LISTEN = 10;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** One socket of the dump. */
export interface DiagSocket {
  inode: number;
  /** The local address: 4 or 16 bytes. */
  address: Uint8Array;
  port: number;
  /** Remote address and port all zero (an unconnected UDP socket, a listening TCP one). */
  unconnected: boolean;
  /** The kernel's sk_state (TCP numbering: 10 = LISTEN, 7 = CLOSE). */
  state: number;
  /** The socket cookie (what SO_COOKIE and the sockmap give). */
  cookie: bigint;
}

function request(protocol: 'tcp' | 'udp', domain: 'ipv4' | 'ipv6', port: number): Buffer {
  const b = Buffer.alloc(NLMSG_HDR + REQ_SIZE);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  b.writeUInt32LE(1, 8); // seq
  b[NLMSG_HDR] = domain === 'ipv6' ? 10 : 2;
  b[NLMSG_HDR + 1] = protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
  // TCP: listening sockets only (the established hash is not walked); UDP: every state.
  b.writeUInt32LE(protocol === 'tcp' ? 1 << TCP_LISTEN : 0xffffffff, NLMSG_HDR + 4);
  b.writeUInt16BE(port, NLMSG_HDR + 8); // id.idiag_sport
  return b;
}

/**
 * The TCP listening sockets (`tcp`) or the UDP sockets (`udp`, any state) of
 * family `domain` bound to local port `port` (0: every port), in this
 * process's network namespace. Throws SysError when the interface is not available (callers
 * fall back to /proc).
 */
export function diagSockets(protocol: 'tcp' | 'udp', domain: 'ipv4' | 'ipv6', port: number): DiagSocket[] {
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  try {
    sendAll(fd, request(protocol, domain, port));
    const out: DiagSocket[] = [];
    const buf = Buffer.alloc(64 * 1024);
    const addrLen = domain === 'ipv6' ? 16 : 4;
    for (;;) {
      const n = recvInto(fd, buf);
      if (n === 0) throw new SysError('recv', 5 /* EIO */, 'the sock_diag reply ended without NLMSG_DONE');
      for (let off = 0; off + NLMSG_HDR <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < NLMSG_HDR || off + len > n) throw new SysError('recv', 5, 'a malformed sock_diag reply');
        if (type === NLMSG_DONE) return out;
        if (type === NLMSG_ERROR) {
          const errno = -buf.readInt32LE(off + NLMSG_HDR);
          throw new SysError('sock_diag', errno > 0 ? errno : 5, 'the kernel refused the socket dump');
        }
        if (type === SOCK_DIAG_BY_FAMILY && len >= NLMSG_HDR + MSG_SIZE) {
          const m = off + NLMSG_HDR;
          const dst = buf.subarray(m + 24, m + 24 + addrLen);
          out.push({
            inode: buf.readUInt32LE(m + 68),
            address: Uint8Array.from(buf.subarray(m + 8, m + 8 + addrLen)),
            port: buf.readUInt16BE(m + 4),
            unconnected: buf.readUInt16BE(m + 6) === 0 && dst.every((x) => x === 0),
            state: buf[m + 1] as number,
            // idiag_cookie[2]: the low 32 bits first.
            cookie: (BigInt(buf.readUInt32LE(m + 48)) << 32n) | BigInt(buf.readUInt32LE(m + 44)),
          });
        }
        off += (len + 3) & ~3;
      }
    }
  } finally {
    closeFd(fd);
  }
}
