/**
 * The kernel command line switch `manifold.generator=BOOL` (and
 * `rd.manifold.generator=BOOL`, honoured only in the initrd), parsed like
 * systemd's proc_cmdline_parse: words split on blanks, quotes removed, "-"
 * and "_" equivalent in keys, the last occurrence wins, a bare key is true.
 */

import { fs } from '../config/node.js';

/** The switch's key. */
export const SWITCH = 'manifold.generator';

/** A file's text, or null when it cannot be read (the kernel bounds both command lines). */
function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The command line the switch is read from, as systemd's proc_cmdline()
 * chooses it: $SYSTEMD_PROC_CMDLINE when set; in a container (systemd tells
 * generators with $SYSTEMD_VIRTUALIZATION=container:…, or
 * /run/systemd/container exists) the arguments of the container's PID 1,
 * joined by spaces, since the kernel's command line is the host's; else
 * /proc/cmdline. Empty when it cannot be read. `root` is for tests.
 */
export function kernelCommandLine(env: NodeJS.ProcessEnv, root = '/'): string {
  const override = env['SYSTEMD_PROC_CMDLINE'];
  if (override !== undefined) return override;
  const virt = env['SYSTEMD_VIRTUALIZATION'];
  const container = virt !== undefined ? virt.startsWith('container:') : fs.existsSync(`${root}run/systemd/container`);
  if (container) return (readText(`${root}proc/1/cmdline`) ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
  return readText(`${root}proc/cmdline`) ?? '';
}

/** Split a kernel command line into words, removing quotes. */
export function splitCmdline(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** systemd's parse_boolean: true, false or null when not a boolean. */
export function parseBoolean(v: string): boolean | null {
  const s = v.toLowerCase();
  if (['1', 'yes', 'y', 'true', 't', 'on'].includes(s)) return true;
  if (['0', 'no', 'n', 'false', 'f', 'off'].includes(s)) return false;
  return null;
}

function keyEquals(a: string, b: string): boolean {
  return a.replace(/-/g, '_') === b.replace(/-/g, '_');
}

/** What the command line says about the generator. */
export interface SwitchState {
  enabled: boolean;
  /** The word that decided (e.g. "manifold.generator=0"), when one did. */
  word?: string;
  /** Words with a value that is not a boolean (ignored). */
  invalid: string[];
}

/** Evaluate the switch on a command line. */
export function generatorSwitch(cmdline: string, inInitrd: boolean): SwitchState {
  const state: SwitchState = { enabled: true, invalid: [] };
  for (const word of splitCmdline(cmdline)) {
    let w = word;
    if (w.startsWith('rd.')) {
      if (!inInitrd) continue;
      w = w.slice(3);
    }
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    if (!keyEquals(key, SWITCH)) continue;
    const value = eq < 0 ? true : parseBoolean(w.slice(eq + 1));
    if (value === null) {
      state.invalid.push(word);
      continue;
    }
    state.enabled = value;
    state.word = word;
  }
  return state;
}
