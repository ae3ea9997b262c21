import { svelte } from '@sveltejs/vite-plugin-svelte';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // ONNX Runtime sessions and checkpoint compiles are CPU-heavy; keep files in separate forks so one slow file
    // does not starve another's timers, and give compile-heavy tests room.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        // Everything but the renderer components: node environment, no Svelte plugin, exactly as before.
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'tests/components/**'],
        },
      },
      {
        // Svelte components (src/renderer/src/components) rendered in jsdom with @testing-library/svelte: the Svelte
        // plugin compiles .svelte files, and the browser condition picks Svelte's client runtime (not its SSR one).
        extends: true,
        plugins: [svelte()],
        resolve: { conditions: ['browser'] },
        test: {
          name: 'components',
          include: ['tests/components/**/*.test.ts'],
          environment: 'jsdom',
          // Unmounts what each test rendered (vitest's hooks are not globals here, so the library's own auto-cleanup
          // does not register itself).
          setupFiles: ['@testing-library/svelte/vitest'],
        },
      },
    ],
  },
});
