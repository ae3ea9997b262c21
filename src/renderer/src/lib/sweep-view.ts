/**
 * What the Ablations tab reads from `sweep.cells` for the judge it shows: each cell's ASR and over-refusal by that
 * judge, the random controls' spread over seeds, the judge's agreement (κ) with every other judge per cell, and
 * whether an unfinished sweep can be resumed. Pure: the view in, rows and points out.
 */
import type { ResultOf, SweepCell } from '../../../shared/contract.js';
import type { RandomSpreadPoint, SweepCellPoint } from './plots.js';

export type SweepView = ResultOf<'sweep.cells'>;

/** One judge's rates on a cell: its own entry, or the cell's headline numbers when the sweep had one judge. */
function ratesOf(c: SweepCell, judge: string): { asr: number | null; overRefusal: number | null } | null {
  const m = c.metrics;
  if (!m) return null;
  const own = m.byJudge?.[judge];
  if (own) return own;
  return m.judge === judge ? { asr: m.asr, overRefusal: m.overRefusal } : null;
}

export const judgeAsr = (c: SweepCell, judge: string): number | null => ratesOf(c, judge)?.asr ?? null;
export const judgeOverRefusal = (c: SweepCell, judge: string): number | null => ratesOf(c, judge)?.overRefusal ?? null;

/** The plotted points of one judge. */
export function sweepPoints(view: SweepView, judge: string): SweepCellPoint[] {
  return view.cells.map((c) => ({ key: c.key, control: c.control, k: c.k, fraction: c.fraction, gamma: c.gamma, asr: judgeAsr(c, judge) }));
}

/** The random controls' mean ± std over seeds by one judge (an empty list for one-seed sweeps). */
export function spreadPoints(view: SweepView, judge: string): RandomSpreadPoint[] {
  return view.randomSpread.flatMap((r) => {
    const s = r.byJudge[judge] ?? (judge === view.judges[0]?.id ? r.asr : undefined);
    return s ? [{ k: r.k, gamma: r.gamma, keys: r.keys, mean: s.mean, std: s.std, n: s.n }] : [];
  });
}

/** A judge id in words: `keyword:jbb@1` → "JailbreakBench keywords", `run #7 guard:…` → "judge run #7: guard …". */
export function judgeLabel(id: string): string {
  const run = /^run #(\d+) (.*)$/.exec(id);
  if (run) return `judge run #${run[1]}: ${judgeLabel(run[2]!)}`;
  if (id.startsWith('keyword:jbb')) return 'JailbreakBench keywords';
  if (id.startsWith('keyword:gcg')) return 'GCG keywords';
  if (id.startsWith('keyword:')) return `keywords (${id.slice(8)})`;
  const probe = /^probe:(\d+)@(.+)$/.exec(id);
  if (probe) return `probe #${probe[1]} (I′ < ${probe[2]})`;
  if (id.startsWith('guard:')) return `guard model ${id.slice(6, 18)}…`;
  return id;
}

/** A judge's agreement with another on a cell's attacks. */
export interface AgreementRow {
  key: string;
  other: string;
  n: number;
  agreement: number | null;
  kappa: number | null;
}

/** `judge`'s agreement with every other judge, cell by cell (cells without both judges' verdicts are left out). */
export function agreementWith(view: SweepView, judge: string): AgreementRow[] {
  return view.cells.flatMap((c) =>
    (c.metrics?.agreement ?? []).flatMap((a) => {
      if (a.a !== judge && a.b !== judge) return [];
      return [{ key: c.key, other: a.a === judge ? a.b : a.a, n: a.n, agreement: a.agreement, kappa: a.kappa }];
    }),
  );
}

/** A sweep that stopped before its end keeps its finished answers and can be resumed (`ablate --resume`). */
export function resumable(status: SweepView['status']): boolean {
  return status === 'cancelled' || status === 'interrupted' || status === 'failed';
}

/** Answers finished out of those the sweep will have, over all its cells. */
export function progressOf(view: SweepView): { done: number; total: number } {
  const done = view.cells.reduce((n, c) => n + (c.metrics ? c.metrics.harmful + c.metrics.harmless : 0), 0);
  return { done, total: view.answersPerCell * view.cells.length };
}
