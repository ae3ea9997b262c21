/**
 * Electron main entry — the thin layer. Besides the preload, this is the only file that imports `electron`:
 * it opens a locked-down window, serves the renderer over app://, and forwards IPC calls to the shared dispatcher
 * (src/main/api), the same one the CLI and serve mode use.
 */
/// <reference types="electron-vite/node" />
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, ipcMain, protocol, session, utilityProcess, type IpcMainEvent, type IpcMainInvokeEvent } from 'electron';
import { CANCEL_CHANNEL, EVENT_CHANNEL, INVOKE_CHANNEL } from '../../shared/bridge.js';
import { type ApiResponse, validateRequest } from '../../shared/contract.js';
import { toErrorInfo } from '../api/dispatch.js';
import { EngineClient, type HostProcess } from '../host/engine-client.js';
import type { FromHost } from '../host/protocol.js';
import { APP_ENTRY_URL, APP_SCHEME, isTrustedAppUrl, serveAppRequest } from './app-protocol.js';
// electron-vite copies the file next to the bundle and gives its path (Linux shows it as the window icon).
import icon from '../../../resources/icon.png?asset';

/** Built layout: out/main/index.js, out/preload/index.cjs, out/renderer/index.html. */
const here = path.dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = path.join(here, '../renderer');
const PRELOAD = path.join(here, '../preload/index.cjs');
/** The engine host, built from src/main/host/host-entry.ts beside this file. */
const HOST_ENTRY = path.join(here, 'host.js');

/**
 * The engine runs in a utilityProcess: inference blocks its thread for seconds at a time, and this process must keep
 * drawing windows and answering IPC. A crashed engine fails its calls and is restarted on the next one.
 */
function spawnUtilityHost(): HostProcess {
  const child = utilityProcess.fork(HOST_ENTRY, [], { serviceName: 'Cliffscope engine', stdio: 'inherit' });
  return {
    send: (m) => child.postMessage(m),
    onMessage: (listener) => child.on('message', (m: unknown) => listener(m as FromHost)),
    onExit: (listener) => child.on('exit', (code: number) => listener(`exited with code ${code}`)),
    kill: () => void child.kill(),
    get pid() {
      return child.pid;
    },
  };
}

const engine = new EngineClient(spawnUtilityHost);

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

/** Only our own top-level page may call the engine; an iframe or foreign page never can. */
function trustedSender(event: IpcMainInvokeEvent | IpcMainEvent): boolean {
  const frame = event.senderFrame;
  return !!frame && frame.parent === null && isTrustedAppUrl(frame.url, DEV_SERVER_URL);
}

const JOB_ID = /^[A-Za-z0-9_.:-]{1,100}$/;

async function onInvoke(event: IpcMainInvokeEvent, method: unknown, params: unknown, jobId?: unknown): Promise<ApiResponse> {
  if (!trustedSender(event)) {
    log(`refused ${String(method)} from ${event.senderFrame?.url ?? 'a destroyed frame'}`);
    return forbidden('this page may not call the Cliffscope engine');
  }
  if (jobId !== undefined && (typeof jobId !== 'string' || !JOB_ID.test(jobId))) {
    return { ok: false, error: { code: 'bad-params', message: 'job id must be 1-100 letters, digits, _ . : -' } };
  }
  // Validate here, before anything reaches the engine process; the host validates again on its side.
  let request: ReturnType<typeof validateRequest>;
  try {
    request = validateRequest(method, params);
  } catch (e) {
    return { ok: false, error: toErrorInfo(e) };
  }
  const sender = event.sender;
  return engine.invoke(request.method, request.params, {
    // Scoped to the window, so two windows can never cancel each other's jobs.
    callId: jobId === undefined ? undefined : `${sender.id}:${jobId}`,
    onEvent: (e) => {
      if (!sender.isDestroyed()) sender.send(EVENT_CHANNEL, { ...e, jobId: jobId ?? e.jobId });
    },
  });
}

function onCancel(event: IpcMainEvent, jobId: unknown): void {
  if (!trustedSender(event) || typeof jobId !== 'string' || !JOB_ID.test(jobId)) return;
  engine.cancel(`${event.sender.id}:${jobId}`);
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
app.on('will-quit', () => engine.close());

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
  ipcMain.on(CANCEL_CHANNEL, onCancel);

  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});
