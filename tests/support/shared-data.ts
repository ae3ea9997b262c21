/**
 * Real checkpoints and datasets live in ../shared beside the repository (CI and developer machines), never in the
 * repo: a user's clone has none. Tests that need them call these helpers and skip, with a message, when absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared next to the checkout, or $CLIFFSCOPE_SHARED. */
export const SHARED_DIR = process.env.CLIFFSCOPE_SHARED ?? path.resolve(repoRoot, '..', 'shared');

/** Path under ../shared if it exists, else null (and a note in the test log saying what is skipped). */
export function sharedPath(rel: string, what: string): string | null {
  const p = path.join(SHARED_DIR, rel);
  if (fs.existsSync(p)) return p;
  console.log(`[skip] ${what}: ${p} is absent (it lives in ../shared beside the checkout; set CLIFFSCOPE_SHARED to point elsewhere)`);
  return null;
}
