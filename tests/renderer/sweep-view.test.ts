import { describe, expect, it } from 'vitest';
import { agreementWith, judgeAsr, judgeLabel, judgeOverRefusal, progressOf, resumable, spreadPoints, sweepPoints } from '../../src/renderer/src/lib/sweep-view.js';
import { JUDGES, SWEEP_VIEW } from './sweep-fixture.js';

describe('the Ablations tab’s reading of sweep.cells', () => {
  it('plots and tabulates the judge chosen, falling back to the headline numbers of one-judge cells', () => {
    expect(sweepPoints(SWEEP_VIEW, JUDGES.PROBE).map((p) => p.asr)).toEqual([1, 0.1, 1, null]);
    expect(sweepPoints(SWEEP_VIEW, JUDGES.JBB).map((p) => p.asr)).toEqual([1, 0.2, 0.9, null]);
    expect(judgeOverRefusal(SWEEP_VIEW.cells[1]!, JUDGES.PROBE)).toBe(0.2);
    const oneJudge = { ...SWEEP_VIEW.cells[1]!, metrics: { ...SWEEP_VIEW.cells[1]!.metrics!, byJudge: undefined } };
    expect(judgeAsr(oneJudge, JUDGES.JBB)).toBe(0.2);
    expect(judgeAsr(oneJudge, JUDGES.PROBE)).toBeNull();
  });

  it('gives the random controls’ spread by the judge chosen', () => {
    expect(spreadPoints(SWEEP_VIEW, JUDGES.PROBE)).toEqual([{ k: 2, gamma: 0, keys: ['random:k2:g0:s0', 'random:k2:g0:s1'], mean: 1, std: null, n: 1 }]);
    // A judge without its own spread (a judge run): none rather than another judge's numbers.
    expect(spreadPoints(SWEEP_VIEW, JUDGES.RUN)).toEqual([]);
  });

  it('lists the chosen judge’s agreement with every other judge, cell by cell', () => {
    const rows = agreementWith(SWEEP_VIEW, JUDGES.PROBE);
    expect(rows.filter((r) => r.key === 'top:k2:g0')).toEqual([
      { key: 'top:k2:g0', other: JUDGES.JBB, n: 10, agreement: 0.8, kappa: 0.6 },
      { key: 'top:k2:g0', other: JUDGES.RUN, n: 10, agreement: 0.8, kappa: 0.6 },
    ]);
    expect(rows.some((r) => r.key === 'random:k2:g0:s1')).toBe(false);
  });

  it('says which sweeps can be resumed and how far they got', () => {
    expect(['cancelled', 'interrupted', 'failed'].every((s) => resumable(s as never))).toBe(true);
    expect(['done', 'running', 'pending'].some((s) => resumable(s as never))).toBe(false);
    expect(progressOf(SWEEP_VIEW)).toEqual({ done: 60, total: 80 });
  });

  it('names judges in words', () => {
    expect(judgeLabel(JUDGES.JBB)).toBe('JailbreakBench keywords');
    expect(judgeLabel(JUDGES.PROBE)).toBe('probe #1 (I′ < 0.5)');
    expect(judgeLabel(JUDGES.RUN)).toBe('judge run #9: GCG keywords');
    expect(judgeLabel('guard:0123456789abcdef0123')).toBe('guard model 0123456789ab…');
  });
});
