/**
 * Electron main entry — the thin layer. Besides the preload, this is the only file that imports `electron`:
 * it opens a locked-down window, serves the renderer over app://, forwards IPC calls to the shared dispatcher
 * (src/main/api, the same one the CLI and serve mode use), shows native file dialogs for the page, and installs the
 * application menu, whose actions reach the renderer as validated messages on MENU_CHANNEL.
 */
/// <reference types="electron-vite/node" />
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  protocol,
  session,
  utilityProcess,
  type IpcMainEvent,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
  type OpenDialogOptions,
  type SaveDialogOptions,
} from 'electron';
import {
  CANCEL_CHANNEL,
  EVENT_CHANNEL,
  INVOKE_CHANNEL,
  MENU_CHANNEL,
  PICK_PATH_CHANNEL,
  isPickKind,
  validateMenuAction,
  type MenuAction,
  type PickKind,
} from '../../shared/bridge.js';
import { type ApiResponse, validateRequest } from '../../shared/contract.js';
import { toErrorInfo } from '../api/dispatch.js';
import { EngineClient, type HostProcess } from '../api/host/engine-client.js';
import type { FromHost } from '../api/host/protocol.js';
import { GrantsPolicy, grantFromResult, grantPicked, refusedPath } from '../web/file-access.js';
import { APP_ENTRY_URL, APP_SCHEME, devServerUrl, isTrustedAppUrl, serveAppRequest } from './app-protocol.js';
// electron-vite copies the file next to the bundle and gives its path (Linux shows it as the window icon).
import icon from '../../../resources/icon.png?asset';

/** Built layout: out/main/index.js, out/preload/index.cjs, out/renderer/index.html. */
const here = path.dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = path.join(here, '../renderer');
const PRELOAD = path.join(here, '../preload/index.cjs');
/** The engine host, built from src/main/api/host/host-entry.ts beside this file. */
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

/**
 * A development build: `npm run dev` (electron-vite builds with import.meta.env.DEV). `npm start` (electron-vite
 * preview) and packaged apps are production builds, whatever the environment says: no DevTools, no dev server.
 */
const DEVELOPMENT_BUILD = import.meta.env.DEV === true && !app.isPackaged;
/** electron-vite's dev server, trusted only in development builds. */
const DEV_SERVER_URL = devServerUrl(process.env.ELECTRON_RENDERER_URL, DEVELOPMENT_BUILD);
/** Files and folders the page may name in a request: what the user picked, and what the engine named itself. */
const grants = new GrantsPolicy();
const NOT_PICKED_HINT = 'choose it with Browse… or File → Open: the app only uses files and folders you picked';

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
  const refused = refusedPath(grants, request.params, NOT_PICKED_HINT);
  if (refused) {
    log(`refused ${request.method}: ${refused.message}`);
    return { ok: false, error: refused };
  }
  const sender = event.sender;
  const reply = engine.invoke(request.method, request.params, {
    // Scoped to the window, so two windows can never cancel each other's jobs.
    callId: jobId === undefined ? undefined : `${sender.id}:${jobId}`,
    onEvent: (e) => {
      if (!sender.isDestroyed()) sender.send(EVENT_CHANNEL, { ...e, jobId: jobId ?? e.jobId });
    },
  });
  void reply.then((r) => {
    if (!r.ok) return;
    grantFromResult(grants, request.method, r.result);
    // The renderer remembers each project it opens: keep File → Open Recent in step with that list.
    if (request.method === 'project.remember') installMenu(recentFrom(r.result));
  });
  return reply;
}

function onCancel(event: IpcMainEvent, jobId: unknown): void {
  if (!trustedSender(event) || typeof jobId !== 'string' || !JOB_ID.test(jobId)) return;
  engine.cancel(`${event.sender.id}:${jobId}`);
}

// ---- native file dialogs ----------------------------------------------------------------------------------------

const PROJECT_EXT = 'cliffscope';
const PROJECT_FILTERS = [
  { name: 'Cliffscope projects', extensions: [PROJECT_EXT] },
  { name: 'All files', extensions: ['*'] },
];
const DATASET_FILTERS = [
  { name: 'Datasets (CSV, TSV, JSON, JSONL)', extensions: ['csv', 'tsv', 'json', 'jsonl'] },
  { name: 'All files', extensions: ['*'] },
];

/** Show the dialog for `kind`, attached to `win` when there is one. Resolves with the chosen path, or null. */
async function showPickDialog(win: BrowserWindow | null, kind: PickKind): Promise<string | null> {
  if (kind === 'project-save') {
    const options: SaveDialogOptions = {
      title: 'New Cliffscope project',
      buttonLabel: 'Create',
      defaultPath: `study.${PROJECT_EXT}`,
      filters: PROJECT_FILTERS,
      properties: ['createDirectory', 'showOverwriteConfirmation'],
    };
    const r = win ? await dialog.showSaveDialog(win, options) : await dialog.showSaveDialog(options);
    if (r.canceled || !r.filePath) return null;
    // Linux save dialogs do not add the filter's extension.
    return path.extname(r.filePath) ? r.filePath : `${r.filePath}.${PROJECT_EXT}`;
  }
  const options: OpenDialogOptions =
    kind === 'project-open'
      ? { title: 'Open a Cliffscope project', filters: PROJECT_FILTERS, properties: ['openFile'] }
      : kind === 'dataset-file'
        ? { title: 'Choose a dataset file', filters: DATASET_FILTERS, properties: ['openFile'] }
        : kind === 'model-folder'
          ? { title: 'Choose a checkpoint folder', buttonLabel: 'Choose', properties: ['openDirectory'] }
          : { title: 'Choose a folder', buttonLabel: 'Choose', properties: ['openDirectory', 'createDirectory'] };
  const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
  return r.canceled ? null : (r.filePaths[0] ?? null);
}

async function onPickPath(event: IpcMainInvokeEvent, kind: unknown): Promise<string | null> {
  if (!trustedSender(event)) {
    log(`refused a file dialog for ${event.senderFrame?.url ?? 'a destroyed frame'}`);
    return null;
  }
  if (!isPickKind(kind)) {
    log(`refused a file dialog of unknown kind ${String(kind)}`);
    return null;
  }
  const picked = await showPickDialog(BrowserWindow.fromWebContents(event.sender), kind);
  if (picked) grantPicked(grants, kind, picked);
  return picked;
}

// ---- application menu ---------------------------------------------------------------------------------------------

/** The window menu actions go to: the focused one, else any, else a new one (macOS keeps running windowless). */
function targetWindow(): { win: BrowserWindow; fresh: boolean } {
  const win = BrowserWindow.getFocusedWindow() ?? BrowserWindow.getAllWindows()[0];
  return win ? { win, fresh: false } : { win: createWindow(), fresh: true };
}

/** Send a menu action to the renderer, checked with the same validator the preload applies. */
function sendMenuAction(action: MenuAction, target = targetWindow()): void {
  const payload = validateMenuAction(action);
  if (!payload) return;
  const { win, fresh } = target;
  const contents = win.webContents;
  if (fresh) contents.once('did-finish-load', () => contents.send(MENU_CHANNEL, payload));
  else if (!contents.isDestroyed()) contents.send(MENU_CHANNEL, payload);
}

/** Ask for a path with a dialog on the target window, then send the action built from it. */
async function pickThenSend(kind: 'project-open' | 'project-save', make: (file: string) => MenuAction): Promise<void> {
  const target = targetWindow();
  const file = await showPickDialog(target.win, kind);
  if (!file) return;
  grantPicked(grants, kind, file);
  sendMenuAction(make(file), target);
}

function showAbout(): void {
  const v = process.versions;
  const detail = [
    `Version ${app.getVersion()}`,
    `Electron ${v.electron ?? '?'}`,
    `Chromium ${v.chrome ?? '?'}`,
    `Node ${v.node}`,
    `V8 ${v.v8}`,
    `${process.platform}/${process.arch}`,
  ].join('\n');
  const win = BrowserWindow.getFocusedWindow();
  const options = { type: 'info' as const, title: 'About Cliffscope', message: 'Cliffscope', detail, buttons: ['OK'] };
  void (win ? dialog.showMessageBox(win, options) : dialog.showMessageBox(options));
}

function recentFrom(result: unknown): string[] {
  const files = (result as { files?: unknown } | null)?.files;
  return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : [];
}

/** The application menu; `recent` fills File → Open Recent. */
function menuTemplate(recent: string[]): MenuItemConstructorOptions[] {
  const recentItems: MenuItemConstructorOptions[] = recent.length
    ? recent.map((file) => ({
        label: file,
        click: () => {
          grants.grantProject(file); // chosen by the user from the menu
          sendMenuAction({ action: 'open-project', file });
        },
      }))
    : [{ label: 'No recent projects', enabled: false }];
  const isMac = process.platform === 'darwin';
  return [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        {
          label: 'Open Project…',
          accelerator: 'CmdOrCtrl+O',
          click: () => void pickThenSend('project-open', (file) => ({ action: 'open-project', file })),
        },
        {
          label: 'New Project…',
          accelerator: 'CmdOrCtrl+N',
          click: () => void pickThenSend('project-save', (file) => ({ action: 'new-project', file })),
        },
        { label: 'Open Demo Project', click: () => sendMenuAction({ action: 'open-demo' }) },
        { label: 'Open Recent', submenu: recentItems },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit', label: 'Quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload', label: 'Reload' },
        { label: 'Toggle Dark Theme', click: () => sendMenuAction({ action: 'toggle-theme' }) },
        ...(DEVELOPMENT_BUILD ? [{ role: 'toggleDevTools' as const, label: 'Toggle DevTools' }] : []),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { label: 'Help', submenu: [{ label: 'About Cliffscope', click: showAbout }] },
  ];
}

function installMenu(recent: string[]): void {
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate(recent)));
}

/** Install the menu now, then again with the recent list once the engine has read it. */
function installMenuWithRecent(): void {
  installMenu([]);
  void engine.invoke('project.recent', {}).then(
    (r) => {
      if (!r.ok) return;
      grantFromResult(grants, 'project.recent', r.result);
      installMenu(recentFrom(r.result));
    },
    () => {},
  );
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Cliffscope',
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
  ipcMain.handle(PICK_PATH_CHANNEL, onPickPath);
  installMenuWithRecent();

  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});
