/**
 * `cliffscope serve` as a command: help and argument errors, a clear error for a busy port, the warning for a
 * non-loopback host, and `npm start`'s fallback to serve where the Electron binary is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERBS as COMMANDS } from '../../src/main/program.js';
import { cli } from '../support/cli.js';

let cache: string;
beforeAll(() => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-serve-cli-'));
});
afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));


/** Spawn a command and collect its output until `until` matches (or it exits). */
function launch(args: string[]): { child: ChildProcess; output: () => string; waitFor(re: RegExp): Promise<RegExpExecArray>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, args, { env: { ...process.env, CLIFFSCOPE_CACHE: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      if (signal) output += `\n[killed by ${signal}]`;
      resolve(code);
    }),
  );
  return {
    child,
    output: () => output,
    exit,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${output}`)), 60_000);
        const check = () => {
          const m = re.exec(output);
          if (!m) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(m);
        };
        waiters.add(check);
        check();
        void exit.then(() => {
          if (waiters.has(check)) {
            clearTimeout(timer);
            reject(new Error(`exited before ${re}:\n${output}`));
          }
        });
      }),
  };
}

const URL_RE = /http:\/\/127\.0\.0\.1:(\d+)\/#token=[A-Za-z0-9_-]{43}/;

describe('cliffscope serve', () => {
  it('prints its usage', async () => {
    const r = await cli('serve', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: cliffscope serve/);
    expect(r.stdout).toContain('ssh -L 7717:127.0.0.1:7717');
  });

  it.each([
    [['--port', 'abc']],
    [['--port', '70000']],
    [['--port', '-1']],
    [['extra']],
    [['--no-token']],
  ])('refuses %j', async (argv) => {
    const r = await cli('serve', ...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: /);
  });

  it('says so when the port is taken', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const r = await cli('serve', '--port', String(port));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(r.stderr).toContain('--port 0');
    } finally {
      busy.close();
    }
  });

  it('refuses to bind to every interface without a Host allow-list', async () => {
    const serve = launch(['--import', 'tsx', 'tests/serve/run-serve.ts', '--host', '0.0.0.0', '--port', '0']);
    expect(await serve.exit).toBe(2);
    expect(serve.output()).toMatch(/--allow-host NAME/);
  });

  it('warns when bound beyond loopback, and stops on Ctrl-C', async () => {
    const serve = launch(['--import', 'tsx', 'tests/serve/run-serve.ts', '--host', '0.0.0.0', '--allow-host', 'gpu-box.example', '--port', '0']);
    try {
      await serve.waitFor(URL_RE);
      await serve.waitFor(/Press Ctrl-C/);
      await serve.waitFor(/warning: listening on 0\.0\.0\.0, not loopback: .* the token/s);
      serve.child.kill('SIGINT');
      expect(await serve.exit, serve.output()).toBe(0);
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  });
});

/** Same lookup as scripts/start.js: is there an Electron binary here? */
function electronBinaryPresent(): boolean {
  const pathFile = path.resolve('node_modules/electron/path.txt');
  if (!fs.existsSync(pathFile)) return false;
  return fs.existsSync(path.resolve('node_modules/electron/dist', fs.readFileSync(pathFile, 'utf8').trim()));
}

const startSkip = electronBinaryPresent()
  ? 'the Electron binary is installed here, so npm start would launch the desktop app'
  : !COMMANDS.some((c) => c.name === 'serve')
    ? 'the serve verb is not registered in src/main/program.ts yet'
    : null;
if (startSkip) console.warn(`[tests/serve/cli] npm start fallback skipped: ${startSkip}`);

(startSkip ? describe.skip : describe)('npm start without the Electron binary', () => {
  it('says so and starts serve instead, printing the URL', async () => {
    const start = launch(['scripts/start.js', '--port', '0']);
    try {
      await start.waitFor(URL_RE);
      expect(start.output()).toContain('Electron binary not found');
      expect(start.output()).toContain('starting the browser UI instead');
      start.child.kill('SIGTERM'); // forwarded to serve, which shuts down cleanly
      expect(await start.exit).toBe(0);
    } finally {
      if (start.child.exitCode === null) start.child.kill('SIGKILL');
    }
  });
});
