/**
 * Whose files manifold takes for its own or trusts: root, and the effective
 * user running manifold when that is not root. Config files (src/config/trust.ts),
 * leftovers and lock directories on the bpffs (src/ops/lifecycle.ts,
 * src/ops/doctor-state.ts) and discovery's state (src/discovery/state.ts)
 * all use this one rule.
 */

/** The trusted users: root and the effective user. */
export function trustedUids(): number[] {
  const euid = process.geteuid?.() ?? 0;
  return euid === 0 ? [0] : [0, euid];
}

/** Whether `uid` is one of {@link trustedUids}. */
export function isTrustedUid(uid: number): boolean {
  return uid === 0 || uid === (process.geteuid?.() ?? 0);
}
