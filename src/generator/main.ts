/**
 * Entry point of generators/manifold-generator: runs the generator on import.
 * Import run.ts instead to call it without side effects.
 */
import { run } from './run.js';

process.exitCode = run(process.argv.slice(2));
