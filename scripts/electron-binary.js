// Where the Electron binary is, or why there is none — looked up the way the electron package does it
// (node_modules/electron/path.txt names it under dist/), without `require('electron')`: since Electron 39 that call
// tries to *download* a missing binary (network, console noise, a long wait). Used by `npm start` and the smoke test.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

/** @returns {{ path: string } | { missing: string }} */
export function electronBinary() {
  let pkgDir;
  try {
    pkgDir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    return { missing: 'the electron package is not installed' };
  }
  const pathFile = path.join(pkgDir, 'path.txt');
  const rel = fs.existsSync(pathFile) ? fs.readFileSync(pathFile, 'utf8').trim() : '';
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  if (!override && !rel) return { missing: 'it was never downloaded: there is no node_modules/electron/path.txt' };
  const binary = override ? path.join(override, rel || 'electron') : path.join(pkgDir, 'dist', rel);
  return fs.existsSync(binary) ? { path: binary } : { missing: `${binary} does not exist` };
}
