#!/usr/bin/env node
// `npm start`: the desktop app where the Electron binary is installed, else the same UI in a browser (`serve`).
//
// Arguments after `npm start --` go to `serve` (e.g. `npm start -- --port 0`).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronBinary } from './electron-binary.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

/**
 * better-sqlite3 is a native addon built for one ABI; npm built it for Node (the CLI and the tests use that one).
 * The engine host runs on Electron's Node, so build a second copy for Electron once per Electron version (Electron's
 * headers need the network that one time) and hand its path to the app in CLIFFSCOPE_SQLITE_BINDING.
 * Returns the path, or null with the reason printed.
 */
function electronSqliteBinding() {
  const electronVersion = JSON.parse(fs.readFileSync(require.resolve('electron/package.json'), 'utf8')).version;
  const dir = path.join(root, 'node_modules', '.cache', 'cliffscope-electron-sqlite', `${electronVersion}-${process.arch}`);
  const out = path.join(dir, 'better_sqlite3.node');
  if (fs.existsSync(out)) return out;
  console.error(`Building better-sqlite3 for Electron ${electronVersion} (once; fetches Electron's headers)…`);
  const source = path.dirname(require.resolve('better-sqlite3/package.json'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-sqlite-'));
  try {
    fs.cpSync(source, work, { recursive: true, filter: (p) => path.relative(source, p).split(path.sep)[0] !== 'build' });
    const gyp = spawnSync(
      'npm',
      ['exec', '--yes', '--', 'node-gyp', 'rebuild', '--release', `--target=${electronVersion}`, `--arch=${process.arch}`, '--dist-url=https://electronjs.org/headers'],
      { cwd: work, stdio: 'inherit', shell: process.platform === 'win32' },
    );
    const built = path.join(work, 'build', 'Release', 'better_sqlite3.node');
    if (gyp.status !== 0 || !fs.existsSync(built)) {
      console.error('npm start: could not build better-sqlite3 for Electron (see above); is the network reachable?');
      return null;
    }
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(built, out);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Run a command in the package folder, passing Ctrl-C through, and exit with its status. */
function run(command, args, env = process.env) {
  // The child gets Ctrl-C from the terminal itself; this process only waits for it to finish. A SIGTERM (from a
  // process manager) is passed on. Both are set before the child starts, so none arrives unhandled.
  let child;
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child?.kill('SIGTERM'));
  child = spawn(command, args, { cwd: root, stdio: 'inherit', env });
  child.on('error', (e) => {
    console.error(`npm start: could not run ${command}: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const electron = electronBinary();
const binding = 'path' in electron ? electronSqliteBinding() : null;
if ('path' in electron && binding) {
  // electron-vite preview builds main, preload and renderer, then launches the app.
  run(process.execPath, [path.join(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'preview'], { ...process.env, CLIFFSCOPE_SQLITE_BINDING: binding });
} else if ('path' in electron) {
  console.error('Starting the browser UI instead.');
  run(process.execPath, [path.join(root, 'bin/cliffscope.js'), 'serve', ...process.argv.slice(2)]);
} else {
  console.error(`Electron binary not found (${electron.missing}); starting the browser UI instead.`);
  console.error('(The desktop app needs it: it is downloaded on the first `npm run dev` with network access.)');
  run(process.execPath, [path.join(root, 'bin/cliffscope.js'), 'serve', ...process.argv.slice(2)]);
}
