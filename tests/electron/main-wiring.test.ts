/**
 * The Electron main entry against a stand-in `electron` module: checks the wiring that the real binary would exercise
 * (privileged scheme before ready, locked-down window, navigation/permission guards, the IPC origin check), so it is
 * covered even where the Electron binary cannot be installed. The end-to-end run is tests/electron/smoke.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

type Listener = (...args: unknown[]) => unknown;
interface MenuItem {
  label?: string;
  role?: string;
  type?: string;
  enabled?: boolean;
  accelerator?: string;
  click?: () => unknown;
  submenu?: MenuItem[];
}

const fake = vi.hoisted(() => {
  const appListeners = new Map<string, Listener[]>();
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const state = {
    schemesRegistered: [] as unknown[],
    registeredBeforeReady: false,
    isReady: false,
    sandboxEnabled: false,
    windows: [] as Array<{ options: Record<string, unknown>; url?: string }>,
    protocolHandlers: new Map<string, (req: { url: string; method: string }) => Promise<Response>>(),
    ipcHandlers: new Map<string, Listener>(),
    ipcListeners: new Map<string, Listener>(),
    forked: [] as string[],
    hostMessages: [] as Array<{ type: string; method?: string }>,
    permissionRequest: undefined as undefined | Listener,
    permissionCheck: undefined as undefined | Listener,
    deviceCheck: undefined as undefined | Listener,
    /** Every template passed to Menu.setApplicationMenu, latest last. */
    menus: [] as MenuItem[][],
    dialogCalls: [] as Array<{ fn: string; win: unknown; options: Record<string, unknown> }>,
    /** What the next open/save dialog answers. */
    dialogAnswer: { canceled: false, filePaths: ['/picked/path'], filePath: '/picked/new-study' } as {
      canceled: boolean;
      filePaths: string[];
      filePath?: string;
    },
    sent: [] as Array<{ window: number; channel: string; payload: unknown }>,
    focused: null as null | { id: number },
    appListeners,
    readyResolve,
  };
  return { state, ready };
});

vi.mock('electron', () => {
  const { state, ready } = fake;
  class BrowserWindow {
    static all: BrowserWindow[] = [];
    static getAllWindows() {
      return BrowserWindow.all;
    }
    static getFocusedWindow() {
      return BrowserWindow.all.find((w) => w === state.focused) ?? null;
    }
    static fromWebContents(contents: { id: number }) {
      return BrowserWindow.all.find((w) => w.webContents.id === contents.id) ?? null;
    }
    readonly id: number;
    readonly webContents: { id: number; isDestroyed(): boolean; send(channel: string, payload: unknown): void; once(): void };
    private entry: { options: Record<string, unknown>; url?: string };
    constructor(options: Record<string, unknown>) {
      this.entry = { options };
      state.windows.push(this.entry);
      BrowserWindow.all.push(this);
      const id = BrowserWindow.all.length;
      this.id = id;
      this.webContents = {
        id,
        isDestroyed: () => false,
        send: (channel, payload) => state.sent.push({ window: id, channel, payload }),
        once: () => {},
      };
    }
    once() {}
    show() {}
    async loadURL(url: string) {
      this.entry.url = url;
    }
  }
  return {
    app: {
      isPackaged: true,
      enableSandbox: () => {
        state.sandboxEnabled = true;
      },
      on: (event: string, fn: Listener) => {
        const list = state.appListeners.get(event) ?? [];
        list.push(fn);
        state.appListeners.set(event, list);
      },
      whenReady: () => ready,
      quit: () => {},
      getVersion: () => '0.1.0',
    },
    BrowserWindow,
    Menu: {
      buildFromTemplate: (template: MenuItem[]) => template,
      setApplicationMenu: (menu: MenuItem[]) => state.menus.push(menu),
    },
    dialog: {
      showOpenDialog: async (win: unknown, options: Record<string, unknown>) => {
        state.dialogCalls.push({ fn: 'open', win, options });
        return { canceled: state.dialogAnswer.canceled, filePaths: state.dialogAnswer.filePaths };
      },
      showSaveDialog: async (win: unknown, options: Record<string, unknown>) => {
        state.dialogCalls.push({ fn: 'save', win, options });
        return { canceled: state.dialogAnswer.canceled, filePath: state.dialogAnswer.filePath };
      },
      showMessageBox: async (win: unknown, options: Record<string, unknown>) => {
        state.dialogCalls.push({ fn: 'message', win, options });
        return { response: 0 };
      },
    },
    ipcMain: {
      handle: (channel: string, fn: Listener) => state.ipcHandlers.set(channel, fn),
      on: (channel: string, fn: Listener) => state.ipcListeners.set(channel, fn),
    },
    // The engine host runs in this test's process over an in-memory channel: the real host code, the real protocol.
    utilityProcess: {
      fork: (modulePath: string) => {
        state.forked.push(modulePath);
        const listeners: Record<string, Listener[]> = { message: [], exit: [] };
        const queue: unknown[] = [];
        let toHost: ((m: unknown) => void) | null = null;
        void import('../../src/main/api/host/engine-host.js').then(({ serveEngine }) =>
          serveEngine({
            send: (m) => setImmediate(() => listeners.message!.forEach((l) => l(m))),
            onMessage: (l) => {
              toHost = l as (m: unknown) => void;
              queue.splice(0).forEach((m) => toHost!(m));
            },
          }),
        );
        return {
          pid: 4242,
          postMessage: (m: { type: string; method?: string }) => {
            state.hostMessages.push(m);
            if (toHost) toHost(m);
            else queue.push(m);
          },
          on: (event: string, fn: Listener) => listeners[event]?.push(fn),
          kill: () => true,
        };
      },
    },
    protocol: {
      registerSchemesAsPrivileged: (schemes: unknown[]) => {
        state.schemesRegistered.push(...schemes);
        state.registeredBeforeReady = !state.isReady;
      },
      handle: (scheme: string, fn: (req: { url: string; method: string }) => Promise<Response>) =>
        state.protocolHandlers.set(scheme, fn),
    },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (fn: Listener) => (state.permissionRequest = fn),
        setPermissionCheckHandler: (fn: Listener) => (state.permissionCheck = fn),
        setDevicePermissionHandler: (fn: Listener) => (state.deviceCheck = fn),
      },
    },
  };
});

vi.mock('../../resources/icon.png?asset', () => ({ default: '/fake/icon.png' }));

const { state, ready } = fake;

/** A private recent list and a project file for it (the engine reads CLIFFSCOPE_CACHE on each call). */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-main-wiring-'));
const projectFile = path.join(tmp, 'study.cliffscope');

beforeAll(async () => {
  process.env.CLIFFSCOPE_CACHE = path.join(tmp, 'cache');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  await import('../../src/main/electron/main.js');
  state.isReady = true;
  state.readyResolve();
  await ready;
  await new Promise((r) => setTimeout(r, 0));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function invoke(frameUrl: string | null, method: unknown, params?: unknown, parent: unknown = null) {
  const handler = state.ipcHandlers.get('cliffscope:invoke');
  if (!handler) throw new Error('no IPC handler registered');
  const senderFrame = frameUrl === null ? null : { url: frameUrl, parent };
  const sender = { id: 1, isDestroyed: () => false, send: () => {} };
  return handler({ senderFrame, sender }, method, params) as Promise<{ ok: boolean; error?: { code: string; message: string } }>;
}

function latestMenu(): MenuItem[] {
  const menu = state.menus.at(-1);
  if (!menu) throw new Error('no application menu installed');
  return menu;
}
function submenu(label: string): MenuItem[] {
  const top = latestMenu().find((m) => m.label === label);
  if (!top?.submenu) throw new Error(`no ${label} menu`);
  return top.submenu;
}
function item(menu: MenuItem[], label: string): MenuItem {
  const found = menu.find((m) => m.label === label);
  if (!found) throw new Error(`no menu item ${label}`);
  return found;
}

/** Ask for a native dialog as our own page does; the fake dialog answers with state.dialogAnswer. */
function pickPath(kind: string): Promise<string | null> {
  const handler = state.ipcHandlers.get('cliffscope:pick-path')!;
  const sender = { id: 1, isDestroyed: () => false, send: () => {} };
  return handler({ senderFrame: { url: 'app://cliffscope/index.html', parent: null }, sender }, kind) as Promise<string | null>;
}

describe('electron main wiring', () => {
  it('registers app:// as a privileged scheme before ready and sandboxes every renderer', () => {
    expect(state.registeredBeforeReady).toBe(true);
    expect(state.schemesRegistered).toEqual([
      { scheme: 'app', privileges: expect.objectContaining({ standard: true, secure: true }) },
    ]);
    expect(state.sandboxEnabled).toBe(true);
  });

  it('opens one locked-down window on app://', () => {
    expect(state.windows).toHaveLength(1);
    const win = state.windows[0]!;
    expect(win.url).toBe('app://cliffscope/index.html');
    expect(win.options.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
    });
    expect(String((win.options.webPreferences as { preload: string }).preload)).toMatch(/preload[\\/]index\.cjs$/);
  });

  it('serves app:// with the CSP', async () => {
    const handler = state.protocolHandlers.get('app');
    expect(handler).toBeDefined();
    const res = await handler!({ url: 'app://cliffscope/..%2f..%2fpackage.json', method: 'GET' });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('denies every permission', () => {
    const cb = vi.fn();
    state.permissionRequest?.({}, 'media', cb);
    expect(cb).toHaveBeenCalledWith(false);
    expect(state.permissionCheck?.({}, 'notifications')).toBe(false);
    expect(state.deviceCheck?.({})).toBe(false);
  });

  it('blocks navigation, redirects, new windows and webviews in every web contents', () => {
    const [created] = state.appListeners.get('web-contents-created') ?? [];
    expect(created).toBeDefined();
    const events = new Map<string, Listener>();
    let openHandler: Listener | undefined;
    created!({}, {
      on: (name: string, fn: Listener) => events.set(name, fn),
      setWindowOpenHandler: (fn: Listener) => (openHandler = fn),
    });
    for (const name of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      const preventDefault = vi.fn();
      events.get(name)!({ preventDefault, url: 'https://example.com/' });
      expect(preventDefault, name).toHaveBeenCalled();
    }
    expect(openHandler!({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
  });

  it('answers IPC from our own page through the contract, in the engine utilityProcess', async () => {
    const before = state.hostMessages.length;
    const reply = await invoke('app://cliffscope/index.html', 'app.info', {});
    expect(reply.ok).toBe(true);
    expect(state.forked).toHaveLength(1);
    expect(state.forked[0]).toMatch(/host\.js$/);
    expect(state.hostMessages.slice(before).map((m) => m.method)).toEqual(['app.info']);
    const bad = await invoke('app://cliffscope/index.html', 'model.inspect', { dir: 1 });
    expect(bad).toMatchObject({ ok: false, error: { code: 'bad-params' } });
    expect(bad.error?.message).toContain('dir:');
    const unknown = await invoke('app://cliffscope/index.html', 'fs.read', {});
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
    // Payloads that fail the schema are rejected in main: they never reach the engine process.
    expect(state.hostMessages.slice(before).map((m) => m.method)).toEqual(['app.info']);
  });

  it('refuses IPC from any other page, from subframes and from destroyed frames', async () => {
    for (const url of ['https://evil.example/', 'file:///tmp/x.html', 'app://other/index.html', 'http://localhost:5173/']) {
      expect(await invoke(url, 'app.info', {}), url).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    }
    expect(await invoke('app://cliffscope/index.html', 'app.info', {}, { url: 'app://cliffscope/' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    });
    expect(await invoke(null, 'app.info', {})).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it('shows native dialogs only for our own page and only of the known kinds', async () => {
    const handler = state.ipcHandlers.get('cliffscope:pick-path');
    expect(handler).toBeDefined();
    const sender = { id: 1, isDestroyed: () => false, send: () => {} };
    const pick = (url: string | null, kind: unknown, parent: unknown = null) =>
      handler!({ senderFrame: url === null ? null : { url, parent }, sender }, kind) as Promise<string | null>;
    const ours = 'app://cliffscope/index.html';

    state.dialogCalls.length = 0;
    for (const url of ['https://evil.example/', 'app://other/index.html', 'http://localhost:5173/']) {
      expect(await pick(url, 'project-open'), url).toBeNull();
    }
    expect(await pick(ours, 'project-open', { url: ours })).toBeNull();
    expect(await pick(null, 'project-open')).toBeNull();
    for (const kind of ['anything', '', 42, null, undefined, { kind: 'folder' }, 'PROJECT-OPEN']) {
      expect(await pick(ours, kind), String(kind)).toBeNull();
    }
    expect(state.dialogCalls).toEqual([]);

    const win = (await import('electron')).BrowserWindow.getAllWindows()[0];
    expect(await pick(ours, 'project-open')).toBe('/picked/path');
    expect(state.dialogCalls.at(-1)).toMatchObject({
      fn: 'open',
      win,
      options: { properties: ['openFile'], filters: [{ extensions: ['cliffscope'] }, { extensions: ['*'] }] },
    });
    expect(await pick(ours, 'dataset-file')).toBe('/picked/path');
    const datasetFilter = (state.dialogCalls.at(-1)!.options.filters as Array<{ extensions: string[] }>)[0]!;
    expect(datasetFilter.extensions).toEqual(expect.arrayContaining(['csv', 'json', 'jsonl']));
    expect(await pick(ours, 'model-folder')).toBe('/picked/path');
    expect(state.dialogCalls.at(-1)!.options.properties).toContain('openDirectory');
    expect(await pick(ours, 'folder')).toBe('/picked/path');
    expect(state.dialogCalls.at(-1)!.options.properties).toContain('openDirectory');
    // A new project's name gets the extension when the user leaves it off.
    expect(await pick(ours, 'project-save')).toBe('/picked/new-study.cliffscope');
    expect(state.dialogCalls.at(-1)).toMatchObject({ fn: 'save', win });

    state.dialogAnswer = { canceled: true, filePaths: [] };
    expect(await pick(ours, 'project-open')).toBeNull();
    expect(await pick(ours, 'project-save')).toBeNull();
    state.dialogAnswer = { canceled: false, filePaths: ['/picked/path'], filePath: '/picked/new-study' };
  });

  it('installs the application menu: File, View, Help', () => {
    const file = submenu('File');
    expect(file.filter((m) => m.label).map((m) => m.label)).toEqual([
      'Open Project…',
      'New Project…',
      'Open Demo Project',
      'Open Recent',
      ...(process.platform === 'darwin' ? [] : ['Quit']),
    ]);
    expect(file.some((m) => m.role === (process.platform === 'darwin' ? 'close' : 'quit'))).toBe(true);
    expect(item(file, 'Open Recent').submenu).toBeDefined();
    const view = submenu('View');
    expect(item(view, 'Reload').role).toBe('reload');
    expect(item(view, 'Toggle Dark Theme').click).toBeTypeOf('function');
    // The fake app is packaged: no DevTools.
    expect(view.some((m) => m.role === 'toggleDevTools' || m.label === 'Toggle DevTools')).toBe(false);
    expect(item(submenu('Help'), 'About Cliffscope').click).toBeTypeOf('function');
  });

  it('sends menu actions to the focused window as validated payloads', async () => {
    const { BrowserWindow } = await import('electron');
    const win = BrowserWindow.getAllWindows()[0] as unknown as { id: number };
    state.focused = win;
    const menuMessages = () => state.sent.filter((m) => m.channel === 'cliffscope:menu');
    state.sent.length = 0;

    item(submenu('View'), 'Toggle Dark Theme').click!();
    item(submenu('File'), 'Open Demo Project').click!();
    await item(submenu('File'), 'Open Project…').click!();
    await item(submenu('File'), 'New Project…').click!();
    await vi.waitFor(() => expect(menuMessages()).toHaveLength(4));
    expect(menuMessages()).toEqual([
      { window: win.id, channel: 'cliffscope:menu', payload: { action: 'toggle-theme' } },
      { window: win.id, channel: 'cliffscope:menu', payload: { action: 'open-demo' } },
      { window: win.id, channel: 'cliffscope:menu', payload: { action: 'open-project', file: '/picked/path' } },
      { window: win.id, channel: 'cliffscope:menu', payload: { action: 'new-project', file: '/picked/new-study.cliffscope' } },
    ]);

    // A cancelled dialog sends nothing.
    state.dialogAnswer = { canceled: true, filePaths: [] };
    await item(submenu('File'), 'Open Project…').click!();
    await new Promise((r) => setTimeout(r, 10));
    expect(menuMessages()).toHaveLength(4);
    state.dialogAnswer = { canceled: false, filePaths: ['/picked/path'], filePath: '/picked/new-study' };

    // About shows the versions in a message box.
    item(submenu('Help'), 'About Cliffscope').click!();
    expect(state.dialogCalls.at(-1)).toMatchObject({ fn: 'message', options: { detail: expect.stringContaining('Version 0.1.0') } });
    state.focused = null;
  });

  it('fills Open Recent from the recent list and keeps it in step with project.remember', async () => {
    const recent = () => item(submenu('File'), 'Open Recent').submenu!;
    expect(recent()).toEqual([expect.objectContaining({ label: 'No recent projects', enabled: false })]);
    // A path the user did not pick is refused; once picked in the dialog, it (and its folder) can be used.
    expect(await invoke('app://cliffscope/index.html', 'project.open', { file: projectFile, create: true })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    state.dialogAnswer = { canceled: false, filePaths: [], filePath: projectFile };
    expect(await pickPath('project-save')).toBe(projectFile);
    expect(await invoke('app://cliffscope/index.html', 'project.open', { file: projectFile, create: true })).toMatchObject({ ok: true });
    const reply = await invoke('app://cliffscope/index.html', 'project.remember', { file: projectFile });
    expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true });
    await vi.waitFor(() => expect(recent().map((m) => m.label)).toEqual([projectFile]));
    state.sent.length = 0;
    recent()[0]!.click!();
    expect(state.sent).toEqual([{ window: 1, channel: 'cliffscope:menu', payload: { action: 'open-project', file: projectFile } }]);
  });
});

describe('paths from the renderer', () => {
  const ours = 'app://cliffscope/index.html';

  it('refuses any path the user did not pick, before it reaches the engine', async () => {
    const before = state.hostMessages.length;
    for (const [method, params] of [
      ['model.inspect', { dir: '/etc' }],
      ['dataset.preview', { file: '/proc/self/environ', format: 'csv' }],
      ['project.export', { file: projectFile, dest: path.join(os.homedir(), '.bashrc') }],
      ['selection.export', { project: projectFile, runId: 1, outDir: '/tmp/anywhere' }],
    ] as const) {
      const r = await invoke(ours, method, params);
      expect(r, method).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      expect((r.error as { hint?: string }).hint).toMatch(/Browse/);
    }
    expect(state.hostMessages.length).toBe(before);
  });

  it('lets through what was picked: a dataset file, a model folder and what is inside it', async () => {
    // Outside the project's folder (tmp, granted when the project was picked), so only the dialog grants it.
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-picked-'));
    const data = path.join(elsewhere, 'picked.csv');
    fs.writeFileSync(data, 'prompt\nhello\n');
    state.dialogAnswer = { canceled: false, filePaths: [data] };
    expect(await pickPath('dataset-file')).toBe(data);
    expect(await invoke(ours, 'dataset.preview', { file: data })).toMatchObject({ ok: true, result: { count: 1 } });
    // Only that file: its neighbour was not picked.
    expect(await invoke(ours, 'dataset.preview', { file: path.join(elsewhere, 'other.csv') })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    fs.rmSync(elsewhere, { recursive: true, force: true });

    const modelDir = path.join(tmp, 'models', 'm');
    fs.mkdirSync(modelDir, { recursive: true });
    state.dialogAnswer = { canceled: false, filePaths: [path.join(tmp, 'models')] };
    expect(await pickPath('folder')).toBe(path.join(tmp, 'models'));
    const inspected = await invoke(ours, 'model.inspect', { dir: modelDir });
    expect(inspected.error?.code).not.toBe('forbidden');
  });

  it('hides DevTools and ignores ELECTRON_RENDERER_URL in a production build', async () => {
    const view = submenu('View');
    expect(view.some((m) => m.role === 'toggleDevTools')).toBe(false);
    const { devServerUrl } = await import('../../src/main/electron/app-protocol.js');
    expect(devServerUrl('http://localhost:5173/', false)).toBeUndefined();
    expect(devServerUrl('http://localhost:5173/', true)).toBe('http://localhost:5173/');
    expect(devServerUrl('http://127.0.0.1:5173', true)).toBe('http://127.0.0.1:5173/');
    for (const url of ['https://evil.example/', 'http://evil.example:5173/', 'file:///tmp/x.html', 'not a url']) {
      expect(devServerUrl(url, true), url).toBeUndefined();
    }
  });
});

describe('menu payload validation', () => {
  it('accepts the four actions and nothing else', async () => {
    const { validateMenuAction } = await import('../../src/shared/bridge.js');
    expect(validateMenuAction({ action: 'open-project', file: '/a.cliffscope', extra: 1 })).toEqual({ action: 'open-project', file: '/a.cliffscope' });
    expect(validateMenuAction({ action: 'new-project', file: '/b.cliffscope' })).toEqual({ action: 'new-project', file: '/b.cliffscope' });
    expect(validateMenuAction({ action: 'open-demo' })).toEqual({ action: 'open-demo' });
    expect(validateMenuAction({ action: 'toggle-theme' })).toEqual({ action: 'toggle-theme' });
    for (const bad of [null, 'open-demo', {}, { action: 'quit' }, { action: 'open-project' }, { action: 'open-project', file: '' }, { action: 'new-project', file: 7 }]) {
      expect(validateMenuAction(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});
