/**
 * The one reader of /proc/PID/mountinfo lines (proc(5)): "ID PARENT
 * MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
 * Paths are unescaped (the kernel writes space, tab, newline and backslash
 * as \040, \011, \012 and \134).
 */

/** One mount. */
export interface MountEntry {
  /** The mounted directory of the filesystem ("/" for a whole filesystem). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Decode the octal escapes of a mountinfo field (\040 = space). */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Every well-formed line of a mountinfo text, in order (later lines are mounted on top). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right[0] === undefined) continue;
    out.push({ root: unescapeMountPath(left[3]!), mountPoint: unescapeMountPath(left[4]!), fsType: right[0], source: unescapeMountPath(right[1] ?? '') });
  }
  return out;
}
