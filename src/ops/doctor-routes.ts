/**
 * doctor: steered prefixes with no local route. sk_lookup runs only for
 * packets the routing decided to deliver locally, i.e. whose destination
 * is covered by a route of type `local` (table local: the addresses of the
 * interfaces, and `ip route add local PREFIX dev lo`). A binding outside
 * every local route can never see traffic. The routes are read with
 * `ip -j route show table local`, run inside the namespace (nsenter when it
 * is not the caller's own).
 */
import { spawnSync } from 'node:child_process';
import { prefixContains } from '../core/binding.js';
import { formatPrefix, maskPrefix, parsePrefixText, type Prefix } from '../core/net.js';

/** How much of a prefix local routes cover. */
export type Coverage = 'full' | 'partial' | 'none';

/** Time limit of one `ip` run. */
const IP_TIMEOUT_MS = 10_000;

/** Local routes from `ip -j route show table local` output (type local only; "default" is /0). */
export function parseLocalRoutes(json: string, domain: 'ipv4' | 'ipv6'): Prefix[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(doc)) return [];
  const out: Prefix[] = [];
  for (const r of doc) {
    const route = r as { type?: unknown; dst?: unknown };
    if (route.type !== 'local' || typeof route.dst !== 'string') continue;
    const text = route.dst === 'default' ? (domain === 'ipv4' ? '0.0.0.0/0' : '::/0') : route.dst;
    const p = parsePrefixText(text);
    if (typeof p !== 'string' && p.domain === domain) out.push(maskPrefix(p));
  }
  return out;
}

/** How much of `prefix` the routes cover: all of it (one route contains it), part of it, or none. */
export function coverage(prefix: Prefix, routes: readonly Prefix[]): Coverage {
  let partial = false;
  for (const r of routes) {
    if (r.domain !== prefix.domain) continue;
    if (r.len <= prefix.len && prefixContains(r, prefix.addr)) return 'full';
    if (r.len > prefix.len && prefixContains(prefix, r.addr)) partial = true;
  }
  return partial ? 'partial' : 'none';
}

/** The local routes of a namespace (both families), or why they could not be read. */
export function readLocalRoutes(netns: string, own: boolean): Prefix[] | string {
  const out: Prefix[] = [];
  for (const [flag, domain] of [['-4', 'ipv4'], ['-6', 'ipv6']] as const) {
    const args = ['-j', flag, 'route', 'show', 'table', 'local'];
    const r = own
      ? spawnSync('ip', args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, maxBuffer: 64 << 20 })
      : spawnSync('nsenter', [`--net=${netns}`, '--', 'ip', ...args], { encoding: 'utf8', timeout: IP_TIMEOUT_MS, maxBuffer: 64 << 20 });
    if (r.error) return `cannot run ${own ? 'ip' : 'nsenter'}: ${r.error.message}`;
    if (r.status !== 0) return `"ip ${args.join(' ')}" failed${own ? '' : ' in the namespace'}: ${(r.stderr || '').trim().split('\n')[0] ?? ''}`;
    for (const route of parseLocalRoutes(r.stdout, domain)) out.push(route);
  }
  return out;
}

/** Prefixes (as given, each once) without full local-route coverage. */
export function unroutedPrefixes(prefixes: readonly Prefix[], routes: readonly Prefix[]): { none: string[]; partial: string[] } {
  const none: string[] = [];
  const partial: string[] = [];
  for (const p of prefixes) {
    const c = coverage(p, routes);
    if (c === 'none') none.push(formatPrefix(p));
    else if (c === 'partial') partial.push(formatPrefix(p));
  }
  return { none, partial };
}
