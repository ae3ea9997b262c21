/**
 * plotly for component tests: records what it is handed (jsdom cannot lay out SVG). Use with
 * `vi.mock('plotly.js-cartesian-dist-min', () => import('./plotly-mock.js'))`.
 */
import { vi } from 'vitest';

const plotly = {
  react: vi.fn(async (el: HTMLElement) => Object.assign(el, { on: () => undefined })),
  purge: vi.fn(),
  toImage: vi.fn(async () => 'data:image/png;base64,'),
  Plots: { resize: vi.fn() },
};

export default plotly;
