/**
 * Figures of the paper's further experiments (docs/METHOD.md §8, §9): ASR and I′ against the fraction of thinking
 * kept (the truncation figure), and causal against direct head scores. Pure, as plots.ts: unit-tested in node.
 */
import { COLORS, type Figure, GAMMA_COLORS, headLabel } from './plots.js';

export interface TruncationPointIn {
  fraction: number;
  asr: number | null;
  meanFinal: number | null;
  answers: number;
}

/** ASR (%, left axis) and mean I′ (right axis, 0..1) against the % of thinking kept, 100 % on the left as the paper draws it. */
export function truncationFigure(points: readonly TruncationPointIn[], opts: { title?: string } = {}): Figure {
  const sorted = [...points].sort((a, b) => b.fraction - a.fraction);
  const x = sorted.map((p) => p.fraction * 100);
  const text = sorted.map((p) => `${p.answers} answers`);
  const data = [
    {
      type: 'scatter',
      mode: 'lines+markers',
      name: 'ASR',
      x,
      y: sorted.map((p) => (p.asr === null ? null : p.asr * 100)),
      text,
      line: { color: GAMMA_COLORS[1], width: 2 },
      hovertemplate: '%{x:.0f}% of thinking kept: ASR %{y:.1f}% (%{text})<extra></extra>',
    },
  ];
  if (sorted.some((p) => p.meanFinal !== null)) {
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: 'mean I′',
      x,
      y: sorted.map((p) => p.meanFinal),
      text,
      yaxis: 'y2',
      line: { color: COLORS.score, width: 2, dash: 'dot' },
      hovertemplate: '%{x:.0f}% of thinking kept: mean I′ %{y:.3f} (%{text})<extra></extra>',
    } as (typeof data)[number]);
  }
  return {
    data,
    layout: {
      ...(opts.title ? { title: { text: opts.title, font: { size: 13 } } } : {}),
      xaxis: { title: { text: '% of thinking kept' }, autorange: 'reversed' },
      yaxis: { title: { text: 'attack success rate (%)' }, range: [-2, 102] },
      yaxis2: { title: { text: 'mean I′ (refusal score at t_b)' }, overlaying: 'y', side: 'right', range: [-0.02, 1.02] },
      showlegend: true,
      legend: { x: 0.01, y: 1.15, orientation: 'h' },
      hovermode: 'closest',
    },
  };
}

export interface CausalPointIn {
  layer: number;
  head: number;
  causal: number;
  direct: number;
}

/**
 * Causal against direct head scores, one marker per head (hover: its label and both scores), the `highlight` heads
 * (the top of the causal ranking) labelled; the title carries Spearman's ρ. Both axes: negative = refusal suppression.
 */
export function causalScatterFigure(heads: readonly CausalPointIn[], opts: { spearman?: number | null; highlight?: number } = {}): Figure {
  const n = opts.highlight ?? 3;
  const ranked = [...heads].sort((a, b) => a.causal - b.causal);
  const top = new Set(ranked.slice(0, n).map((h) => `${h.layer}:${h.head}`));
  const isTop = (h: CausalPointIn) => top.has(`${h.layer}:${h.head}`);
  const trace = (pts: CausalPointIn[], name: string, color: string, labelled: boolean) => ({
    type: 'scatter',
    mode: labelled ? 'text+markers' : 'markers',
    name,
    x: pts.map((h) => h.direct),
    y: pts.map((h) => h.causal),
    text: pts.map((h) => headLabel(h)),
    textposition: 'middle right',
    marker: { color, size: labelled ? 10 : 7 },
    hovertemplate: '%{text}<br>direct %{x:.4f}<br>causal %{y:.4f}<extra></extra>',
  });
  const rho = opts.spearman === null || opts.spearman === undefined ? '' : ` (Spearman ρ = ${opts.spearman.toFixed(3)})`;
  return {
    data: [trace(heads.filter((h) => !isTop(h)), 'heads', COLORS.random, false), trace(ranked.slice(0, n), `top ${n} causal`, COLORS.boundary, true)],
    layout: {
      title: { text: `Causal vs direct head scores${rho}`, font: { size: 13 } },
      xaxis: { title: { text: 'direct attribution at t_b' }, zeroline: true },
      yaxis: { title: { text: "causal: I′ − I′(head × γ)" }, zeroline: true },
      showlegend: true,
      legend: { x: 0.01, y: 1.15, orientation: 'h' },
      hovermode: 'closest',
    },
  };
}
