/**
 * The binding order, the reference precedence model and the map encodings.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { compareBindings, prefixContains, resolveReference, type Binding } from '../../src/core/binding.js';
import { parsePrefix } from '../../src/core/net.js';
import { decodeDestKey, decodeDestValue, decodeMeta, encodeDestKey, encodeDestValue, encodeMeta } from '../../src/state/kernel-codec.js';
import { BindingList } from '../../src/core/binding-list.js';
import { MANIFOLD_MAGIC, Sizes } from '../../src/core/layout.js';

function encodeBindingKey(protocol: 'tcp' | 'udp', prefix: ReturnType<typeof parsePrefix>, port: number): Buffer {
  const l = new BindingList(1);
  l.pushPrefix(protocol, prefix, port, 0);
  return Buffer.from(l.key(0));
}

function decodeBindingKey(key: Buffer): { prefix: ReturnType<typeof parsePrefix>; port: number } | null {
  const l = new BindingList(1);
  if (!l.pushKey(key, 0, 0)) return null;
  return { prefix: l.prefix(0), port: l.port(0) };
}

const b = (label: string, prefix: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Binding => ({ label, protocol, prefix: parsePrefix(prefix), port });

test('reference model: longest prefix, then exact port', () => {
  const set = [b('p24', '192.0.2.0/24', 80), b('p32', '192.0.2.1/32', 0), b('p0', '0.0.0.0/0', 0), b('v6', '::/0', 0)];
  const addr = (s: string): Uint8Array => parsePrefix(s).addr;
  assert.is(resolveReference(set, 'tcp', 'ipv4', addr('192.0.2.1'), 80)?.label, 'p32');
  assert.is(resolveReference(set, 'tcp', 'ipv4', addr('192.0.2.2'), 80)?.label, 'p24');
  assert.is(resolveReference(set, 'tcp', 'ipv4', addr('192.0.2.2'), 81)?.label, 'p0');
  assert.is(resolveReference(set, 'udp', 'ipv4', addr('192.0.2.2'), 80), null);
  assert.is(resolveReference([b('v6', '::/0', 0)], 'tcp', 'ipv4', addr('1.2.3.4'), 1), null, 'IPv6 never matches IPv4');
  assert.is(resolveReference([...set, b('x', '192.0.2.1/32', 80)], 'tcp', 'ipv4', addr('192.0.2.1'), 80)?.label, 'x');
});

test('listing order is most specific first', () => {
  const sorted = [b('a', '10.0.0.0/8', 0), b('b', '10.1.0.0/16', 80), b('c', '10.1.0.0/16', 0), b('d', '10.1.2.3/32', 0)].sort(compareBindings);
  assert.equal(sorted.map((x) => x.label), ['d', 'b', 'c', 'a']);
});

test('prefixContains', () => {
  assert.ok(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('10.200.0.1').addr));
  assert.not.ok(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('11.0.0.1').addr));
  assert.ok(prefixContains(parsePrefix('::/0'), parsePrefix('2001:db8::1').addr));
  assert.not.ok(prefixContains(parsePrefix('::/0'), parsePrefix('1.2.3.4').addr), 'different family');
});

test('binding keys round-trip and match the BPF layout', () => {
  const key = encodeBindingKey('udp', parsePrefix('192.0.2.0/24'), 53);
  assert.is(key.length, Sizes.bindingKey);
  assert.is(key.readUInt32LE(0), 32 + 24, 'prefixlen covers family, protocol and port');
  assert.is(key[4], 2, 'AF_INET');
  assert.is(key[5], 17, 'IPPROTO_UDP');
  assert.is(key.readUInt16BE(6), 53, 'port in network order');
  assert.equal([...key.subarray(8, 12)], [192, 0, 2, 0]);
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.integer({ min: 0, max: 65535 }), (ip, len, port) => {
      fc.pre(!ip.includes('.'));
      const p = parsePrefix(`${ip}/${len}`);
      const d = decodeBindingKey(encodeBindingKey('tcp', p, port));
      assert.ok(d);
      assert.equal(d!.prefix, p);
      assert.is(d!.port, port);
    }),
  );
});

test('IPv6 formatting follows RFC 5952 (as ipaddr.js does)', async () => {
  const { formatAddr } = await import('../../src/core/net.js');
  const ipaddr = (await import('ipaddr.js')).default;
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }), (groups) => {
      const bytes = new Uint8Array(16);
      groups.forEach((g, i) => {
        bytes[i * 2] = g >> 8;
        bytes[i * 2 + 1] = g & 255;
      });
      assert.is(formatAddr(bytes), (ipaddr.fromByteArray(Array.from(bytes)) as InstanceType<typeof ipaddr.IPv6>).toRFC5952String());
    }),
    { numRuns: 2000 },
  );
  assert.is(formatAddr(Uint8Array.from([192, 0, 2, 1])), '192.0.2.1');
});

test('destination keys, values and the meta marker round-trip', () => {
  const k = encodeDestKey({ label: 'web.socket', domain: 'ipv6', protocol: 'udp' });
  assert.is(k.length, Sizes.destKey);
  assert.equal(decodeDestKey(k), { label: 'web.socket', domain: 'ipv6', protocol: 'udp' });
  assert.equal(decodeDestKey(encodeDestKey({ label: 'x'.repeat(255), domain: 'ipv4', protocol: 'tcp' }))?.label, 'x'.repeat(255));
  assert.equal(decodeDestValue(encodeDestValue({ id: 16383, refs: [7, 1000000], flags: 0 })), { id: 16383, refs: [7, 1000000], flags: 0 });
  const meta = { magic: MANIFOLD_MAGIC, abi: 1, netnsIno: 4026531840, netnsDev: 4n, loadedAt: 1700000000000, ownerUid: 0, ownerGid: 998, version: '1.2.3-4-gabcdef' };
  assert.equal(decodeMeta(encodeMeta(meta)), meta);
});

test.run();
