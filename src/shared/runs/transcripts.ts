/**
 * `transcripts` runs: the model's own transcripts for a dataset's prompts, under one or more head-scale settings side
 * by side, with the thinking / answer split and, with a probe, its live refusal score per token stored as a trace.
 * The raw material of every other run. (The `generate` verb generates without storing anything.)
 */
import { z } from 'zod';
import { headScaleMatrix, parseHeads } from '../heads.js';
import { batchSize, count, finiteNumber, HeadScale, maxNewTokens, rowId, Sampling, seed } from '../values.js';
import { SAMPLING_FLAGS, samplingFromFlags } from './flags.js';
import { defineRun, flag, fmt, notClosed } from './spec.js';

/** One ablation setting: a key stored with each transcript, and its γ matrix (omitted = no ablation). */
export const HeadScaleSetting = z.strictObject({ key: z.string().min(1).max(200), headScale: HeadScale.optional() });
export type HeadScaleSetting = z.infer<typeof HeadScaleSetting>;

export const BASELINE_SETTING: HeadScaleSetting = Object.freeze({ key: 'baseline' });
export const DEFAULT_MAX_NEW_TOKENS = 1024;
export const DEFAULT_BATCH = 8;

const shared = {
  /** Only these items; default the whole dataset. */
  itemIds: z.array(rowId).min(1).optional(),
  system: z.string().max(100_000).optional(),
  sampling: Sampling.optional(),
  /** Live probe: its per-token score is stored as a trace of every transcript. */
  probeId: rowId.optional(),
};

const input = z.strictObject({
  datasetId: rowId,
  ...shared,
  /** Default true. */
  chat: z.boolean().optional(),
  /** Default 1024. */
  maxNewTokens: maxNewTokens.optional(),
  /** Default 0. */
  seed: seed.optional(),
  /** Default 8. */
  batchSize: batchSize.optional(),
  /** Default one unablated setting, key `baseline`. */
  settings: z.array(HeadScaleSetting).min(1).optional(),
});

const config = z.strictObject({
  datasetId: rowId,
  ...shared,
  chat: z.boolean(),
  maxNewTokens,
  seed,
  batchSize,
  settings: z.array(HeadScaleSetting).min(1),
});
export type GenerateRunConfig = z.infer<typeof config>;

/** An item a run did not generate, and why (e.g. its prompt leaves no room in the model's context). */
export const SkippedItem = z.strictObject({ itemId: rowId, setting: z.string(), reason: z.string() });
export type SkippedItem = z.infer<typeof SkippedItem>;

/** The report's line for each skipped item. */
export const skippedLines = (skipped: SkippedItem[] | undefined) => (skipped ?? []).map((x) => `  skipped     item #${x.itemId} (${x.setting}): ${x.reason}`);

const summary = z.strictObject({
  transcripts: count,
  withAnswerBoundary: count,
  /** Thinking opened and never closed (judged on the whole output, docs/METHOD.md §0); absent on runs summarised before it was counted. */
  thinkingNotClosed: count.optional(),
  finishReasons: z.record(z.string(), count),
  meanOutputTokens: finiteNumber.nullable(),
  /** Items not generated, with the reason (recorded as done: a resume does not retry them); absent on older runs. */
  skipped: z.array(SkippedItem).optional(),
});
export type GenerateRunSummary = z.infer<typeof summary>;

const share = (part: number, whole: number) => (whole > 0 ? part / whole : null);

export const transcriptsRun = defineRun({
  kind: 'transcripts',
  about: "the model's own transcripts for a dataset's prompts",
  input,
  config,
  summary,
  resolve(c, project) {
    project.dataset('config.datasetId', c.datasetId);
    if (c.probeId !== undefined) project.probe('config.probeId', c.probeId);
    c.itemIds?.forEach((id, i) => project.item(`config.itemIds[${i}]`, id, c.datasetId));
    return {
      ...c,
      chat: c.chat ?? true,
      maxNewTokens: c.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
      seed: c.seed ?? 0,
      batchSize: c.batchSize ?? DEFAULT_BATCH,
      settings: c.settings ?? [BASELINE_SETTING],
    };
  },
  links: (c) => ({ datasetId: c.datasetId }),
  report: (s) => [
    `  transcripts ${fmt(s.transcripts)} (${fmt(s.withAnswerBoundary)} with an answer boundary${notClosed(s.thinkingNotClosed)}), mean ${fmt(s.meanOutputTokens, 1)} new tokens`,
    `  finished    ${Object.entries(s.finishReasons).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...skippedLines(s.skipped),
  ],
  headlines: (s) => [
    { key: 'transcripts', label: 'transcripts', value: s.transcripts },
    { key: 'meanOutputTokens', label: 'mean output tokens', value: s.meanOutputTokens },
    { key: 'eosRate', label: 'ended by EOS', value: share(s.finishReasons.eos ?? 0, s.transcripts) },
    { key: 'withAnswerBoundary', label: 'with an answer boundary', value: share(s.withAnswerBoundary, s.transcripts) },
    { key: 'thinkingNotClosed', label: 'thinking not closed', value: s.thinkingNotClosed ?? null },
  ],
  cli: {
    verb: 'transcripts',
    summary: "generate and store the model's transcripts for a dataset (a transcripts run)",
    usage: 'transcripts PROJECT --model DIR --dataset NAME [options]',
    about: `Generates a reasoning transcript for every prompt of the dataset and stores it (token ids, text, thinking span,
answer boundary). With --probe, the probe's refusal score is traced live on every token.`,
    flags: [
      flag('dataset', 'prompts to answer', { arg: 'NAME', field: 'datasetId' }),
      flag('max-new-tokens', `default ${DEFAULT_MAX_NEW_TOKENS}`, { arg: 'N', field: 'maxNewTokens' }),
      flag('batch', `prompts decoded together (default ${DEFAULT_BATCH})`, { arg: 'B', field: 'batchSize' }),
      ...SAMPLING_FLAGS,
      flag('heads', 'ablate these heads while generating: L1H5,L2H2 or 1:5,2:2', { arg: 'LIST', field: 'settings' }),
      flag('head-scale-gamma', 'γ for --heads (default 0: removed)', { arg: 'G', field: 'settings' }),
      flag('probe', 'live probe: store its refusal score per token', { arg: 'ID', field: 'probeId' }),
      flag('system', 'system message before each prompt', { arg: 'TEXT', field: 'system' }),
      flag('no-chat', 'feed prompts as raw text (no chat template)', { field: 'chat' }),
    ],
    async input(f, cli) {
      let settings: HeadScaleSetting[] | undefined;
      if (f.heads !== undefined) {
        const list = cli.required(f.heads, 'heads');
        const shape = await cli.shape();
        const parsed = parseHeads(list, shape);
        if (parsed.error) cli.fail(`--heads: ${parsed.error}`);
        if (!parsed.heads.length) cli.fail('--heads: name at least one head');
        const gamma = cli.number(f['head-scale-gamma'], 'head-scale-gamma') ?? 0;
        settings = [{ key: `heads:${list}:g${gamma}`, headScale: headScaleMatrix(parsed.heads, gamma, shape.layers, shape.heads) }];
      } else if (f['head-scale-gamma'] !== undefined) {
        cli.fail('--head-scale-gamma applies to --heads');
      }
      return {
        datasetId: cli.dataset(cli.required(f.dataset, 'dataset'), 'dataset'),
        chat: !f['no-chat'],
        ...(typeof f.system === 'string' ? { system: f.system } : {}),
        maxNewTokens: cli.number(f['max-new-tokens'], 'max-new-tokens'),
        sampling: samplingFromFlags(f, cli),
        seed: cli.number(f.seed, 'seed'),
        batchSize: cli.number(f.batch, 'batch'),
        settings,
        probeId: f.probe === undefined ? undefined : cli.id(f.probe, 'probe'),
      };
    },
  },
});
