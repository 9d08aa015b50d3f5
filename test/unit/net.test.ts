/**
 * Parsing of protocols, prefixes, ports and labels.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPrefix, parseAddress, parsePort, parsePortRange, parsePrefix, parseProtocol } from '../../src/core/net.js';
import { labelProblem, validateLabel } from '../../src/core/labels.js';
import { ManifoldError } from '../../src/errors.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ManifoldError);
    return (err as ManifoldError).code;
  }
  return 'no error';
}

test('prefixes: plain addresses are host prefixes, host bits are masked', () => {
  assert.is(formatPrefix(parsePrefix('127.0.0.1')), '127.0.0.1/32');
  assert.is(formatPrefix(parsePrefix('10.1.2.3/8')), '10.0.0.0/8');
  assert.is(formatPrefix(parsePrefix('192.0.2.77/25')), '192.0.2.0/25');
  assert.is(formatPrefix(parsePrefix('2001:db8::1')), '2001:db8::1/128');
  assert.is(formatPrefix(parsePrefix('2001:db8:ffff::/33')), '2001:db8:8000::/33');
  assert.is(formatPrefix(parsePrefix('::/0')), '::/0');
  assert.is(formatPrefix(parsePrefix('0.0.0.0/0')), '0.0.0.0/0');
  assert.is(parsePrefix('::/0').domain, 'ipv6');
});

test('prefixes: malformed and IPv4-mapped forms are refused', () => {
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/08', '::/129', 'fe80::1%lo', 'foo', '1.2.3.4/', '1.2.3.4/a']) {
    assert.is(code(() => parsePrefix(bad)), 'ERR_INVALID_PREFIX', bad);
  }
  for (const mapped of ['::ffff:127.0.0.1', '::ffff:127.0.0.1/128', '::ffff:0:0/96', '::ffff:7f00:1', '0:0:0:0:0:ffff:1.2.3.4/120', '::ffff:1.2.3.4/64']) {
    assert.is(code(() => parsePrefix(mapped)), 'ERR_INVALID_PREFIX', mapped);
  }
  assert.is(code(() => parsePrefix(42 as unknown as string)), 'ERR_INVALID_PREFIX');
  assert.is(code(() => parseAddress('10.0.0.0/8')), 'ERR_INVALID_PREFIX');
});

test('ports and ranges', () => {
  assert.equal(parsePortRange('0'), { first: 0, last: 0 });
  assert.equal(parsePortRange('65535'), { first: 65535, last: 65535 });
  assert.equal(parsePortRange('8000-8080'), { first: 8000, last: 8080 });
  assert.equal(parsePortRange(80), { first: 80, last: 80 });
  assert.equal(parsePortRange('1-4096'), { first: 1, last: 4096 });
  for (const bad of ['-1', '65536', '80-79', '0-10', '1-4097', 'http', '', '1.5', ' 80', '80-', '123456']) {
    assert.is(code(() => parsePortRange(bad)), 'ERR_INVALID_PORT', bad);
  }
  assert.is(code(() => parsePort('80-81')), 'ERR_INVALID_PORT');
});

test('protocols', () => {
  assert.is(parseProtocol('tcp'), 'tcp');
  assert.is(parseProtocol('UDP'), 'udp');
  for (const bad of ['sctp', '', 'tcp6', 6]) assert.is(code(() => parseProtocol(bad)), 'ERR_INVALID_PROTOCOL', String(bad));
});

test('labels: alphabet and length', () => {
  for (const ok of ['foo', 'web.socket', 'a-b_c', 'x@1', 'A9', '_x', 'a'.repeat(255)]) assert.is(labelProblem(ok), null, ok);
  for (const bad of ['', ' ', 'a b', 'a:b', 'a/b', 'a\tb', 'a\nb', '-x', '.x', 'é', 'a,b', 'a'.repeat(256), 'x\\x2d']) {
    assert.is(code(() => validateLabel(bad)), 'ERR_INVALID_LABEL', JSON.stringify(bad));
  }
});

test.run();
