/**
 * `heads` runs (docs/METHOD.md §3): each attention head's direct write into the probe's direction at the answer
 * boundary, per transcript and averaged over the set, ranked into refusal suppression heads (most negative) and
 * refusal heads (most positive); optionally at every token (heads × tokens).
 */
import { z } from 'zod';
import { count, positive, rowId, scoreList, TranscriptSource } from '../values.js';
import { SOURCE_FLAGS, sourceFromFlags } from './flags.js';
import { checkSource, defineRun, flag, fmt } from './spec.js';

/** 'code' (w·Δh/‖w‖, the paper's code), 'blog' (w·Δh + b), 'final-norm-aware' (through the final RMSNorm). */
export const AttributionVariant = z.enum(['code', 'blog', 'final-norm-aware']);

const input = z.strictObject({
  probeId: rowId,
  source: TranscriptSource,
  /** Only transcripts whose dataset label is this (the paper: the model's own harmful-prompt transcripts). */
  label: z.string().optional(),
  /** Default 'code'. */
  variant: AttributionVariant.optional(),
  /** Also keep the score at every token (heads × tokens). Default false. */
  perToken: z.boolean().optional(),
});

const config = z.strictObject({ probeId: rowId, source: TranscriptSource, label: z.string().optional(), variant: AttributionVariant, perToken: z.boolean() });
export type HeadsRunConfig = z.infer<typeof config>;

/** A head (block index `layer`) and its averaged score. */
export const HeadScore = z.strictObject({ layer: count, head: count, score: z.number() });
export const TOP_HEADS = 20;

const summary = z.strictObject({
  probeId: rowId,
  variant: AttributionVariant,
  transcripts: count,
  /** Blocks upstream of the probe, and heads per block: the averaged map's shape. */
  layers: positive,
  heads: positive,
  /** The 20 most negative (refusal suppression) and most positive (refusal) heads. */
  suppression: z.array(HeadScore),
  refusal: z.array(HeadScore),
  /** Standard deviation over transcripts per head, [layers × heads]. */
  std: scoreList,
});
export type HeadsRunSummary = z.infer<typeof summary>;

export const headsRun = defineRun({
  kind: 'heads',
  about: "each head's direct contribution to the probe at the answer boundary, ranked",
  input,
  config,
  summary,
  resolve(c, project) {
    project.probe('config.probeId', c.probeId);
    checkSource(project, 'config.source', c.source);
    return { probeId: c.probeId, source: c.source, ...(c.label !== undefined ? { label: c.label } : {}), variant: c.variant ?? 'code', perToken: c.perToken ?? false };
  },
  links: () => ({}),
  report: (s) => [
    `  ${fmt(s.transcripts)} transcripts, ${s.variant} attribution; most negative (refusal suppression) heads:`,
    ...s.suppression.slice(0, 10).map((h) => `    L${h.layer}H${h.head}  ${fmt(h.score, 4)}`),
    `  most positive (refusal) heads: ${s.refusal
      .slice(0, 3)
      .map((h) => `L${h.layer}H${h.head} ${fmt(h.score, 4)}`)
      .join(', ')}`,
  ],
  headlines: (s) => [
    { key: 'transcripts', label: 'transcripts', value: s.transcripts },
    { key: 'topSuppression', label: 'most negative head score', value: s.suppression[0]?.score ?? null },
    { key: 'topRefusal', label: 'most positive head score', value: s.refusal[0]?.score ?? null },
  ],
  cli: {
    verb: 'heads',
    summary: 'rank attention heads by their direct contribution to the probe at the cliff',
    usage: 'heads PROJECT --model DIR --probe ID (--run RUN | --dataset NAME) [options]',
    about: `For every transcript, each head's direct write into the residual stream at the answer boundary, W_O[:, h] z_h,
read by the probe (w·Δh/‖w‖, the paper's code), averaged over the set; the most negative are the refusal
suppression heads. --variant blog adds the bias (w·Δh + b, same ranking); --variant final-norm-aware accounts for
the final RMSNorm's scale at t_b (an improvement, not the paper's).`,
    flags: [
      flag('probe', 'the probe', { arg: 'ID', field: 'probeId' }),
      ...SOURCE_FLAGS,
      flag('label', 'only transcripts of dataset items with this label (e.g. harmful)', { arg: 'LABEL', field: 'label' }),
      flag('variant', 'attribution variant (default code)', { arg: 'code|blog|final-norm-aware', field: 'variant' }),
      flag('per-token', "also store every head's score at every token (heads × tokens)", { field: 'perToken' }),
    ],
    input: (f, cli) => ({
      probeId: cli.id(f.probe, 'probe'),
      source: sourceFromFlags(f, cli),
      ...(typeof f.label === 'string' ? { label: f.label } : {}),
      ...(typeof f.variant === 'string' ? { variant: f.variant } : {}),
      perToken: f['per-token'] === true,
    }),
  },
});
