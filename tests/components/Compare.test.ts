// @vitest-environment jsdom
/**
 * The Compare tab as an experiment tracker: runs filtered and grouped by kind / model / tag, any number picked,
 * headline numbers in their units (ASR in %, differences in pp), only the settings that differ, several sweeps on
 * one plot, and the difference of any two heads maps.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';

vi.mock('plotly.js-cartesian-dist-min', () => import('./plotly-mock.js'));

const base = { uid: 'u', status: 'done' as const, error: null, datasetId: null, parentRunId: null, createdAt: '2026-01-01T00:00:00.000Z', startedAt: null, finishedAt: null };
const runs = [
  { ...base, id: 1, kind: 'ablate' as const, name: 'sweep 7b', tags: ['7b', 'baseline'], modelId: 1 },
  { ...base, id: 2, kind: 'ablate' as const, name: 'sweep 1.5b', tags: ['1.5b'], modelId: 2 },
  { ...base, id: 3, kind: 'heads' as const, name: 'heads a', tags: ['7b'], modelId: 1 },
  { ...base, id: 4, kind: 'heads' as const, name: 'heads b', tags: [], modelId: 1 },
];
const cells = [
  { id: 1, key: 'baseline', control: 'none', k: 0, fraction: 0, gamma: 1, seed: null, heads: [], metrics: { asr: 1 } },
  { id: 2, key: 'top:k3:g0', control: 'top', k: 3, fraction: 0.1, gamma: 0, seed: null, heads: [], metrics: { asr: 0.4 } },
];
const entry = (id: number, extra: object) => ({ run: runs.find((r) => r.id === id)!, modelPath: '/m/planted', headline: [], ...extra });
const compareRuns = vi.fn(async ({ runIds }: { runIds: number[] }) => ({
  configDiff: runIds.includes(1) && runIds.includes(2) ? [{ key: 'gammas', values: [[0, 0.5], [0]] }] : [],
  runs: runIds.map((id) =>
    id <= 2
      ? entry(id, { cells, totalHeads: 32, headline: [{ key: 'baselineAsr', label: 'ASR without ablation', unit: 'percent', value: id === 1 ? 1 : 0.4, delta: id === 1 ? null : -0.6 }] })
      : entry(id, { headsMap: { layers: 2, heads: 2, scores: id === 3 ? [1, 2, 3, 4] : [0, 0, 0, 1] } }),
  ),
}));
vi.mock('../../src/renderer/src/lib/api.js', async () => ({ ...(await import('./api-mock.js')), api: { 'compare.runs': compareRuns }, pickPath: undefined }));

const { default: Compare } = await import('../../src/renderer/src/panels/Compare.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');

project.file = '/p/s.cliffscope';
project.summary = {
  file: '/p/s.cliffscope',
  datasets: [],
  probes: [],
  runs,
  models: [
    { id: 1, name: 'qwen-7b', path: '/m/7b', contentHash: 'a', architecture: null, layers: 2, heads: 2, hidden: 8, createdAt: '' },
    { id: 2, name: 'qwen-1.5b', path: '/m/1.5b', contentHash: 'b', architecture: null, layers: 2, heads: 2, hidden: 8, createdAt: '' },
  ],
};

const checkbox = (name: RegExp | string) => screen.getByRole('checkbox', { name });

describe('Compare', () => {
  it('filters by tag and model, groups by tag, and picks a whole group', async () => {
    project.compareIds = [];
    render(Compare);
    // Grouped by kind by default.
    expect(screen.getAllByRole('group', { name: /^Runs: / }).map((g) => g.getAttribute('aria-label'))).toEqual(['Runs: heads (2)', 'Runs: ablate (2)']);
    await fireEvent.change(screen.getByLabelText('Tag'), { target: { value: '7b' } });
    expect(screen.getAllByRole('checkbox', { name: /^#\d/ }).map((c) => c.parentElement!.textContent!.trim())).toEqual(['#3 "heads a"', '#1 "sweep 7b"']);
    await fireEvent.change(screen.getByLabelText('Tag'), { target: { value: '' } });
    await fireEvent.change(screen.getByLabelText('Model'), { target: { value: '2' } });
    expect(screen.getAllByRole('checkbox', { name: /^#\d/ })).toHaveLength(1);
    await fireEvent.change(screen.getByLabelText('Model'), { target: { value: '' } });
    await fireEvent.change(screen.getByLabelText('Group by'), { target: { value: 'tag' } });
    expect(screen.getAllByRole('group', { name: /^Runs: / }).map((g) => g.getAttribute('aria-label'))).toEqual(['Runs: #1.5b (1)', 'Runs: #7b (2)', 'Runs: #baseline (1)', 'Runs: (no tag) (1)']);
    await fireEvent.click(checkbox('Pick every run of #7b (2)'));
    expect(project.compareIds.sort()).toEqual([1, 3]);
  });

  it('shows ASR in % with differences in pp, only the settings that differ, every sweep on one plot, and A − B of two heads maps', async () => {
    project.compareIds = [1, 2, 3, 4];
    render(Compare);
    const headline = await screen.findByRole('table', { name: 'Headline metrics' });
    const row = within(headline).getAllByRole('row')[1]!;
    expect(row.querySelector('td[data-col="v1"]')!.textContent).toBe('100.0%');
    expect(row.querySelector('td[data-col="v2"]')!.textContent).toBe('40.0%');
    expect(row.querySelector('td[data-col="d2"]')!.textContent).toBe('−60.0 pp');
    const diff = screen.getByRole('table', { name: 'Settings that differ' });
    expect(Array.from(diff.querySelectorAll('tbody td'), (td) => td.textContent)).toEqual(['gammas', '[0,0.5]', '[0]', '—', '—']);
    expect(screen.getByRole('figure', { name: 'ASR against % of heads ablated, every compared sweep' })).toBeDefined();
    expect(screen.getByRole('figure', { name: 'Head attribution difference: #3 − #4' })).toBeDefined();
    await fireEvent.change(screen.getByLabelText('Heads map A'), { target: { value: '4' } });
    await waitFor(() => expect(screen.getByRole('figure', { name: 'Head attribution difference: #4 − #3' })).toBeDefined());
  });
});
