/**
 * Preload (sandboxed, built as CommonJS): exposes exactly one function to the page, `window.cliffscope.invoke`.
 * No ipcRenderer, no Node: the page can only send (method, params) on one channel, and main validates both.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { INVOKE_CHANNEL, type CliffscopeBridge } from '../shared/bridge.js';

const bridge: CliffscopeBridge = {
  invoke: (method, params) => {
    if (typeof method !== 'string') return Promise.reject(new TypeError('cliffscope.invoke: method must be a string'));
    return ipcRenderer.invoke(INVOKE_CHANNEL, method, params);
  },
};

contextBridge.exposeInMainWorld('cliffscope', bridge);
