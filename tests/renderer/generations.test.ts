import { describe, expect, it } from 'vitest';
import { seriesOf, settingName, shortPrompt, type Generation } from '../../src/renderer/src/lib/generations.js';
import { overlayScoreFigure, type Shape } from '../../src/renderer/src/lib/plots.js';

describe('Playground generations', () => {
  it('are named after what differs from the plain model’s greedy answer', () => {
    const plain = { heads: [], gamma: 0, sampling: null, system: '' };
    expect(settingName(plain)).toBe('baseline');
    expect(settingName({ ...plain, heads: [{ layer: 1, head: 5 }, { layer: 2, head: 2 }] })).toBe('ablated L1H5, L2H2');
    expect(settingName({ ...plain, heads: [{ layer: 1, head: 5 }], gamma: 0.5 })).toBe('ablated L1H5 (γ = 0.5)');
    expect(settingName({ ...plain, sampling: { temperature: 0.6, topP: 0.95, seed: 3 }, system: 'be safe' })).toBe('sampled T = 0.6, seed 3, with a system prompt');
    expect(shortPrompt('how   do i\n pick a lock?', 12)).toBe('how do i pi…');
  });

  it('plot a finished generation from its transcript: scores, token texts and spans', () => {
    const g: Generation = {
      id: 2,
      name: 'ablated L1H5',
      jobId: 'j',
      provider: 'cpu',
      seconds: 1,
      setting: { prompt: 'p', heads: [], gamma: 0, sampling: null, system: '', maxNewTokens: 8, probe: { id: 1, residIndex: 5 } },
      transcript: {
        prompt: 'p', inputIds: [1, 2, 3], outputIds: [4, 5, 6], text: '', thinking: '', answer: '', finishReason: 'eos',
        thinkOpen: 2, thinkClose: 4, answerBoundary: 4, tokens: ['<s>', 'p', '<think>', 'x', '</think>', 'ok'], scores: [0, 0, 1, 1, 0.1, 0.1],
      },
    };
    expect(seriesOf(g)).toMatchObject({ name: '#2 ablated L1H5', promptTokens: 3, thinkingStart: 3, thinkingEnd: 4, answerBoundary: 4 });
    expect(seriesOf({ ...g, transcript: { ...g.transcript!, scores: undefined } })).toBeNull();
  });

  it('overlay on one plot: a line and a t_b per generation, the x axis ending with the longest', () => {
    const s = (name: string, n: number, tb: number) => ({ name, scores: Array.from({ length: n }, () => 0.5), tokens: Array.from({ length: n }, (_, i) => `t${i}`), promptTokens: 3, thinkingStart: 3, thinkingEnd: tb, answerBoundary: tb });
    const fig = overlayScoreFigure([s('#1 baseline', 10, 6), s('#2 ablated', 7, 5)]);
    expect(fig.data.map((t) => t.name)).toEqual(['#1 baseline', '#2 ablated']);
    expect((fig.layout.xaxis as { range: number[] }).range).toEqual([-0.5, 9.5]);
    const lines = (fig.layout.shapes as Shape[]).filter((x) => x.type === 'line').map((x) => x.x0);
    expect(lines).toEqual([6, 5]);
    expect(fig.data[0]!.text).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
  });
});
