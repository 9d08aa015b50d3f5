/**
 * Bindings from the manifold config files, for `apply --config`.
 */
import { ManifoldError } from '../errors.js';
import type { BindingSpec } from '../ops/apply-file.js';

/** Placeholder until the config module lands: refuses clearly. */
export function configSpecs(): BindingSpec[] {
  throw new ManifoldError('ERR_INVALID_CONFIG', 'config files are not supported by this build');
}
