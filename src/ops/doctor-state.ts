/**
 * doctor: the namespace's dispatcher state (loaded? healthy? which map ABI
 * and version? an interrupted write's DIRTY generation? leftovers?), its
 * destinations without sockets, bindings outside every local route, and
 * other sk_lookup programs attached to the same namespace. Reads without
 * any lock (like status), maps opened read-only.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BindingList } from '../core/binding-list.js';
import { GEN_DIRTY, GEN_STALE, MANIFOLD_ABI } from '../core/layout.js';
import { isTrustedUid } from '../core/users.js';
import type { Prefix } from '../core/net.js';
import { toManifoldError, type ManifoldError } from '../errors.js';
import { linkInfo, objGet } from '../sys/bpf.js';
import { SysError } from '../sys/errno.js';
import { closeFd } from '../sys/libc.js';
import { manifoldVersion } from '../version.js';
import { leftoverPrefix, lockDirName, ObjectPins } from '../state/paths.js';
import { inspectState, withState } from '../state/state.js';
import { readLocalRoutes, unroutedPrefixes } from './doctor-routes.js';
import { finding, type DoctorContext, type Finding } from './doctor-finding.js';
import { gatherStatus } from './status.js';
import { DISPATCHER_NAME, skLookupLinks, type SkLookupLink } from './netns-links.js';

/** Items named in one finding's message (the JSON details carry them all). */
const LIST_LIMIT = 10;


function listText(items: readonly string[]): string {
  const shown = items.slice(0, LIST_LIMIT).join(', ');
  return items.length > LIST_LIMIT ? `${shown} and ${items.length - LIST_LIMIT} more` : shown;
}

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** The id of manifold's own link in a state directory, or null. */
function ownLinkId(stateDir: string): number | null {
  let fd: number;
  try {
    fd = objGet(path.join(stateDir, ObjectPins.link));
  } catch {
    return null;
  }
  try {
    return linkInfo(fd).id;
  } finally {
    closeFd(fd);
  }
}

function otherPrograms(ctx: DoctorContext): Finding {
  const id = 'netns.other_sk_lookup';
  let links: SkLookupLink[];
  try {
    links = skLookupLinks(ctx.netnsIno);
  } catch (err) {
    if (err instanceof SysError && (err.errno === 1 || err.errno === 13)) {
      return finding(id, 'info', 'other sk_lookup programs not checked: listing BPF links needs CAP_SYS_ADMIN', 'run "manifold doctor" as root');
    }
    throw err;
  }
  const own = ctx.target ? ownLinkId(ctx.target.stateDir) : null;
  const others = links.filter((l) => l.linkId !== own);
  const details = { links: links.map((l) => ({ ...l, manifold: l.linkId === own })) };
  if (others.length === 0) return finding(id, 'ok', 'no other sk_lookup program is attached to this network namespace', undefined, details);
  const name = (l: SkLookupLink): string => (l.program.startsWith(DISPATCHER_NAME)
    ? `"${l.program}" (link ${l.linkId}, program ${l.progId}: a manifold dispatcher whose state is not under ${ctx.opts.bpffs})`
    : `"${l.program}" (link ${l.linkId}, program ${l.progId})`);
  const order = links.map((l) => (l.linkId === own ? `manifold (link ${l.linkId})` : name(l))).join(', then ');
  const after = own === null ? [] : others.filter((l) => l.linkId > own);
  const consequence = own === null
    ? 'manifold is not attached here'
    : after.length > 0
      ? `${after.length} of them run${after.length === 1 ? 's' : ''} after manifold and override${after.length === 1 ? 's' : ''} the sockets it picks whenever ${after.length === 1 ? 'it assigns' : 'they assign'} one`
      : 'manifold runs last, so its choice wins wherever it assigns a socket';
  return finding(id, 'warning',
    `${others.length} other sk_lookup program${others.length === 1 ? ' is' : 's are'} attached to this network namespace; every lookup runs them all in attach order (${order}): the last program to assign a socket wins, and a drop only counts when no program assigned one. ${consequence}`,
    'make sure only one program steers the same traffic (e.g. detach a tubular dispatcher: bpftool link detach id N), or give them disjoint addresses and ports',
    details);
}

function leftovers(ctx: DoctorContext, loaded: boolean): Finding[] {
  const t = ctx.target!;
  const all = fs.readdirSync(t.bpffs).filter((n) => n.startsWith(leftoverPrefix(t.netnsIno)));
  // manifold removes only its own (root's or this user's directories): see src/ops/lifecycle.ts.
  const foreign = all.filter((n) => {
    const uid = fs.lstatSync(path.join(t.bpffs, n), { throwIfNoEntry: false })?.uid;
    return uid !== undefined && !isTrustedUid(uid);
  });
  const names = all.filter((n) => !foreign.includes(n));
  const out: Finding[] = [];
  if (names.length > 0) {
    out.push(finding('state.leftovers', 'warning', `left over by an interrupted load, unload or upgrade: ${listText(names.map((n) => path.join(t.bpffs, n)))}`,
      'the next "manifold load", "manifold unload" or "manifold upgrade" removes them', { directories: names }));
  } else out.push(finding('state.leftovers', 'ok', 'no leftovers of interrupted commands'));
  if (foreign.length > 0) {
    out.push(finding('state.foreign_names', 'warning', `made by other users under manifold's names, which manifold does not remove: ${listText(foreign.map((n) => path.join(t.bpffs, n)))}`,
      `remove them by hand, and let only root write to ${t.bpffs} (chmod 0700; a fresh "mount -t bpf" is 1777)`, { directories: foreign }));
  }
  if (!loaded && fs.existsSync(path.join(t.bpffs, lockDirName(t.netnsIno)))) {
    out.push(finding('state.lock', 'info', `the writers' lock directory ${path.join(t.bpffs, lockDirName(t.netnsIno))} exists without a state`, 'harmless; "manifold unload" removes it'));
  }
  return out;
}

/** Each prefix of a binding list once (family, length and address; not protocol or port). */
function distinctPrefixes(list: BindingList): Prefix[] {
  const seen = new Set<string>();
  const out: Prefix[] = [];
  for (let i = 0; i < list.count; i++) {
    const p = list.prefix(i);
    const key = `${p.domain}/${p.len}/${Buffer.from(p.addr).toString('hex')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function routes(ctx: DoctorContext, prefixes: Prefix[]): Finding {
  const id = 'routes.unrouted_prefixes';
  if (prefixes.length === 0) return finding(id, 'ok', 'no bindings, so no prefixes to route');
  const local = readLocalRoutes(ctx.opts.netns, ctx.ownNetns);
  if (typeof local === 'string') return finding(id, 'info', `local routes not checked: ${local}`, ctx.ownNetns ? undefined : 'run "manifold doctor" as root to read the routes of another namespace');
  const { none, partial } = unroutedPrefixes(prefixes, local);
  const details = { none, partial, checked: prefixes.length };
  if (none.length === 0 && partial.length === 0) return finding(id, 'ok', `every bound prefix (${prefixes.length}) is covered by a local route`, undefined, details);
  const parts: string[] = [];
  if (none.length) parts.push(`${none.length} bound prefix${none.length === 1 ? ' has' : 'es have'} no local route, so no traffic to ${none.length === 1 ? 'it' : 'them'} ever reaches the dispatcher: ${listText(none)}`);
  if (partial.length) parts.push(`${partial.length} ${partial.length === 1 ? 'is' : 'are'} only partly covered: ${listText(partial)}`);
  const example = none[0] ?? partial[0] ?? 'PREFIX';
  return finding(id, none.length ? 'warning' : 'info', parts.join('; '),
    `route them locally, e.g. ip route add local ${example} dev lo${ctx.ownNetns ? '' : ` (in the namespace: ip -n NAME route add …)`}, or assign the addresses to an interface`, details);
}

function health(ctx: DoctorContext): Finding[] {
  const t = ctx.target!;
  if (!fs.existsSync(t.stateDir)) {
    return [finding('state.loaded', 'info', `the dispatcher is not loaded in network namespace ${t.netnsIno} (no ${t.stateDir})`, 'manifold load'), ...leftovers(ctx, false)];
  }
  let h;
  try {
    h = inspectState(t.stateDir, t.netnsIno, !isRoot());
  } catch (err) {
    return [stateError(toManifoldError(err)), ...leftovers(ctx, true)];
  }
  if (!h.ok) {
    return [finding('state.loaded', 'error', `${t.stateDir} is not a working dispatcher state: ${h.reason}`, '"manifold load" replaces it; "manifold unload" removes it'), ...leftovers(ctx, true)];
  }
  const out = [finding('state.loaded', 'ok', `loaded in network namespace ${t.netnsIno} (${t.stateDir}), map ABI ${h.meta.abi}`)];
  if (h.meta.version !== manifoldVersion()) {
    out.push(finding('state.version', 'info', `the running dispatcher was loaded or upgraded by manifold ${h.meta.version}; this is manifold ${manifoldVersion()}`, 'manifold upgrade (in place, keeps bindings, sockets and counters)'));
  } else out.push(finding('state.version', 'ok', `the running dispatcher is this version's (${h.meta.version}, ABI ${MANIFOLD_ABI})`));
  out.push(...withState({ netns: t.netns, bpffs: t.bpffs, write: false, lockTimeoutMs: 0 }, (s) => {
    const found: Finding[] = [];
    const active = s.maps.activeGen();
    const other = (active ^ 1) as 0 | 1;
    const a = s.maps.genState(active);
    const o = s.maps.genState(other);
    const details = { active, generations: [0, 1].map((g) => { const st = g === active ? a : o; return { gen: g, seq: st.seq.toString(), flags: st.flags, txid: st.txid.toString() }; }) };
    if (a.flags !== 0) found.push(finding('state.generations', 'error', `the live generation ${active} is marked ${flagText(a.flags)}: lookups may use incomplete data`, 'apply the bindings again: manifold apply FILE (or apply --config)', details));
    else if (o.flags & GEN_DIRTY) found.push(finding('state.generations', 'warning', `generation ${other} (not live) was left DIRTY by an interrupted write; the live generation ${active} is intact`, 'the next write rebuilds it (nothing else to do)', details));
    else if (o.flags & GEN_STALE) found.push(finding('state.generations', 'info', `generation ${other} (not live) is STALE; the next write rebuilds it`, undefined, details));
    else found.push(finding('state.generations', 'ok', `generation ${active} is live${a.seq === o.seq ? ' and the other in sync' : ''}`, undefined, details));
    const st = gatherStatus(s.maps, t.netnsIno, { bindings: true });
    found.push(...destinations(st.warnings.map((w) => w.message), st.warnings.length));
    const c = st.capacity;
    const full = (['bindings', 'destinations', 'sockets'] as const).filter((k) => c[k].used >= 0.9 * c[k].max);
    found.push(full.length
      ? finding('state.capacity', 'warning', `nearly full: ${full.map((k) => `${k} ${c[k].used}/${c[k].max}`).join(', ')}`, 'manifold load --max-destinations N / --max-bindings N sizes a new state (unload first)', { ...c })
      : finding('state.capacity', 'ok', `bindings ${c.bindings.used}/${c.bindings.max}, destinations ${c.destinations.used}/${c.destinations.max}, sockets ${c.sockets.used}/${c.sockets.max}`, undefined, { ...c }));
    found.push(routes(ctx, st.bindings ? distinctPrefixes(st.bindings) : []));
    return found;
  }));
  out.push(...leftovers(ctx, true));
  return out;
}

/** The finding for a state that could not be opened: unreadable by this caller (info), older ABI, or broken. */
function stateError(m: ManifoldError): Finding {
  if (m.code === 'ERR_PERMISSION') return finding('state.abi', 'info', `the state was not checked: ${m.message}`, 'run "manifold doctor" as root, or as a member of the state\'s group');
  if (m.code === 'ERR_INCOMPATIBLE') return finding('state.abi', 'warning', m.message, 'manifold upgrade');
  return finding('state.abi', 'error', m.message, '"manifold load" replaces a stale state; "manifold unload" removes a broken one');
}

function flagText(flags: number): string {
  return [flags & GEN_DIRTY ? 'DIRTY' : '', flags & GEN_STALE ? 'STALE' : ''].filter(Boolean).join('+') || String(flags);
}

function destinations(messages: string[], count: number): Finding[] {
  if (count === 0) return [finding('state.destinations', 'ok', 'every destination with bindings has a usable socket')];
  return [finding('state.destinations', 'warning', `${count} destination${count === 1 ? '' : 's'} cannot take ${count === 1 ? 'its' : 'their'} traffic: ${listText(messages)}`,
    'register a socket: manifold register-pid PID LABEL PROTOCOL IP PORT (or start the socket unit), or remove the bindings', { problems: messages })];
}

/** Findings about the dispatcher state of the namespace and its neighbours. */
export function stateFindings(ctx: DoctorContext): Finding[] {
  const out: Finding[] = [];
  if (ctx.target === null) out.push(finding('state.loaded', 'info', 'the dispatcher state was not checked: no usable bpffs (see host.bpffs)'));
  else out.push(...health(ctx));
  out.push(otherPrograms(ctx));
  return out;
}
