import { describe, expect, it } from 'vitest';
import { causalScatterFigure, truncationFigure } from '../../src/renderer/src/lib/experiment-plots.js';

describe('truncationFigure', () => {
  const points = [
    { fraction: 0, asr: 0.25, meanFinal: 0.7, answers: 4 },
    { fraction: 1, asr: 1, meanFinal: 0.01, answers: 4 },
    { fraction: 0.5, asr: null, meanFinal: null, answers: 0 },
  ];
  it('draws ASR in % and mean I′ on a second axis against the % of thinking kept, 100 % first', () => {
    const f = truncationFigure(points);
    expect(f.data).toHaveLength(2);
    expect(f.data[0]!.x).toEqual([100, 50, 0]);
    expect(f.data[0]!.y).toEqual([100, null, 25]);
    expect(f.data[1]!.y).toEqual([0.01, null, 0.7]);
    expect(f.data[1]!.yaxis).toBe('y2');
    expect((f.layout.xaxis as { autorange: string }).autorange).toBe('reversed');
  });
  it('leaves I′ out when the run had no probe', () => {
    const f = truncationFigure(points.map((p) => ({ ...p, meanFinal: null })));
    expect(f.data.map((d) => d.name)).toEqual(['ASR']);
  });
});

describe('causalScatterFigure', () => {
  const heads = [
    { layer: 0, head: 0, causal: 0.001, direct: 0.002 },
    { layer: 1, head: 5, causal: -0.6, direct: -0.29 },
    { layer: 2, head: 2, causal: -0.4, direct: -0.24 },
    { layer: 3, head: 1, causal: 0, direct: -0.004 },
  ];
  it('puts direct on x and causal on y, labels the top of the causal ranking, and shows ρ in the title', () => {
    const f = causalScatterFigure(heads, { spearman: 0.8, highlight: 2 });
    const [rest, top] = f.data as { x: number[]; y: number[]; text: string[] }[];
    expect(top!.text).toEqual(['L1H5', 'L2H2']);
    expect(top!.x).toEqual([-0.29, -0.24]);
    expect(top!.y).toEqual([-0.6, -0.4]);
    expect(rest!.text).toEqual(['L0H0', 'L3H1']);
    expect((f.layout.title as { text: string }).text).toContain('ρ = 0.800');
  });
});
