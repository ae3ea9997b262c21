/**
 * End-to-end smoke test of the Electron app: build, launch out/main/index.js, check the window and its isolation.
 * Runs only where `playwright-core` is installed, the Electron binary exists and (on Linux) there is a display;
 * otherwise the suite is skipped with the reason logged.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { electronBinary } from '../../scripts/electron-binary.js';

const require = createRequire(import.meta.url);
const MAIN = path.resolve('out/main/index.js');

/** The small part of playwright-core's API used here, so this file typechecks without it installed. */
interface PwPage {
  title(): Promise<string>;
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>;
  waitForLoadState(state: 'domcontentloaded' | 'load'): Promise<void>;
  getByText(text: string | RegExp): { first(): { waitFor(opts?: { timeout?: number }): Promise<void> } };
}
interface PwElectronApp {
  firstWindow(): Promise<PwPage>;
  close(): Promise<void>;
}
interface PwModule {
  _electron: {
    launch(opts: { args: string[]; env?: Record<string, string>; executablePath?: string; timeout?: number }): Promise<PwElectronApp>;
  };
}

const electron = electronBinary();

/** Why the smoke test cannot run here, or null when it can. */
function whyNot(): string | null {
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed';
  }
  if ('missing' in electron) return electron.missing;
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return 'no display (run the tests under xvfb-run)';
  }
  return null;
}

const reason = whyNot();
if (reason) console.warn(`[tests/electron/smoke] skipped: ${reason}`);

(reason ? describe.skip : describe)(`electron smoke${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let app: PwElectronApp | undefined;
  let page: PwPage;

  beforeAll(async () => {
    const { build } = await import('electron-vite');
    await build({ configFile: path.resolve('electron.vite.config.ts'), logLevel: 'warn' });
    expect(fs.existsSync(MAIN)).toBe(true);

    const moduleName = 'playwright-core';
    const pw = (await import(/* @vite-ignore */ moduleName)) as PwModule;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'ELECTRON_RENDERER_URL') env[k] = v;
    // Chromium refuses to start its OS sandbox as root (CI containers); the renderer stays contextIsolated either way.
    const args = process.getuid?.() === 0 ? ['--no-sandbox', MAIN] : [MAIN];
    const executablePath = 'path' in electron ? electron.path : undefined;
    app = await pw._electron.launch({ executablePath, args, env, timeout: 60_000 });
    page = await app.firstWindow();
    await page.waitForLoadState('domcontentloaded');
  });

  afterAll(async () => {
    await app?.close();
  });

  it('opens the Cliffscope window', async () => {
    expect(await page.title()).toBe('Cliffscope');
  });

  it('exposes only the bridge to the page', async () => {
    const globals = await page.evaluate(() => {
      const w = window as unknown as Record<string, unknown> & { cliffscope?: Record<string, unknown> };
      return {
        cliffscope: typeof w.cliffscope,
        invoke: typeof w.cliffscope?.invoke,
        bridgeKeys: w.cliffscope ? Object.keys(w.cliffscope) : [],
        require: typeof w.require,
        process: typeof w.process,
        module: typeof w.module,
        location: window.location.href,
      };
    });
    expect(globals).toEqual({
      cliffscope: 'object',
      invoke: 'function',
      bridgeKeys: ['invoke', 'onEvent', 'cancel', 'pickPath', 'onMenu'],
      require: 'undefined',
      process: 'undefined',
      module: 'undefined',
      location: 'app://cliffscope/index.html',
    });
  });

  it('answers app.info through the bridge and shows it', async () => {
    const reply = await page.evaluate(async () => {
      const w = window as unknown as { cliffscope: { invoke(m: string, p?: unknown): Promise<unknown> } };
      return (await w.cliffscope.invoke('app.info', {})) as { ok: boolean; result?: { versions?: { electron?: string } } };
    });
    expect(reply.ok).toBe(true);
    expect(reply.result?.versions?.electron).toMatch(/^\d+\./);
    await page.getByText('ONNX Runtime').first().waitFor({ timeout: 30_000 });
  });

  it('validates params in main, naming the field', async () => {
    const reply = await page.evaluate(async () => {
      const w = window as unknown as { cliffscope: { invoke(m: string, p?: unknown): Promise<unknown> } };
      return (await w.cliffscope.invoke('model.inspect', { dir: 42 })) as {
        ok: boolean;
        error?: { code: string; message: string };
      };
    });
    expect(reply.ok).toBe(false);
    expect(reply.error?.code).toBe('bad-params');
    expect(reply.error?.message).toContain('dir:');
  });
});
