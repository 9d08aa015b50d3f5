/**
 * Listener discovery's target addresses of one network namespace, as the
 * dispatcher's executor sees them (TargetRegistry, src/state/maps.ts): the
 * entries of disc_targets keyed by the namespace's cookie. Opened by a
 * writer of the dispatcher state, under that state's writers' lock (which
 * makes it the only writer of this namespace's entries); discovery's own
 * lock is not taken, so enable and disable (which take it, then each
 * dispatcher's) cannot deadlock with it.
 */
import fs from 'node:fs';
import { protocolName, protocolNumber } from '../core/net.js';
import { ManifoldError } from '../errors.js';
import type { TargetAddress, TargetRegistry } from '../state/maps.js';
import { currentNetnsCookie, netnsCookie } from '../sys/netns.js';
import { discoveryDir } from './paths.js';
import { DiscoveryState } from './state.js';
import { setTargetRefs, targetsOf } from './targets.js';

/** The registry of one namespace on an opened discovery state. */
export class DiscoveryRegistry implements TargetRegistry {
  readonly state: DiscoveryState;
  readonly netns: bigint;
  readonly netnsPath: string;

  constructor(state: DiscoveryState, netns: bigint, netnsPath: string) {
    this.state = state;
    this.netns = netns;
    this.netnsPath = netnsPath;
  }

  registered(): { address: TargetAddress; refs: number }[] {
    const out: { address: TargetAddress; refs: number }[] = [];
    for (const t of targetsOf(this.state, this.netns)) {
      const protocol = protocolName(t.proto);
      if (!protocol) continue;
      out.push({ address: { protocol, domain: t.addr.length === 4 ? 'ipv4' : 'ipv6', addr: t.addr }, refs: t.refs });
    }
    return out;
  }

  setRefs(address: TargetAddress, refs: number): void {
    setTargetRefs(this.state, { netns: this.netns, proto: protocolNumber(address.protocol), addr: address.addr }, refs, this.netnsPath);
  }

  close(): void {
    this.state.close();
  }
}

/** The cookie of the namespace at `netnsPath`: without setns when it is the caller's own. */
export function cookieOfNetns(netnsPath: string): bigint {
  try {
    const own = fs.statSync('/proc/thread-self/ns/net');
    const st = fs.statSync(netnsPath);
    if (own.ino === st.ino && own.dev === st.dev) return currentNetnsCookie();
  } catch {
    /* checked by the caller */
  }
  return netnsCookie(netnsPath);
}

/**
 * The registry of a namespace when discovery is enabled on `bpffs`, else
 * null. `cookie` is the dispatcher's stored namespace cookie (0: compute it).
 */
export function openRegistry(bpffs: string, cookie: bigint, netnsPath: string): DiscoveryRegistry | null {
  if (!fs.existsSync(discoveryDir(bpffs))) return null;
  let state: DiscoveryState;
  try {
    state = DiscoveryState.open(bpffs, true);
  } catch (err) {
    // Not enabled (any more), or broken: "discovery status" says which; targets wait for a working discovery.
    if (err instanceof ManifoldError && ['ERR_NOT_LOADED', 'ERR_STALE_STATE', 'ERR_INCOMPATIBLE'].includes(err.code)) return null;
    throw err;
  }
  try {
    return new DiscoveryRegistry(state, cookie !== 0n ? cookie : cookieOfNetns(netnsPath), netnsPath);
  } catch (err) {
    state.close();
    throw err;
  }
}
