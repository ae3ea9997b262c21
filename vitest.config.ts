import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // ONNX Runtime sessions and checkpoint compiles are CPU-heavy; keep files in separate forks so one slow file
    // does not starve another's timers, and give compile-heavy tests room.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
