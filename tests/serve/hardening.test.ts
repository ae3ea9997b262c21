/**
 * serve against a token holder who is not the user, or a page from elsewhere: file access is limited to the user's
 * own folders (never /proc, /etc or credential folders, even through a link), nothing of a refused file reaches an
 * error, binding to every interface needs a Host allow-list, cancel always frees the engine, and the server works
 * when started from any folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../../src/main/api/host/engine-client.js';
import { RootsPolicy } from '../../src/main/web/file-access.js';
import { startServer, type ServeHandle } from '../../src/main/serve/server.js';
import { forkStuckHost } from '../host/helpers/fork-stuck-host.js';
import { CountingEngine, post, request } from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let root: string;
let rendererDir: string;
let client: EngineClient;
let engine: CountingEngine;
let server: ServeHandle;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-serve-hardening-'));
  process.env.CLIFFSCOPE_CACHE = path.join(root, 'cache');
  rendererDir = path.join(root, 'renderer');
  fs.mkdirSync(rendererDir);
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Cliffscope</title>');
  client = new EngineClient();
  engine = new CountingEngine(client);
  server = await startServer({ engine, port: 0, rendererDir });
});

afterAll(async () => {
  await server?.close();
  client?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const invoke = (method: string, params: unknown, s = server) => post(s.port, '/api/invoke', { method, params }, { token: s.token });

describe('file access through serve', () => {
  it.each([
    ['/proc/self/environ', 'dataset.preview', (f: string) => ({ file: f, format: 'csv' })],
    ['/etc/passwd', 'dataset.preview', (f: string) => ({ file: f, format: 'csv' })],
    [path.join(os.homedir(), '.ssh', 'id_ed25519'), 'dataset.preview', (f: string) => ({ file: f, format: 'csv' })],
    ['/etc', 'model.inspect', (f: string) => ({ dir: f })],
    ['/proc/self/environ', 'project.export', (f: string) => ({ file: path.join(root, 'p.cliffscope'), dest: f })],
  ])('refuses %s (%s) before the engine sees it, quoting nothing of it', async (file, method, params) => {
    const before = engine.calls.length;
    const r = await invoke(method, params(file));
    expect(r.status).toBe(403);
    const body = r.json();
    expect(body.ok).toBe(false);
    if (!body.ok) {
      expect(body.error.code).toBe('forbidden');
      expect(body.error.message).toContain(file);
      expect(body.error.hint).toMatch(/--allow-dir/);
    }
    expect(r.text).not.toMatch(/PATH=|root:x:0/);
    expect(engine.calls.length).toBe(before);
  });

  it('browses the user’s own folders for the file chooser, and nothing else', async () => {
    const folder = path.join(root, 'browse');
    fs.mkdirSync(path.join(folder, 'checkpoint'), { recursive: true });
    fs.writeFileSync(path.join(folder, 'checkpoint', 'config.json'), '{}');
    fs.writeFileSync(path.join(folder, 'prompts.csv'), 'goal\nx\n');
    fs.writeFileSync(path.join(folder, 'study.cliffscope'), '');
    fs.writeFileSync(path.join(folder, '.secret'), 'x');
    const r = await invoke('files.list', { dir: folder });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.ok).toBe(true);
    if (body.ok) {
      const listed = body.result as { dir: string; parent: string; entries: { name: string; kind: string; looksLike: string; size: number | null }[] };
      expect(listed.dir).toBe(fs.realpathSync(folder));
      expect(listed.parent).toBe(fs.realpathSync(root));
      expect(listed.entries.map((e) => [e.name, e.kind, e.looksLike])).toEqual([
        ['checkpoint', 'folder', 'model'],
        ['prompts.csv', 'file', 'dataset'],
        ['study.cliffscope', 'file', 'project'],
      ]);
      expect(listed.entries[1]!.size).toBe(7);
    }
    // Outside the user's folders, or in a credential folder: refused before the engine lists anything.
    for (const dir of ['/etc', '/proc/self', path.join(os.homedir(), '.ssh')]) {
      const before = engine.calls.length;
      const refused = await invoke('files.list', { dir });
      expect(refused.status, dir).toBe(403);
      expect(engine.calls.length).toBe(before);
    }
    // And never without the session token.
    const anonymous = await post(server.port, '/api/invoke', { method: 'files.list', params: { dir: folder } });
    expect(anonymous.status).toBe(401);
  });

  it('follows links: a link in the temp folder to /etc/passwd is refused', async () => {
    const link = path.join(root, 'innocent.csv');
    fs.symlinkSync('/etc/passwd', link);
    const r = await invoke('dataset.preview', { file: link });
    expect(r.status).toBe(403);
    expect(r.text).not.toMatch(/root:x:0/);
  });

  it('reads a dataset in the user’s own folders', async () => {
    const csv = path.join(root, 'ok.csv');
    fs.writeFileSync(csv, 'prompt\nhello\n');
    const r = await invoke('dataset.preview', { file: csv });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ ok: true, result: { count: 1 } });
  });

  it('RootsPolicy: roots, extra folders, never "/" as a root', () => {
    const extra = fs.mkdtempSync(path.join(root, 'extra-'));
    const policy = new RootsPolicy([extra]);
    expect(policy.check(path.join(extra, 'a', 'b.csv'))).toBeNull();
    expect(policy.check(path.join(root, 'elsewhere.csv'))).toMatch(/outside the folders/);
    expect(new RootsPolicy(['/']).check('/usr/share/dict/words')).toMatch(/outside/);
    expect(new RootsPolicy([root]).check(path.join(root, '..', path.basename(root), 'x'))).toBeNull();
  });
});

describe('Host allow-list when bound to every interface', () => {
  it('refuses to bind to 0.0.0.0 without --allow-host', async () => {
    await expect(startServer({ engine, host: '0.0.0.0', port: 0, rendererDir })).rejects.toMatchObject({ code: 'bad-argument', hint: expect.stringMatching(/--allow-host/) });
  });

  it('accepts only the listed names (and loopback) in Host', async () => {
    const wide = await startServer({ engine, host: '0.0.0.0', port: 0, rendererDir, allowedHosts: ['gpu-box.lab.example'] });
    try {
      const as = (host: string) => request(wide.port, { path: '/', headers: { host } });
      expect((await as(`gpu-box.lab.example:${wide.port}`)).status).toBe(200);
      expect((await as(`127.0.0.1:${wide.port}`)).status).toBe(200);
      expect((await as(`attacker.example:${wide.port}`)).status).toBe(403);
      expect((await as('rebind.attacker.example')).status).toBe(403);
    } finally {
      await wide.close();
    }
  });
});

describe('cancel under serve', () => {
  it('a step that never yields: /api/cancel frees the engine and later calls work', async () => {
    const stuckClient = new EngineClient(forkStuckHost, { cancelGraceMs: 500 });
    const s = await startServer({ engine: stuckClient, port: 0, rendererDir });
    try {
      expect((await invoke('app.info', {}, s)).json()).toMatchObject({ ok: true });
      const stuck = post(s.port, '/api/invoke', { method: 'project.recent', params: {}, jobId: 'j1' }, { token: s.token, session: 'tab1' });
      await new Promise((r) => setTimeout(r, 300));
      const cancel = await post(s.port, '/api/cancel', { jobId: 'j1' }, { token: s.token, session: 'tab1' });
      expect(cancel.json()).toMatchObject({ ok: true, result: { cancelled: true } });
      expect((await stuck).json()).toMatchObject({ ok: false, error: { code: 'cancelled' } });
      expect((await invoke('app.info', {}, s)).json()).toMatchObject({ ok: true });
    } finally {
      await s.close();
      stuckClient.close();
    }
  });
});

describe('started from any folder', () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('answers calls when the working directory is not the checkout (the engine could not find tsx before)', async () => {
    const elsewhere = fs.mkdtempSync(path.join(root, 'cwd-'));
    child = spawn(process.execPath, [path.join(repoRoot, 'bin/cliffscope.js'), 'serve', '--port', '0'], {
      cwd: elsewhere,
      env: { ...process.env, CLIFFSCOPE_CACHE: path.join(root, 'cache') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const m = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL:\n${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const found = /http:\/\/127\.0\.0\.1:(\d+)\/#token=([A-Za-z0-9_-]{43})/.exec(out);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
    });
    const r = await post(Number(m[1]), '/api/invoke', { method: 'app.info', params: {} }, { token: m[2] });
    expect(r.json(), r.text).toMatchObject({ ok: true });
    child.kill('SIGTERM');
  });
});
