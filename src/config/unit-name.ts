/**
 * systemd unit names: validity (unit_name_is_valid) and escaping
 * (unit_name_escape, i.e. `systemd-escape STRING` without options).
 */
import { quote } from './problems.js';

/** Longest unit name (systemd's UNIT_NAME_MAX is 256 including the NUL). */
export const UNIT_NAME_MAX = 255;

/** Longest file name on Linux file systems (NAME_MAX), in bytes. */
export const NAME_MAX = 255;

/**
 * Why a file name the generator would write is too long, or null: drop-in
 * directories are "UNIT.d", so a unit name that systemd accepts (up to 255
 * characters) may still not fit.
 */
export function fileNameProblem(name: string, what: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  return bytes > NAME_MAX ? `${what} ${name.length > 48 ? `${name.slice(0, 24)}…${name.slice(-16)}` : name} would be ${bytes} bytes long; file names may have at most ${NAME_MAX}` : null;
}

const VALID_BYTE = /^[A-Za-z0-9:_.\\-]$/;
const VALID_NAME_CHARS = /^[A-Za-z0-9:_.\\@-]+$/;

function hexEscape(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Escape a string for use in a unit name, exactly like `systemd-escape`:
 * "/" becomes "-"; a leading "." and every byte outside [A-Za-z0-9:_.]
 * (including "-" and "\") becomes "\xNN" (lower-case hex, per UTF-8 byte).
 */
export function systemdEscape(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  bytes.forEach((b, i) => {
    const c = String.fromCharCode(b);
    if (i === 0 && c === '.') out += hexEscape(b);
    else if (c === '/') out += '-';
    else if (c !== '-' && c !== '\\' && b < 0x80 && VALID_BYTE.test(c)) out += c;
    else out += hexEscape(b);
  });
  return out;
}

/**
 * Undo `systemdEscape` like systemd's unit_name_unescape (`systemd-escape
 * --unescape`, what `%I` does): "-" becomes "/", "\xNN" a byte. Null when
 * systemd refuses the text (a backslash not starting "\x" and two hex
 * digits) or the result is not text: a NUL byte (systemd would cut the
 * string there) or bytes that are not UTF-8.
 */
export function systemdUnescape(text: string): string | null {
  if (/\\(?!x[0-9a-fA-F]{2})/.test(text) || /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) return null;
  const parts = text.split(/(\\x[0-9a-fA-F]{2})/);
  const buf = Buffer.concat(parts.map((p, i) => (i % 2 === 1 ? Buffer.of(parseInt(p.slice(2), 16)) : Buffer.from(p.replace(/-/g, '/'), 'utf8'))));
  if (buf.includes(0)) return null;
  const out = buf.toString('utf8');
  return Buffer.from(out, 'utf8').equals(buf) ? out : null;
}

/**
 * Why `name` is not a usable unit name of the given type, or null. Templates
 * ("foo@.service") are refused: manifold needs a concrete unit.
 */
export function unitNameProblem(name: string, type: 'socket' | 'service'): string | null {
  const suffix = `.${type}`;
  if (!name.endsWith(suffix)) return `${quote(name)} is not a .${type} unit name`;
  if (name.length > UNIT_NAME_MAX) return `unit name ${quote(name)} is longer than ${UNIT_NAME_MAX} characters`;
  const stem = name.slice(0, -suffix.length);
  if (stem === '') return `unit name ${quote(name)} is empty before ${suffix}`;
  if (!VALID_NAME_CHARS.test(stem)) {
    return `unit name ${quote(name)} may only contain letters, digits and : _ . \\ - @ (escape other characters with systemd-escape)`;
  }
  const at = stem.indexOf('@');
  if (at === 0) return `unit name ${quote(name)} starts with "@"`;
  if (at > 0 && at === stem.length - 1) return `${quote(name)} is a template; name an instance such as ${quote(`${stem}foo${suffix}`)}`;
  return null;
}

/**
 * The register helper instance for a socket unit: the socket's name without
 * ".socket", verbatim ("dns-tcp.socket" → "manifold-register@dns-tcp.service",
 * "web@8080.socket" → "manifold-register@web@8080.service"). The template
 * finds the socket again with `Sockets=%i.socket`; it cannot unescape
 * (`%I` is not allowed in Sockets=: systemd 252 refuses it with EBADSLT), so
 * the instance must not be escaped. A valid socket name's stem is always a
 * valid instance (same characters; "@" is allowed in instances).
 */
export function registerUnitFor(socketUnit: string): string {
  const stem = socketUnit.endsWith('.socket') ? socketUnit.slice(0, -'.socket'.length) : socketUnit;
  return `manifold-register@${stem}.service`;
}
