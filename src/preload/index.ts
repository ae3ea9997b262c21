/**
 * Preload (sandboxed, built as CommonJS): exposes a few functions to the page as `window.cliffscope` — invoke a
 * method, listen to job events, cancel a job, show a native file dialog, listen to application-menu actions. No
 * ipcRenderer, no Node: the page can only use these channels, and main checks the sender and validates every payload.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import {
  CANCEL_CHANNEL,
  EVENT_CHANNEL,
  INVOKE_CHANNEL,
  MENU_CHANNEL,
  PICK_PATH_CHANNEL,
  isPickKind,
  validateMenuAction,
  type CliffscopeBridge,
  type MenuAction,
} from '../shared/bridge.js';
import type { JobEvent } from '../shared/contract.js';

const bridge: CliffscopeBridge = {
  invoke: (method, params, jobId) => {
    if (typeof method !== 'string') return Promise.reject(new TypeError('cliffscope.invoke: method must be a string'));
    return ipcRenderer.invoke(INVOKE_CHANNEL, method, params, jobId);
  },
  onEvent: (listener) => {
    // Hand the page only the event data, never the IpcRendererEvent (it carries the sender).
    const wrapped = (_e: IpcRendererEvent, event: JobEvent) => listener(event);
    ipcRenderer.on(EVENT_CHANNEL, wrapped);
    return () => void ipcRenderer.removeListener(EVENT_CHANNEL, wrapped);
  },
  cancel: (jobId) => {
    if (typeof jobId === 'string') ipcRenderer.send(CANCEL_CHANNEL, jobId);
  },
  pickPath: async (kind) => {
    if (!isPickKind(kind)) throw new TypeError('cliffscope.pickPath: unknown kind');
    const picked: unknown = await ipcRenderer.invoke(PICK_PATH_CHANNEL, kind);
    return typeof picked === 'string' ? picked : null;
  },
  onMenu: (listener) => {
    const wrapped = (_e: IpcRendererEvent, payload: unknown) => {
      const action: MenuAction | null = validateMenuAction(payload);
      if (action) listener(action);
    };
    ipcRenderer.on(MENU_CHANNEL, wrapped);
    return () => void ipcRenderer.removeListener(MENU_CHANNEL, wrapped);
  },
};

contextBridge.exposeInMainWorld('cliffscope', bridge);
