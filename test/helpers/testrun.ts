/**
 * BPF_PROG_TEST_RUN of the pinned dispatcher with a synthetic sk_lookup
 * context: which socket (cookie) would a packet get, or pass/drop.
 */
import path from 'node:path';
import { objGet, progTestRun } from '../../src/sys/bpf.js';
import { closeFd } from '../../src/sys/libc.js';
import type { Domain, Protocol } from '../../src/core/net.js';

/** Outcome of one test run. */
export interface Verdict {
  pass: boolean;
  cookie: bigint;
}

/** A handle to the pinned program of a state directory. */
export class Prober {
  private readonly fd: number;
  constructor(stateDir: string) {
    this.fd = objGet(path.join(stateDir, 'program'));
  }

  /** Run the dispatcher for a packet to (addr, port). */
  probe(domain: Domain, protocol: Protocol, addr: Uint8Array, port: number): Verdict {
    const ctx = Buffer.alloc(72);
    ctx.writeUInt32LE(domain === 'ipv4' ? 2 : 10, 8);
    ctx.writeUInt32LE(protocol === 'tcp' ? 6 : 17, 12);
    if (domain === 'ipv4') {
      ctx.set([10, 9, 9, 9], 16);
      ctx.set(addr, 40);
    } else {
      ctx.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], 20);
      ctx.set(addr, 44);
    }
    ctx.writeUInt16BE(40000, 36);
    ctx.writeUInt32LE(port, 60);
    const r = progTestRun(this.fd, ctx, 1);
    return { pass: r.retval === 1, cookie: r.ctxOut.readBigUInt64LE(0) };
  }

  /** Close the program fd. */
  close(): void {
    closeFd(this.fd);
  }
}
