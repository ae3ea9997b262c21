/**
 * Plotly figures for the method's plots (docs/METHOD.md §8), built from API data by pure functions: no DOM, no plotly
 * import (Plot.svelte loads plotly lazily and applies the theme's colours), so they are unit-tested in node.
 *
 * Token positions are transcript indices (prompt + output, 0-based), as the store keeps them. Thinking spans are
 * [thinkingStart, thinkingEnd) and the answer boundary t_b is the last token before the answer (docs/METHOD.md §0).
 */
import { headLabel, type HeadRef } from '../../../shared/heads.js';

/** Plotly's JSON: traces and a layout. Loosely typed on purpose: plotly's own schema is huge. */
export type Trace = Record<string, unknown>;
export type Layout = Record<string, unknown> & { shapes?: Shape[]; annotations?: Annotation[] };
export type Shape = Record<string, unknown>;
export type Annotation = Record<string, unknown>;
export interface Figure {
  data: Trace[];
  layout: Layout;
}

/** Colours readable on both themes. */
export const COLORS = {
  score: '#3b6fd4',
  thinking: 'rgba(91, 141, 239, 0.14)',
  prompt: 'rgba(128, 128, 128, 0.10)',
  cliff: 'rgba(214, 69, 65, 0.16)',
  boundary: '#d64541',
  plateau: '#2e9d5b',
  final: '#d64541',
  drop: '#e08a00',
  threshold: '#d64541',
  random: '#8a8f98',
} as const;

/** Legends go to the right of the plot, where they never cover an axis title. */
const LEGEND = { x: 1.02, y: 1, xanchor: 'left', yanchor: 'top' } as const;

/** Colour per γ for the ablation lines (top-k solid, random dashed in the same colour). */
export const GAMMA_COLORS = ['#3b6fd4', '#d64541', '#2e9d5b', '#9c5bd4', '#e08a00', '#1b9aaa'];

/**
 * Diverging scale for signed maps (ColorBrewer RdBu), white at 0 (with zmid 0): red = negative (suppresses refusal),
 * blue = positive (writes it). Symmetric limits make equal |s| equally strong on both sides.
 */
export const DIVERGING: [number, string][] = [
  [0, '#67001f'],
  [0.1, '#b2182b'],
  [0.2, '#d6604d'],
  [0.3, '#f4a582'],
  [0.4, '#fddbc7'],
  [0.5, '#ffffff'],
  [0.6, '#d1e5f0'],
  [0.7, '#92c5de'],
  [0.8, '#4393c3'],
  [0.9, '#2166ac'],
  [1, '#053061'],
];

/** NaN (a position without a residual) → null, which plotly draws as a gap. */
export function toPlotValues(values: ArrayLike<number | null>): (number | null)[] {
  const out: (number | null)[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = v === null || v === undefined || Number.isNaN(v) ? null : v;
  }
  return out;
}

/** Position of the highest score in [from, to) (the plateau's argmax); null when the span has no score. */
export function argmaxIn(values: ArrayLike<number | null>, from: number, to: number): number | null {
  let best: number | null = null;
  let bestValue = -Infinity;
  for (let i = Math.max(0, from); i < Math.min(values.length, to); i++) {
    const v = values[i];
    if (v === null || v === undefined || Number.isNaN(v)) continue;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** A token's text as plain text (labels, tables): newlines, tabs, leading/trailing spaces and the empty token made visible. */
export function visibleToken(text: string): string {
  return text.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/^ | $/g, '·') || '∅';
}

/** A token's text for hover labels: visible as above, HTML-special characters escaped (plotly renders HTML). */
export function hoverToken(text: string): string {
  return visibleToken(text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
}

function vline(x: number, color: string, dash = 'dash'): Shape {
  return { type: 'line', xref: 'x', yref: 'paper', x0: x, x1: x, y0: 0, y1: 1, line: { color, width: 1.5, dash } };
}

function hline(y: number, color: string, dash = 'dot'): Shape {
  return { type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: y, y1: y, line: { color, width: 1, dash } };
}

function band(x0: number, x1: number, fill: string): Shape {
  return { type: 'rect', xref: 'x', yref: 'paper', x0, x1, y0: 0, y1: 1, fillcolor: fill, line: { width: 0 }, layer: 'below' };
}

function label(x: number, text: string, opts: Partial<Annotation> = {}): Annotation {
  return { x, y: 1, xref: 'x', yref: 'paper', yanchor: 'bottom', text, showarrow: false, font: { size: 11 }, ...opts };
}

// ---------------------------------------------------------------------------------------------------------------------
// Refusal score per token

export interface TokenScoreInput {
  scores: ArrayLike<number | null>;
  /** Each position's token text (hover); optional. */
  tokens?: readonly string[];
  /** First generated (or supplied response) token: the prompt before it is greyed. */
  promptTokens?: number | null;
  thinkingStart?: number | null;
  /** Exclusive; null with thinkingStart set = thinking still open (live) or never closed. */
  thinkingEnd?: number | null;
  answerBoundary?: number | null;
  /** Plateau I, final I', MS, and the steepest drop's start, as stored for the trace. */
  plateau?: number | null;
  final?: number | null;
  ms?: number | null;
  steepestDropPos?: number | null;
  name?: string;
  yTitle?: string;
  /** Fix the y axis to [0, 1] (probabilities); off for head scores. */
  unitRange?: boolean;
}

/**
 * One transcript's score per token: the thinking span shaded, the answer boundary t_b as a dashed line, the plateau
 * I (a dotted line, and a marker at its argmax in the thinking span), the final score I' marked at t_b, and the
 * steepest drop's start. Hover shows the position, the token's text and the score.
 */
export function tokenScoreFigure(input: TokenScoreInput): Figure {
  const y = toPlotValues(input.scores);
  const n = y.length;
  const x = Array.from({ length: n }, (_, i) => i);
  const text = input.tokens ? x.map((i) => hoverToken(input.tokens![i] ?? '')) : undefined;
  const data: Trace[] = [
    {
      type: 'scatter',
      mode: 'lines',
      name: input.name ?? 'refusal score',
      x,
      y,
      line: { color: COLORS.score, width: 1.8 },
      ...(text ? { text, hovertemplate: '#%{x} <b>%{text}</b><br>%{y:.4f}<extra></extra>' } : { hovertemplate: '#%{x}: %{y:.4f}<extra></extra>' }),
    },
  ];
  const shapes: Shape[] = [];
  const annotations: Annotation[] = [];
  if (input.promptTokens !== null && input.promptTokens !== undefined && input.promptTokens > 0) {
    shapes.push(band(-0.5, input.promptTokens - 0.5, COLORS.prompt));
    annotations.push(label((input.promptTokens - 1) / 2, 'prompt', { font: { size: 11, color: '#8a8f98' } }));
  }
  const ts = input.thinkingStart;
  if (ts !== null && ts !== undefined) {
    const te = input.thinkingEnd ?? n;
    shapes.push(band(ts - 0.5, te - 0.5, COLORS.thinking));
    annotations.push(label((ts + te - 1) / 2, 'thinking'));
    const plateauPos = argmaxIn(y, ts, te);
    if (input.plateau !== null && input.plateau !== undefined) {
      shapes.push(hline(input.plateau, COLORS.plateau));
      if (plateauPos !== null) {
        data.push({
          type: 'scatter',
          mode: 'markers',
          name: `plateau I = ${input.plateau.toFixed(3)}`,
          x: [plateauPos],
          y: [input.plateau],
          marker: { color: COLORS.plateau, size: 9, symbol: 'triangle-up' },
          hovertemplate: `plateau I #%{x}: %{y:.4f}<extra></extra>`,
        });
      }
    }
  }
  const tb = input.answerBoundary;
  if (tb !== null && tb !== undefined) {
    shapes.push(vline(tb, COLORS.boundary));
    annotations.push(label(tb, 't<sub>b</sub>', { xanchor: 'left', font: { size: 11, color: COLORS.boundary } }));
    if (input.final !== null && input.final !== undefined) {
      data.push({
        type: 'scatter',
        mode: 'markers',
        name: `final I' = ${input.final.toFixed(3)}`,
        x: [tb],
        y: [input.final],
        marker: { color: COLORS.final, size: 10, symbol: 'x' },
        hovertemplate: `final I' #%{x}: %{y:.4f}<extra></extra>`,
      });
    }
  }
  const drop = input.steepestDropPos;
  if (drop !== null && drop !== undefined && drop >= 0 && drop < n && y[drop] !== null) {
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: 'steepest drop',
      x: [drop],
      y: [y[drop]],
      marker: { color: COLORS.drop, size: 9, symbol: 'diamond' },
      hovertemplate: `steepest drop starts #%{x}<extra></extra>`,
    });
  }
  const title = input.ms !== null && input.ms !== undefined ? `MS = I − I' = ${input.ms.toFixed(3)}` : undefined;
  return {
    data,
    layout: {
      ...(title ? { title: { text: title, font: { size: 13 } } } : {}),
      xaxis: { title: { text: 'token position' }, zeroline: false },
      yaxis: { title: { text: input.yTitle ?? 'refusal score r<sub>t</sub>' }, ...(input.unitRange === false ? {} : { range: [-0.02, 1.05] }) },
      shapes,
      annotations,
      showlegend: true,
      legend: LEGEND,
      hovermode: 'closest',
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Tail-aligned averages

export interface AlignedCurve {
  name: string;
  /** Normalised positions in [0, 1] (0 = first generated token, 1 = t_b). */
  positions: ArrayLike<number>;
  mean: ArrayLike<number | null>;
  std?: ArrayLike<number | null> | null;
  count?: ArrayLike<number> | null;
}

/**
 * Tail-aligned average curves (the paper's figures): x in % of the way to t_b, a ±1 std band per curve, and the last
 * `tailFraction` (5 %) shaded as the cliff region when `cliff` (the curves have one).
 */
export function tailAlignedFigure(curves: readonly AlignedCurve[], opts: { tailFraction?: number; title?: string; cliff?: boolean } = {}): Figure {
  const tail = opts.tailFraction ?? 0.05;
  // The region is shaded only where there is a cliff (the API's hasCliff, docs/METHOD.md §2); default: shaded.
  const cliff = opts.cliff ?? true;
  const data: Trace[] = [];
  curves.forEach((c, i) => {
    const color = GAMMA_COLORS[i % GAMMA_COLORS.length]!;
    const x = Array.from(c.positions, (p) => p * 100);
    const mean = toPlotValues(c.mean);
    if (c.std) {
      const std = toPlotValues(c.std);
      const upper = mean.map((m, k) => (m === null || std[k] === null ? null : m + std[k]!));
      const lower = mean.map((m, k) => (m === null || std[k] === null ? null : m - std[k]!));
      // The band: upper edge, then lower edge filled up to it ("tonexty").
      data.push({ type: 'scatter', mode: 'lines', x, y: upper, line: { width: 0, color }, hoverinfo: 'skip', showlegend: false, legendgroup: c.name });
      data.push({
        type: 'scatter',
        mode: 'lines',
        x,
        y: lower,
        line: { width: 0, color },
        fill: 'tonexty',
        fillcolor: withAlpha(color, 0.15),
        hoverinfo: 'skip',
        showlegend: false,
        legendgroup: c.name,
      });
    }
    data.push({
      type: 'scatter',
      mode: 'lines',
      name: c.name,
      x,
      y: mean,
      line: { color, width: 2 },
      legendgroup: c.name,
      hovertemplate: `${escapeHtml(c.name)}<br>%{x:.0f}%: %{y:.4f}<extra></extra>`,
    });
  });
  return {
    data,
    layout: {
      ...(opts.title ? { title: { text: opts.title, font: { size: 13 } } } : {}),
      xaxis: { title: { text: 'position, tail-aligned (% of the way to t<sub>b</sub>)' }, range: [0, 100] },
      yaxis: { title: { text: 'mean refusal score' }, range: [-0.02, 1.05] },
      shapes: cliff ? [band(100 * (1 - tail), 100, COLORS.cliff)] : [],
      annotations: cliff ? [label(100 * (1 - tail / 2), 'cliff', { font: { size: 11, color: COLORS.boundary } })] : [],
      showlegend: true,
      legend: LEGEND,
      hovermode: 'closest',
    },
  };
}

/** "#rrggbb" → "rgba(r, g, b, a)". */
export function withAlpha(hex: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1]!, 16)}, ${parseInt(m[2]!, 16)}, ${parseInt(m[3]!, 16)}, ${alpha})`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// ---------------------------------------------------------------------------------------------------------------------
// Heatmaps

/** Row-major [rows × cols] values as one typed row per y (plotly takes typed arrays and copies nothing). */
export function rowsOf(values: ArrayLike<number>, rows: number, cols: number): Float32Array[] {
  const src = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  if (src.length < rows * cols) throw new Error(`expected ${rows}×${cols} values, got ${src.length}`);
  return Array.from({ length: rows }, (_, r) => src.subarray(r * cols, (r + 1) * cols));
}

/** The largest |v| (for a symmetric colour range); 1e-9 for all-zero maps so plotly has a range. */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = Math.abs(values[i]!);
    if (Number.isFinite(v) && v > m) m = v;
  }
  return m || 1e-9;
}

/** Which quantile of |s| sets a heatmap's colour limits (ROBUST_QUANTILE): cells beyond it show at full colour. */
export const ROBUST_QUANTILE = 0.95;

/**
 * A robust symmetric colour limit: the `q` quantile of the finite |v| (linear interpolation between order
 * statistics), so one very large head does not wash every other cell out to white; at least a small positive number.
 * With few cells the largest one or two lie beyond it.
 */
export function robustLimit(values: ArrayLike<number>, q = ROBUST_QUANTILE): number {
  const abs: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = Math.abs(values[i]!);
    if (Number.isFinite(v)) abs.push(v);
  }
  if (!abs.length) return 1e-9;
  abs.sort((a, b) => a - b);
  const rank = q * (abs.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, abs.length - 1);
  const limit = abs[lo]! + (abs[hi]! - abs[lo]!) * (rank - lo);
  return limit > 0 ? limit : abs[abs.length - 1]! || 1e-9;
}

/**
 * Layers × heads attribution (row-major scores[layer * heads + head]) as a heatmap: diverging colours, white at 0,
 * symmetric limits at the robust limit of |s| (cells beyond it at full colour; hover shows every true value);
 * `highlight` heads get an outline (the ablation set).
 */
export function headsHeatmapFigure(
  scores: ArrayLike<number>,
  layers: number,
  heads: number,
  opts: { title?: string; highlight?: readonly HeadRef[]; colorbarTitle?: string } = {},
): Figure {
  const z = rowsOf(scores, layers, heads);
  const m = robustLimit(scores);
  const clipped = maxAbs(scores) > m;
  const shapes: Shape[] = (opts.highlight ?? []).map((h) => ({
    type: 'rect',
    xref: 'x',
    yref: 'y',
    x0: h.head - 0.5,
    x1: h.head + 0.5,
    y0: h.layer - 0.5,
    y1: h.layer + 0.5,
    line: { color: '#f0b400', width: 2.5 },
  }));
  const title = opts.colorbarTitle ?? 'score';
  return {
    data: [
      {
        type: 'heatmap',
        z,
        x: Array.from({ length: heads }, (_, i) => i),
        y: Array.from({ length: layers }, (_, i) => i),
        colorscale: DIVERGING,
        zmid: 0,
        zmin: -m,
        zmax: m,
        xgap: 1,
        ygap: 1,
        colorbar: { title: { text: clipped ? `${title}<br><sup>±${m.toPrecision(2)} = q${Math.round(ROBUST_QUANTILE * 100)} of |s|</sup>` : title } },
        hovertemplate: 'L%{y}H%{x}: %{z:.4f}<extra></extra>',
      },
    ],
    layout: {
      ...(opts.title ? { title: { text: opts.title, font: { size: 13 } } } : {}),
      xaxis: { title: { text: 'head' }, dtick: heads > 20 ? 4 : 1, zeroline: false, showgrid: false },
      yaxis: { title: { text: 'layer' }, dtick: layers > 20 ? 4 : 1, zeroline: false, showgrid: false },
      shapes,
    },
  };
}

/** Element-wise a − b of two equally shaped maps (the Compare panel's heads difference). */
export function difference(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  if (a.length !== b.length) throw new Error(`maps differ in size (${a.length} vs ${b.length})`);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

/** Probes at several residual-stack entries scoring one transcript: entries (rows) × token positions, in [0, 1]. */
export function residTokensFigure(rows: readonly { residIndex: number; scores: ArrayLike<number | null> }[], opts: { tokens?: readonly string[]; answerBoundary?: number | null } = {}): Figure {
  const sorted = [...rows].sort((a, b) => a.residIndex - b.residIndex);
  const n = Math.max(0, ...sorted.map((r) => r.scores.length));
  const x = Array.from({ length: n }, (_, i) => i);
  const text = opts.tokens ? sorted.map(() => x.map((i) => hoverToken(opts.tokens![i] ?? ''))) : undefined;
  return {
    data: [
      {
        type: 'heatmap',
        z: sorted.map((r) => toPlotValues(r.scores)),
        x,
        y: sorted.map((r) => `resid ${r.residIndex}`),
        zmin: 0,
        zmax: 1,
        colorscale: 'Viridis',
        colorbar: { title: { text: 'r<sub>t</sub>' } },
        ...(text ? { text, hovertemplate: '%{y} #%{x} <b>%{text}</b>: %{z:.3f}<extra></extra>' } : { hovertemplate: '%{y} #%{x}: %{z:.3f}<extra></extra>' }),
      },
    ],
    layout: {
      xaxis: { title: { text: 'token position' } },
      yaxis: { title: { text: 'probe (residual-stack index)' }, type: 'category' },
      shapes: opts.answerBoundary !== null && opts.answerBoundary !== undefined ? [vline(opts.answerBoundary, COLORS.boundary)] : [],
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Histograms and metric charts

/**
 * Histogram bins for `values`: about 2·√n of them (at least 20, at most 100), with a bin edge on `threshold` when
 * there is one, so a bar never straddles the selection cut.
 */
export function histogramBins(values: readonly number[], opts: { bins?: number; threshold?: number | null } = {}): { start: number; end: number; size: number } {
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const n = opts.bins ?? Math.min(100, Math.max(20, Math.round(2 * Math.sqrt(values.length))));
  const size = hi > lo ? (hi - lo) / n : 0.05;
  const t = opts.threshold;
  const start = t !== null && t !== undefined && Number.isFinite(t) ? t - Math.ceil((t - lo) / size + 1e-9) * size : lo - size / 2;
  return { start, end: hi + size, size };
}

/** A histogram of a metric (MS, plateau, final), with an optional threshold line (the selection cut) on a bin edge. */
export function histogramFigure(
  series: readonly { name: string; values: readonly (number | null)[] }[],
  opts: { xTitle: string; threshold?: number | null; thresholdLabel?: string; bins?: number } = { xTitle: 'value' },
): Figure {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const xbins = histogramBins(all, { bins: opts.bins, threshold: opts.threshold });
  const data: Trace[] = series.map((s, i) => ({
    type: 'histogram',
    name: s.name,
    x: s.values.filter((v): v is number => v !== null && Number.isFinite(v)),
    xbins,
    marker: { color: GAMMA_COLORS[i % GAMMA_COLORS.length] },
    opacity: series.length > 1 ? 0.6 : 0.85,
  }));
  const shapes: Shape[] = [];
  const annotations: Annotation[] = [];
  if (opts.threshold !== null && opts.threshold !== undefined && Number.isFinite(opts.threshold)) {
    shapes.push(vline(opts.threshold, COLORS.threshold));
    annotations.push(label(opts.threshold, opts.thresholdLabel ?? `threshold ${opts.threshold.toFixed(3)}`, { xanchor: 'left', font: { size: 11, color: COLORS.threshold } }));
  }
  return {
    data,
    layout: {
      barmode: 'overlay',
      xaxis: { title: { text: opts.xTitle } },
      yaxis: { title: { text: 'count' } },
      shapes,
      annotations,
      showlegend: series.length > 1,
      legend: LEGEND,
    },
  };
}

/** Validation accuracy and AUROC per residual-stack index from a sweep; the chosen one marked. */
export function residSweepFigure(
  rows: readonly { residIndex: number; valAccuracy: number | null; valAuroc: number | null }[],
  opts: { chosen?: number | null } = {},
): Figure {
  const sorted = [...rows].sort((a, b) => a.residIndex - b.residIndex);
  const x = sorted.map((r) => r.residIndex);
  return {
    data: [
      // AUROC underneath, wide and light with large open markers; accuracy on top, so equal values show both.
      { type: 'scatter', mode: 'lines+markers', name: 'AUROC', x, y: sorted.map((r) => r.valAuroc), line: { color: withAlpha(GAMMA_COLORS[1]!, 0.55), width: 5 }, marker: { symbol: 'diamond-open', size: 11, line: { width: 2 } }, hovertemplate: 'resid %{x}: AUROC %{y:.3f}<extra></extra>' },
      { type: 'scatter', mode: 'lines+markers', name: 'validation accuracy', x, y: sorted.map((r) => r.valAccuracy), line: { color: GAMMA_COLORS[0], width: 2 }, marker: { symbol: 'circle', size: 6 }, hovertemplate: 'resid %{x}: accuracy %{y:.3f}<extra></extra>' },
    ],
    layout: {
      xaxis: { title: { text: 'residual-stack index (0 = embeddings, L+1 = final norm)' }, dtick: 1 },
      yaxis: { title: { text: 'validation metric' }, range: [0, 1.05] },
      shapes: opts.chosen !== null && opts.chosen !== undefined ? [vline(opts.chosen, COLORS.plateau, 'dot')] : [],
      showlegend: true,
      legend: LEGEND,
    },
  };
}

export interface SweepCellPoint {
  key: string;
  control: string;
  k: number;
  fraction: number | null;
  gamma: number;
  asr: number | null;
}

/** The random controls of one k and γ over their seeds (sweep.cells randomSpread, one judge's ASR): mean ± std. */
export interface RandomSpreadPoint {
  k: number;
  gamma: number;
  keys: readonly string[];
  mean: number | null;
  std: number | null;
  n: number;
}

/**
 * ASR vs the share of heads ablated, x = k / (layers × heads) — the heads actually ablated, not the fraction asked
 * for (which rounds differently on every model). One line per γ for the top-k suppression heads (solid, filled
 * circles) and for the random control (dashed, larger open squares, so a top-k point under a random one still
 * shows), each from the unablated baseline at 0 %; with several seeds the random line is their mean with ± std error
 * bars and each seed a faint cross. Named head sets (control "planted") are stars.
 */
export function asrFigure(
  cells: readonly SweepCellPoint[],
  opts: { totalHeads?: number; title?: string; spread?: readonly RandomSpreadPoint[] } = {},
): Figure {
  const baseline = cells.find((c) => c.k === 0);
  const pctOf = (c: { k: number; fraction?: number | null }) => (opts.totalHeads ? (100 * c.k) / opts.totalHeads : c.fraction !== null && c.fraction !== undefined ? c.fraction * 100 : c.k);
  const asrPct = (v: number | null) => (v === null ? null : v * 100);
  const gammas = [...new Set(cells.filter((c) => c.k > 0).map((c) => c.gamma))].sort((a, b) => a - b);
  const data: Trace[] = [];
  const hover = '%{text}<br>%{x:.2f}% of heads: ASR %{y:.1f}%<extra></extra>';
  gammas.forEach((gamma, i) => {
    const color = GAMMA_COLORS[i % GAMMA_COLORS.length]!;
    const top = cells.filter((c) => c.control === 'top' && c.gamma === gamma && c.k > 0).sort((a, b) => a.k - b.k);
    if (top.length) {
      const line = baseline ? [baseline, ...top] : top;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: `top-k γ=${gamma}`,
        x: line.map(pctOf),
        y: line.map((c) => asrPct(c.asr)),
        text: line.map((c) => `${c.key} (k=${c.k})`),
        line: { color, dash: 'solid', width: 2 },
        marker: { symbol: 'circle', size: 8 },
        hovertemplate: hover,
      });
    }
    const random = cells.filter((c) => c.control === 'random' && c.gamma === gamma && c.k > 0);
    if (!random.length) return;
    const ks = [...new Set(random.map((c) => c.k))].sort((a, b) => a - b);
    const spreadOf = (k: number) => opts.spread?.find((s) => s.k === k && s.gamma === gamma);
    const multi = ks.some((k) => (spreadOf(k)?.keys.length ?? 1) > 1);
    // One point per k: the seeds' mean (one seed: its cell).
    const means = ks.map((k) => {
      const s = spreadOf(k);
      const own = random.filter((c) => c.k === k);
      return { k, fraction: own[0]!.fraction, asr: s ? s.mean : own[0]!.asr, std: s?.std ?? null, text: s && s.keys.length > 1 ? `random k=${k}: mean of ${s.n} seeds` : `${own[0]!.key} (k=${k})` };
    });
    const line = baseline ? [{ k: 0, fraction: 0, asr: baseline.asr, std: null, text: `${baseline.key} (k=0)` }, ...means] : means;
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: multi ? `random γ=${gamma} (mean ± std)` : `random γ=${gamma}`,
      legendgroup: `random-${gamma}`,
      x: line.map(pctOf),
      y: line.map((c) => asrPct(c.asr)),
      text: line.map((c) => c.text),
      ...(multi ? { error_y: { type: 'data', array: line.map((c) => (c.std === null ? 0 : c.std * 100)), visible: true, color: withAlpha(color, 0.8), thickness: 1.5, width: 6 } } : {}),
      line: { color: withAlpha(color, 0.7), dash: 'dash', width: 2 },
      marker: { symbol: 'square-open', size: 12, line: { width: 2 } },
      hovertemplate: hover,
    });
    if (multi) {
      data.push({
        type: 'scatter',
        mode: 'markers',
        name: `random γ=${gamma}, each seed`,
        legendgroup: `random-${gamma}`,
        x: random.map(pctOf),
        y: random.map((c) => asrPct(c.asr)),
        text: random.map((c) => c.key),
        marker: { symbol: 'x-thin-open', size: 8, color: withAlpha(color, 0.5), line: { width: 1.5 } },
        hovertemplate: hover,
      });
    }
  });
  const others = cells.filter((c) => c.control !== 'top' && c.control !== 'random' && c.k > 0);
  if (others.length) {
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: 'named head sets',
      x: others.map(pctOf),
      y: others.map((c) => asrPct(c.asr)),
      text: others.map((c) => `${c.key} (k=${c.k}, γ=${c.gamma})`),
      marker: { symbol: 'star', size: 13, color: '#f0b400', line: { width: 1, color: '#5a4500' } },
      hovertemplate: hover,
    });
  }
  return {
    data,
    layout: {
      ...(opts.title ? { title: { text: opts.title, font: { size: 13 } } } : {}),
      xaxis: { title: { text: opts.totalHeads ? '% of heads ablated (k / (layers × heads))' : '% of heads ablated' }, rangemode: 'tozero' },
      yaxis: { title: { text: 'attack success rate (%)' }, range: [-2, 102] },
      showlegend: true,
      legend: LEGEND,
      hovermode: 'closest',
    },
  };
}

/** A head's label for tables and hover: L1H5. */
export { headLabel };

/** Per-epoch training curves of a probe (train / validation loss, validation accuracy on a second axis). */
export function epochFigure(metrics: { trainLoss?: (number | null)[]; valLoss?: (number | null)[]; valAccuracyPerEpoch?: (number | null)[]; bestEpoch?: number | null }): Figure {
  const data: Trace[] = [];
  const epochs = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  // Validation loss first, wide and light; train loss on top, narrower and dashed, so where they coincide both show.
  if (metrics.valLoss?.length) data.push({ type: 'scatter', mode: 'lines', name: 'validation loss', x: epochs(metrics.valLoss.length), y: metrics.valLoss, line: { color: withAlpha(GAMMA_COLORS[1]!, 0.55), width: 5 } });
  if (metrics.trainLoss?.length) data.push({ type: 'scatter', mode: 'lines', name: 'train loss', x: epochs(metrics.trainLoss.length), y: metrics.trainLoss, line: { color: GAMMA_COLORS[0], width: 2, dash: 'dash' } });
  if (metrics.valAccuracyPerEpoch?.length) {
    data.push({ type: 'scatter', mode: 'lines', name: 'validation accuracy', x: epochs(metrics.valAccuracyPerEpoch.length), y: metrics.valAccuracyPerEpoch, yaxis: 'y2', line: { color: GAMMA_COLORS[2], dash: 'dot' } });
  }
  const best = metrics.bestEpoch;
  const hasBest = best !== null && best !== undefined;
  return {
    data,
    layout: {
      xaxis: { title: { text: 'epoch' } },
      yaxis: { title: { text: 'BCE loss' }, rangemode: 'tozero' },
      // tickmode auto: plotly would otherwise sync the second axis' ticks to the loss axis (0.419, 0.839…).
      yaxis2: { title: { text: 'accuracy' }, overlaying: 'y', side: 'right', range: [0, 1.05], showgrid: false, tickmode: 'auto' },
      legend: { ...LEGEND, x: 1.12 },
      // bestEpoch is 0-based in the engine; epochs are drawn from 1.
      shapes: hasBest ? [vline(best + 1, COLORS.plateau, 'dot')] : [],
      annotations: hasBest ? [{ x: best + 1, xref: 'x', y: 1, yref: 'paper', yanchor: 'bottom', text: `best epoch ${best + 1} (kept)`, showarrow: false, font: { size: 11, color: COLORS.plateau } }] : [],
      showlegend: true,
    },
  };
}

/** One head's score at every token from a [layers × heads × tokens] row-major per-token map. */
export function headAlongTokens(data: readonly (number | null)[], heads: number, tokens: number, h: HeadRef): (number | null)[] {
  const start = (h.layer * heads + h.head) * tokens;
  if (start + tokens > data.length) throw new Error(`L${h.layer}H${h.head} is outside the per-token map`);
  return data.slice(start, start + tokens);
}

/** Scores (nulls as NaN) as a Float32Array, the typed array the heatmaps take. */
export function toFloat32(values: readonly (number | null)[]): Float32Array {
  return Float32Array.from(values, (v) => (v === null ? NaN : v));
}

/** Headline numbers of compared runs as one table: a row per metric, a value (and delta) per run, in the metric's unit. */
export interface MetricRow {
  key: string;
  label: string;
  kind: string;
  unit: 'percent' | 'count' | 'tokens' | 'number';
  values: Record<number, { value: number | null; delta: number | null }>;
}

export function metricRows(
  runs: readonly { run: { id: number; kind: string }; headline: readonly { key: string; label: string; unit: MetricRow['unit']; value: number | null; delta: number | null }[] }[],
): MetricRow[] {
  const rows = new Map<string, MetricRow>();
  for (const r of runs) {
    for (const h of r.headline) {
      const id = `${r.run.kind}:${h.key}`;
      let row = rows.get(id);
      if (!row) {
        row = { key: id, label: h.label, kind: r.run.kind, unit: h.unit, values: {} };
        rows.set(id, row);
      }
      row.values[r.run.id] = { value: h.value, delta: h.delta };
    }
  }
  return [...rows.values()];
}

// ---------------------------------------------------------------------------------------------------------------------
// A figure's numbers as a table (its text alternative, and what the table view and its CSV show)

export interface FigureTableRow {
  /** Index of the row (stable key). */
  i: number;
  series: string;
  x: string | number | null;
  y: string | number | null;
  /** z (heatmaps), ± error (error bars), or the hover label of the point. */
  value: number | null;
  error: number | null;
  label: string | null;
  /** Which trace and point the row is (for a click handler given the same point as a plot click). */
  curveNumber: number;
  pointIndex: number;
}

export interface FigureTable {
  /** Header text of the x, y and value columns (the axes' titles, HTML stripped). */
  xLabel: string;
  yLabel: string;
  valueLabel: string | null;
  hasError: boolean;
  hasLabel: boolean;
  rows: FigureTableRow[];
}

/** Plotly's rich text (`r<sub>t</sub>`, `<b>…</b>`, `&lt;`) as plain text. */
export function plainText(s: unknown): string {
  if (typeof s !== 'string') return '';
  return s
    .replace(/<br\s*\/?>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .trim();
}

const titleOf = (axis: unknown): string => plainText((axis as { title?: { text?: unknown } } | undefined)?.title?.text);
const cellValue = (v: unknown): string | number | null => (typeof v === 'number' ? (Number.isFinite(v) ? v : null) : typeof v === 'string' ? v : null);
const at = (list: unknown, i: number): unknown => (list && typeof list === 'object' && 'length' in (list as object) ? (list as ArrayLike<unknown>)[i] : undefined);

/**
 * Every number a figure draws, one row per point: scatter points (series, x, y, ± error, hover label), histogram
 * bins (series, bin range, count, counted as plotly bins them: [start + k·size, start + (k+1)·size)), heatmap cells
 * (row, column, value). Bands and other decorations (traces that neither hover nor show in the legend) are left out.
 */
export function figureTable(fig: Figure): FigureTable {
  const rows: FigureTableRow[] = [];
  let valueLabel: string | null = null;
  let hasError = false;
  let hasLabel = false;
  const push = (r: Omit<FigureTableRow, 'i'>) => rows.push({ i: rows.length, ...r });
  fig.data.forEach((t, curveNumber) => {
    const type = (t.type as string | undefined) ?? 'scatter';
    if (t.hoverinfo === 'skip' && t.showlegend === false) return;
    const series = plainText(t.name) || `series ${curveNumber + 1}`;
    if (type === 'heatmap') {
      const z = (t.z ?? []) as ArrayLike<ArrayLike<number | null>>;
      // The colour bar's title up to its first line break (what follows is a note on the limits).
      const barTitle = (t.colorbar as { title?: { text?: unknown } } | undefined)?.title?.text;
      valueLabel = plainText(typeof barTitle === 'string' ? barTitle.split(/<br\s*\/?>/i)[0] : '') || 'value';
      for (let r = 0; r < z.length; r++) {
        const row = z[r]!;
        for (let c = 0; c < row.length; c++) {
          push({ series: String(cellValue(at(t.y, r)) ?? r), x: cellValue(at(t.x, c)) ?? c, y: cellValue(at(t.y, r)) ?? r, value: cellValue(row[c]) as number | null, error: null, label: null, curveNumber, pointIndex: r * row.length + c });
        }
      }
      return;
    }
    if (type === 'histogram') {
      const xs = ((t.x ?? []) as (number | null)[]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      const bins = t.xbins as { start?: number; size?: number } | undefined;
      const size = bins?.size ?? 0;
      if (!xs.length || !(size > 0)) return;
      const start = bins?.start ?? Math.min(...xs);
      const counts = new Map<number, number>();
      for (const v of xs) {
        const k = Math.floor((v - start) / size);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      for (const k of [...counts.keys()].sort((a, b) => a - b)) {
        const lo = start + k * size;
        push({ series, x: `${fmtEdge(lo)} – ${fmtEdge(lo + size)}`, y: counts.get(k)!, value: null, error: null, label: null, curveNumber, pointIndex: k });
      }
      return;
    }
    const xs = (t.x ?? []) as ArrayLike<unknown>;
    const ys = (t.y ?? []) as ArrayLike<unknown>;
    const errs = (t.error_y as { array?: ArrayLike<number | null> } | undefined)?.array;
    const labels = t.text;
    for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
      const error = errs ? (cellValue(errs[i]) as number | null) : null;
      const label = typeof labels === 'string' ? plainText(labels) : plainText(at(labels, i)) || null;
      if (error !== null) hasError = true;
      if (label) hasLabel = true;
      push({ series, x: cellValue(xs[i]), y: cellValue(ys[i]), value: null, error, label: label || null, curveNumber, pointIndex: i });
    }
  });
  const layout = fig.layout as { xaxis?: unknown; yaxis?: unknown };
  const histogram = fig.data.some((t) => t.type === 'histogram');
  return {
    xLabel: titleOf(layout.xaxis) || 'x',
    yLabel: histogram ? 'count' : titleOf(layout.yaxis) || 'y',
    valueLabel,
    hasError,
    hasLabel,
    rows,
  };
}

/** A bin edge as the table shows it: enough digits to tell neighbouring bins apart. */
function fmtEdge(v: number): string {
  return Number(v.toPrecision(4)).toString();
}

/** One line saying what a figure holds, for screen readers (the table has the numbers). */
export function figureSummary(fig: Figure, table: FigureTable = figureTable(fig)): string {
  const series = new Set(table.rows.map((r) => r.series));
  const what = table.valueLabel ? `${table.rows.length} cells` : `${series.size} series, ${table.rows.length} points`;
  return `${what}; x: ${table.xLabel}, ${table.valueLabel ? `y: ${table.yLabel}, value: ${table.valueLabel}` : `y: ${table.yLabel}`}.`;
}

// ---------------------------------------------------------------------------------------------------------------------
// Compare: curves of several runs on one plot

/** % of a model's heads a cell ablates: k / (L·H) (the requested fraction only when L·H is unknown). */
export function pctOfHeads(cell: { k: number; fraction: number | null }, totalHeads: number | null | undefined): number {
  return totalHeads ? (100 * cell.k) / totalHeads : (cell.fraction ?? 0) * 100;
}

/**
 * ASR against % of heads ablated (k / (L·H)) for several ablation runs on one plot: per run and γ, the top-k line
 * (solid) and the random control (dotted), each from the run's unablated baseline; runs told apart by colour, γ by
 * marker.
 */
export function asrOverlayFigure(runs: readonly { name: string; totalHeads: number | null | undefined; cells: readonly SweepCellPoint[] }[]): Figure {
  const data: Trace[] = [];
  const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up', 'cross', 'x'];
  runs.forEach((run, r) => {
    const color = GAMMA_COLORS[r % GAMMA_COLORS.length]!;
    const baseline = run.cells.find((c) => c.k === 0);
    const gammas = [...new Set(run.cells.filter((c) => c.k > 0).map((c) => c.gamma))].sort((a, b) => a - b);
    gammas.forEach((gamma, g) => {
      for (const control of ['top', 'random'] as const) {
        const pts = run.cells.filter((c) => c.control === control && c.gamma === gamma && c.k > 0).sort((a, b) => a.k - b.k);
        if (!pts.length) continue;
        const line = baseline ? [baseline, ...pts] : pts;
        data.push({
          type: 'scatter',
          mode: 'lines+markers',
          name: `${run.name}: ${control === 'top' ? 'top-k' : 'random'} γ=${gamma}`,
          legendgroup: run.name,
          x: line.map((c) => pctOfHeads(c, run.totalHeads)),
          y: line.map((c) => (c.asr === null ? null : c.asr * 100)),
          text: line.map((c) => `${escapeHtml(run.name)} ${c.key} (k=${c.k})`),
          line: { color: control === 'top' ? color : withAlpha(color, 0.55), dash: control === 'top' ? 'solid' : 'dot', width: 2 },
          marker: { symbol: SYMBOLS[g % SYMBOLS.length], size: 7, color: control === 'top' ? color : withAlpha(color, 0.55) },
          hovertemplate: '%{text}<br>%{x:.2f}% of heads: ASR %{y:.1f}%<extra></extra>',
        });
      }
    });
  });
  return {
    data,
    layout: {
      xaxis: { title: { text: '% of heads ablated (k / (L·H))' }, rangemode: 'tozero' },
      yaxis: { title: { text: 'attack success rate (%)' }, range: [-2, 102] },
      showlegend: true,
      legend: LEGEND,
      hovermode: 'closest',
    },
  };
}

/** Validation accuracy per residual-stack index of several probe runs (one line each) on one plot. */
export function probeSweepOverlayFigure(runs: readonly { name: string; probes: readonly { residIndex: number; valAccuracy: number | null }[] }[]): Figure {
  return {
    data: runs.map((run, r) => {
      const sorted = [...run.probes].sort((a, b) => a.residIndex - b.residIndex);
      return {
        type: 'scatter',
        mode: 'lines+markers',
        name: run.name,
        x: sorted.map((p) => p.residIndex),
        y: sorted.map((p) => (p.valAccuracy === null ? null : p.valAccuracy * 100)),
        line: { color: GAMMA_COLORS[r % GAMMA_COLORS.length] },
        hovertemplate: `${escapeHtml(run.name)}<br>resid %{x}: %{y:.1f}%<extra></extra>`,
      };
    }),
    layout: {
      xaxis: { title: { text: 'residual-stack index' }, dtick: 1 },
      yaxis: { title: { text: 'validation accuracy (%)' }, range: [0, 102] },
      showlegend: true,
      legend: LEGEND,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// The Playground: several generations of one prompt on one refusal-score plot

/**
 * Refusal score per token of several generations (baseline and ablated, say) on one plot: one line each, its t_b as
 * a dashed line in its colour; the prompt greyed and the first series' thinking shaded; hover shows each token's
 * text, the prompt's included. The x axis ends at the longest transcript (no room for tokens never generated).
 */
export function overlayScoreFigure(
  series: readonly {
    name: string;
    scores: ArrayLike<number | null>;
    tokens?: readonly string[];
    promptTokens: number;
    thinkingStart: number | null;
    thinkingEnd: number | null;
    answerBoundary: number | null;
  }[],
): Figure {
  const data: Trace[] = [];
  const shapes: Shape[] = [];
  const annotations: Annotation[] = [];
  let longest = 1;
  series.forEach((s, i) => {
    const color = GAMMA_COLORS[i % GAMMA_COLORS.length]!;
    const y = toPlotValues(s.scores);
    longest = Math.max(longest, y.length);
    const x = Array.from({ length: y.length }, (_, k) => k);
    const text = s.tokens ? x.map((k) => hoverToken(s.tokens![k] ?? '')) : undefined;
    data.push({
      type: 'scatter',
      mode: 'lines',
      name: s.name,
      x,
      y,
      line: { color, width: 1.8 },
      ...(text ? { text, hovertemplate: `${escapeHtml(s.name)}<br>#%{x} <b>%{text}</b>: %{y:.4f}<extra></extra>` } : { hovertemplate: `${escapeHtml(s.name)}<br>#%{x}: %{y:.4f}<extra></extra>` }),
    });
    if (s.answerBoundary !== null) {
      shapes.push(vline(s.answerBoundary, color));
      annotations.push(label(s.answerBoundary, 't<sub>b</sub>', { xanchor: 'left', font: { size: 11, color } }));
    }
  });
  const first = series[0];
  if (first && first.promptTokens > 0) {
    shapes.push(band(-0.5, first.promptTokens - 0.5, COLORS.prompt));
    annotations.push(label((first.promptTokens - 1) / 2, 'prompt', { font: { size: 11, color: '#8a8f98' } }));
  }
  if (first && first.thinkingStart !== null) {
    const end = first.thinkingEnd ?? toPlotValues(first.scores).length;
    shapes.push(band(first.thinkingStart - 0.5, end - 0.5, COLORS.thinking));
  }
  return {
    data,
    layout: {
      xaxis: { title: { text: 'token position' }, range: [-0.5, longest - 0.5], zeroline: false },
      yaxis: { title: { text: 'refusal score r<sub>t</sub>' }, range: [-0.02, 1.05] },
      shapes,
      annotations,
      showlegend: true,
      legend: LEGEND,
      hovermode: 'closest',
    },
  };
}
