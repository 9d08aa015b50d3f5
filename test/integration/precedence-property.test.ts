/**
 * Property test: on random binding sets, the real data plane (the pinned
 * dispatcher, run with BPF_PROG_TEST_RUN) picks exactly what the reference
 * model of precedence picks. Half the sets are small enough for trie mode
 * (every exact-port binding in the exact-port trie), half are laid out with
 * hashed lengths (src/core/placement.ts); each set replaces the one before,
 * so the writes between the two layouts run too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { parsePrefix, type Domain, type Protocol } from '../../src/core/net.js';
import { resolveReference, type Binding } from '../../src/core/binding.js';
import { SMALL_GENERATION } from '../../src/core/placement.js';
import { Prober } from '../helpers/testrun.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

let ctx: Ctx;
let dir: string;
const labels = ['red', 'green', 'blue', 'cyan'];
const cookies = new Map<string, bigint>();
let stateDir = '';

test.before(async () => {
  ctx = await setup('prop');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-prop-'));
  let port = 9500;
  for (const label of labels) {
    cookies.set(`${label}:ipv4`, BigInt((await serve(ctx, label, 'tcp', '127.0.0.1', port++)).cookie));
    cookies.set(`${label}:ipv6`, BigInt((await serve(ctx, label, 'tcp', '2001:db8::1', port++)).cookie));
  }
  stateDir = (ctx.env.ok(['status', '--json']).json as { stateDir: string }).stateDir;
});
test.after(() => {
  teardown(ctx);
  fs.rmSync(dir, { recursive: true, force: true });
});

const v4addr = fc.tuple(fc.constantFrom(10, 11), fc.constantFrom(0, 1), fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 3 })).map((b) => b.join('.'));
const v6addr = fc.tuple(fc.constantFrom('2001:db8', '2001:db9'), fc.constantFrom(0, 1), fc.constantFrom(0, 0xff), fc.integer({ min: 0, max: 3 })).map(([a, b, c, d]) => `${a}:${b.toString(16)}::${c.toString(16)}:${d}`);
const port = fc.constantFrom(0, 80, 443, 8080);
const binding = fc.oneof(
  fc.record({ label: fc.constantFrom(...labels), protocol: fc.constantFrom<Protocol>('tcp', 'udp'), addr: v4addr, len: fc.constantFrom(0, 7, 8, 16, 23, 24, 30, 32), port }),
  fc.record({ label: fc.constantFrom(...labels), protocol: fc.constantFrom<Protocol>('tcp', 'udp'), addr: v6addr, len: fc.constantFrom(0, 16, 32, 33, 48, 64, 80, 127, 128), port }),
);
const query = fc.record({ protocol: fc.constantFrom<Protocol>('tcp', 'udp'), v6: fc.boolean(), a4: v4addr, a6: v6addr, port: fc.constantFrom(80, 443, 8080, 22) });

test('data plane precedence equals the reference model', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.array(binding, { minLength: 0, maxLength: SMALL_GENERATION }), fc.array(binding, { minLength: SMALL_GENERATION + 1, maxLength: 24 })), fc.array(query, { minLength: 40, maxLength: 40 }), async (raw, queries) => {
      // Drop duplicates of the same (protocol, prefix, port): the last label would conflict.
      const seen = new Set<string>();
      const set: Binding[] = [];
      for (const r of raw) {
        const prefix = parsePrefix(`${r.addr}/${r.len}`);
        const k = `${r.protocol} ${Array.from(prefix.addr).join('.')}/${prefix.len} ${r.port}`;
        if (seen.has(k)) continue;
        seen.add(k);
        set.push({ label: r.label, protocol: r.protocol, prefix, port: r.port });
      }
      const file = path.join(dir, 'set.json');
      const text = (a: Uint8Array): string => (a.length === 4 ? Array.from(a).join('.') : ipv6Text(a));
      const entries = set.map((b) => ({ label: b.label, protocol: b.protocol, prefix: `${text(b.prefix.addr)}/${b.prefix.len}`, port: b.port }));
      fs.writeFileSync(file, JSON.stringify({ bindings: entries }));
      ctx.env.ok(['apply', file, '--force']);
      const prober = new Prober(stateDir);
      try {
        for (const q of queries) {
          const domain: Domain = q.v6 ? 'ipv6' : 'ipv4';
          const addr = parsePrefix(q.v6 ? q.a6 : q.a4).addr;
          const want = resolveReference(set, q.protocol, domain, addr, q.port);
          const got = prober.probe(domain, q.protocol, addr, q.port);
          const what = `${q.protocol} ${q.v6 ? q.a6 : q.a4} port ${q.port} with ${JSON.stringify(set.map((b) => `${b.label} ${b.protocol} ${b.prefix.len} ${b.port}`))}`;
          if (!want) {
            assert.ok(got.pass && got.cookie === 0n, `no binding must pass untouched: ${what}`);
          } else if (q.protocol === 'udp') {
            assert.ok(!got.pass, `UDP binding without socket must drop: ${what}`);
          } else {
            assert.is(got.cookie, cookies.get(`${want.label}:${domain}`), `expected ${want.label}: ${what}`);
          }
        }
      } finally {
        prober.close();
      }
      runs++;
    }),
    { numRuns: 25 },
  );
  assert.is(runs, 25);
});

function ipv6Text(addr: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push((((addr[i] ?? 0) << 8) | (addr[i + 1] ?? 0)).toString(16));
  return parts.join(':');
}

test.run();
