// @vitest-environment jsdom
/**
 * A head's page, CircuitsVis-style attention: for a run that kept no per-token scores (and for one that did), a button
 * runs heads.inspect with the head and transcript; the tokens up to t_b come back shaded by the head's attention at
 * t_b (the largest darkest), each a focusable button whose weight is read out, and the weights as a table.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';

vi.mock('plotly.js-cartesian-dist-min', () => import('./plotly-mock.js'));

const transcript = (id: number, score: number, perToken: boolean) => ({ transcriptId: id, itemId: id, label: 'harmful', prompt: `prompt ${id}`, score, perToken });
const headsHead = vi.fn(async () => ({ runId: 4, layer: 1, head: 5, mean: -0.4, std: 0.1, rank: 1, of: 32, transcripts: [transcript(11, -0.6, false), transcript(12, -0.2, true)] }));
const inspected = {
  transcriptId: 11,
  layer: 1,
  head: 5,
  variant: 'code',
  tokens: ['<s>', 'How', ' to', '</think>'],
  scores: [0, 0.01, -0.02, -0.6],
  promptTokens: 3,
  thinkingStart: 2,
  thinkingEnd: 3,
  answerBoundary: 3,
  attention: [0.1, 0.6, 0.2, 0.1],
};
const runJob = vi.fn(async (_method: string, _params: unknown) => inspected);
const headsMap = vi.fn(async () => ({ layers: 4, heads: 8, scores: [], transcriptId: 12, transcriptIds: [12], suppression: [], refusal: [], perToken: { tokens: 4, data: new Array(4 * 32).fill(0) } }));
const traceGet = vi.fn(async () => ({ tokens: ['<s>', 'a', 'b', '</think>'], promptTokens: 2, thinkingStart: 2, thinkingEnd: 3, answerBoundary: 3, scores: [0, 0, 0, 0] }));

vi.mock('../../src/renderer/src/lib/api.js', async () => ({
  ...(await import('./api-mock.js')),
  api: { 'heads.head': headsHead, 'heads.map': headsMap, 'trace.get': traceGet },
  runJob,
  onEvent: () => () => undefined,
  cancel: vi.fn(),
  pickPath: undefined,
}));

const { default: HeadPage } = await import('../../src/renderer/src/components/HeadPage.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');

function openProject(): void {
  project.file = '/p/study.cliffscope';
  project.summary = { file: '/p/study.cliffscope', models: [{ id: 2, path: '/models/demo' }], probes: [], datasets: [], runs: [] } as never;
}

describe('HeadPage: what the head attends to at the answer boundary', () => {
  it('runs heads.inspect from a button and shades, reads out and tabulates the attention weights', async () => {
    openProject();
    render(HeadPage, { props: { runId: 4, head: { layer: 1, head: 5 }, modelId: 2 } });
    const button = await screen.findByRole('button', { name: 'Compute L1H5 along it and what it attends to with the model' });
    await fireEvent.click(button);
    expect(runJob).toHaveBeenCalledWith('heads.inspect', { project: '/p/study.cliffscope', model: { dir: '/models/demo' }, runId: 4, transcriptId: 11, layer: 1, head: 5 }, expect.any(String));
    const group = await screen.findByRole('group', { name: "L1H5's attention at t_b over the tokens" });
    const tokens = within(group).getAllByRole('button');
    expect(tokens.map((t) => t.getAttribute('aria-label'))).toEqual(['#0 <s>: 10.0%', '#1 How: 60.0%', '#2 ·to: 20.0%', '#3 </think>: 10.0%']);
    // The most-attended token is the darkest; the others in proportion.
    expect(tokens[1]!.style.backgroundColor).toBe('rgba(214, 69, 65, 0.85)');
    expect(tokens[2]!.style.backgroundColor).toBe('rgba(214, 69, 65, 0.283)');
    // Keyboard: focusing a token reads its weight out.
    tokens[2]!.focus();
    await fireEvent.focus(tokens[2]!);
    expect(screen.getByTestId('attention-readout').textContent).toContain('#2');
    expect(screen.getByTestId('attention-readout').textContent).toContain('20.00%');
    // Its numbers as a table.
    await fireEvent.click(screen.getByRole('button', { name: "Show L1H5's attention weights as a table" }));
    const table = screen.getByRole('table', { name: "L1H5's attention at t_b on transcript #11" });
    const cells = within(table).getAllByRole('row').slice(1).map((r) => within(r).getAllByRole('cell').map((c) => c.textContent?.trim()));
    expect(cells[1]).toEqual(['1', 'How', '60.00']);
    expect(cells).toHaveLength(4);
  });

  it('offers the attention for a transcript whose per-token scores the run kept', async () => {
    openProject();
    runJob.mockClear();
    render(HeadPage, { props: { runId: 4, head: { layer: 1, head: 5 }, modelId: 2 } });
    await fireEvent.click(await screen.findByRole('row', { name: /prompt 12/ }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Compute what L1H5 attends to at t_b with the model' }));
    expect(runJob).toHaveBeenCalledWith('heads.inspect', expect.objectContaining({ transcriptId: 12 }), expect.any(String));
    await screen.findByRole('group', { name: "L1H5's attention at t_b over the tokens" });
  });
});
