/**
 * The exporter's scrapes (src/metrics/handler.ts): requests that arrive
 * while a scrape runs share the next one, so a burst of requests (pipelined,
 * or from many clients) costs two reads of the state, not one each; and no
 * request gets the answer of a scrape that started before it arrived.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MetricsExporter } from '../../src/metrics/handler.js';
import { ManifoldError } from '../../src/errors.js';

function exporter(): { e: MetricsExporter; reads: () => number } {
  let n = 0;
  const e = new MetricsExporter(
    () => {
      n++;
      throw new ManifoldError('ERR_NOT_LOADED', `read ${n}`);
    },
    { failed: () => undefined, recovered: () => undefined },
  );
  return { e, reads: () => n };
}

test('a burst of 500 requests: one scrape running, one shared by all the others', async () => {
  const { e, reads } = exporter();
  const results = await Promise.all(Array.from({ length: 500 }, () => e.scrape()));
  assert.is(reads(), 2);
  assert.ok(results.every((r) => r.status === 503));
  assert.match(results[0]!.body, 'read 1');
  assert.ok(results.slice(1).every((r) => r.body.includes('read 2')), 'the others share the second read');
  // Afterwards: a new request, a new read.
  assert.match((await e.scrape()).body, 'read 3');
  assert.is(reads(), 3);
});

test('a request that comes while the shared scrape runs waits for a newer one', async () => {
  const { e, reads } = exporter();
  const first = e.scrape();
  const second = e.scrape();
  await first;
  const third = e.scrape(); // the second may be running now: the third must not share it
  const [b, c] = await Promise.all([second, third]);
  assert.match(b.body, 'read 2');
  assert.match(c.body, 'read 3');
  assert.is(reads(), 3);
});

test.run();
