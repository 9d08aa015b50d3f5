/**
 * The `apply` file: {"bindings":[{"label","prefix","port","protocol"?}]}.
 *
 * The structure is checked with a JSON schema (ajv); values with manifold's
 * own parsers. Every entry is validated before anything changes.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { ManifoldError } from '../errors.js';
import { validateLabel } from '../core/labels.js';
import { parsePortRange, parsePrefix, parseProtocol, type Protocol } from '../core/net.js';
import { bindingId, bindingKeyText, type Binding } from '../core/binding.js';

const require = createRequire(import.meta.url);

/** Largest apply file read (about 8 million bindings). */
export const MAX_APPLY_FILE_BYTES = 1 << 30;

/** JSON schema of an apply file. */
export const applySchema = {
  type: 'object',
  required: ['bindings'],
  additionalProperties: false,
  properties: {
    bindings: {
      type: 'array',
      items: {
        type: 'object',
        required: ['label', 'prefix', 'port'],
        additionalProperties: false,
        properties: {
          label: { type: 'string' },
          prefix: { type: 'string' },
          port: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
          protocol: { type: 'string' },
        },
      },
    },
  },
} as const;

/** One entry before expansion. */
export interface BindingSpec {
  label: string;
  protocol?: string | undefined;
  prefix: string;
  port: number | string;
  /** Where it came from, for messages ("bindings[3]" or "web.conf:4"). */
  source: string;
}

interface AjvError { instancePath: string; message?: string; params?: Record<string, unknown> }

function schemaErrors(data: unknown): AjvError[] {
  // ajv is loaded only by commands that read apply files.
  const AjvModule = require('ajv') as { default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: AjvError[] | null } } };
  const ajv = new AjvModule.default({ allErrors: false, strict: true });
  const validate = ajv.compile(applySchema);
  return validate(data) ? [] : (validate.errors ?? []);
}

/** Read and validate an apply file into specs. */
export function readApplyFile(file: string): BindingSpec[] {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.isFile() && st.size > MAX_APPLY_FILE_BYTES) {
      throw new ManifoldError('ERR_INVALID_FILE', `${file} is ${st.size} bytes, more than the ${MAX_APPLY_FILE_BYTES} an apply file may have`);
    }
    if (!st.isFile() && !st.isDirectory()) throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${file}: not a regular file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ManifoldError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ManifoldError('ERR_FILE_NOT_FOUND', `cannot read ${file}: no such file`);
    if (code === 'EACCES') throw new ManifoldError('ERR_PERMISSION', `cannot read ${file}: permission denied`);
    if (code === 'EISDIR') throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${file}: it is a directory`);
    throw new ManifoldError('ERR_INVALID_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ManifoldError('ERR_INVALID_FILE', `${file}: malformed JSON: ${(err as Error).message}`);
  }
  const errors = schemaErrors(data);
  const first = errors[0];
  if (first) {
    const where = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') : 'top level';
    const extra = first.params?.additionalProperty ? ` (${String(first.params.additionalProperty)})` : '';
    throw new ManifoldError('ERR_INVALID_FILE', `${file}: ${where}: ${first.message ?? 'invalid'}${extra}`);
  }
  const entries = (data as { bindings: { label: string; prefix: string; port: number | string; protocol?: string }[] }).bindings;
  return entries.map((e, i) => ({ ...e, source: `bindings[${i}]` }));
}

/**
 * Expand specs into bindings: no protocol = tcp and udp, ranges = one
 * binding per port. Duplicates with the same label collapse; with
 * different labels they are an error.
 */
export function expandSpecs(specs: readonly BindingSpec[], context: string): Binding[] {
  const out = new Map<string, { b: Binding; source: string }>();
  for (const s of specs) {
    const where = `${context}${s.source}`;
    const wrap = (err: unknown): never => {
      if (err instanceof ManifoldError) throw new ManifoldError(err.code === 'ERR_USAGE' ? 'ERR_INVALID_FILE' : err.code, `${where}: ${err.message}`);
      throw err;
    };
    let label: string;
    let protocols: Protocol[];
    let prefix: ReturnType<typeof parsePrefix>;
    let range: ReturnType<typeof parsePortRange>;
    try {
      label = validateLabel(s.label);
      protocols = s.protocol === undefined ? ['tcp', 'udp'] : [parseProtocol(s.protocol)];
      prefix = parsePrefix(s.prefix);
      range = parsePortRange(s.port);
    } catch (err) {
      return wrap(err);
    }
    for (const protocol of protocols) {
      for (let port = range.first; port <= range.last; port++) {
        const b: Binding = { label, protocol, prefix, port };
        const k = bindingId(b);
        const prev = out.get(k);
        if (prev && prev.b.label !== label) {
          throw new ManifoldError('ERR_INVALID_FILE', `${where}: ${bindingKeyText(b)} is bound to ${JSON.stringify(label)} here and to ${JSON.stringify(prev.b.label)} at ${prev.source}`);
        }
        if (!prev) out.set(k, { b, source: where });
      }
    }
  }
  return [...out.values()].map((v) => v.b);
}
