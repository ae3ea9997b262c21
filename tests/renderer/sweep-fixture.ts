/** A `sweep.cells` result of a sweep judged by JailbreakBench keywords and the probe, plus a judge run; two seeds. */
import type { ResultOf } from '../../src/shared/contract.js';

const JBB = 'keyword:jbb@1';
const PROBE = 'probe:1@0.5';
const RUN = 'run #9 keyword:gcg@1';
const rates = (asr: number | null, overRefusal: number | null = null) => ({ asr, judged: 10, harmful: asr === null ? 0 : Math.round(asr * 10), overRefusal });
const metrics = (jbb: number, probe: number, gcg: number, kappa: number | null) => ({
  asr: jbb,
  overRefusal: 0.1,
  meanFinal: 0.4,
  meanAnswerTokens: 20,
  harmful: 10,
  harmless: 10,
  judge: JBB,
  thinkingNotClosed: { harmful: 1, harmless: 0 },
  byJudge: { [JBB]: rates(jbb, 0.1), [PROBE]: rates(probe, 0.2), [RUN]: rates(gcg, 0.1) },
  agreement: [
    { a: JBB, b: PROBE, n: 10, agree: 8, agreement: 0.8, kappa },
    { a: JBB, b: RUN, n: 10, agree: 10, agreement: 1, kappa: 1 },
    { a: PROBE, b: RUN, n: 10, agree: 8, agreement: 0.8, kappa },
  ],
});
const cell = (key: string, control: 'top' | 'random', k: number, m: ReturnType<typeof metrics> | null, seed: number | null = null) => ({ id: key.length, key, control, k, fraction: k ? 0.05 : 0, gamma: k ? 0 : 1, seed, heads: [], metrics: m });

export const JUDGES = { JBB, PROBE, RUN };

export const SWEEP_VIEW: ResultOf<'sweep.cells'> = {
  runId: 3,
  totalHeads: 32,
  status: 'cancelled',
  answersPerCell: 20,
  judges: [
    { id: JBB, runId: null },
    { id: PROBE, runId: null },
    { id: RUN, runId: 9 },
  ],
  cells: [
    cell('baseline', 'top', 0, metrics(1, 1, 1, null)),
    cell('top:k2:g0', 'top', 2, metrics(0.2, 0.1, 0.2, 0.6)),
    cell('random:k2:g0:s0', 'random', 2, metrics(0.9, 1, 0.9, 0.35), 2),
    cell('random:k2:g0:s1', 'random', 2, null, 3),
  ],
  randomSpread: [
    {
      k: 2,
      gamma: 0,
      seeds: [2, 3],
      keys: ['random:k2:g0:s0', 'random:k2:g0:s1'],
      asr: { n: 1, mean: 0.9, std: null, min: 0.9, max: 0.9 },
      meanFinal: { n: 1, mean: 0.4, std: null, min: 0.4, max: 0.4 },
      byJudge: { [JBB]: { n: 1, mean: 0.9, std: null, min: 0.9, max: 0.9 }, [PROBE]: { n: 1, mean: 1, std: null, min: 1, max: 1 } },
    },
  ],
};
