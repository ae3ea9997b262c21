/**
 * `cliffscope serve`: the app's UI in a browser, for a headless GPU server reached through an SSH tunnel (and for
 * testing the UI without Electron). The engine runs in its own host process, as in the app.
 *
 * The serve face's own verb: the program (src/main/program.ts) lists it beside the CLI's, so neither face imports
 * the other. It has the shape of a CLI verb and throws CliffscopeErrors, which the program prints.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliffscopeError } from '../engine/errors.js';
import { defaultCacheRoot } from '../engine/onnx/compile.js';
import { EngineClient } from '../api/host/engine-client.js';
import { RootsPolicy } from '../web/file-access.js';
import { DEFAULT_HOST, DEFAULT_RENDERER_DIR, isLoopbackHost, startServer } from './server.js';

export const DEFAULT_PORT = 7717;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function parseServeArgs(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'allow-host': { type: 'string', multiple: true },
        'allow-dir': { type: 'string', multiple: true },
        open: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new CliffscopeError('bad-argument', `serve: ${(e as Error).message}`, { hint: 'see: cliffscope serve --help' });
  }
}

function portOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PORT;
  const port = Number(value);
  if (!(value.trim() !== '' && Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new CliffscopeError('bad-argument', `--port must be a port number from 0 to 65535, got "${value}"`);
  }
  return port;
}

/**
 * Build the renderer with electron-vite when out/renderer is missing (a fresh clone). electron-vite is a dev
 * dependency: where it is not installed, say what to run instead of failing. It runs as a child process in the
 * package folder because electron.vite.config.ts resolves its paths against the working directory.
 */
function ensureRenderer(rendererDir: string): void {
  if (fs.existsSync(path.join(rendererDir, 'index.html'))) return;
  const cli = path.join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js');
  if (!fs.existsSync(cli)) {
    process.stderr.write(`The browser UI is not built (${rendererDir}) and electron-vite is not installed here.\n`);
    process.stderr.write('Run `npm install && npm run build` in the Cliffscope folder; until then the page says it is not built.\n');
    return;
  }
  process.stderr.write(`The browser UI is not built (${rendererDir}); building it now (npm run build)…\n`);
  // The build's own output goes to stderr, so stdout stays just the URL and its notes.
  const r = spawnSync(process.execPath, [cli, 'build'], { cwd: ROOT, stdio: ['ignore', process.stderr, process.stderr] });
  if (r.status !== 0 || !fs.existsSync(path.join(rendererDir, 'index.html'))) {
    process.stderr.write('Building the UI failed (see above); fix it and run `npm run build`. Serving anyway.\n');
  }
}

/** Best effort: the desktop's browser. The token is in the argument, visible to local `ps` for a moment. */
function openInBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => process.stderr.write(`Could not open a browser (${cmd}); open the URL yourself.\n`));
    child.unref();
  } catch {
    process.stderr.write('Could not open a browser; open the URL yourself.\n');
  }
}

export const serveVerb = {
  name: 'serve',
  summary: 'the app UI in a browser (loopback + session token; for SSH tunnels to GPU servers)',
  help: `Usage: cliffscope serve [--port P] [--host H --allow-host NAME…] [--allow-dir DIR…] [--open]

Serves the Cliffscope UI and its engine over HTTP, to be opened in a browser. Prints a URL carrying a random session
token (http://127.0.0.1:${DEFAULT_PORT}/#token=…); requests without that token are refused. Runs until Ctrl-C.

On a remote GPU server, leave the host on loopback and tunnel from your machine:

  ssh -L ${DEFAULT_PORT}:127.0.0.1:${DEFAULT_PORT} user@gpu-server

then open the printed URL locally. Builds the UI first (electron-vite) when out/renderer is missing.

Options:
  --port P     port to listen on (default ${DEFAULT_PORT}; 0 = any free port)
  --host H     address to bind (default ${DEFAULT_HOST}). Anything else exposes the engine — which reads and
               writes files as you — to the network, with the token as its only protection
  --allow-host NAME
               a name browsers use for this machine (repeatable); required with --host 0.0.0.0 or ::, since
               requests naming any other Host are refused (DNS-rebinding defence)
  --allow-dir DIR
               a folder the UI may read and write besides your home, the temp folder, the folder serve was
               started in and the cache (repeatable); system and credential folders are never reachable
  --open       open the URL in this machine's browser
  -h, --help   this help
`,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseServeArgs(argv);
    if (values.help) {
      process.stdout.write(serveVerb.help);
      return 0;
    }
    if (positionals.length > 0) {
      throw new CliffscopeError('bad-argument', `serve takes no positional arguments, got "${positionals[0]}"`, {
        hint: 'see: cliffscope serve --help',
      });
    }
    const port = portOf(values.port);
    const host = values.host ?? DEFAULT_HOST;

    // Listen for Ctrl-C before anything is printed: whoever reads the URL may stop us at once.
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const forgetSignals = () => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    };

    // Bind first, so a busy port fails at once; the engine host process starts on the first call.
    const engine = new EngineClient();
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer({
        engine,
        host,
        port,
        allowedHosts: values['allow-host'] ?? [],
        fileAccess: RootsPolicy.defaults(values['allow-dir'] ?? [], defaultCacheRoot()),
      });
    } catch (e) {
      forgetSignals();
      engine.close();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') {
        throw new CliffscopeError('bad-argument', `port ${port} on ${host} is already in use`, {
          hint: 'is another `cliffscope serve` running? pick another with --port N (or --port 0 for any free port)',
        });
      }
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
        throw new CliffscopeError('bad-argument', `cannot bind to --host ${host}: no such address on this machine`);
      }
      throw e;
    }

    // Pages are looked up per request, so the server answers "not built" until this finishes, then the app.
    ensureRenderer(DEFAULT_RENDERER_DIR);

    const out = process.stdout;
    out.write(`Cliffscope is serving its UI at:\n\n  ${server.url}\n\n`);
    out.write('The token in that URL is the key to this session: anyone who has it can use the engine.\n');
    if (isLoopbackHost(host)) {
      out.write(
        `From another machine, tunnel first: ssh -L ${server.port}:127.0.0.1:${server.port} user@${os.hostname()}\n` +
          'then open the URL above there.\n',
      );
    } else {
      process.stderr.write(
        `warning: listening on ${host}, not loopback: anyone who can reach port ${server.port} and has the token can use ` +
          'the engine, which reads and writes files as you. Traffic is plain HTTP (not encrypted); an SSH tunnel to a ' +
          'loopback server is safer.\n',
      );
      if (server.origin.startsWith('http://127.0.0.1') && host !== '127.0.0.1') {
        out.write(`From another machine, use this machine's address instead of 127.0.0.1 (e.g. ${os.hostname()}).\n`);
      }
    }
    out.write('Press Ctrl-C to stop.\n');
    if (values.open) openInBrowser(server.url);

    // Run until asked to stop; then stop serving and end the engine host process.
    await stopped;
    forgetSignals();
    out.write('\nStopping…\n');
    await server.close();
    engine.close();
    return 0;
  },
};
