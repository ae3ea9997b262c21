/**
 * A forward pass that yields NaN or ±Inf (or, after an overflow inside a norm, the same logit for every token) has no
 * meaningful next token: argmax picks id 0, so generation would print `[0, 0, …]` and report success. Every step's
 * outputs are checked here, and such a step becomes an error that names the likely cause: a head scale far outside [0, 1], a config value outside its range (only
 * possible for a config built in code: parseModelConfig refuses them in config.json), or the weights themselves.
 */
import { CliffscopeError } from '../errors.js';
import type { ModelConfig } from './config.js';

/** |γ| above this multiplies a head's output enough to overflow float32 a few layers on. */
const HEAD_SCALE_SANE = 1e4;

function firstNonFinite(values: Float32Array, infOk: boolean): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (infOk ? Number.isNaN(v) : !Number.isFinite(v)) return i;
  }
  return -1;
}

/** The likely causes of non-finite activations for this config and head scale, most likely first. */
export function nonFiniteCauses(config: ModelConfig, headScale?: Float32Array): string[] {
  const causes: string[] = [];
  if (headScale) {
    let worst = 0;
    for (const g of headScale) worst = Number.isFinite(g) ? Math.max(worst, Math.abs(g)) : Infinity;
    if (worst > HEAD_SCALE_SANE) causes.push(`the head scale holds a value of ${Number(worst.toPrecision(3))} (γ is meant to be near 0..1)`);
  }
  if (!(config.rmsNormEps > 0 && config.rmsNormEps <= 1)) causes.push(`rms_norm_eps is ${config.rmsNormEps}`);
  if (!(config.ropeTheta > 1 && Number.isFinite(config.ropeTheta))) causes.push(`rope_theta is ${config.ropeTheta}`);
  causes.push('the weights hold NaN or Inf values, or values large enough to overflow float32 (check them with torch.isfinite)');
  return causes;
}

/** What one decoder step returns that is checked (the shape of StepOutput, without importing the runtime). */
interface StepValues {
  logits: Float32Array;
  tokenLogprobs: Float32Array;
  resid: Float32Array;
  z: Float32Array;
}

/**
 * `step` itself, after checking that its logits, residuals and head outputs are finite, its log-probabilities are
 * not NaN (a log-probability may be -Inf) and no row of logits is constant; otherwise a 'runtime' error naming the likely cause. Costs one pass over
 * what the step returned, which is small next to the step itself.
 */
export function checkedStep<T extends StepValues>(step: T, config: ModelConfig, headScale?: Float32Array): T {
  const parts: [string, Float32Array, boolean][] = [
    ['logits', step.logits, false],
    ['residual stream', step.resid, false],
    ['per-head outputs', step.z, false],
    ['token log-probabilities', step.tokenLogprobs, true],
  ];
  const fail = (what: string) => {
    const causes = nonFiniteCauses(config, headScale);
    return new CliffscopeError('runtime', `the model produced ${what}, so its output means nothing`, {
      hint: `likely cause: ${causes[0]}` + (causes.length > 1 ? `; otherwise ${causes.slice(1).join('; or ')}` : ''),
    });
  };
  for (const [what, values, infOk] of parts) {
    const at = firstNonFinite(values, infOk);
    if (at >= 0) throw fail(`${values[at]} in its ${what} (value ${at})`);
  }
  // Overflow inside a norm can also come out finite: mean(x²) = Inf makes RMSNorm return 0, and every logit of the
  // row is then the same (argmax: token 0). No trained model gives its whole vocabulary one value.
  const V = config.vocabSize;
  for (let row = 0; V > 1 && (row + 1) * V <= step.logits.length; row++) {
    const logits = step.logits.subarray(row * V, (row + 1) * V);
    if (logits.every((v) => v === logits[0])) throw fail(`the same logit (${logits[0]}) for every token`);
  }
  return step;
}
