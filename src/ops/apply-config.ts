/**
 * apply --config: the config files' bindings, applied with ownership
 * (manifold.conf(5), "RELOADING").
 *
 * A label defined by a config file belongs to the configuration: its
 * bindings become exactly the file's Bind= lines. Every other label's
 * bindings were made by hand (bind, apply FILE) and are kept, unless
 * `prune`. Which labels came from the configuration is recorded per
 * destination and generation (layout.destConfigBit), so a label whose file
 * was removed is recognised and its bindings removed — unless some file has
 * problems (`incomplete`): then it might be that file's label, and every
 * label applied from the configuration before keeps its bindings.
 *
 * The result is one ordinary apply (planApply) of the merged set plus the
 * new config bits, carried out by the executor in one transaction.
 */
import { BindingList, KeyIndex } from '../core/binding-list.js';
import { formatPrefix } from '../core/net.js';
import type { DispatcherMaps } from '../state/maps.js';
import { checkUnserved, planApply, type ApplyResult } from './apply.js';
import type { BuiltSet } from './binding-set.js';
import { execute } from './executor.js';
import { emptyPlan } from './plan.js';
import { View } from './view.js';
import { planExactTargets, type ConfigTargets } from './target.js';

/** What the configuration asks for. */
export interface ConfigApplyInput {
  /** Bindings of the valid files (tags = indices into `set.labels`). */
  set: BuiltSet;
  /** Labels the valid files define, also those without Bind= lines. */
  labels: ReadonlySet<string>;
  /** Some file had problems and was left out: labels applied from the configuration before are kept. */
  incomplete: boolean;
  /** Remove the bindings made by hand too. */
  prune: boolean;
  /**
   * Address targets of the files (Target=) and the policy explicit-first
   * (on when there are any): absent = leave targets and policy alone.
   */
  targets?: ConfigTargets | undefined;
  /** Label → the systemd unit that registers its sockets (Socket=, Service=): a missing socket is awaited, not a warning. */
  registeredBy?: ReadonlyMap<string, string> | undefined;
}

/** The result of apply --config. */
export interface ConfigApplyResult extends ApplyResult {
  /** Bindings made by hand that were kept, per label. */
  keptByHand: Map<string, number>;
  /** Bindings of labels applied from the configuration before, kept because some file has problems, per label. */
  keptConfigured: Map<string, number>;
  /** Kept bindings whose key a config file binds to its own label: the config file's label wins ("tcp 192.0.2.0/24 80 (was foo)"). */
  takenOver: string[];
  /** Labels marked as defined by the configuration afterwards, sorted. */
  configuredLabels: string[];
  /** Destinations without a socket yet whose systemd unit registers it (notes, not warnings). */
  awaiting: string[];
}

function count(m: Map<string, number>, label: string): void {
  m.set(label, (m.get(label) ?? 0) + 1);
}

/** Apply the configuration (or, with dryRun, only compute what would change). */
export function applyConfig(maps: DispatcherMaps, input: ConfigApplyInput, dryRun: boolean, opts: { force?: boolean } = {}): ConfigApplyResult {
  const view = new View(maps);
  const owned = view.configuredLabels();
  const live = maps.readBindings(view.live);
  const cfg = input.set.list;
  const cfgIx = KeyIndex.of(cfg);
  const labels = [...input.set.labels];
  const labelIdx = new Map(labels.map((l, i) => [l, i]));
  const merged = new BindingList(cfg.count + live.count);
  for (let i = 0; i < cfg.count; i++) merged.pushFrom(cfg, i, cfg.tag(i));
  const keptByHand = new Map<string, number>();
  const keptConfigured = new Map<string, number>();
  const takenOver: string[] = [];
  for (let j = 0; j < live.count; j++) {
    const label = view.labelOf(live.tag(j));
    if (input.labels.has(label)) continue;
    const configured = owned.has(label);
    if (configured ? !input.incomplete : input.prune) continue;
    if (cfgIx.find(live, j) >= 0) {
      takenOver.push(`${live.protocol(j)} ${formatPrefix(live.prefix(j))} ${live.port(j)} (was ${label})`);
      continue;
    }
    let idx = labelIdx.get(label);
    if (idx === undefined) {
      idx = labels.length;
      labels.push(label);
      labelIdx.set(label, idx);
    }
    merged.pushFrom(live, j, idx);
    count(configured ? keptConfigured : keptByHand, label);
  }
  const { plan, diff } = planApply(view, { list: merged, labels }, live);
  const after = (label: string): boolean => input.labels.has(label) || (input.incomplete && owned.has(label));
  for (const d of view.destinations()) {
    const want = after(d.label);
    if (want !== view.isConfigured(d)) plan.configured.set(d.id, want);
  }
  for (const d of plan.create) if (after(d.label)) plan.configured.set(d.id, true);
  const configuredLabels = [...new Set([...input.labels, ...[...owned].filter(after)])].sort();
  // Targets, like bindings: a label of the files gets exactly its Target= lines; a target of another label is
  // removed when that label was applied from the configuration before (unless files were left out), or with prune.
  const dropTarget = (label: string): boolean => input.labels.has(label) || (owned.has(label) ? !input.incomplete : input.prune);
  const t = input.targets
    ? planExactTargets(view, plan, input.targets.assignments, { explicitFirst: input.targets.explicitFirst }, dropTarget)
    : { changes: [], policy: null };
  const { warnings: unserved, awaiting } = checkUnserved(view, diff, opts.force ?? false, input.registeredBy);
  const result = { ...diff, unserved, awaiting, keptByHand, keptConfigured, takenOver, configuredLabels, targets: t.changes, policy: t.policy };
  if (dryRun) return { ...result, exec: null };
  const changed = diff.added.length + diff.relabelled.length + diff.removed.length > 0 || plan.configured.size > 0 || plan.destInfo.size > 0 || plan.policy !== null;
  // A no-op writes nothing, unless an earlier write was interrupted: then it repairs that.
  return { ...result, exec: execute(maps, changed ? plan : emptyPlan()) };
}
