/**
 * Group names to gids (from /etc/group; numeric gids accepted).
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';

/** Resolve a group name or number. */
export function resolveGroup(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try {
    text = fs.readFileSync('/etc/group', 'utf8');
  } catch {
    /* fall through */
  }
  for (const line of text.split('\n')) {
    const [g, , gid] = line.split(':');
    if (g === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ManifoldError('ERR_USAGE', `invalid --group ${JSON.stringify(name)}: no such group`);
}
