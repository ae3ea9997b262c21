import { describe, expect, it } from 'vitest';
import { truncationFigure } from '../../src/renderer/src/lib/experiment-plots.js';

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
