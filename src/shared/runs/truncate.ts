/**
 * `truncate` runs (docs/METHOD.md §8, the paper's thinking-truncation figure): for every transcript of a transcripts
 * run, keep the first 100 / 80 / 60 / 40 / 20 / 0 % of the model's own thinking, close it with "\n</think>\n\n" and let
 * the model answer. Each answer is judged (a refusal keyword list) and, with a probe, I' — the refusal score at the
 * answer boundary — is read; the summary sets ASR and mean I' against the fraction kept.
 */
import { z } from 'zod';
import { TRUNCATION_FRACTIONS } from '../method.js';
import { batchSize, count, fraction01, maxNewTokens, maybeNumber, rowId, Sampling, seed } from '../values.js';
import { KeywordList } from './judge.js';
import { SAMPLING_FLAGS, samplingFromFlags } from './flags.js';
import { defineRun, finishedRun, flag, fmt, pct } from './spec.js';
import { DEFAULT_BATCH } from './transcripts.js';

/** An answer after closed thinking is short; the paper's code gives it 256 new tokens. */
export const DEFAULT_TRUNCATE_MAX_NEW_TOKENS = 256;

/** The setting (transcripts' head_scale_key) under which a truncated transcript is stored: `keep:0.6`. */
export const truncationKey = (fraction: number) => `keep:${fraction}`;

const input = z.strictObject({
  /** The transcripts run whose thinking is truncated (the model's own reasoning). */
  runId: rowId,
  /**
   * Its transcripts under this setting, whose head scale the answers are generated with too; null or omitted = the
   * run's only setting (a run of several settings needs one named).
   */
  setting: z.string().min(1).max(200).nullable().optional(),
  /** Fractions of the thinking kept; default the paper's [1, 0.8, 0.6, 0.4, 0.2, 0]. */
  fractions: z.array(fraction01).min(1).max(100).optional(),
  /** Probe for I' at the answer boundary; null or omitted = no I'. */
  probeId: rowId.nullable().optional(),
  /** Default 'jbb', as the ablation sweep's ASR. */
  judge: KeywordList.optional(),
  maxNewTokens: maxNewTokens.optional(),
  batchSize: batchSize.optional(),
  sampling: Sampling.optional(),
  seed: seed.optional(),
});

const config = z.strictObject({
  runId: rowId,
  setting: z.string().min(1).max(200).nullable(),
  fractions: z.array(fraction01).min(1).max(100),
  probeId: rowId.nullable(),
  judge: KeywordList,
  maxNewTokens,
  batchSize,
  sampling: Sampling.optional(),
  seed,
});
export type TruncateRunConfig = z.infer<typeof config>;

/** One fraction's numbers. */
export const TruncationPoint = z.strictObject({
  fraction: z.number(),
  /** Answers generated (one per source transcript with thinking). */
  answers: count,
  /** Share of answers the keyword judge calls compliance: ASR. */
  asr: maybeNumber,
  /** Mean refusal score at the answer boundary (I'); null without a probe. */
  meanFinal: maybeNumber,
  /** Mean thinking tokens kept. */
  meanKeptTokens: maybeNumber,
});
export type TruncationPoint = z.infer<typeof TruncationPoint>;

const summary = z.strictObject({
  judge: z.string(),
  /** Source transcripts truncated (those with thinking). */
  transcripts: count,
  /** Source transcripts left out because they have no thinking to truncate. */
  withoutThinking: count,
  points: z.array(TruncationPoint),
});
export type TruncateRunSummary = z.infer<typeof summary>;

export const truncateRun = defineRun({
  kind: 'truncate',
  about: "keep 100…0 % of the model's own thinking, close it, answer: ASR and I' against the fraction kept",
  input,
  config,
  summary,
  resolve(c, project) {
    finishedRun(project, 'config.runId', c.runId, 'transcripts');
    if (c.probeId !== undefined && c.probeId !== null) project.probe('config.probeId', c.probeId);
    // Sorted high to low, each once: the figure's x axis, and one stored setting per fraction.
    const fractions = [...new Set(c.fractions ?? TRUNCATION_FRACTIONS)].sort((a, b) => b - a);
    return {
      runId: c.runId,
      setting: c.setting ?? null,
      fractions,
      probeId: c.probeId ?? null,
      judge: c.judge ?? 'jbb',
      maxNewTokens: c.maxNewTokens ?? DEFAULT_TRUNCATE_MAX_NEW_TOKENS,
      batchSize: c.batchSize ?? DEFAULT_BATCH,
      ...(c.sampling ? { sampling: c.sampling } : {}),
      seed: c.seed ?? 0,
    };
  },
  links: (c) => ({ parentRunId: c.runId }),
  report: (s) => [
    `  judge ${s.judge}; ${s.transcripts} transcript(s) truncated${s.withoutThinking ? `, ${s.withoutThinking} without thinking left out` : ''}`,
    "  thinking kept   answers   ASR      mean I'   mean tokens kept",
    ...s.points.map(
      (p) => `  ${pct(p.fraction).padStart(13)}   ${String(p.answers).padStart(7)}   ${pct(p.asr).padStart(6)}   ${fmt(p.meanFinal).padStart(7)}   ${fmt(p.meanKeptTokens, 1).padStart(16)}`,
    ),
  ],
  headlines: (s) => [
    ...s.points.map((p) => ({ key: `asr:keep${p.fraction}`, label: `ASR, ${pct(p.fraction)} of thinking kept`, value: p.asr })),
    ...s.points.map((p) => ({ key: `final:keep${p.fraction}`, label: `mean I', ${pct(p.fraction)} of thinking kept`, value: p.meanFinal })),
  ],
  cli: {
    verb: 'truncate',
    summary: "keep a fraction of the model's own thinking, close it, answer: ASR and I' per fraction",
    usage: 'truncate PROJECT --model DIR --run RUN [--probe ID] [--fractions LIST] [options]',
    about: `For every transcript of a transcripts run (the model's own reasoning), keeps the first fraction of its
thinking tokens, closes the thinking with "\\n</think>\\n\\n" and lets the model answer (the paper's truncation figure).
Each answer is judged by a refusal keyword list; with a probe, I' is its score at the answer boundary.`,
    flags: [
      flag('run', 'the transcripts run whose thinking is truncated', { arg: 'RUN', field: 'runId' }),
      flag('setting', "its transcripts under this setting, answered with that setting's head scale (default: the run's only one)", { arg: 'KEY', field: 'setting' }),
      flag('fractions', `fractions of the thinking kept (default ${TRUNCATION_FRACTIONS.join(',')})`, { arg: 'LIST', field: 'fractions' }),
      flag('probe', "probe for I' at the answer boundary", { arg: 'ID', field: 'probeId' }),
      flag('judge', 'refusal keyword list (default jbb, as ablate)', { arg: 'gcg|jbb', field: 'judge' }),
      flag('max-new-tokens', `answer budget (default ${DEFAULT_TRUNCATE_MAX_NEW_TOKENS})`, { arg: 'N', field: 'maxNewTokens' }),
      flag('batch', `answers decoded together (default ${DEFAULT_BATCH})`, { arg: 'B', field: 'batchSize' }),
      ...SAMPLING_FLAGS,
    ],
    input: (f, cli) => ({
      runId: cli.id(f.run, 'run'),
      ...(typeof f.setting === 'string' ? { setting: f.setting } : {}),
      fractions: cli.numbers(f.fractions, 'fractions'),
      probeId: f.probe === undefined ? null : cli.id(f.probe, 'probe'),
      ...(typeof f.judge === 'string' ? { judge: f.judge } : {}),
      maxNewTokens: cli.number(f['max-new-tokens'], 'max-new-tokens'),
      batchSize: cli.number(f.batch, 'batch'),
      sampling: samplingFromFlags(f, cli),
      seed: cli.number(f.seed, 'seed'),
    }),
  },
});
