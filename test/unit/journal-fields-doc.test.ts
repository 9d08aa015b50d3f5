/**
 * docs/journal.md's table of event fields says exactly what the code may
 * send: every (field, event kind) pair of EventFieldNames is documented and
 * the table names no field an event does not carry.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultFieldNames, EventFieldNames, EventIds, type EventKind } from '../../src/log/events.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const KINDS = Object.keys(EventIds) as EventKind[];

/** "field kind" pairs from the docs table (| `MANIFOLD_X`, `MANIFOLD_Y` | kind, kind (note) |). */
function documented(): { pairs: Set<string>; everyEvent: Set<string> } {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'journal.md'), 'utf8');
  const start = text.indexOf('| Field | Events |');
  assert.ok(start >= 0, 'docs/journal.md has a "| Field | Events |" table');
  const rows = text.slice(start).split('\n').slice(2);
  const pairs = new Set<string>();
  const everyEvent = new Set<string>();
  for (const line of rows) {
    if (!line.startsWith('|')) break;
    const [, fieldCell = '', eventCell = ''] = line.split('|').map((c) => c.trim());
    const fields = [...fieldCell.matchAll(/`MANIFOLD_([A-Z0-9_]+)`/g)].map((m) => m[1]!);
    assert.ok(fields.length > 0, `a field in "${line}"`);
    const words = eventCell.replace(/\([^)]*\)/g, '').replace(/`[^`]*`/g, '').split(/[,;]/).map((w) => w.trim()).filter(Boolean);
    for (const w of words) {
      if (/^every event/.test(w)) {
        for (const f of fields) everyEvent.add(f);
        continue;
      }
      assert.ok((KINDS as string[]).includes(w), `"${w}" in "${line}" is an event kind`);
      for (const f of fields) pairs.add(`${f} ${w}`);
    }
  }
  return { pairs, everyEvent };
}

test('every field an event may carry is in the table, and nothing else', () => {
  const doc = documented();
  const code = new Set<string>();
  for (const k of KINDS) for (const f of EventFieldNames[k]) code.add(`${f} ${k}`);
  assert.equal([...code].filter((p) => !doc.pairs.has(p)).sort(), [], 'fields sent but not documented');
  assert.equal([...doc.pairs].filter((p) => !code.has(p)).sort(), [], 'fields documented but never sent');
  assert.equal([...doc.everyEvent].sort(), [...DefaultFieldNames].sort(), 'fields added to every event');
});

test.run();
