/**
 * Electron main entry — the thin layer. Besides the preload, this is the only file that imports `electron`:
 * it opens a locked-down window, serves the renderer over app://, and forwards IPC calls to the shared dispatcher
 * (src/main/api), the same one the CLI and serve mode use.
 */
/// <reference types="electron-vite/node" />
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, ipcMain, protocol, session, type IpcMainInvokeEvent } from 'electron';
import { dispatch } from '../api/dispatch.js';
import { INVOKE_CHANNEL } from '../../shared/bridge.js';
import type { ApiResponse } from '../../shared/contract.js';
import { APP_ENTRY_URL, APP_SCHEME, isTrustedAppUrl, serveAppRequest } from './app-protocol.js';
// electron-vite copies the file next to the bundle and gives its path (Linux shows it as the window icon).
import icon from '../../../resources/icon.png?asset';

/** Built layout: out/main/index.js, out/preload/index.cjs, out/renderer/index.html. */
const here = path.dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = path.join(here, '../renderer');
const PRELOAD = path.join(here, '../preload/index.cjs');

/** electron-vite's dev server, trusted only in unpackaged dev runs. */
const DEV_SERVER_URL = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;

// Must happen before `ready`: app:// behaves like https (standard URL parsing, secure context, fetch, own origin).
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true } },
]);

// Every renderer sandboxed, whatever a window's own options say.
app.enableSandbox();

function log(...args: unknown[]): void {
  console.log('[cliffscope]', ...args);
}

// No renderer may navigate away, open windows or embed webviews.
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (event) => {
    event.preventDefault();
    log(`blocked navigation to ${event.url}`);
  });
  contents.on('will-redirect', (event) => {
    event.preventDefault();
    log(`blocked redirect to ${event.url}`);
  });
  contents.setWindowOpenHandler(({ url }) => {
    log(`blocked window.open of ${url}`);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
});

function forbidden(message: string): ApiResponse {
  return { ok: false, error: { code: 'forbidden', message } };
}

async function onInvoke(event: IpcMainInvokeEvent, method: unknown, params: unknown): Promise<ApiResponse> {
  const frame = event.senderFrame;
  // Only our own top-level page may call the engine; an iframe or foreign page never can.
  if (!frame || frame.parent !== null || !isTrustedAppUrl(frame.url, DEV_SERVER_URL)) {
    log(`refused ${String(method)} from ${frame?.url ?? 'a destroyed frame'}`);
    return forbidden('this page may not call the Cliffscope engine');
  }
  // Later the engine moves into a utilityProcess (so a long compile or sweep never blocks this process): this is
  // where the request goes to it over a MessagePort instead of calling dispatch here. Validation stays on this side.
  return dispatch(method, params, {
    onInternalError: (m, error) => console.error(`[cliffscope] ${m} failed:`, error),
  });
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Cliffscope',
    autoHideMenuBar: true,
    ...(process.platform === 'linux' ? { icon } : {}),
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(DEV_SERVER_URL ?? APP_ENTRY_URL);
  return win;
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

void app.whenReady().then(() => {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, permission, callback) => {
    log(`denied permission request: ${permission}`);
    callback(false);
  });
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);

  protocol.handle(APP_SCHEME, (request) => serveAppRequest(RENDERER_DIR, request));
  ipcMain.handle(INVOKE_CHANNEL, onInvoke);

  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});
