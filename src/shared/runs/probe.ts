/**
 * `probe` runs (METHOD.md §1): one logistic refusal probe per residual-stack index, from refusal (positive) vs
 * non-refusal (negative) transcripts, each stored as a versioned probe with its metrics and provenance. The
 * paper's recipe fills whatever is left out.
 */
import { z } from 'zod';
import { count, maybeNumber, PositionRule, residIndex, rowId, seed, TranscriptSource } from '../values.js';
import { sourceFromFlags } from './flags.js';
import { checkSource, defineRun, flag, fmt, type Loose, pct } from './spec.js';

/** Which positives count as refusals: a refusal keyword in the answer's first 32 characters, or every one. */
export const LabelRule = z.enum(['gcg-first32', 'jbb-first32', 'all']);
export type LabelRule = z.infer<typeof LabelRule>;

export const DEFAULT_PROBE_NAME = 'refusal';

/** Probe training options; the paper's preset (analysis/probe.ts) fills whatever is left out. */
export const ProbeTrainOptions = z.strictObject({
  balance: z.boolean().optional(),
  maxPerClass: z.number().int().min(2).nullable().optional(),
  valFraction: z.number().min(0).lt(1).optional(),
  optimizer: z.enum(['adam', 'sgd']).optional(),
  lr: z.number().positive().max(1e6).optional(),
  batchSize: z.number().int().positive().max(1_000_000).optional(),
  epochs: z.number().int().positive().max(100_000).optional(),
  l2: z.number().min(0).max(1e6).optional(),
  selectBy: z.enum(['val-accuracy', 'val-loss', 'last']).optional(),
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
  train: ProbeTrainOptions,
});
export type ProbeRunConfig = z.infer<typeof config>;

const summary = z.strictObject({
  samples: count,
  positives: count,
  negatives: count,
  skippedNoPosition: count,
  skippedNotRefusal: count,
  transcripts: count,
  probes: z.array(z.strictObject({ residIndex, probeId: rowId, valAccuracy: maybeNumber, valAuroc: maybeNumber })),
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
      train: c.train ?? {},
    };
  },
  links: () => ({}),
  report: (s) => [
    `  samples   ${s.samples} (${s.positives} refusals, ${s.negatives} non-refusals; skipped ${s.skippedNotRefusal} non-refusing positives, ${s.skippedNoPosition} without position)`,
    ...s.probes.map((p) => `  resid ${String(p.residIndex).padStart(3)}  probe #${p.probeId}  val acc ${pct(p.valAccuracy)}  AUROC ${fmt(p.valAuroc)}${p.probeId === s.bestProbeId ? '  ← best' : ''}`),
  ],
  headlines: (s) => [
    { key: 'valAccuracy', label: 'validation accuracy', value: bestProbe(s)?.valAccuracy ?? null },
    { key: 'valAuroc', label: 'validation AUROC', value: bestProbe(s)?.valAuroc ?? null },
    { key: 'samples', label: 'samples', value: s.samples },
    { key: 'bestResidIndex', label: 'best residual-stack index', value: s.bestResidIndex },
  ],
  cli: {
    verb: 'probe train',
    summary: 'train refusal probes (paper recipe by default; the final norm, a list of residual-stack entries, or all)',
    usage: 'probe train PROJECT --model DIR (--positive-run RUN | --positive NAME) (--negative-run RUN | --negative NAME) [options]',
    about: `Trains a logistic-regression refusal probe r(h) = sigmoid(w·h + b) per residual-stack entry it is given. The paper's recipe is the default:
features at the answer boundary (the token before the answer), positives = answers to harmful prompts that refuse
(refusal keyword in the first 32 characters), negatives = answers to harmless prompts, balanced, ≤ 200 per class,
80/20 split, Adam lr 1e-3, batch 64, 5 epochs, the epoch with the best validation accuracy, on the final-normed
hidden state. Prompt-only probes (Arditi et al.) use --position prompt with datasets of prompts.`,
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
      flag('label-rule', 'which positives count as refusals (default gcg-first32)', { arg: 'gcg-first32|jbb-first32|all', field: 'labelRule' }),
      flag('lr', 'learning rate', { arg: 'X', field: 'train.lr' }),
      flag('epochs', 'epochs', { arg: 'N', field: 'train.epochs' }),
      flag('batch-size', 'training batch size', { arg: 'N', field: 'train.batchSize' }),
      flag('l2', 'L2 penalty', { arg: 'X', field: 'train.l2' }),
      flag('seed', 'split and shuffle seed', { arg: 'S', field: 'train.seed' }),
      flag('max-per-class', 'samples kept per class (≥ 2)', { arg: 'N', field: 'train.maxPerClass' }),
      flag('select-by', 'which epoch to keep', { arg: 'val-accuracy|val-loss|last', field: 'train.selectBy' }),
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
      num('lr', 'lr');
      num('epochs', 'epochs');
      num('batchSize', 'batch-size');
      num('l2', 'l2');
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
