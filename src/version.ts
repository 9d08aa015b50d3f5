/**
 * manifold's version: from the build's version file, else package.json
 * (the first found from the program directory up, see locate.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { programDir } from './locate.js';
import { escapeControls } from './core/escape.js';

let cached: string | undefined;

/** The version string (git describe at build time when available). */
export function manifoldVersion(): string {
  if (cached) return cached;
  // A test hook read by every build: from the environment, so escaped (and clipped) like any input.
  const override = process.env.MANIFOLD_VERSION_OVERRIDE;
  if (override) return (cached = escapeControls(override.slice(0, 128)));
  let dir = programDir();
  for (let i = 0; i < 6; i++) {
    for (const name of ['VERSION', 'package.json']) {
      const p = path.join(dir, name);
      if (!fs.existsSync(p)) continue;
      try {
        const text = fs.readFileSync(p, 'utf8');
        cached = name === 'VERSION' ? text.trim() : String((JSON.parse(text) as { version?: string }).version ?? '0.0.0');
        if (cached) return cached;
      } catch {
        /* keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  return (cached = '0.0.0-unknown');
}
