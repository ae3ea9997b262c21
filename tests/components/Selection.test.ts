// @vitest-environment jsdom
/**
 * The Selection tab: the ranked table has no duplicate columns (the run's score is its MS or its I′; the one ranked
 * by is marked), the histogram is of the score ranked by with the threshold, and ties at the threshold are explained.
 */
import { render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';
import plotly from './plotly-mock.js';

vi.mock('plotly.js-cartesian-dist-min', () => import('./plotly-mock.js'));

const row = (rank: number, ms: number, final: number, selected: boolean) => ({ itemId: 100 + rank, transcriptId: rank, prompt: `p${rank}`, score: ms, rank, selected, ms, final });
const rows = [row(1, 0.9, 0.05, true), row(2, 0.7, 0.1, true), row(3, 0.7, 0.2, false), row(4, 0.7, 0.3, false), row(5, 0.1, 0.8, false)];
const selectionList = vi.fn(async () => ({ runId: 7, total: 5, selected: 2, variant: 'top-ms', threshold: 0.7, ties: { atThreshold: 3, selected: 1 }, rows }));
const runReport = vi.fn(async () => ({
  text: '',
  report: {
    kind: 'select',
    run: { id: 7, uid: 'u', kind: 'select', name: null, tags: [], status: 'done', error: null, modelId: 1, datasetId: 1, parentRunId: null, createdAt: '', startedAt: null, finishedAt: null, config: {}, versions: {} },
    model: null,
    items: { done: 5, failed: 0 },
    summary: { probeId: 1, variant: 'top-ms', fraction: 0.4, total: 5, budget: 2, selected: 2, threshold: 0.7 },
  },
}));

vi.mock('../../src/renderer/src/lib/api.js', async () => ({
  ...(await import('./api-mock.js')),
  api: { 'selection.list': selectionList, 'run.report': runReport, 'table.csv': vi.fn() },
  pickPath: undefined,
}));

const { default: Selection } = await import('../../src/renderer/src/panels/Selection.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');

describe('Selection', () => {
  it('shows each score once, explains ties at the threshold, and histograms the score ranked by', async () => {
    project.file = '/p/study.cliffscope';
    project.summary = {
      file: '/p/study.cliffscope',
      models: [],
      probes: [],
      datasets: [],
      runs: [{ id: 7, uid: 'u', kind: 'select', name: null, tags: [], status: 'done', error: null, modelId: 1, datasetId: 1, parentRunId: null, createdAt: '', startedAt: null, finishedAt: null }],
    } as never;
    render(Selection);
    const table = await screen.findByRole('table', { name: 'Ranked samples' });
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent?.trim())).toEqual(['Rank', 'Selected', 'Item', 'Prompt', 'MS (ranked by)', 'I′']);
    expect(screen.getByTestId('ties').textContent?.replace(/\s+/g, ' ').trim()).toBe(
      '3 samples score exactly the threshold (0.700); 1 of them fill the last places of the selection: ties go to the lower I′ first, then the dataset’s order (docs/METHOD.md §6).',
    );
    await waitFor(() => expect(plotly.react).toHaveBeenCalled());
    const [, data, layout] = plotly.react.mock.calls.at(-1) as unknown as [unknown, { x: number[]; xbins: { start: number; size: number } }[], { shapes: { x0: number }[] }];
    expect(data.map((t) => t.x)).toEqual([[0.9, 0.7], [0.7, 0.7, 0.1]]);
    expect(layout.shapes[0]!.x0).toBe(0.7);
    // The threshold falls on a bin edge.
    const k = (0.7 - data[0]!.xbins.start) / data[0]!.xbins.size;
    expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-6);
  });
});
