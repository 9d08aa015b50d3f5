/**
 * Escaping for human-readable output: the one owner of which characters may
 * reach a terminal, a log line or the journal's MESSAGE= as they are.
 *
 * Text from outside (a process name from /proc, a file name, bytes of a file
 * quoted in an error, an argument) could otherwise carry terminal escape
 * sequences (ESC, CSI, OSC … BEL), rewrite the line (CR, BS), forge lines
 * (LF) or reorder what is displayed (bidi overrides). Escaped, each as
 * `\xHH` (code points below U+0100) or `\uHHHH` (others), lower-case hex:
 *
 * - C0 controls U+0000–U+001F (a caller may keep TAB and LF, see `keep`);
 * - DEL U+007F and the C1 controls U+0080–U+009F (U+009B is CSI);
 * - unpaired UTF-16 surrogates (they cannot be encoded as UTF-8);
 * - bidirectional formatting: U+061C, U+200E, U+200F, U+202A–U+202E,
 *   U+2066–U+2069 (the "Trojan Source" characters);
 * - the line and paragraph separators U+2028, U+2029.
 *
 * Everything else, including the backslash itself, is left alone: the
 * output stays readable, and is unambiguous only in JSON (use `--json` for
 * exact values). Escaping is idempotent: escaped text contains nothing that
 * would be escaped again.
 *
 * JSON output needs less: JSON.stringify already escapes C0 controls and
 * unpaired surrogates; {@link escapeJson} adds the rest as `\u` escapes,
 * which leaves the JSON value unchanged.
 */

// Every character that is escaped; surrogates are matched only when unpaired.
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// What JSON.stringify leaves raw inside strings but a terminal may act on.
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** The escape of one UTF-16 code unit: `\xHH` below U+0100, else `\uHHHH`. */
export function escapeCodeUnit(unit: number): string {
  return unit < 0x100 ? `\\x${unit.toString(16).padStart(2, '0')}` : `\\u${unit.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every unsafe character escaped (see the module comment).
 * `keep` lists control characters to leave as they are; only TAB and LF
 * may be kept (anything else in it is ignored).
 */
export function escapeControls(text: string, keep: '' | '\t' | '\n' | '\t\n' = ''): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(text)) return text;
  UNSAFE.lastIndex = 0;
  return text.replace(UNSAFE, (c) => (keep.includes(c) ? c : escapeCodeUnit(c.charCodeAt(0))));
}

/**
 * `text` with every control character escaped but tabs: a part (a file name,
 * a log line) of a message that is split into lines at its own line breaks.
 */
export function oneLine(text: string): string {
  return escapeControls(text, '\t');
}

/** True when {@link escapeControls} (keeping nothing) would change `text`. */
export function hasUnsafeCharacters(text: string): boolean {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text);
}

/**
 * A JSON text (as JSON.stringify makes it) with DEL, C1 controls, bidi
 * formatting and line separators written as `\uHHHH` escapes: the same JSON
 * value, safe to print on a terminal.
 */
export function escapeJson(json: string): string {
  UNSAFE_IN_JSON.lastIndex = 0;
  if (!UNSAFE_IN_JSON.test(json)) return json;
  UNSAFE_IN_JSON.lastIndex = 0;
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
