/**
 * Operator safety: a binding steers traffic away from the kernel's normal
 * socket lookup, so a binding to a destination without a socket refuses
 * that traffic. Writes report it, and refuse a binding that captures a
 * whole address family (prefix length 0) for a destination without a
 * socket unless forced: one such command would cut off every connection of
 * that family and protocol in the namespace (sshd, the metrics exporter…).
 */
import { formatPorts, formatPrefix, type Prefix, type Protocol } from '../core/net.js';
import { ManifoldError } from '../errors.js';

/** A binding of a destination without a socket. */
export interface Unserved {
  destination: string;
  protocol: Protocol;
  prefix: Prefix;
  first: number;
  last: number;
}

/** The warning text for a binding whose destination has no socket. */
export function unservedText(u: Unserved): string {
  const what = u.first === 0 ? 'every port' : `port ${formatPorts(u.first, u.last)}`;
  return `${u.destination} has no socket: ${u.protocol} traffic to ${formatPrefix(u.prefix)} ${what} is refused until a socket is registered`;
}

/** Throw ERR_NO_SOCKET for a whole-family capture without a socket unless `force`. */
export function refuseWholeFamily(u: Unserved, force: boolean): void {
  if (force || u.prefix.len !== 0) return;
  const family = u.prefix.domain === 'ipv4' ? 'IPv4' : 'IPv6';
  const what = u.first === 0 ? 'on every port' : `on port ${formatPorts(u.first, u.last)}`;
  throw new ManifoldError(
    'ERR_NO_SOCKET',
    `refusing to steer every ${family} ${u.protocol} address ${what} (${formatPrefix(u.prefix)}) to ${u.destination}, which has no socket: every such ${u.protocol === 'tcp' ? 'connection' : 'datagram'} in the namespace would be refused (local servers and the metrics exporter included). Register a socket for it first, or pass --force; nothing was changed`,
  );
}
