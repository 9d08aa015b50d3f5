/**
 * Group names to gids (from /etc/group; numeric gids accepted).
 */
import fs from 'node:fs';
import { ManifoldError } from '../errors.js';

/** Resolve a group name or number. */
export function resolveGroup(name: string): number {
  if (/^\d+$/.test(name)) {
    // 4294967295 is (gid_t)-1, "leave the group alone" to chown(2).
    const gid = Number(name);
    if (gid >= 4294967295) throw new ManifoldError('ERR_USAGE', `invalid --group ${name}: group ids go up to 4294967294`);
    return gid;
  }
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
