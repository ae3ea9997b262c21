/**
 * The real renderer in a real browser over `cliffscope serve`: build the UI, start the verb as its own process, open
 * the URL it prints in headless Chromium, and check that the page shows what the server's engine reports, streams a
 * job's events through the browser's own EventSource under the app's CSP, and without the token shows a clear
 * state instead of crashing. Skipped (with the reason logged) where Debian's Chromium is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppInfo, JobEvent, Transcript } from '../../src/shared/contract.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { post } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const RENDERER_INDEX = path.resolve('out/renderer/index.html');
const RESULTS = path.resolve('test-results');

const reason = fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install -y chromium)`;
if (reason) console.warn(`[tests/serve/browser] skipped: ${reason}`);

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) t = Math.max(t, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return t;
}

/** Build out/renderer when it is missing or older than its sources, so the test sees the current UI. */
function ensureRendererBuilt(): void {
  const built = fs.existsSync(RENDERER_INDEX) ? fs.statSync(RENDERER_INDEX).mtimeMs : 0;
  if (built > Math.max(newest(path.resolve('src/renderer')), newest(path.resolve('src/shared')))) return;
  const r = spawnSync(process.execPath, ['node_modules/electron-vite/bin/electron-vite.js', 'build'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`electron-vite build failed:\n${r.stdout}\n${r.stderr}`);
}

/** Start the serve verb in its own process and wait for the URL it prints. */
function startServe(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/serve/run-serve.ts', '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no URL in 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]+/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[0], output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before printing a URL:\n${output}`));
    });
  });
}

(reason ? describe.skip : describe)(`serve in a browser${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let root: string;
  let model: string;
  let serve: Awaited<ReturnType<typeof startServe>>;
  let origin: string;
  let port: number;
  let token: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    ensureRendererBuilt();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-browser-'));
    model = path.join(root, 'qwen3');
    writeTinyCheckpoint(model, 'qwen3', { seed: 2 });
    serve = await startServe({ ...process.env, CLIFFSCOPE_CACHE: path.join(root, 'cache') });
    const url = new URL(serve.url);
    origin = url.origin;
    port = Number(url.port);
    token = url.hash.slice('#token='.length);

    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(path.join(root, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await context.newPage();
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    if (serve && serve.child.exitCode === null) serve.child.kill('SIGKILL');
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('prints the URL with its token and how to tunnel', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(serve.output()).toContain(`ssh -L ${port}:127.0.0.1:${port}`);
  });

  it('shows the server engine’s runtime, and drops the token from the address bar', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(serve.url);
    const onnx = page.locator('dt', { hasText: 'ONNX Runtime' }).locator('xpath=following-sibling::dd[1]');
    await onnx.waitFor({ timeout: 60_000 });

    const reply = await post(port, '/api/invoke', { method: 'app.info' }, { token });
    const info = reply.json<{ ok: true; result: AppInfo }>().result;
    expect((await onnx.textContent())?.trim()).toBe(info.onnxruntimeVersion);
    expect(await page.locator('main').textContent()).toContain(`${info.name} ${info.version} (browser)`);
    expect(page.url()).toBe(`${origin}/`);
    expect(errors).toEqual([]);

    fs.mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: path.join(RESULTS, 'serve-home.png'), fullPage: true });

    // A reload keeps working: the token was kept in this tab's sessionStorage.
    await page.reload();
    await onnx.waitFor({ timeout: 60_000 });
  });

  it('streams a job’s tokens to the page’s EventSource under the app’s CSP', async () => {
    const out = await page.evaluate(
      async ({ modelDir }) => {
        const t = sessionStorage.getItem('cliffscope.serveToken') ?? '';
        const session = 'pw-tab';
        const source = new EventSource(`/api/events?token=${encodeURIComponent(t)}&session=${session}`);
        const events: unknown[] = [];
        source.onmessage = (m) => events.push(JSON.parse(m.data as string));
        await new Promise((resolve, reject) => {
          source.onopen = resolve;
          source.onerror = reject;
        });
        const res = await fetch('/api/invoke', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${t}`, 'x-cliffscope-session': session },
          body: JSON.stringify({
            method: 'generate.run',
            params: { model: { dir: modelDir, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 5 },
            jobId: 'browser-job',
          }),
        });
        const reply = await res.json();
        await new Promise((r) => setTimeout(r, 300)); // the last events may trail the reply by a moment
        source.close();
        return { reply, events };
      },
      { modelDir: model },
    );
    const reply = out.reply as { ok: true; result: { transcripts: Transcript[] } };
    expect(reply.ok).toBe(true);
    const streamed = (out.events as JobEvent[]).flatMap((e) => (e.kind === 'token' && e.jobId === 'browser-job' ? [e.tokenId] : []));
    expect(streamed).toEqual(reply.result.transcripts[0]!.outputIds);
  });

  it('without the token shows a clear “missing token” state, not a crash', async () => {
    const bare = await context.newPage(); // a new tab: nothing in its sessionStorage
    const errors: string[] = [];
    bare.on('pageerror', (e) => errors.push(e.message));
    await bare.goto(`${origin}/`);
    const alert = bare.getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    const text = (await alert.textContent()) ?? '';
    expect(text).toContain('session token');
    expect(text).toContain('#token=');
    expect(errors).toEqual([]);
    await bare.screenshot({ path: path.join(RESULTS, 'serve-no-token.png'), fullPage: true });
    await bare.close();
  });

  it('stops cleanly on Ctrl-C', async () => {
    const exited = new Promise<number | null>((resolve) => serve.child.once('exit', (code) => resolve(code)));
    serve.child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
