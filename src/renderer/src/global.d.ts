import type { CliffscopeBridge } from '../../shared/bridge.js';

declare global {
  interface Window {
    /** Present only inside the Electron app (set by the preload); absent in serve mode. */
    readonly cliffscope?: CliffscopeBridge;
  }
}

export {};
