import { resolve } from 'node:path';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'electron-vite';

/** Native addons (and the JS half of ONNX Runtime, which must be the same instance the addon registers with). */
const NATIVE = ['onnxruntime-node', 'onnxruntime-common', 'better-sqlite3'];

export default defineConfig({
  main: {
    build: {
      // Pure-JS dependencies (zod, …) are bundled into out/main; only native modules stay in node_modules.
      externalizeDeps: false,
      // index: the Electron main process; host: the engine's utilityProcess (src/main/host).
      lib: { entry: { index: resolve('src/main/electron/main.ts'), host: resolve('src/main/api/host/host-entry.ts') } },
      rolldownOptions: {
        external: NATIVE.flatMap((name) => [name, new RegExp(`^${name}/`)]),
      },
    },
  },
  preload: {
    build: {
      // Sandboxed preloads run as classic scripts: CommonJS, one self-contained file (out/preload/index.cjs).
      externalizeDeps: false,
      lib: { entry: { index: resolve('src/preload/index.ts') } },
      rolldownOptions: {
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve('src/renderer'),
    plugins: [svelte()],
    build: {
      outDir: resolve('out/renderer'),
      rolldownOptions: {
        input: resolve('src/renderer/index.html'),
      },
    },
  },
});
