/**
 * Consuming a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) with libbpf's
 * ring_buffer__* API. Records are copied out of the shared mapping inside
 * the callback, so callers only ever see Buffers.
 */
import { koffi } from './ffi.js';
import { libbpf } from './bpf.js';
import { SysError } from './errno.js';
import { lastErrno } from './ffi.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface RbFns {
  create: Fn;
  poll: Fn;
  free: Fn;
}

let fns: RbFns | undefined;
let sampleProto: unknown;

function rb(): RbFns {
  if (fns) return fns;
  const k = koffi();
  const lib = libbpf();
  k.opaque('ring_buffer');
  sampleProto = k.proto('int manifold_ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
  fns = {
    create: lib.func('ring_buffer *ring_buffer__new(int map_fd, manifold_ring_buffer_sample_fn *sample_cb, void *ctx, void *opts)'),
    poll: lib.func('int ring_buffer__poll(ring_buffer *rb, int timeout_ms)'),
    free: lib.func('void ring_buffer__free(ring_buffer *rb)'),
  };
  return fns;
}

/** A ring buffer reader. */
export class RingBuffer {
  private handle: unknown;
  private callback: bigint | null;
  private pending: Buffer[] = [];

  /** Open a reader on a ring buffer map fd (the fd may be closed afterwards). */
  constructor(mapFd: number) {
    const f = rb();
    const k = koffi();
    this.callback = k.register((_ctx: unknown, data: unknown, size: number | bigint) => {
      const n = Number(size);
      this.pending.push(Buffer.from(new Uint8Array(k.view(data, n)).slice(0, n)));
      return 0;
    }, k.pointer(sampleProto as never));
    this.handle = f.create(mapFd, this.callback, null, null);
    if (!this.handle) {
      const errno = lastErrno();
      k.unregister(this.callback);
      this.callback = null;
      throw new SysError('ring_buffer__new', errno, 'cannot open the ring buffer');
    }
  }

  /** Wait up to `timeoutMs` for records; returns those that arrived (maybe none). */
  poll(timeoutMs: number): Buffer[] {
    if (!this.handle) throw new Error('ring buffer closed');
    const ret = rb().poll(this.handle, timeoutMs) as number;
    if (ret < 0 && ret !== -4 /* EINTR */) throw new SysError('ring_buffer__poll', -ret, 'cannot read the ring buffer');
    const out = this.pending;
    this.pending = [];
    return out;
  }

  /** Release the reader. */
  close(): void {
    if (this.handle) rb().free(this.handle);
    this.handle = null;
    if (this.callback !== null) koffi().unregister(this.callback);
    this.callback = null;
  }
}
