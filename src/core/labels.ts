/**
 * Labels name destinations. They appear in listings, journal fields,
 * systemd's LISTEN_FDNAMES (":"-separated) and unit names, so the alphabet
 * is restricted to characters that are unambiguous in all of those.
 */
import { ManifoldError } from '../errors.js';

/** Longest label, in bytes (the BPF dest_key holds 255 + NUL). */
export const MAX_LABEL_BYTES = 255;

const LABEL_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$/;

/** Why a label is invalid, or null when it is fine. */
export function labelProblem(label: string): string | null {
  if (label.length === 0) return 'label is empty';
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > MAX_LABEL_BYTES) return `label is ${bytes} bytes long, the maximum is ${MAX_LABEL_BYTES}`;
  if (!LABEL_RE.test(label)) {
    return `label ${JSON.stringify(label)} may only contain letters, digits and _ . @ + = - (and must not start with . @ + = -)`;
  }
  return null;
}

/** Throw ERR_INVALID_LABEL unless the label is valid. */
export function validateLabel(label: unknown, what = 'label'): string {
  if (typeof label !== 'string') throw new ManifoldError('ERR_INVALID_LABEL', `${what} must be a string`);
  const problem = labelProblem(label);
  if (problem) throw new ManifoldError('ERR_INVALID_LABEL', `invalid ${what}: ${problem}`);
  return label;
}
