/**
 * statusWarnings' namespace warning (src/ops/status.ts): without listener
 * discovery, target-served destinations refuse traffic and the explicit-first
 * policy does nothing — each said with its own verb.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statusWarnings, type DestinationStatus, type NamespaceStatus } from '../../src/ops/status.js';

function ns(explicitFirst: boolean): NamespaceStatus {
  return { explicitFirst, deferred: 0n, discovery: { enabled: false, active: false } } as unknown as NamespaceStatus;
}

const target = { label: 't', domain: 'ipv4', protocol: 'tcp', bindings: 0, target: { address: '127.0.0.7', port: 0, present: null } } as unknown as DestinationStatus;

test('targets and the policy without discovery', () => {
  const msg = (d: DestinationStatus[], p: boolean): string | undefined => statusWarnings(d, ns(p)).find((w) => w.kind === 'no_discovery')?.message;
  assert.is(msg([target], true), 'listener discovery is not enabled: 1 destination(s) served by address targets refuse traffic and the explicit-first policy has no effect until "manifold discovery enable"');
  assert.is(msg([target], false), 'listener discovery is not enabled: 1 destination(s) served by address targets refuse traffic until "manifold discovery enable"');
  assert.is(msg([], true), 'listener discovery is not enabled: the explicit-first policy has no effect until "manifold discovery enable"');
  assert.is(msg([], false), undefined);
});

test.run();
