import { describe, expect, it } from 'vitest';
import {
  argmaxIn,
  asrFigure,
  asrOverlayFigure,
  pctOfHeads,
  probeSweepOverlayFigure,
  COLORS,
  DIVERGING,
  figureTable,
  histogramBins,
  robustLimit,
  difference,
  epochFigure,
  headAlongTokens,
  headsHeatmapFigure,
  histogramFigure,
  hoverToken,
  residSweepFigure,
  residTokensFigure,
  maxAbs,
  metricRows,
  rowsOf,
  tailAlignedFigure,
  toFloat32,
  toPlotValues,
  tokenScoreFigure,
  type Shape,
} from '../../src/renderer/src/lib/plots.js';

const shapesOf = (fig: { layout: { shapes?: Shape[] } }) => fig.layout.shapes ?? [];

describe('token score figure', () => {
  // prompt 0..2, thinking 3..6 (closing marker at 7), t_b = 7, answer 8..9
  const scores = [0.1, 0.1, 0.2, 0.9, 0.95, NaN, 0.9, 0.08, 0.05, 0.04];
  const fig = tokenScoreFigure({
    scores,
    tokens: ['<s>', 'how', '<think>', 'okay', 'harmful', '', 'hmm', '</think>', 'sure', '\n'],
    promptTokens: 3,
    thinkingStart: 3,
    thinkingEnd: 7,
    answerBoundary: 7,
    plateau: 0.95,
    final: 0.08,
    ms: 0.87,
    steepestDropPos: 6,
  });

  it('plots every position, NaN as a gap, with the token text for hover', () => {
    const line = fig.data[0]!;
    expect(line.x).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect((line.y as unknown[])[5]).toBeNull();
    expect((line.text as string[])[2]).toBe('&lt;think&gt;');
    expect((line.text as string[])[9]).toBe('↵');
    expect((line.text as string[])[5]).toBe('∅');
  });

  it('shades the prompt and the thinking span and marks t_b', () => {
    const shapes = shapesOf(fig);
    const rects = shapes.filter((s) => s.type === 'rect');
    expect(rects.map((r) => [r.x0, r.x1, r.fillcolor])).toEqual([
      [-0.5, 2.5, COLORS.prompt],
      [2.5, 6.5, COLORS.thinking],
    ]);
    const boundary = shapes.find((s) => s.type === 'line' && s.x0 === 7 && s.x1 === 7);
    expect(boundary).toBeDefined();
    const plateauLine = shapes.find((s) => s.type === 'line' && s.y0 === 0.95);
    expect(plateauLine).toBeDefined();
  });

  it('marks the plateau at its argmax in the thinking span, the final score at t_b, and the steepest drop', () => {
    const byName = (prefix: string) => fig.data.find((d) => String(d.name).startsWith(prefix))!;
    expect(byName('plateau')).toMatchObject({ x: [4], y: [0.95], name: 'plateau I = 0.950' });
    expect(byName('final')).toMatchObject({ x: [7], y: [0.08], name: "final I' = 0.080" });
    expect(byName('steepest')).toMatchObject({ x: [6], y: [0.9] });
    expect((fig.layout.title as { text: string }).text).toBe("MS = I − I' = 0.870");
  });

  it('leaves thinking open to the end when it never closed, and needs no metrics', () => {
    const open = tokenScoreFigure({ scores: [0.1, 0.5, 0.6], thinkingStart: 1, thinkingEnd: null });
    expect(shapesOf(open).filter((s) => s.type === 'rect').map((r) => [r.x0, r.x1])).toEqual([[0.5, 2.5]]);
    expect(open.data).toHaveLength(1);
  });

  it('frees the y range for head scores', () => {
    const heads = tokenScoreFigure({ scores: [-3, 2], unitRange: false, yTitle: 'head score' });
    expect((heads.layout.yaxis as { range?: unknown }).range).toBeUndefined();
  });
});

describe('helpers', () => {
  it('argmax skips missing values and stays in the span', () => {
    expect(argmaxIn([0.9, 0.1, NaN, 0.5, null], 1, 5)).toBe(3);
    expect(argmaxIn([NaN, null], 0, 2)).toBeNull();
  });
  it('escapes HTML in hover text and shows whitespace', () => {
    expect(hoverToken('<b>&')).toBe('&lt;b&gt;&amp;');
    expect(hoverToken(' word ')).toBe('·word·');
    expect(hoverToken('\t')).toBe('⇥');
  });
  it('turns NaN into null for plotly', () => {
    expect(toPlotValues(Float32Array.from([1, NaN, 2]))).toEqual([1, null, 2]);
    expect(toFloat32([1, null])[1]).toBeNaN();
  });
});

describe('tail-aligned figures', () => {
  it('draws x in percent, a std band, and shades the last 5 % as the cliff', () => {
    const fig = tailAlignedFigure([{ name: 'harmful', positions: [0, 0.5, 1], mean: [0.9, 0.95, 0.1], std: [0.01, 0.02, 0.05] }]);
    expect(fig.data).toHaveLength(3);
    const [upper, lower, mean] = fig.data;
    expect(mean!.x).toEqual([0, 50, 100]);
    expect(upper!.y).toEqual([0.91, 0.97, 0.15000000000000002]);
    expect(lower!.fill).toBe('tonexty');
    const cliff = shapesOf(fig).find((s) => s.type === 'rect')!;
    expect([cliff.x0, cliff.x1, cliff.fillcolor]).toEqual([95, 100, COLORS.cliff]);
  });

  it('draws no cliff region for curves without a cliff (a harmless set)', () => {
    const fig = tailAlignedFigure([{ name: 'harmless', positions: [0, 1], mean: [0.02, 0.01] }], { cliff: false });
    expect(shapesOf(fig)).toEqual([]);
    expect(fig.layout.annotations).toEqual([]);
  });
});

describe('heatmaps', () => {
  const scores = Float32Array.from([0, -2, 1, 0.5, 0, -0.25]); // 2 layers × 3 heads

  it('splits row-major scores into typed rows without copying', () => {
    const rows = rowsOf(scores, 2, 3);
    expect(rows.map((r) => Array.from(r))).toEqual([
      [0, -2, 1],
      [0.5, 0, -0.25],
    ]);
    expect(rows[0]!.buffer).toBe(scores.buffer);
    expect(() => rowsOf(scores, 3, 3)).toThrow('expected 3×3 values');
  });

  it('uses a diverging scale, white at 0, with robust symmetric limits, and outlines the ablation set', () => {
    const fig = headsHeatmapFigure(scores, 2, 3, { highlight: [{ layer: 0, head: 1 }] });
    const h = fig.data[0]!;
    expect(h.type).toBe('heatmap');
    expect(h.colorscale).toBe(DIVERGING);
    expect(DIVERGING.find(([at]) => at === 0.5)![1]).toBe('#ffffff');
    expect(h.zmid).toBe(0);
    expect(h.zmin).toBe(-(h.zmax as number));
    expect(h.zmax).toBeCloseTo(robustLimit(scores), 6);
    expect((h.z as Float32Array[])[0]).toBeInstanceOf(Float32Array);
    expect(shapesOf(fig)).toEqual([expect.objectContaining({ x0: 0.5, x1: 1.5, y0: -0.5, y1: 0.5 })]);
    expect(maxAbs([0, 0])).toBe(1e-9);
    expect(maxAbs([NaN, -3])).toBe(3);
  });

  it('sets the colour limit at a high quantile of |s|, so one very large head does not wash the suppression heads out', () => {
    // 32 heads: three suppression heads at −1, one huge positive head at +10, the rest small.
    const map = Array.from({ length: 32 }, (_, i) => (i < 3 ? -1 : i === 3 ? 10 : 0.01 * (i % 5)));
    const limit = robustLimit(map);
    expect(limit).toBeLessThan(2); // not 10: the −1 heads show at (nearly) full red
    expect(limit).toBeGreaterThanOrEqual(1 - 1e-9);
    const fig = headsHeatmapFigure(map, 4, 8);
    expect(fig.data[0]!.zmax).toBeCloseTo(limit, 6);
    expect(String((fig.data[0]!.colorbar as { title: { text: string } }).title.text)).toContain('q95');
    expect(robustLimit([0, 0, NaN])).toBe(1e-9);
    expect(robustLimit([2, -2])).toBe(2);
  });

  it('subtracts two maps of the same shape', () => {
    expect(Array.from(difference([1, 2], [0.5, 3]))).toEqual([0.5, -1]);
    expect(() => difference([1], [1, 2])).toThrow('maps differ in size');
  });

  it('reads one head along the tokens of a per-token map', () => {
    // 2 layers × 2 heads × 3 tokens
    const data = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    expect(headAlongTokens(data, 2, 3, { layer: 1, head: 0 })).toEqual([6, 7, 8]);
    expect(() => headAlongTokens(data, 2, 3, { layer: 2, head: 0 })).toThrow('outside');
  });

  it('orders the residual stream × tokens map by residual-stack index', () => {
    const fig = residTokensFigure(
      [
        { residIndex: 5, scores: [0.9, 0.1] },
        { residIndex: 2, scores: [0.5, NaN] },
      ],
      { answerBoundary: 1 },
    );
    expect(fig.data[0]!.y).toEqual(['resid 2', 'resid 5']);
    expect(fig.data[0]!.z).toEqual([
      [0.5, null],
      [0.9, 0.1],
    ]);
    expect(shapesOf(fig)).toHaveLength(1);
  });
});

describe('metric charts', () => {
  it('histograms skip missing values and draw the threshold', () => {
    const fig = histogramFigure([{ name: 'MS', values: [0.1, null, 0.9, 0.5] }], { xTitle: 'MS', threshold: 0.7 });
    expect(fig.data[0]!.x).toEqual([0.1, 0.9, 0.5]);
    expect(shapesOf(fig)[0]).toMatchObject({ x0: 0.7, x1: 0.7 });
    expect(fig.layout.annotations![0]!.text).toBe('threshold 0.700');
  });

  it('bins finely enough to see the threshold, with a bin edge on it', () => {
    const values = Array.from({ length: 400 }, (_, i) => i / 400);
    const bins = histogramBins(values, { threshold: 0.6543 });
    expect((1 - 1 / 400) / bins.size).toBeGreaterThanOrEqual(39); // 2·√400 = 40 bins over the range
    const k = (0.6543 - bins.start) / bins.size;
    expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-6);
    expect(bins.start).toBeLessThanOrEqual(0);
    expect(histogramBins([0.1, 0.2]).size).toBeCloseTo(0.1 / 20, 9); // at least 20 bins
  });

  it('lists every number a figure draws as a table: points, bins, cells', () => {
    const hist = figureTable(histogramFigure([{ name: 'MS', values: [0.1, 0.15, 0.9] }], { xTitle: 'MS', bins: 4 }));
    expect(hist.yLabel).toBe('count');
    expect(hist.rows.reduce((n, r) => n + Number(r.y), 0)).toBe(3);
    const heat = figureTable(headsHeatmapFigure([1, -2, 3, 4], 2, 2, { colorbarTitle: 'w·Δh' }));
    expect(heat.valueLabel).toBe('w·Δh');
    expect(heat.rows.map((r) => [r.y, r.x, r.value])).toEqual([[0, 0, 1], [0, 1, -2], [1, 0, 3], [1, 1, 4]]);
  });

  it('charts accuracy and AUROC per residual-stack index, sorted, with the chosen one', () => {
    const fig = residSweepFigure(
      [
        { residIndex: 3, valAccuracy: 0.9, valAuroc: 0.95 },
        { residIndex: 1, valAccuracy: 0.6, valAuroc: null },
      ],
      { chosen: 3 },
    );
    expect(fig.data[0]!.x).toEqual([1, 3]);
    // AUROC is drawn first, wider, with larger open markers, so accuracy on top of it never hides it (or is hidden).
    expect(fig.data.map((d) => d.name)).toEqual(['AUROC', 'validation accuracy']);
    expect(fig.data[0]!.y).toEqual([null, 0.95]);
    expect((fig.data[0]!.line as { width: number }).width).toBeGreaterThan((fig.data[1]!.line as { width: number }).width);
    expect((fig.data[0]!.marker as { size: number }).size).toBeGreaterThan((fig.data[1]!.marker as { size: number }).size);
    expect(shapesOf(fig)[0]).toMatchObject({ x0: 3 });
  });

  it('marks the best epoch (0-based in the engine) on the training curves', () => {
    const fig = epochFigure({ trainLoss: [0.7, 0.3], valLoss: [0.8, 0.4], valAccuracyPerEpoch: [0.5, 1], bestEpoch: 1 });
    // Train loss is drawn after (on top of) the wider validation loss, dashed: equal losses still show both lines.
    expect(fig.data.map((d) => d.name)).toEqual(['validation loss', 'train loss', 'validation accuracy']);
    expect(fig.data[1]!.line).toMatchObject({ dash: 'dash' });
    expect((fig.data[0]!.line as { width: number }).width).toBeGreaterThan((fig.data[1]!.line as { width: number }).width);
    expect(shapesOf(fig)[0]).toMatchObject({ x0: 2 });
    expect(fig.layout.annotations).toEqual([expect.objectContaining({ x: 2, text: 'best epoch 2 (kept)' })]);
  });

  it('draws ASR vs % heads: a line per γ for top-k and for random, each from the baseline', () => {
    const cells = [
      { key: 'baseline', control: 'top', k: 0, fraction: 0, gamma: 1, asr: 1 },
      { key: 'top:k1:g0', control: 'top', k: 1, fraction: 0.03, gamma: 0, asr: 0.4 },
      { key: 'top:k3:g0', control: 'top', k: 3, fraction: 0.1, gamma: 0, asr: 0 },
      { key: 'random:k1:g0:s2', control: 'random', k: 1, fraction: 0.03, gamma: 0, asr: 1 },
      { key: 'top:k1:g0.5', control: 'top', k: 1, fraction: 0.03, gamma: 0.5, asr: null },
      { key: 'planted:k3:g0', control: 'planted', k: 3, fraction: 3 / 32, gamma: 0, asr: 0 },
    ];
    const fig = asrFigure(cells);
    expect(fig.data.map((d) => d.name)).toEqual(['top-k γ=0', 'random γ=0', 'top-k γ=0.5', 'named head sets']);
    const top0 = fig.data[0]!;
    expect(top0.x).toEqual([0, 3, 10]);
    expect(top0.y).toEqual([100, 40, 0]);
    expect(fig.data[1]!.y).toEqual([100, 100]);
    expect(fig.data[1]!.line).toMatchObject({ dash: 'dash' });
    expect(fig.data[2]!.y).toEqual([100, null]);
    expect(fig.data[3]!.x).toEqual([(100 * 3) / 32]);
  });

  it('puts the heads actually ablated on x, k / (L·H), not the fraction asked for', () => {
    // 5 % of 32 heads asks for 1.6 heads; the sweep ablated k = 2: 6.25 %.
    const cells = [
      { key: 'baseline', control: 'top', k: 0, fraction: 0, gamma: 1, asr: 1 },
      { key: 'top:k2:g0', control: 'top', k: 2, fraction: 0.05, gamma: 0, asr: 0.5 },
    ];
    const fig = asrFigure(cells, { totalHeads: 32 });
    expect(fig.data[0]!.x).toEqual([0, 6.25]);
    expect((fig.layout.xaxis as { title: { text: string } }).title.text).toMatch(/k \/ \(layers × heads\)/);
  });

  it('draws random controls over seeds as mean ± std with each seed, distinguishable from a top-k point under them', () => {
    const cells = [
      { key: 'baseline', control: 'top', k: 0, fraction: 0, gamma: 1, asr: 1 },
      { key: 'top:k4:g0', control: 'top', k: 4, fraction: 0.1, gamma: 0, asr: 1 },
      { key: 'random:k4:g0:s0', control: 'random', k: 4, fraction: 0.1, gamma: 0, asr: 1 },
      { key: 'random:k4:g0:s1', control: 'random', k: 4, fraction: 0.1, gamma: 0, asr: 0.8 },
      { key: 'random:k4:g0:s2', control: 'random', k: 4, fraction: 0.1, gamma: 0, asr: 0.9 },
    ];
    const spread = [{ k: 4, gamma: 0, keys: ['random:k4:g0:s0', 'random:k4:g0:s1', 'random:k4:g0:s2'], mean: 0.9, std: 0.1, n: 3 }];
    const fig = asrFigure(cells, { totalHeads: 40, spread });
    expect(fig.data.map((d) => d.name)).toEqual(['top-k γ=0', 'random γ=0 (mean ± std)', 'random γ=0, each seed']);
    const [top, mean, seeds] = fig.data;
    expect(mean!.x).toEqual([0, 10]);
    expect(mean!.y).toEqual([100, 90]);
    expect(mean!.error_y).toMatchObject({ type: 'data', visible: true });
    expect((mean!.error_y as { array: number[] }).array[1]).toBeCloseTo(10, 12);
    expect(seeds!.y).toEqual([100, 80, 90]);
    // Where top-k and random coincide (100 % at 10 %), their markers differ in symbol and size, so both show.
    expect((top!.marker as { symbol: string }).symbol).not.toBe((mean!.marker as { symbol: string }).symbol);
    expect((mean!.marker as { size: number }).size).toBeGreaterThan((top!.marker as { size: number }).size);
  });

  it('pivots compared runs’ headline numbers into one row per metric, with its unit', () => {
    const rows = metricRows([
      { run: { id: 4, kind: 'trace' }, headline: [{ key: 'meanMs', label: 'mean MS', unit: 'number', value: 0.9, delta: null }] },
      { run: { id: 5, kind: 'trace' }, headline: [{ key: 'meanMs', label: 'mean MS', unit: 'number', value: 0.2, delta: -0.7 }] },
      { run: { id: 6, kind: 'heads' }, headline: [{ key: 'transcripts', label: 'transcripts', unit: 'count', value: 30, delta: null }] },
    ]);
    expect(rows).toEqual([
      { key: 'trace:meanMs', label: 'mean MS', kind: 'trace', unit: 'number', values: { 4: { value: 0.9, delta: null }, 5: { value: 0.2, delta: -0.7 } } },
      { key: 'heads:transcripts', label: 'transcripts', kind: 'heads', unit: 'count', values: { 6: { value: 30, delta: null } } },
    ]);
  });

  it('overlays several ablation runs’ ASR curves against k / (L·H), so one head set sits at one x in every run', () => {
    const cells = (fraction: number) => [
      { key: 'baseline', control: 'none', k: 0, fraction: 0, gamma: 1, asr: 1 },
      { key: 'top:k3:g0', control: 'top', k: 3, fraction, gamma: 0, asr: 0 },
      { key: 'random:k3:g0', control: 'random', k: 3, fraction, gamma: 0, asr: 0.9 },
    ];
    // Two runs asked for different fractions that both gave k = 3 of 32 heads.
    const fig = asrOverlayFigure([
      { name: 'A', totalHeads: 32, cells: cells(0.03) },
      { name: 'B', totalHeads: 32, cells: cells(0.1) },
    ]);
    expect(fig.data.map((t) => t.name)).toEqual(['A: top-k γ=0', 'A: random γ=0', 'B: top-k γ=0', 'B: random γ=0']);
    for (const t of fig.data) expect((t.x as number[]).at(-1)).toBeCloseTo((100 * 3) / 32, 9);
    expect(fig.data[0]!.y).toEqual([100, 0]);
    expect(pctOfHeads({ k: 2, fraction: 0.05 }, null)).toBe(5);
  });

  it('overlays probe runs’ validation accuracy per residual-stack index', () => {
    const fig = probeSweepOverlayFigure([{ name: '#3', probes: [{ residIndex: 2, valAccuracy: 0.5 }, { residIndex: 1, valAccuracy: 1 }] }]);
    expect([fig.data[0]!.x, fig.data[0]!.y]).toEqual([[1, 2], [100, 50]]);
  });
});
