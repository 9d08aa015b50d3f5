/**
 * The start-up snapshot's warm-up of the write path (see warmup.ts): the
 * operations every single-shot command runs once it has opened the state
 * (planning, the executor, placement, status gathering) run here on the
 * in-memory twin of the maps, and the kernel maps' codecs on sample
 * buffers, so that their code is compiled into the snapshot instead of at
 * every start. Nothing touches the kernel and nothing is printed; what is
 * built here is garbage once it returns.
 */
import { parsePrefix } from '../core/net.js';
import { bindRequest } from '../cli/commands/bind.js';
import { SMALL_GENERATION } from '../core/placement.js';
import { bind, unbind, type BindRequest } from '../ops/bind.js';
import { apply, parseApplyDocument } from '../ops/apply.js';
import { gatherStatus, statusWarnings } from '../ops/status.js';
import { unregisterSocket } from '../ops/register.js';
import { unservedText } from '../ops/safety.js';
import { bindingToJson } from '../core/binding.js';
import { collapse, bindingText } from '../cli/format.js';
import { summarize } from '../cli/commands/status.js';
import { escapeControls } from '../core/escape.js';
import {
  decodeConfig, decodeConfigCookie, decodeCounters, decodeDestInfo, decodeDestKey, decodeDestValue, decodeGenMeta, decodeGenState, decodeMeta,
  encodeConfig, encodeCounters, encodeDestInfo, encodeDestKey, encodeDestValue, encodeGenMeta, encodeGenState, encodeMeta, u32,
} from '../state/kernel-codec.js';
import { TwinMaps } from '../state/twin-maps.js';
import type { Binding } from '../core/binding.js';

/** A bind request as the CLI builds it from its arguments. */
function request(label: string, protocol: string, prefix: string, port: string): BindRequest {
  return bindRequest({ label, protocol, prefix, port });
}

/** What bind's and unbind's output and events do with a result (the text, not the printing). */
function describe(list: readonly Binding[]): number {
  let n = 0;
  for (const r of collapse(list)) n += escapeControls(`bound ${bindingText(r.protocol, r.prefix, r.first, r.last)} -> ${r.label}`, '\t').length;
  for (const b of list) n += JSON.stringify(bindingToJson(b)).length;
  return n;
}

/** Run the write path's common operations on the twin; returns a number so that nothing is optimised away. */
export function warmUpOps(): number {
  const maps = new TwinMaps({ maxIds: 16 });
  let n = 0;
  // Small generation (trie mode), then past it (rebuilt hashed), then incremental hashed writes.
  for (let i = 1; i <= SMALL_GENERATION + 3; i++) {
    const r = bind(maps, request('web', 'tcp', `192.0.2.${i}`, '80'));
    n += describe(r.added);
    if (!r.hasSocket) n += unservedText({ destination: r.destination, protocol: 'tcp', prefix: parsePrefix(`192.0.2.${i}`), first: 80, last: 80 }).length;
  }
  n += describe(bind(maps, request('dns', 'udp', '2001:db8::/64', '5300-5310')).added);
  n += describe(bind(maps, request('web', 'tcp', '198.51.100.0/24', '0')).added);
  n += describe(unbind(maps, request('web', 'tcp', '192.0.2.1', '80')).removed);
  n += describe(unbind(maps, request('dns', 'udp', '2001:db8::/64', '5300-5310')).removed);
  try {
    unregisterSocket(maps, { label: 'web', domain: 'ipv4', protocol: 'tcp' });
  } catch {
    // no socket: ERR_NOT_FOUND, as for a real state
  }
  const doc = Buffer.from(JSON.stringify({ bindings: [
    { label: 'web', protocol: 'tcp', prefix: '192.0.2.0/24', port: 443 },
    { label: 'web', prefix: '2001:db8:1::/48', port: '8000-8002' },
    { label: 'api', protocol: 'udp', prefix: '203.0.113.7', port: 0 },
  ] }));
  n += apply(maps, parseApplyDocument(doc, 'warm-up.json', 1 << 20), false, { force: true }).unserved.length;
  const status = gatherStatus(maps, 1);
  n += summarize(status.destinations).length + statusWarnings(status.destinations).length;
  // The kernel maps' records, both ways.
  n += decodeMeta(encodeMeta({ magic: 1n, abi: 3, netnsIno: 1, netnsDev: 2n, loadedAt: 0, ownerUid: 0, ownerGid: 0, version: '0' })).abi;
  const limits = { maxIds: 16, sockSlots: 32, maxBindings: 1024 };
  n += decodeConfig(encodeConfig(limits, 1n)).maxIds + Number(decodeConfigCookie(encodeConfig(limits, 1n)));
  n += decodeDestKey(encodeDestKey({ label: 'web', domain: 'ipv6', protocol: 'udp' }))?.label.length ?? 0;
  n += decodeDestValue(encodeDestValue({ id: 1, refs: [1, 2], flags: 0 })).id;
  n += decodeDestInfo(encodeDestInfo({ kind: 1, slot: 2 })).slot;
  n += decodeGenMeta(encodeGenMeta(maps.genMeta(maps.activeGen()))).trieSlots;
  n += decodeGenState(encodeGenState(maps.genState(maps.activeGen()))).flags;
  n += Number(decodeCounters(encodeCounters(maps.counters(1))).lookups);
  return n + u32(n).length;
}
