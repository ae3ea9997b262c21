/**
 * `ablate` runs (docs/METHOD.md §4): a sweep over the top-k% refusal suppression heads of a heads run × γ, with random
 * heads of the same count as a control (and named head sets), generating answers for a harmful and a harmless set;
 * each cell reports ASR, over-refusal, mean I' and answer length.
 */
import { z } from 'zod';
import { ABLATION_FRACTIONS, ABLATION_GAMMAS } from '../method.js';
import { batchSize, count, finiteNumber, fraction01, HeadRefSchema, maxNewTokens, maybeNumber, rowId, Sampling, seed } from '../values.js';
import { SAMPLING_FLAGS, samplingFromFlags } from './flags.js';
import { AnswerJudges, AnswerJudgesInput, answerJudgesFromFlag, JUDGE_FLAG_HELP, resolveAnswerJudges } from './judge.js';
import { defineRun, finishedRun, flag, fmt, pct } from './spec.js';
import { DEFAULT_BATCH, DEFAULT_MAX_NEW_TOKENS } from './transcripts.js';

export const SWEEP_CONTROLS = ['planted', 'top', 'random'] as const;

const randomSeeds = z.number().int().min(1).max(100);
const HeadSet = z.strictObject({ name: z.string().min(1).max(200), heads: z.array(HeadRefSchema).min(1) });

const input = z.strictObject({
  /** The heads run whose averaged ranking supplies the top-k suppression heads. */
  headsRunId: rowId,
  /** Live probe for I'; null or omitted = no probe metrics. */
  probeId: rowId.nullable().optional(),
  harmfulDatasetId: rowId,
  harmlessDatasetId: rowId.nullable().optional(),
  /** Fractions of all L·H heads; default the paper's [0, 0.005, 0.015, 0.03, 0.1]. */
  fractions: z.array(fraction01).min(1).optional(),
  /** Default [0, 0.01, 0.5]. */
  gammas: z.array(finiteNumber).min(1).optional(),
  /** Default true. */
  randomControl: z.boolean().optional(),
  randomSeed: seed.optional(),
  /** Random-head controls per (k, γ), drawn with seeds randomSeed, randomSeed + 1, …; default 1. */
  randomSeeds: randomSeeds.optional(),
  /** Named head sets ablated as their own cells (control 'planted'). */
  headSets: z.array(HeadSet).optional(),
  /** Who judges every answer, in its item; the first gives each cell's headline ASR. Default JailbreakBench keywords. */
  judges: AnswerJudgesInput.optional(),
  chat: z.boolean().optional(),
  maxNewTokens: maxNewTokens.optional(),
  batchSize: batchSize.optional(),
  sampling: Sampling.optional(),
  seed: seed.optional(),
});

const config = z.strictObject({
  headsRunId: rowId,
  probeId: rowId.nullable(),
  harmfulDatasetId: rowId,
  harmlessDatasetId: rowId.nullable(),
  fractions: z.array(fraction01).min(1),
  gammas: z.array(finiteNumber).min(1),
  randomControl: z.boolean(),
  randomSeed: seed,
  randomSeeds,
  headSets: z.array(HeadSet),
  judges: AnswerJudges,
  chat: z.boolean(),
  maxNewTokens,
  batchSize,
  sampling: Sampling.optional(),
  seed,
});
export type AblateRunConfig = z.infer<typeof config>;

/** One judge's numbers on a cell (analysis/sweep.ts judgeRates). */
export const JudgeRates = z.strictObject({ asr: maybeNumber, judged: count, harmful: count, overRefusal: maybeNumber });
/** Two judges' agreement on a cell's attacks: percent agreement and Cohen's κ (analysis/sweep.ts judgeAgreement). */
export const JudgeAgreement = z.strictObject({ a: z.string(), b: z.string(), n: count, agree: count, agreement: maybeNumber, kappa: maybeNumber });
/** A metric over the random-head controls of one k and γ (analysis/sweep.ts spreadOf): sample std, range. */
export const Spread = z.strictObject({ n: count, mean: maybeNumber, std: maybeNumber, min: maybeNumber, max: maybeNumber });
export type Spread = z.infer<typeof Spread>;
/** The random-head controls of one k and γ over their seeds: each judge's ASR and the mean I' as mean ± spread. */
export const RandomSpread = z.strictObject({
  k: count,
  gamma: z.number(),
  /** The seed each control's heads were drawn with (replicate r of --random-seed S: S + r + k), in keys' order. */
  seeds: z.array(z.number().int()),
  keys: z.array(z.string()),
  /** The headline judge's ASR. */
  asr: Spread,
  meanFinal: Spread,
  /** Every judge's ASR, by judge id. */
  byJudge: z.record(z.string(), Spread),
});
export type RandomSpread = z.infer<typeof RandomSpread>;

/** One cell's numbers: ASR over the harmful answers, over-refusal over the harmless ones, mean I', answer length. */
export const SweepCellMetrics = z.strictObject({
  asr: maybeNumber,
  overRefusal: maybeNumber,
  meanFinal: maybeNumber,
  meanAnswerTokens: maybeNumber,
  harmful: count,
  harmless: count,
  judge: z.string(),
  /**
   * Transcripts whose thinking never closed: judged on their whole output and read by the probe with the closing
   * marker appended (docs/METHOD.md §0), counted so that a token budget never moves ASR unseen. Absent on cells
   * judged before it was counted.
   */
  thinkingNotClosed: z.strictObject({ harmful: count, harmless: count }).optional(),
  /** Every judge's numbers (the headline judge's too), by judge id; absent on cells judged by one judge only. */
  byJudge: z.record(z.string(), JudgeRates).optional(),
  /** Each pair of judges' agreement on the cell's attacks. */
  agreement: z.array(JudgeAgreement).optional(),
});
export type SweepCellMetrics = z.infer<typeof SweepCellMetrics>;

const summary = z.strictObject({
  /** The headline judge (the cells' asr / overRefusal). */
  judge: z.string(),
  /** Every judge of the run, the headline one first; absent on runs with one judge. */
  judges: z.array(z.string()).optional(),
  cells: z.array(SweepCellMetrics.extend({ key: z.string(), control: z.enum(SWEEP_CONTROLS), k: count, fraction: maybeNumber, gamma: z.number() })),
  /** The random controls' spread over seeds, per k and γ; absent on runs with one seed. */
  randomSpread: z.array(RandomSpread).optional(),
});
export type AblateRunSummary = z.infer<typeof summary>;

/** A judge id as a report column: the guard's model hash shortened. */
const shortJudge = (id: string) => (id.startsWith('guard:') ? `guard:${id.slice(6, 18)}` : id.replace(/^keyword:/, '').replace(/@1$/, ''));

export const ablateRun = defineRun({
  kind: 'ablate',
  about: 'top-k % suppression heads × γ against random heads: ASR and over-refusal per cell',
  input,
  config,
  summary,
  resolve(c, project) {
    finishedRun(project, 'config.headsRunId', c.headsRunId, 'heads');
    if (c.probeId !== undefined && c.probeId !== null) project.probe('config.probeId', c.probeId);
    project.dataset('config.harmfulDatasetId', c.harmfulDatasetId);
    if (c.harmlessDatasetId !== undefined && c.harmlessDatasetId !== null) project.dataset('config.harmlessDatasetId', c.harmlessDatasetId);
    return {
      headsRunId: c.headsRunId,
      probeId: c.probeId ?? null,
      harmfulDatasetId: c.harmfulDatasetId,
      harmlessDatasetId: c.harmlessDatasetId ?? null,
      fractions: c.fractions ?? [...ABLATION_FRACTIONS],
      gammas: c.gammas ?? [...ABLATION_GAMMAS],
      randomControl: c.randomControl ?? true,
      randomSeed: c.randomSeed ?? 0,
      randomSeeds: c.randomSeeds ?? 1,
      headSets: c.headSets ?? [],
      judges: resolveAnswerJudges('config.judges', c.judges, c.probeId ?? null, project),
      chat: c.chat ?? true,
      maxNewTokens: c.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
      batchSize: c.batchSize ?? DEFAULT_BATCH,
      ...(c.sampling ? { sampling: c.sampling } : {}),
      seed: c.seed ?? 0,
    };
  },
  // Configs stored before sweeps had several judges and seeds named one keyword list and drew one seed.
  fromStored: (stored) => {
    const { judge, ...rest } = stored;
    return {
      ...rest,
      ...(stored.judges === undefined && typeof judge === 'string' ? { judges: [{ kind: 'keyword', list: judge }] } : judge === undefined ? {} : { judge }),
      ...(stored.randomSeeds === undefined ? { randomSeeds: 1 } : {}),
    };
  },
  links: (c) => ({ datasetId: c.harmfulDatasetId }),
  report: (s) => [
    `  judge ${s.judge}${s.judges && s.judges.length > 1 ? ` (headline); also ${s.judges.slice(1).join(', ')}` : ''}`,
    "  cell                          k   γ      ASR    over-refusal  mean I'  answer tokens  thinking not closed",
    ...s.cells.map(
      (c) =>
        `  ${c.key.padEnd(28)} ${String(c.k).padStart(3)} ${fmt(c.gamma, 2).padStart(5)}  ${pct(c.asr).padStart(6)}  ${pct(c.overRefusal).padStart(12)}  ${fmt(c.meanFinal).padStart(7)}  ${fmt(c.meanAnswerTokens, 1).padStart(13)}  ` +
        (c.thinkingNotClosed ? `${c.thinkingNotClosed.harmful} / ${c.thinkingNotClosed.harmless}` : '—'),
    ),
    '  (thinking not closed: harmful / harmless transcripts judged on their whole output)',
    ...(s.judges && s.judges.length > 1
      ? [
          '  ASR by judge, and agreement on the attacks (% agreement, Cohen’s κ):',
          ...s.cells.map(
            (c) =>
              `  ${c.key.padEnd(28)} ${s.judges!.map((j) => `${shortJudge(j)} ${pct(c.byJudge?.[j]?.asr)}`).join('  ')}` +
              (c.agreement ?? []).map((a) => `  ${shortJudge(a.a)}~${shortJudge(a.b)} ${pct(a.agreement)} κ ${fmt(a.kappa, 2)}`).join(''),
          ),
        ]
      : []),
    ...(s.randomSpread?.length
      ? [
          '  random controls over seeds (ASR mean ± std, min–max):',
          ...s.randomSpread.map(
            (r) => `  k=${String(r.k).padStart(3)} γ=${fmt(r.gamma, 2).padEnd(5)} ${pct(r.asr.mean)} ± ${pct(r.asr.std)}  (${pct(r.asr.min)}–${pct(r.asr.max)}, ${r.asr.n} of ${r.keys.length} controls: ${r.keys.join(', ')})`,
          ),
        ]
      : []),
  ],
  headlines(s) {
    const asrs = (pick: (c: AblateRunSummary['cells'][number]) => boolean) => s.cells.filter(pick).flatMap((c) => (c.asr === null ? [] : [c.asr]));
    const min = (xs: number[]) => (xs.length ? Math.min(...xs) : null);
    return [
      { key: 'baselineAsr', label: 'ASR without ablation', value: s.cells.find((c) => c.key === 'baseline')?.asr ?? null },
      { key: 'bestTopAsr', label: 'lowest ASR, top-k heads', value: min(asrs((c) => c.control === 'top' && c.k > 0)) },
      { key: 'bestRandomAsr', label: 'lowest ASR, random heads', value: min(asrs((c) => c.control === 'random')) },
      ...s.cells.map((c) => ({ key: `asr:${c.key}`, label: `ASR ${c.key}`, value: c.asr })),
    ];
  },
  cli: {
    verb: 'ablate',
    summary: 'sweep ablations of the top suppression heads × γ against random heads; ASR per cell',
    usage: 'ablate PROJECT --model DIR --heads-run RUN --harmful NAME [--harmless NAME] [options]',
    about: `Ablates the top-k% refusal suppression heads of a heads run (z ← γ·z before o_proj, at every position) while
generating answers for a harmful set (and a harmless one for over-refusal), with k random heads as a control.
Every setting shares the batches. Per cell: ASR, over-refusal, mean final refusal score I', answer length.
--judge judges every answer in the item that generated it (keywords, a Llama-Guard-style model, the live probe);
with several, each cell reports every judge's ASR and their agreement (Cohen's κ). --random-seeds N draws N
random-head controls per cell (seeds S … S+N−1), reported as mean ± std and min–max.`,
    flags: [
      flag('heads-run', 'the ranking to ablate from', { arg: 'RUN', field: 'headsRunId' }),
      flag('harmful', 'attack prompts (ASR)', { arg: 'NAME', field: 'harmfulDatasetId' }),
      flag('harmless', 'benign prompts (over-refusal), optional', { arg: 'NAME', field: 'harmlessDatasetId' }),
      flag('probe', "live probe for I'", { arg: 'ID', field: 'probeId' }),
      flag('fractions', `fractions of all heads (default ${ABLATION_FRACTIONS.join(',')})`, { arg: 'LIST', field: 'fractions' }),
      flag('gammas', `γ values (default ${ABLATION_GAMMAS.join(',')})`, { arg: 'LIST', field: 'gammas' }),
      flag('no-random', 'skip the random-heads control', { field: 'randomControl' }),
      flag('random-seed', 'seed of the random heads (default 0)', { arg: 'S', field: 'randomSeed' }),
      flag('random-seeds', 'random-head controls per cell, seeds S, S+1, … (default 1)', { arg: 'N', field: 'randomSeeds' }),
      flag('judge', JUDGE_FLAG_HELP, { arg: 'LIST', field: 'judges' }),
      flag('max-new-tokens', `default ${DEFAULT_MAX_NEW_TOKENS}`, { arg: 'N', field: 'maxNewTokens' }),
      flag('batch', `prompts decoded together (default ${DEFAULT_BATCH})`, { arg: 'B', field: 'batchSize' }),
      ...SAMPLING_FLAGS,
      flag('no-chat', 'raw prompts (no chat template)', { field: 'chat' }),
    ],
    input: (f, cli) => ({
      headsRunId: cli.id(f['heads-run'], 'heads-run'),
      probeId: f.probe === undefined ? null : cli.id(f.probe, 'probe'),
      harmfulDatasetId: cli.dataset(cli.required(f.harmful, 'harmful'), 'harmful'),
      harmlessDatasetId: typeof f.harmless === 'string' ? cli.dataset(f.harmless, 'harmless') : null,
      fractions: cli.numbers(f.fractions, 'fractions'),
      gammas: cli.numbers(f.gammas, 'gammas'),
      randomControl: !f['no-random'],
      randomSeed: cli.number(f['random-seed'], 'random-seed'),
      randomSeeds: cli.number(f['random-seeds'], 'random-seeds'),
      judges: answerJudgesFromFlag(f.judge, cli),
      chat: !f['no-chat'],
      maxNewTokens: cli.number(f['max-new-tokens'], 'max-new-tokens'),
      batchSize: cli.number(f.batch, 'batch'),
      sampling: samplingFromFlags(f, cli),
      seed: cli.number(f.seed, 'seed'),
    }),
  },
});
