/**
 * The paper's constants (docs/METHOD.md), and the choices Cliffscope adds to them, that both the engine's analysis and the run kinds' defaults use, so a form, a
 * CLI default and the maths never disagree. Pure.
 */

/** The ablation sweep's fractions of all L·H heads (docs/METHOD.md §4); 0 is the unablated baseline. */
export const ABLATION_FRACTIONS: readonly number[] = Object.freeze([0, 0.005, 0.015, 0.03, 0.1]);
/** The sweep's γ values: removed, almost removed, halved. */
export const ABLATION_GAMMAS: readonly number[] = Object.freeze([0, 0.01, 0.5]);
/** The thinking-truncation figure's fractions of the model's own thinking kept before it is closed (docs/METHOD.md §8). */
export const TRUNCATION_FRACTIONS: readonly number[] = Object.freeze([1, 0.8, 0.6, 0.4, 0.2, 0]);
/** Causal head ranking scales one head at a time by this (the paper's code: ×0.001; docs/METHOD.md §9). */
export const CAUSAL_HEAD_SCALE = 0.001;
/** Cliff-as-a-Judge keeps the top 1.7 % by MS (docs/METHOD.md §6). */
export const PAPER_SELECT_FRACTION = 0.017;

/**
 * Which positives count as refusals when a probe's samples are labelled (docs/METHOD.md §1): a refusal keyword in
 * the answer's first 32 characters (GCG's list, the paper's default, or JailbreakBench's), the paper code's own list
 * with its thinking-length filter, or every positive.
 */
export const PROBE_LABEL_RULES = ['gcg-first32', 'jbb-first32', 'paper-code', 'all'] as const;
/** How a probe is fitted: the converged L-BFGS logistic regression (default) or the paper's Adam loop. */
export const PROBE_PRESET_NAMES = ['lbfgs', 'paper-adam'] as const;
export const PROBE_OPTIMIZERS = ['lbfgs', 'adam', 'sgd'] as const;
/** Which epoch a gradient optimiser keeps (analysis/probe.ts says what each means). */
export const PROBE_SELECT_BY = ['val-accuracy', 'val-accuracy-first', 'val-loss', 'last'] as const;
export type ProbePresetName = (typeof PROBE_PRESET_NAMES)[number];

/** Options a gradient optimiser reads and L-BFGS ignores: giving one without a preset or optimizer asks for Adam. */
export const GRADIENT_ONLY_PROBE_OPTIONS = ['lr', 'batchSize', 'epochs', 'selectBy'] as const;

/**
 * Which preset fills a probe's training options, and why (docs/METHOD.md §1): `preset` when named; else the family
 * of a named `optimizer`; else `paper-adam` when settings only a gradient optimiser reads are given (L-BFGS would
 * silently ignore them); else `fallback` — `lbfgs` for a run configured now. A probe run's resolved config states
 * the preset this picks; a stored config from before it did is read with the fallback of that time, `paper-adam`.
 */
export function pickProbePreset(
  given: { preset?: ProbePresetName; optimizer?: (typeof PROBE_OPTIMIZERS)[number] } & Partial<Record<(typeof GRADIENT_ONLY_PROBE_OPTIONS)[number], unknown>>,
  fallback: ProbePresetName = 'lbfgs',
): { preset: ProbePresetName; reason: string } {
  if (given.preset !== undefined) return { preset: given.preset, reason: `preset ${given.preset} was requested` };
  if (given.optimizer !== undefined) {
    const preset = given.optimizer === 'lbfgs' ? 'lbfgs' : 'paper-adam';
    return { preset, reason: `optimizer ${given.optimizer} was requested (other settings from preset ${preset})` };
  }
  const gradientOnly = GRADIENT_ONLY_PROBE_OPTIONS.filter((k) => given[k] !== undefined);
  if (gradientOnly.length) return { preset: 'paper-adam', reason: `preset paper-adam, because settings only a gradient optimiser uses were given (${gradientOnly.join(', ')})` };
  return fallback === 'lbfgs'
    ? { preset: 'lbfgs', reason: 'the default: L-BFGS to convergence with a small L2, which stays calibrated on small or separable data' }
    : { preset: fallback, reason: `preset ${fallback}: the default when this run was configured` };
}

/**
 * Half-width of the band around 0.5 inside which a probe's scores say nothing: a probe is uncalibrated when the mean
 * score of both classes lies within 0.5 ± this (docs/METHOD.md §1). Such a probe can have perfect accuracy and
 * AUROC, yet every trace it draws is flat and every MS is ≈ 0.
 */
export const UNCALIBRATED_BAND = 0.05;

/** Whether both classes' mean scores lie within 0.5 ± UNCALIBRATED_BAND. */
export function isUncalibrated({ meanScore }: { meanScore: { positive: number; negative: number } }): boolean {
  return Math.abs(meanScore.positive - 0.5) <= UNCALIBRATED_BAND && Math.abs(meanScore.negative - 0.5) <= UNCALIBRATED_BAND;
}

/** What to say before an uncalibrated probe is used (pipelines log it, a probe run's report prints it). */
export function uncalibratedWarning(probeId: number, meanScore: { positive: number; negative: number }): string {
  return (
    `probe #${probeId} is uncalibrated: mean scores ${meanScore.positive.toFixed(3)} (refusals) and ${meanScore.negative.toFixed(3)} (non-refusals) ` +
    `both lie within 0.5 ± ${UNCALIBRATED_BAND}, so plateau, I', MS and head scores will be ≈ flat; ` +
    'retrain it with the default preset (lbfgs)'
  );
}
