/**
 * `probe` runs (docs/METHOD.md §1): one logistic refusal probe per residual-stack index, from refusal (positive) vs
 * non-refusal (negative) transcripts, each stored as a versioned probe with its metrics, its calibration and
 * provenance. The paper's samples by default, fitted by a preset (analysis/probe.ts) that fills whatever is left out:
 * a converged L-BFGS logistic regression by default, the paper's Adam loop as `paper-adam`.
 */
import { z } from 'zod';
import { isUncalibrated, pickProbePreset, PROBE_LABEL_RULES, PROBE_OPTIMIZERS, PROBE_PRESET_NAMES, PROBE_SELECT_BY, uncalibratedWarning } from '../method.js';
import { count, maybeNumber, PositionRule, residIndex, rowId, seed, TranscriptSource } from '../values.js';
import { sourceFromFlags } from './flags.js';
import { checkSource, defineRun, flag, fmt, type Loose, pct } from './spec.js';

/**
 * Which positives count as refusals: a refusal keyword in the answer's first 32 characters (GCG's list, JBB's, or
 * the paper code's, which also drops transcripts with ≤ 10 characters of thinking), or every one.
 */
export const LabelRule = z.enum(PROBE_LABEL_RULES);
export type LabelRule = z.infer<typeof LabelRule>;

export const DEFAULT_PROBE_NAME = 'refusal';

/**
 * Probe training options; a preset (analysis/probe.ts) fills whatever is left out: `preset` names one, else
 * `optimizer` picks its family's, else settings only a gradient optimiser reads (lr, batchSize, epochs, selectBy)
 * select 'paper-adam', else the default 'lbfgs'.
 */
export const ProbeTrainOptions = z.strictObject({
  preset: z.enum(PROBE_PRESET_NAMES).optional(),
  balance: z.boolean().optional(),
  maxPerClass: z.number().int().min(2).nullable().optional(),
  valFraction: z.number().min(0).lt(1).optional(),
  optimizer: z.enum(PROBE_OPTIMIZERS).optional(),
  lr: z.number().positive().max(1e6).optional(),
  batchSize: z.number().int().positive().max(1_000_000).optional(),
  epochs: z.number().int().positive().max(100_000).optional(),
  /** 'auto' = scikit-learn's C = 1 at unit average feature variance (the lbfgs preset's). */
  l2: z.union([z.number().min(0).max(1e6), z.literal('auto')]).optional(),
  selectBy: z.enum(PROBE_SELECT_BY).optional(),
  /** L-BFGS: stop when max |∂f| ≤ tolerance, or after maxIterations. */
  maxIterations: z.number().int().positive().max(100_000).optional(),
  tolerance: z.number().positive().max(1).optional(),
  seed: seed.optional(),
});

const name = z.string().trim().min(1, 'a probe needs a name').max(200);
/** Residual-stack indices (0 = embeddings, i+1 = after block i, L+1 = final norm); empty or omitted = [L+1]. */
const residIndices = z.array(residIndex);

const input = z.strictObject({
  /** The probe's name (and its run's); default the run's name, else "refusal". */
  name: name.optional(),
  positive: TranscriptSource,
  negative: TranscriptSource,
  /** Default 'answer-boundary' (the paper's). */
  positionRule: PositionRule.optional(),
  residIndices: residIndices.optional(),
  /** Default 'gcg-first32' (the paper's). */
  labelRule: LabelRule.optional(),
  train: ProbeTrainOptions.optional(),
});

const config = z.strictObject({
  name,
  positive: TranscriptSource,
  negative: TranscriptSource,
  positionRule: PositionRule,
  residIndices,
  labelRule: LabelRule,
  /** The options as given, with the preset they were filled from named (pickProbePreset), so a resume fits alike. */
  train: ProbeTrainOptions.extend({ preset: z.enum(PROBE_PRESET_NAMES) }),
});
export type ProbeRunConfig = z.infer<typeof config>;

/**
 * How well a probe's scores match the labels, on the validation set (the training set without one): mean BCE next to
 * ln 2 (a probe that always says 0.5), mean score per class, their gap, and the expected calibration error over
 * `eceBins` equal-width score bins. Null where a value could not be computed.
 */
export const ProbeCalibration = z.strictObject({
  set: z.enum(['validation', 'train']),
  loss: maybeNumber,
  chanceLoss: z.number(),
  meanScore: z.strictObject({ positive: maybeNumber, negative: maybeNumber }),
  scoreGap: maybeNumber,
  ece: maybeNumber,
  eceBins: z.number().int(),
});
export type ProbeCalibration = z.infer<typeof ProbeCalibration>;

/** What was fitted and why: the preset and optimiser, the reason for them, and which solution was kept. */
export const ProbeTraining = z.strictObject({
  preset: z.enum(PROBE_PRESET_NAMES),
  optimizer: z.enum(PROBE_OPTIMIZERS),
  reason: z.string(),
  kept: z.string(),
});

const summary = z.strictObject({
  samples: count,
  positives: count,
  negatives: count,
  skippedNoPosition: count,
  skippedNotRefusal: count,
  /** The paper-code rule's thinking-length filter; absent on runs trained before it existed. */
  skippedShortThinking: count.optional(),
  transcripts: count,
  /** The fit (the same for every entry), and the entries whose L-BFGS did not converge; absent on older runs. */
  training: ProbeTraining.extend({ unconvergedResidIndices: z.array(residIndex) }).optional(),
  probes: z.array(z.strictObject({ residIndex, probeId: rowId, valAccuracy: maybeNumber, valAuroc: maybeNumber, calibration: ProbeCalibration.nullable().optional() })),
  bestProbeId: rowId,
  bestResidIndex: residIndex,
});
export type ProbeRunSummary = z.infer<typeof summary>;

/** The best probe's entry of a probe run's summary. */
export function bestProbe(s: ProbeRunSummary): ProbeRunSummary['probes'][number] | null {
  return s.probes.find((p) => p.probeId === s.bestProbeId) ?? null;
}

export const probeRun = defineRun({
  kind: 'probe',
  about: 'refusal probes, one per residual-stack index',
  input,
  config,
  summary,
  resolve(c, project, run) {
    checkSource(project, 'config.positive', c.positive);
    checkSource(project, 'config.negative', c.negative);
    return {
      name: run.name ?? c.name ?? DEFAULT_PROBE_NAME,
      positive: c.positive,
      negative: c.negative,
      positionRule: c.positionRule ?? 'answer-boundary',
      residIndices: c.residIndices ?? [],
      labelRule: c.labelRule ?? 'gcg-first32',
      train: { ...c.train, preset: pickProbePreset(c.train ?? {}).preset },
    };
  },
  // Configs stored before the preset was named meant the default of their time, the paper's Adam loop, when nothing
  // else picked one: without this, resuming such a run would fit with today's default (L-BFGS).
  fromStored: (stored) => {
    const train = stored.train;
    if (train === null || typeof train !== 'object' || Array.isArray(train) || 'preset' in train) return stored;
    return { ...stored, train: { ...train, preset: pickProbePreset(train as Parameters<typeof pickProbePreset>[0], 'paper-adam').preset } };
  },
  links: () => ({}),
  report: (s) => [
    `  samples   ${s.samples} (${s.positives} refusals, ${s.negatives} non-refusals; skipped ${s.skippedNotRefusal} non-refusing positives, ${s.skippedNoPosition} without position` +
      `${s.skippedShortThinking ? `, ${s.skippedShortThinking} with ≤ 10 characters of thinking` : ''})`,
    ...(s.training
      ? [
          `  fit       ${s.training.optimizer} (preset ${s.training.preset}): ${s.training.reason}`,
          `  kept      ${s.training.kept}${s.training.unconvergedResidIndices.length ? `; NOT converged on residual-stack entries ${s.training.unconvergedResidIndices.join(', ')}` : ''}`,
        ]
      : []),
    ...s.probes.flatMap((p) => {
      const c = p.calibration;
      const cal = c ? `  ${c.set} loss ${fmt(c.loss)} (ln 2 = 0.693)  mean score ${fmt(c.meanScore.positive)} / ${fmt(c.meanScore.negative)}  gap ${fmt(c.scoreGap)}  ECE ${fmt(c.ece)}` : '';
      const line = `  resid ${String(p.residIndex).padStart(3)}  probe #${p.probeId}  val acc ${pct(p.valAccuracy)}  AUROC ${fmt(p.valAuroc)}${cal}${p.probeId === s.bestProbeId ? '  ← best' : ''}`;
      const { positive, negative } = c?.meanScore ?? {};
      return typeof positive === 'number' && typeof negative === 'number' && isUncalibrated({ meanScore: { positive, negative } })
        ? [line, `  WARNING   ${uncalibratedWarning(p.probeId, { positive, negative })}`]
        : [line];
    }),
  ],
  headlines: (s) => [
    { key: 'valAccuracy', label: 'validation accuracy', value: bestProbe(s)?.valAccuracy ?? null },
    { key: 'valAuroc', label: 'validation AUROC', value: bestProbe(s)?.valAuroc ?? null },
    { key: 'samples', label: 'samples', value: s.samples },
    { key: 'bestResidIndex', label: 'best residual-stack index', value: s.bestResidIndex },
  ],
  cli: {
    verb: 'probe train',
    summary: "train refusal probes (a converged L-BFGS fit by default, the paper's Adam recipe as a preset)",
    usage: 'probe train PROJECT --model DIR (--positive-run RUN | --positive NAME) (--negative-run RUN | --negative NAME) [options]',
    about: `Trains a logistic-regression refusal probe r(h) = sigmoid(w·h + b) per residual-stack entry it is given
(docs/METHOD.md §1). Samples follow the paper: features at the answer boundary (the token before the answer),
positives = answers to harmful prompts that refuse (refusal keyword in the first 32 characters), negatives = answers
to harmless prompts, balanced, ≤ 200 per class, 80/20 split, on the final-normed hidden state. The fit defaults to
the lbfgs preset: the L2-regularised logistic regression solved to convergence (scikit-learn's C = 1 at unit feature
variance), whose scores stay calibrated on small data; --preset paper-adam is the paper's loop (Adam lr 1e-3, batch
64, 5 epochs, the epoch with the best validation accuracy, ties to the lower validation loss); --lr, --epochs,
--batch-size or --select-by alone select it too. The report gives the calibration: validation loss next to ln 2,
mean score per class, their gap and the ECE. Prompt-only probes (Arditi et al.) use --position prompt.`,
    flags: [
      flag('positive-run', 'refusal side: a transcripts run', { arg: 'RUN', field: 'positive' }),
      flag('positive', 'refusal side: a dataset (with responses, or prompts)', { arg: 'NAME', field: 'positive' }),
      flag('negative-run', 'non-refusal side: a transcripts run', { arg: 'RUN', field: 'negative' }),
      flag('negative', 'non-refusal side: a dataset', { arg: 'NAME', field: 'negative' }),
      flag('position', 'boundary (default: the answer boundary) or prompt (the last prompt token)', { arg: 'boundary|prompt', field: 'positionRule' }),
      flag('resid', 'residual-stack entries to train on: final (default; ln_final), all, or e.g. 12,20,28 (0 = embeddings, i = after block i-1)', {
        arg: 'final|all|LIST',
        field: 'residIndices',
        alias: 'layers',
      }),
      flag('label-rule', 'which positives count as refusals (default gcg-first32; paper-code = the paper\'s code: its word list, case-sensitive, and > 10 characters of thinking)', {
        arg: PROBE_LABEL_RULES.join('|'),
        field: 'labelRule',
      }),
      flag('preset', 'how the probe is fitted (default lbfgs)', { arg: PROBE_PRESET_NAMES.join('|'), field: 'train.preset' }),
      flag('l2', 'L2 penalty (default auto with lbfgs, 0 with paper-adam)', { arg: 'X|auto', field: 'train.l2' }),
      flag('seed', 'split and shuffle seed', { arg: 'S', field: 'train.seed' }),
      flag('max-per-class', 'samples kept per class (≥ 2)', { arg: 'N', field: 'train.maxPerClass' }),
      flag('lr', 'learning rate (paper-adam)', { arg: 'X', field: 'train.lr' }),
      flag('epochs', 'epochs (paper-adam)', { arg: 'N', field: 'train.epochs' }),
      flag('batch-size', 'training batch size (paper-adam)', { arg: 'N', field: 'train.batchSize' }),
      flag('select-by', 'which epoch to keep (paper-adam)', { arg: PROBE_SELECT_BY.join('|'), field: 'train.selectBy' }),
      flag('no-chat', 'with datasets: raw prompts (no chat template)', { field: 'positive.chat' }),
    ],
    async input(f, cli) {
      const side = (which: 'positive' | 'negative') => sourceFromFlags(f, cli, `${which}-run`, which);
      const position = f.position ?? 'boundary';
      if (position !== 'boundary' && position !== 'prompt') cli.fail('--position must be boundary or prompt');
      const which = f.resid ?? 'final';
      let residIndices: number[];
      if (which === 'final' || which === 'all') {
        const { layers: L } = await cli.shape();
        residIndices = which === 'final' ? [L + 1] : Array.from({ length: L + 2 }, (_, i) => i);
      } else {
        residIndices = cli.numbers(which, 'resid') ?? [];
      }
      const train: Loose<z.input<typeof ProbeTrainOptions>> = {};
      const num = (key: 'lr' | 'epochs' | 'batchSize' | 'l2' | 'seed' | 'maxPerClass', name: string) => {
        const v = cli.number(f[name], name);
        if (v !== undefined) train[key] = v;
      };
      if (typeof f.preset === 'string') train.preset = f.preset;
      num('lr', 'lr');
      num('epochs', 'epochs');
      num('batchSize', 'batch-size');
      if (f.l2 === 'auto') train.l2 = 'auto';
      else num('l2', 'l2');
      num('seed', 'seed');
      num('maxPerClass', 'max-per-class');
      if (typeof f['select-by'] === 'string') train.selectBy = f['select-by'];
      return {
        positive: side('positive'),
        negative: side('negative'),
        positionRule: position === 'prompt' ? 'last-prompt-token' : 'answer-boundary',
        residIndices,
        ...(typeof f['label-rule'] === 'string' ? { labelRule: f['label-rule'] } : {}),
        train,
      };
    },
  },
});
