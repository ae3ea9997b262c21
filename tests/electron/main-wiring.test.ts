/**
 * The Electron main entry against a stand-in `electron` module: checks the wiring that the real binary would exercise
 * (privileged scheme before ready, locked-down window, navigation/permission guards, the IPC origin check), so it is
 * covered even where the Electron binary cannot be installed. The end-to-end run is tests/electron/smoke.test.ts.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';

type Listener = (...args: unknown[]) => unknown;

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
    private entry: { options: Record<string, unknown>; url?: string };
    constructor(options: Record<string, unknown>) {
      this.entry = { options };
      state.windows.push(this.entry);
      BrowserWindow.all.push(this);
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
    },
    BrowserWindow,
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
        void import('../../src/main/host/engine-host.js').then(({ serveEngine }) =>
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

beforeAll(async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  await import('../../src/main/electron/main.js');
  state.isReady = true;
  state.readyResolve();
  await ready;
  await new Promise((r) => setTimeout(r, 0));
});

function invoke(frameUrl: string | null, method: unknown, params?: unknown, parent: unknown = null) {
  const handler = state.ipcHandlers.get('cliffscope:invoke');
  if (!handler) throw new Error('no IPC handler registered');
  const senderFrame = frameUrl === null ? null : { url: frameUrl, parent };
  const sender = { id: 1, isDestroyed: () => false, send: () => {} };
  return handler({ senderFrame, sender }, method, params) as Promise<{ ok: boolean; error?: { code: string; message: string } }>;
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
});
