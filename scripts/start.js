#!/usr/bin/env node
// `npm start`: the desktop app where the Electron binary is installed, else the same UI in a browser (`serve`).
//
// The binary is looked up the way the electron package does it (node_modules/electron/path.txt names it under
// dist/), without `require('electron')`: since Electron 39 that call tries to download a missing binary.
// Arguments after `npm start --` go to `serve` (e.g. `npm start -- --port 0`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

/** { path } of the Electron binary, or { missing } saying why there is none. */
function electronBinary() {
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

/** Run a command in the package folder, passing Ctrl-C through, and exit with its status. */
function run(command, args) {
  // The child gets Ctrl-C from the terminal itself; this process only waits for it to finish. A SIGTERM (from a
  // process manager) is passed on. Both are set before the child starts, so none arrives unhandled.
  let child;
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child?.kill('SIGTERM'));
  child = spawn(command, args, { cwd: root, stdio: 'inherit' });
  child.on('error', (e) => {
    console.error(`npm start: could not run ${command}: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const electron = electronBinary();
if ('path' in electron) {
  // electron-vite preview builds main, preload and renderer, then launches the app.
  run(process.execPath, [path.join(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'preview']);
} else {
  console.error(`Electron binary not found (${electron.missing}); starting the browser UI instead.`);
  console.error('(The desktop app needs it: it is downloaded on the first `npm run dev` with network access.)');
  run(process.execPath, [path.join(root, 'bin/cliffscope.js'), 'serve', ...process.argv.slice(2)]);
}
