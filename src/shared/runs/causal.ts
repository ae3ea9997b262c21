/**
 * `causal` runs (docs/METHOD.md §9): causal head ranking next to a heads run's direct attribution. Each head is scaled
 * on its own (the paper's code: ×0.001) while the transcripts of the heads run are teacher-forced; a head's causal
 * score is the mean drop in the final refusal score I' it causes, I'(unscaled) − I'(head scaled), so that, as for
 * direct attribution, a refusal suppression head scores negative. The summary sets both scores side by side, with
 * their rank correlation.
 */
import { z } from 'zod';
import { CAUSAL_HEAD_SCALE } from '../method.js';
import { count, finiteNumber, maybeNumber, positive, rowId } from '../values.js';
import { HeadScore } from './heads.js';
import { defineRun, finishedRun, flag, fmt } from './spec.js';

const input = z.strictObject({
  /** The heads run whose probe, transcripts and direct scores the causal ranking is set against. */
  headsRunId: rowId,
  /** γ for the one scaled head; default the paper's 0.001. */
  scale: finiteNumber.optional(),
  /** Only the N heads with the largest |direct score| (each costs a forward pass per transcript); omitted = every head. */
  top: positive.optional(),
});

const config = z.strictObject({ headsRunId: rowId, scale: finiteNumber, top: positive.nullable() });
export type CausalRunConfig = z.infer<typeof config>;

/** One scored head: its causal score (mean I' drop) and its direct score from the heads run. */
export const CausalHead = z.strictObject({ layer: count, head: count, causal: z.number(), direct: z.number() });
export type CausalHead = z.infer<typeof CausalHead>;

const summary = z.strictObject({
  headsRunId: rowId,
  probeId: rowId,
  scale: z.number(),
  /** Transcripts teacher-forced (those with an answer boundary). */
  transcripts: count,
  /** Mean I' with no head scaled. */
  baseFinal: maybeNumber,
  /** Every scored head, most negative causal score (strongest refusal suppression) first. */
  heads: z.array(CausalHead),
  /** Spearman's rank correlation of causal and direct scores over the scored heads; null for fewer than 2. */
  spearman: maybeNumber,
  /** Of the 10 most negative heads by causal score, how many are among the 10 most negative by direct score. */
  topOverlap: count,
  /** The 20 heads with the most negative causal score (refusal suppression heads). */
  suppression: z.array(HeadScore),
});
export type CausalRunSummary = z.infer<typeof summary>;

export const TOP_OVERLAP = 10;

export const causalRun = defineRun({
  kind: 'causal',
  about: "each head scaled on its own: the drop in I' it causes, ranked next to direct attribution",
  input,
  config,
  summary,
  resolve(c, project) {
    finishedRun(project, 'config.headsRunId', c.headsRunId, 'heads');
    return { headsRunId: c.headsRunId, scale: c.scale ?? CAUSAL_HEAD_SCALE, top: c.top ?? null };
  },
  links: (c) => ({ parentRunId: c.headsRunId }),
  report: (s) => [
    `  ${fmt(s.transcripts)} transcripts, each head scaled by ${s.scale}; mean I' unscaled ${fmt(s.baseFinal)}`,
    `  rank correlation with direct attribution (Spearman) ${fmt(s.spearman)}; top ${TOP_OVERLAP} overlap ${s.topOverlap}`,
    "  most negative causal scores (refusal suppression heads):    causal    direct",
    ...s.heads.slice(0, 10).map((h) => `    L${h.layer}H${h.head}`.padEnd(58) + `${fmt(h.causal, 4).padStart(8)}  ${fmt(h.direct, 4).padStart(8)}`),
  ],
  headlines: (s) => [
    { key: 'spearman', label: 'rank correlation, causal vs direct', value: s.spearman },
    { key: 'topOverlap', label: `top-${TOP_OVERLAP} overlap, causal vs direct`, value: s.topOverlap },
    { key: 'topCausal', label: 'most negative causal score', value: s.heads[0]?.causal ?? null },
  ],
  cli: {
    verb: 'causal',
    summary: "rank heads causally: scale each one alone and measure the drop in I', next to direct attribution",
    usage: 'causal PROJECT --model DIR --heads-run RUN [--scale G] [--top N]',
    about: `For every transcript of a heads run, teacher-forces it once unscaled and once per head with only that head's
output multiplied by --scale (default ${CAUSAL_HEAD_SCALE}, the paper's code), reading the probe at the answer boundary.
A head's causal score is the mean of I'(unscaled) − I'(scaled): negative for a refusal suppression head, as its direct
score is. Reports the ranking, Spearman's rank correlation with the direct scores and the overlap of the top ${TOP_OVERLAP}.`,
    flags: [
      flag('heads-run', 'the heads run (probe, transcripts, direct scores)', { arg: 'RUN', field: 'headsRunId' }),
      flag('scale', `γ of the scaled head (default ${CAUSAL_HEAD_SCALE})`, { arg: 'G', field: 'scale' }),
      flag('top', 'only the N heads with the largest |direct score| (default every head)', { arg: 'N', field: 'top' }),
    ],
    input: (f, cli) => ({
      headsRunId: cli.id(f['heads-run'], 'heads-run'),
      scale: cli.number(f.scale, 'scale'),
      top: cli.number(f.top, 'top'),
    }),
  },
});
