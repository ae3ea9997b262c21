/**
 * The refusal probe (docs/METHOD.md §1): logistic regression r(h) = sigmoid(w·h + b) on raw residual vectors.
 *
 * Two ways to fit it, both named presets:
 *  - `lbfgs` (the default): the regularised logistic regression solved to convergence with full-batch L-BFGS, as
 *    scikit-learn's LogisticRegression does. On small, easily separable sets this still gives calibrated scores.
 *  - `paper-adam`: the paper's recipe (balanced, ≤200 per class, stratified 80/20 split, Adam lr 1e-3, batch 64,
 *    5 epochs, keep the epoch with the best validation accuracy). On small separable data its best epoch is often
 *    the first optimiser step, whose scores all sit near 0.5: accurate, but with no cliff to see.
 * Both share the balancing and the split, and every probe reports its calibration (validation loss against ln 2,
 * mean score per class, their gap, expected calibration error), so an uncalibrated probe is visible.
 *
 * Pure and deterministic: everything random (downsampling, the split, minibatch order) comes from one seeded stream,
 * so the same features, labels and options give bit-identical weights on any machine. Features are NOT standardised:
 * the probe must apply unchanged to raw residual vectors at every token of a transcript (§2) and inside head
 * attribution (§3), which a per-feature standardisation would silently break.
 */
import { isUncalibrated, pickProbePreset, uncalibratedWarning, type PROBE_OPTIMIZERS, type ProbePresetName, type PROBE_SELECT_BY } from '../../../shared/method.js';
import { SeededRandom } from '../datasets/split.js';
import { CliffscopeError } from '../errors.js';

export type ProbeOptimizer = (typeof PROBE_OPTIMIZERS)[number];
export type { ProbePresetName };
/**
 * Which epoch a gradient optimiser keeps: 'val-accuracy' = best validation accuracy, ties to the lower validation
 * loss, then to the later epoch; 'val-accuracy-first' = the first epoch reaching the best accuracy (the paper's
 * code: `if val_acc > best_val_acc`); 'val-loss' = lowest validation loss; 'last'. L-BFGS has no epochs.
 */
export type ProbeSelectBy = (typeof PROBE_SELECT_BY)[number];

export interface ProbeTrainOptions {
  /** The preset the other options were filled from (recorded so a run says what it used). */
  preset: ProbePresetName;
  /** Downsample the larger class (seeded) to the size of the smaller one. */
  balance: boolean;
  /** Keep at most this many samples per class (seeded), null for no cap. Applied after balancing. */
  maxPerClass: number | null;
  /** Fraction of each class held out for validation (0 ≤ f < 1). 0 = no validation: the last epoch is kept. */
  valFraction: number;
  optimizer: ProbeOptimizer;
  /**
   * L2 penalty: the objective is mean BCE + l2/2·‖w‖² (the bias is not penalised). 'auto' = v̄ / n_train, where v̄
   * is the mean per-coordinate variance of the training features: scikit-learn's default (C = 1) after scaling all
   * features by one common factor to unit average variance, so the strength does not depend on the activations'
   * overall scale.
   */
  l2: number | 'auto';
  /** Adam / SGD only. */
  lr: number;
  batchSize: number;
  epochs: number;
  selectBy: ProbeSelectBy;
  /** L-BFGS only: stop when max |∂f| ≤ tolerance (f = the mean objective), or after maxIterations. */
  maxIterations: number;
  tolerance: number;
  seed: number;
}

/** The paper's recipe (docs/METHOD.md §1), with ties in validation accuracy broken by the validation loss. */
export const PAPER_PROBE_PRESET: Readonly<ProbeTrainOptions> = Object.freeze({
  preset: 'paper-adam',
  balance: true,
  maxPerClass: 200,
  valFraction: 0.2,
  optimizer: 'adam',
  l2: 0,
  lr: 1e-3,
  batchSize: 64,
  epochs: 5,
  selectBy: 'val-accuracy',
  maxIterations: 1000,
  tolerance: 1e-6,
  seed: 0,
});

/**
 * The default: the paper's samples and split, fitted as a converged, regularised logistic regression
 * (docs/METHOD.md §1). Adam's fields keep the paper's values, so switching `optimizer` alone gives the paper's loop.
 */
export const LBFGS_PROBE_PRESET: Readonly<ProbeTrainOptions> = Object.freeze({ ...PAPER_PROBE_PRESET, preset: 'lbfgs', optimizer: 'lbfgs', l2: 'auto' });

export const PROBE_PRESETS: Readonly<Record<ProbePresetName, Readonly<ProbeTrainOptions>>> = Object.freeze({
  lbfgs: LBFGS_PROBE_PRESET,
  'paper-adam': PAPER_PROBE_PRESET,
});
export const DEFAULT_PROBE_PRESET = LBFGS_PROBE_PRESET;

/** Adam's constants (PyTorch defaults, which the paper's code uses). */
export const ADAM = Object.freeze({ beta1: 0.9, beta2: 0.999, eps: 1e-8 });

/** Anything with a direction and a bias can score residual vectors. */
export interface ProbeLike {
  weights: Float32Array;
  bias: number;
}

/**
 * How well the probe's scores match the labels, on the validation set (or the training set when there is none).
 * ECE: 10 equal-width bins of the refusal score over [0, 1] (the last bin closed), ECE = Σ_bins (n_bin / n) ·
 * |fraction of refusals in the bin − mean score in the bin|.
 */
export interface ProbeCalibration {
  set: 'validation' | 'train';
  /** Mean BCE of the kept probe on that set, and ln 2: the loss of a probe that always answers 0.5. */
  loss: number;
  chanceLoss: number;
  meanScore: { positive: number; negative: number };
  /** meanScore.positive − meanScore.negative. */
  scoreGap: number;
  ece: number;
  eceBins: number;
}

/** What was fitted and why (the run report prints it). */
export interface ProbeTrainingReport {
  preset: ProbePresetName;
  optimizer: ProbeOptimizer;
  /** The L2 coefficient actually used (after resolving 'auto'). */
  l2: number;
  /** Why these options: the default, a named preset, or inferred from the settings given. */
  reason: string;
  /** L-BFGS: iterations run, whether the stopping rule was met, and max |∂f| at the end. Null for Adam / SGD. */
  iterations: number | null;
  converged: boolean | null;
  gradientNorm: number | null;
  /** Which solution was kept, in words ("the converged optimum", "epoch 4 of 5: best validation accuracy …"). */
  kept: string;
}

export interface ProbeMetrics {
  /** Accuracy / AUROC of the kept weights (threshold 0.5 on the probability). */
  trainAccuracy: number;
  valAccuracy: number;
  valAuroc: number;
  /**
   * Mean BCE over the whole train / validation set at the end of each epoch (penalty excluded). NaN without
   * validation. L-BFGS has one entry: the solution.
   */
  trainLoss: number[];
  valLoss: number[];
  valAccuracyPerEpoch: number[];
  /** Index (0-based) into the per-epoch arrays of the kept epoch. */
  bestEpoch: number;
  nTrain: number;
  nVal: number;
  /** Samples used after balancing/capping, and what came in. */
  classCounts: { positive: number; negative: number };
  inputClassCounts: { positive: number; negative: number };
  /** Added with the calibrated trainer; probes stored before it lack them. */
  calibration?: ProbeCalibration;
  training?: ProbeTrainingReport;
}

export interface TrainedProbe extends ProbeLike {
  d: number;
  metrics: ProbeMetrics;
  /** Indices into the input rows, ascending. Unused (downsampled) rows are in neither. */
  split: { train: number[]; val: number[] };
  options: ProbeTrainOptions;
}

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

/** Numerically stable logistic function. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** BCE of logit z against label y, stable for large |z|: softplus(z) − y·z. */
function bceFromLogit(z: number, y: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - y * z;
}

function dot(w: ArrayLike<number>, x: ArrayLike<number>, offset: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += w[j]! * x[offset + j]!;
  return s;
}

function checkDims(features: Float32Array, labels: ArrayLike<number>, d: number): number {
  if (!Number.isInteger(d) || d <= 0) throw bad(`feature width d must be a positive integer, got ${d}`);
  if (features.length % d !== 0) {
    throw bad(`features hold ${features.length} values, not a multiple of d = ${d}`, 'pass n×d values, row-major, one row per sample');
  }
  const n = features.length / d;
  if (labels.length !== n) throw bad(`${labels.length} labels for ${n} feature rows (d = ${d})`);
  return n;
}

function checkFinite(features: Float32Array, d: number): void {
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i]!)) {
      throw bad(
        `feature row ${Math.floor(i / d)} has a non-finite value (${features[i]}) at column ${i % d}`,
        'drop samples whose activations overflowed or were not produced',
      );
    }
  }
}

function checkLabels(labels: ArrayLike<number>): { pos: number[]; neg: number[] } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === 1) pos.push(i);
    else if (y === 0) neg.push(i);
    else throw bad(`label ${i} is ${y}; labels must be 0 (not refusal) or 1 (refusal)`);
  }
  return { pos, neg };
}

/**
 * Fill the options from a preset and say why that preset (pickProbePreset, shared/method.ts). A preset named
 * explicitly that is also what the other settings would pick (a resolved run config names it) keeps the reason for
 * that pick.
 */
export function resolveProbeOptions(opts: Partial<ProbeTrainOptions> = {}): { options: ProbeTrainOptions; reason: string } {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<ProbeTrainOptions>;
  if (given.preset !== undefined && !(given.preset in PROBE_PRESETS)) throw bad(`unknown probe preset ${String(given.preset)}`, `presets: ${Object.keys(PROBE_PRESETS).join(', ')}`);
  const { preset: _named, ...rest } = given;
  const inferred = pickProbePreset(rest);
  const { preset, reason } = given.preset === undefined || given.preset === inferred.preset ? inferred : pickProbePreset(given);
  const o: ProbeTrainOptions = { ...PROBE_PRESETS[preset], ...given, preset };
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw bad(`valFraction must be within [0, 1), got ${o.valFraction}`);
  if (o.maxPerClass !== null && !(Number.isInteger(o.maxPerClass) && o.maxPerClass >= 2)) {
    throw bad(`maxPerClass must be an integer ≥ 2 or null, got ${o.maxPerClass}`);
  }
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw bad(`lr must be a positive number, got ${o.lr}`);
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw bad(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw bad(`epochs must be a positive integer, got ${o.epochs}`);
  if (o.l2 !== 'auto' && !(o.l2 >= 0 && Number.isFinite(o.l2))) throw bad(`l2 must be ≥ 0 or 'auto', got ${o.l2}`);
  if (!['lbfgs', 'adam', 'sgd'].includes(o.optimizer)) throw bad(`optimizer must be 'lbfgs', 'adam' or 'sgd', got ${String(o.optimizer)}`);
  if (!['val-accuracy', 'val-accuracy-first', 'val-loss', 'last'].includes(o.selectBy)) {
    throw bad(`selectBy must be val-accuracy, val-accuracy-first, val-loss or last, got ${o.selectBy}`);
  }
  if (!(Number.isInteger(o.maxIterations) && o.maxIterations >= 1)) throw bad(`maxIterations must be a positive integer, got ${o.maxIterations}`);
  if (!(o.tolerance > 0 && Number.isFinite(o.tolerance))) throw bad(`tolerance must be a positive number, got ${o.tolerance}`);
  if (!Number.isSafeInteger(o.seed)) throw bad(`seed must be an integer, got ${o.seed}`);
  return { options: o, reason };
}

/** Fisher–Yates with the shared stream (same algorithm as datasets/split.ts, so one stream drives every draw). */
function shuffleInPlace(a: number[], rng: SeededRandom): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

/** Seeded subset of `members` of size k, returned in ascending (input) order. */
function subsample(members: number[], k: number, rng: SeededRandom): number[] {
  if (k >= members.length) return members.slice();
  const copy = members.slice();
  shuffleInPlace(copy, rng);
  return copy.slice(0, k).sort((a, b) => a - b);
}

interface Split {
  train: number[];
  val: number[];
  used: { positive: number; negative: number };
}

/**
 * Balance, cap, then split each class separately (stratified). Each class sends round(n_c·valFraction) to
 * validation, clamped to [1, n_c − 1] when valFraction > 0 so both sides always see both classes.
 */
function planSplit(pos: number[], neg: number[], o: ProbeTrainOptions, rng: SeededRandom): Split {
  let kPos = pos.length;
  let kNeg = neg.length;
  if (o.balance) kPos = kNeg = Math.min(kPos, kNeg);
  if (o.maxPerClass !== null) {
    kPos = Math.min(kPos, o.maxPerClass);
    kNeg = Math.min(kNeg, o.maxPerClass);
  }
  const usedPos = subsample(pos, kPos, rng);
  const usedNeg = subsample(neg, kNeg, rng);
  const train: number[] = [];
  const val: number[] = [];
  for (const members of [usedPos, usedNeg]) {
    const order = members.slice();
    shuffleInPlace(order, rng);
    const nVal = o.valFraction > 0 ? Math.min(Math.max(Math.round(members.length * o.valFraction), 1), members.length - 1) : 0;
    val.push(...order.slice(0, nVal));
    train.push(...order.slice(nVal));
  }
  train.sort((a, b) => a - b);
  val.sort((a, b) => a - b);
  return { train, val, used: { positive: kPos, negative: kNeg } };
}

/** Mean BCE, accuracy and AUROC of (w, b) on the given rows, with each row's score. */
function evaluate(
  features: Float32Array,
  labels: ArrayLike<number>,
  d: number,
  rows: number[],
  w: Float64Array,
  b: number,
): { loss: number; accuracy: number; auroc: number; scores: Float64Array; ys: Uint8Array } {
  const probs = new Float64Array(rows.length);
  const ys = new Uint8Array(rows.length);
  if (rows.length === 0) return { loss: NaN, accuracy: NaN, auroc: NaN, scores: probs, ys };
  let loss = 0;
  rows.forEach((r, i) => {
    const z = dot(w, features, r * d, d) + b;
    const y = labels[r]!;
    loss += bceFromLogit(z, y);
    probs[i] = sigmoid(z);
    ys[i] = y;
  });
  return { loss: loss / rows.length, accuracy: accuracy(probs, ys), auroc: auroc(probs, ys), scores: probs, ys };
}

/** Number of equal-width score bins of the expected calibration error. */
export const ECE_BINS = 10;

/**
 * Expected calibration error of refusal scores against 0/1 labels: the scores are binned into `bins` equal-width
 * bins over [0, 1] (a score of exactly 1 goes to the last bin), and ECE = Σ_bins (n_bin / n) · |mean label − mean
 * score|. NaN for an empty set.
 */
export function expectedCalibrationError(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = ECE_BINS): number {
  if (scores.length !== labels.length) throw bad(`${scores.length} scores for ${labels.length} labels`);
  if (!(Number.isInteger(bins) && bins >= 1)) throw bad(`bins must be a positive integer, got ${bins}`);
  const n = scores.length;
  if (n === 0) return NaN;
  const count = new Float64Array(bins);
  const sumScore = new Float64Array(bins);
  const sumLabel = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (!(s >= 0 && s <= 1)) throw bad(`score ${i} is ${s}; calibration needs probabilities in [0, 1]`);
    const k = Math.min(Math.floor(s * bins), bins - 1);
    count[k]!++;
    sumScore[k]! += s;
    sumLabel[k]! += labels[i]!;
  }
  let ece = 0;
  for (let k = 0; k < bins; k++) if (count[k]) ece += Math.abs(sumLabel[k]! - sumScore[k]!) / n;
  return ece;
}

/** Calibration of scores against labels (both classes must be present). */
export function calibrationOf(scores: ArrayLike<number>, labels: ArrayLike<number>, loss: number, set: ProbeCalibration['set']): ProbeCalibration {
  let sumPos = 0;
  let nPos = 0;
  let sumNeg = 0;
  let nNeg = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] === 1) {
      sumPos += scores[i]!;
      nPos++;
    } else {
      sumNeg += scores[i]!;
      nNeg++;
    }
  }
  const positive = nPos ? sumPos / nPos : NaN;
  const negative = nNeg ? sumNeg / nNeg : NaN;
  return {
    set,
    loss,
    chanceLoss: Math.LN2,
    meanScore: { positive, negative },
    scoreGap: positive - negative,
    ece: expectedCalibrationError(scores, labels),
    eceBins: ECE_BINS,
  };
}

export { isUncalibrated, UNCALIBRATED_BAND } from '../../../shared/method.js';

/**
 * The warning to show before using a probe for traces, heads or selection, or null when it is calibrated or its
 * stored metrics predate calibration (nothing to judge by). `metrics` is the stored JSON.
 */
export function uncalibratedProbeWarning(probe: { id: number; metrics: unknown }): string | null {
  const c = (probe.metrics as { calibration?: Partial<ProbeCalibration> } | null)?.calibration;
  const positive = c?.meanScore?.positive;
  const negative = c?.meanScore?.negative;
  if (typeof positive !== 'number' || typeof negative !== 'number' || !isUncalibrated({ meanScore: { positive, negative } })) return null;
  return uncalibratedWarning(probe.id, { positive, negative });
}

/** Mean per-coordinate variance of the given rows: the feature scale that l2 = 'auto' is relative to. */
function meanVariance(features: Float32Array, d: number, rows: number[]): number {
  const n = rows.length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j]! += features[r * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  let sum = 0;
  for (const r of rows) {
    for (let j = 0; j < d; j++) {
      const dev = features[r * d + j]! - mean[j]!;
      sum += dev * dev;
    }
  }
  return sum / (n * d);
}

/** The L2 coefficient for these training rows ('auto' resolved). */
export function resolveL2(l2: ProbeTrainOptions['l2'], features: Float32Array, d: number, train: number[]): number {
  if (l2 !== 'auto') return l2;
  // A floor keeps the objective strictly convex when every training feature is identical.
  return Math.max(meanVariance(features, d, train), 1e-12) / train.length;
}

interface Solution {
  w: Float64Array;
  b: number;
  trainLoss: number[];
  valLoss: number[];
  valAccuracyPerEpoch: number[];
  bestEpoch: number;
  iterations: number | null;
  converged: boolean | null;
  gradientNorm: number | null;
  kept: string;
}

/** L-BFGS history length, Armijo constant and backtracking limit. */
const LBFGS = Object.freeze({ history: 10, armijo: 1e-4, maxBacktracks: 60 });

/**
 * Minimise mean BCE + l2/2·‖w‖² over the training rows with L-BFGS (two-loop recursion, backtracking Armijo line
 * search), from w = 0. The rows are centred and divided by one common scale s (the rms deviation of the features):
 * w·x + b = u·(x − μ)/s + c with u = s·w and c = b + w·μ, the same objective with the bias decoupled from the
 * features' mean (real residual streams sit far from zero) and a tolerance that does not depend on the activations'
 * overall size. Stops when max |∂f/∂(u, c)| ≤ tolerance, when f stops decreasing at machine precision, or after
 * maxIterations.
 */
function fitLbfgs(features: Float32Array, labels: ArrayLike<number>, d: number, train: number[], l2: number, o: ProbeTrainOptions): Omit<Solution, 'trainLoss' | 'valLoss' | 'valAccuracyPerEpoch' | 'bestEpoch' | 'kept'> & { kept: string } {
  const n = train.length;
  const mu = new Float64Array(d);
  for (const r of train) for (let j = 0; j < d; j++) mu[j]! += features[r * d + j]!;
  for (let j = 0; j < d; j++) mu[j]! /= n;
  const scale = Math.sqrt(meanVariance(features, d, train)) || 1;
  const X = new Float64Array(n * d);
  const y = new Float64Array(n);
  train.forEach((r, i) => {
    for (let j = 0; j < d; j++) X[i * d + j] = (features[r * d + j]! - mu[j]!) / scale;
    y[i] = labels[r]!;
  });
  // In the scaled coordinates the penalty on u = s·w is l2/s²·‖u‖²/2.
  const penalty = l2 / (scale * scale);
  // θ = [u (d values), c]; z_i = u·x̃_i + c.
  const P = d + 1;
  const z = new Float64Array(n);
  const objective = (theta: Float64Array, grad: Float64Array | null): number => {
    const c = theta[d]!;
    let f = 0;
    let gc = 0;
    if (grad) grad.fill(0);
    for (let i = 0; i < n; i++) {
      let zi = c;
      const off = i * d;
      for (let j = 0; j < d; j++) zi += theta[j]! * X[off + j]!;
      z[i] = zi;
      f += bceFromLogit(zi, y[i]!);
      if (grad) {
        const g = sigmoid(zi) - y[i]!;
        gc += g;
        for (let j = 0; j < d; j++) grad[j]! += g * X[off + j]!;
      }
    }
    let ww = 0;
    for (let j = 0; j < d; j++) ww += theta[j]! * theta[j]!;
    f = f / n + 0.5 * penalty * ww;
    if (grad) {
      for (let j = 0; j < d; j++) grad[j] = grad[j]! / n + penalty * theta[j]!;
      grad[d] = gc / n;
    }
    return f;
  };
  const maxAbs = (v: Float64Array) => {
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
    return m;
  };
  const dotP = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };

  let theta = new Float64Array(P);
  let grad = new Float64Array(P);
  let f = objective(theta, grad);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dir = new Float64Array(P);
  const alpha = new Float64Array(LBFGS.history);
  let iterations = 0;
  let converged = maxAbs(grad) <= o.tolerance;
  let stalled = false;
  while (!converged && !stalled && iterations < o.maxIterations) {
    // Two-loop recursion: dir = −H·grad, H0 = (s·y / y·y)·I from the newest pair.
    dir.set(grad);
    for (let k = S.length - 1; k >= 0; k--) {
      const a = rho[k]! * dotP(S[k]!, dir);
      alpha[k] = a;
      for (let i = 0; i < P; i++) dir[i]! -= a * Y[k]![i]!;
    }
    const gamma = S.length ? dotP(S.at(-1)!, Y.at(-1)!) / dotP(Y.at(-1)!, Y.at(-1)!) : 1 / Math.max(Math.sqrt(dotP(grad, grad)), 1e-300);
    for (let i = 0; i < P; i++) dir[i]! *= gamma;
    for (let k = 0; k < S.length; k++) {
      const bk = rho[k]! * dotP(Y[k]!, dir);
      for (let i = 0; i < P; i++) dir[i]! += S[k]![i]! * (alpha[k]! - bk);
    }
    for (let i = 0; i < P; i++) dir[i] = -dir[i]!;
    let slope = dotP(grad, dir);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      const scale = 1 / Math.max(Math.sqrt(dotP(grad, grad)), 1e-300);
      for (let i = 0; i < P; i++) dir[i] = -grad[i]! * scale;
      slope = dotP(grad, dir);
    }
    // Backtracking line search from step 1 (the quasi-Newton step) until the Armijo condition holds.
    let step = 1;
    const next = new Float64Array(P);
    const nextGrad = new Float64Array(P);
    let fNext = NaN;
    let accepted = false;
    for (let k = 0; k < LBFGS.maxBacktracks; k++) {
      for (let i = 0; i < P; i++) next[i] = theta[i]! + step * dir[i]!;
      fNext = objective(next, nextGrad);
      if (fNext <= f + LBFGS.armijo * step * slope) {
        accepted = true;
        break;
      }
      step /= 2;
    }
    iterations++;
    if (!accepted) {
      stalled = true; // no decrease representable along the direction: f is at machine precision
      break;
    }
    const s = new Float64Array(P);
    const yv = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      s[i] = next[i]! - theta[i]!;
      yv[i] = nextGrad[i]! - grad[i]!;
    }
    const sy = dotP(s, yv);
    if (sy > 1e-12 * Math.sqrt(dotP(s, s) * dotP(yv, yv))) {
      S.push(s);
      Y.push(yv);
      rho.push(1 / sy);
      if (S.length > LBFGS.history) {
        S.shift();
        Y.shift();
        rho.shift();
      }
    }
    const decrease = f - fNext;
    theta = next;
    grad = nextGrad;
    converged = maxAbs(grad) <= o.tolerance;
    if (!converged && decrease <= 1e-15 * Math.max(Math.abs(f), Math.abs(fNext), 1)) stalled = true;
    f = fNext;
  }
  const w = theta.subarray(0, d).map((u) => u / scale);
  let b = theta[d]!;
  for (let j = 0; j < d; j++) b -= w[j]! * mu[j]!;
  const gradientNorm = maxAbs(grad);
  // Stopping because f cannot decrease any further at double precision is convergence too, unless the gradient is
  // still far from zero (then the problem has no finite optimum, e.g. separable classes with l2 = 0).
  const ok = converged || (stalled && gradientNorm <= Math.sqrt(o.tolerance));
  const kept = ok
    ? `the optimum: converged after ${iterations} L-BFGS iteration${iterations === 1 ? '' : 's'} (max |∂f| = ${gradientNorm.toExponential(2)})`
    : `the last of ${iterations} L-BFGS iterations, NOT converged (max |∂f| = ${gradientNorm.toExponential(2)} > ${o.tolerance}${l2 === 0 ? '; with l2 = 0 separable classes have no finite optimum' : ''})`;
  return { w, b, iterations, converged: ok, gradientNorm, kept };
}

/** Adam or SGD over minibatches, keeping one epoch's weights by `selectBy` (the paper's loop). */
function fitGradient(features: Float32Array, labels: ArrayLike<number>, d: number, train: number[], val: number[], l2: number, o: ProbeTrainOptions, rng: SeededRandom): Solution {
  const w = new Float64Array(d);
  let b = 0;
  const m = new Float64Array(d);
  const v = new Float64Array(d);
  let mb = 0;
  let vb = 0;
  const gw = new Float64Array(d);
  let step = 0;

  const trainLoss: number[] = [];
  const valLoss: number[] = [];
  const valAccuracyPerEpoch: number[] = [];
  let best = { epoch: -1, w: new Float64Array(d), b: 0, acc: -Infinity, loss: Infinity };
  const selectBy = val.length === 0 ? 'last' : o.selectBy;

  const order = train.slice();
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    shuffleInPlace(order, rng);
    for (let start = 0; start < order.length; start += o.batchSize) {
      const end = Math.min(start + o.batchSize, order.length);
      const size = end - start;
      gw.fill(0);
      let gb = 0;
      // ∂BCE/∂z = sigmoid(z) − y, so the batch gradient is mean((p − y)·x) for w and mean(p − y) for b.
      for (let k = start; k < end; k++) {
        const r = order[k]!;
        const off = r * d;
        const g = sigmoid(dot(w, features, off, d) + b) - labels[r]!;
        for (let j = 0; j < d; j++) gw[j]! += g * features[off + j]!;
        gb += g;
      }
      gb /= size;
      for (let j = 0; j < d; j++) gw[j] = gw[j]! / size + l2 * w[j]!;
      step++;
      if (o.optimizer === 'sgd') {
        for (let j = 0; j < d; j++) w[j]! -= o.lr * gw[j]!;
        b -= o.lr * gb;
      } else {
        // Adam with bias correction, PyTorch's form: p −= (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps).
        const c1 = 1 - ADAM.beta1 ** step;
        const c2 = Math.sqrt(1 - ADAM.beta2 ** step);
        const stepSize = o.lr / c1;
        for (let j = 0; j < d; j++) {
          const g = gw[j]!;
          const mj = (m[j] = ADAM.beta1 * m[j]! + (1 - ADAM.beta1) * g);
          const vj = (v[j] = ADAM.beta2 * v[j]! + (1 - ADAM.beta2) * g * g);
          w[j]! -= (stepSize * mj) / (Math.sqrt(vj) / c2 + ADAM.eps);
        }
        mb = ADAM.beta1 * mb + (1 - ADAM.beta1) * gb;
        vb = ADAM.beta2 * vb + (1 - ADAM.beta2) * gb * gb;
        b -= (stepSize * mb) / (Math.sqrt(vb) / c2 + ADAM.eps);
      }
    }
    const tr = evaluate(features, labels, d, train, w, b);
    const va = evaluate(features, labels, d, val, w, b);
    trainLoss.push(tr.loss);
    valLoss.push(va.loss);
    valAccuracyPerEpoch.push(va.accuracy);
    // 'val-accuracy': a tie in accuracy goes to the lower validation loss, and a tie in both to the later epoch, so
    // an early, barely trained epoch never wins just by being first. 'val-accuracy-first' is the paper's code.
    const better =
      selectBy === 'last' ||
      (selectBy === 'val-accuracy' && (va.accuracy > best.acc || (va.accuracy === best.acc && va.loss <= best.loss))) ||
      (selectBy === 'val-accuracy-first' && va.accuracy > best.acc) ||
      (selectBy === 'val-loss' && va.loss < best.loss);
    if (better) best = { epoch, w: Float64Array.from(w), b, acc: va.accuracy, loss: va.loss };
  }
  const why: Record<ProbeSelectBy, string> = {
    'val-accuracy': 'best validation accuracy (ties: lower validation loss, then the later epoch)',
    'val-accuracy-first': 'the first epoch reaching the best validation accuracy',
    'val-loss': 'lowest validation loss',
    last: val.length === 0 ? 'the last epoch (no validation split)' : 'the last epoch',
  };
  return {
    w: best.w,
    b: best.b,
    trainLoss,
    valLoss,
    valAccuracyPerEpoch,
    bestEpoch: best.epoch,
    iterations: null,
    converged: null,
    gradientNorm: null,
    kept: `epoch ${best.epoch + 1} of ${o.epochs}: ${why[selectBy]}`,
  };
}

/**
 * Train a logistic-regression refusal probe on n rows of width d (row-major). Labels: 1 = refusal. Options are
 * filled from a preset (see resolveProbeOptions); the default is the converged L-BFGS fit. Weights start at zero
 * (the problem is convex, so no random init is needed).
 */
export function trainProbe(
  features: Float32Array,
  labels: Uint8Array | ArrayLike<number>,
  d: number,
  opts: Partial<ProbeTrainOptions> = {},
): TrainedProbe {
  const { options: o, reason } = resolveProbeOptions(opts);
  const n = checkDims(features, labels, d);
  if (n < 4) throw bad(`a probe needs at least 4 samples, got ${n}`);
  const { pos, neg } = checkLabels(labels);
  if (pos.length === 0 || neg.length === 0) {
    throw bad(`all ${n} samples have label ${pos.length ? 1 : 0}; a probe needs both refusals (1) and non-refusals (0)`);
  }
  const minPerClass = o.valFraction > 0 ? 2 : 1;
  if (pos.length < minPerClass || neg.length < minPerClass) {
    throw bad(
      `need at least ${minPerClass} samples of each class (have ${pos.length} refusals, ${neg.length} non-refusals)`,
      'each class must appear in both the training and the validation split',
    );
  }
  checkFinite(features, d);

  const rng = new SeededRandom(o.seed);
  const split = planSplit(pos, neg, o, rng);
  const { train, val } = split;
  const l2 = resolveL2(o.l2, features, d, train);

  let solution: Solution;
  if (o.optimizer === 'lbfgs') {
    const fit = fitLbfgs(features, labels, d, train, l2, o);
    const tr = evaluate(features, labels, d, train, fit.w, fit.b);
    const va = evaluate(features, labels, d, val, fit.w, fit.b);
    solution = { ...fit, trainLoss: [tr.loss], valLoss: [va.loss], valAccuracyPerEpoch: [va.accuracy], bestEpoch: 0 };
  } else {
    solution = fitGradient(features, labels, d, train, val, l2, o, rng);
  }

  const trFinal = evaluate(features, labels, d, train, solution.w, solution.b);
  const vaFinal = evaluate(features, labels, d, val, solution.w, solution.b);
  const onVal = val.length > 0;
  const calibration = onVal ? calibrationOf(vaFinal.scores, vaFinal.ys, vaFinal.loss, 'validation') : calibrationOf(trFinal.scores, trFinal.ys, trFinal.loss, 'train');
  return {
    weights: Float32Array.from(solution.w),
    bias: solution.b,
    d,
    metrics: {
      trainAccuracy: trFinal.accuracy,
      valAccuracy: vaFinal.accuracy,
      valAuroc: vaFinal.auroc,
      trainLoss: solution.trainLoss,
      valLoss: solution.valLoss,
      valAccuracyPerEpoch: solution.valAccuracyPerEpoch,
      bestEpoch: solution.bestEpoch,
      nTrain: train.length,
      nVal: val.length,
      classCounts: split.used,
      inputClassCounts: { positive: pos.length, negative: neg.length },
      calibration,
      training: {
        preset: o.preset,
        optimizer: o.optimizer,
        l2,
        reason,
        iterations: solution.iterations,
        converged: solution.converged,
        gradientNorm: solution.gradientNorm,
        kept: solution.kept,
      },
    },
    split: { train, val },
    options: o,
  };
}

/** r(h) = sigmoid(w·h + b) for the d values of h starting at `offset`. */
export function scoreProbe(probe: ProbeLike, h: Float32Array, offset = 0): number {
  const d = probe.weights.length;
  if (!(Number.isInteger(offset) && offset >= 0 && offset + d <= h.length)) {
    throw bad(`cannot read ${d} values at offset ${offset} from a vector of length ${h.length}`);
  }
  return sigmoid(dot(probe.weights, h, offset, d) + probe.bias);
}

/** The pre-sigmoid logit w·h + b. */
export function probeLogit(probe: ProbeLike, h: Float32Array, offset = 0): number {
  const d = probe.weights.length;
  if (!(Number.isInteger(offset) && offset >= 0 && offset + d <= h.length)) {
    throw bad(`cannot read ${d} values at offset ${offset} from a vector of length ${h.length}`);
  }
  return dot(probe.weights, h, offset, d) + probe.bias;
}

/** r for every row of a row-major [n × d] block (e.g. one layer's residuals at every token). NaN rows give NaN. */
export function scoreRows(probe: ProbeLike, rows: Float32Array, d: number): Float32Array {
  if (probe.weights.length !== d) throw bad(`probe has ${probe.weights.length} weights but rows have width d = ${d}`);
  if (rows.length % d !== 0) throw bad(`rows hold ${rows.length} values, not a multiple of d = ${d}`);
  const n = rows.length / d;
  const out = new Float32Array(n);
  const w = probe.weights;
  for (let i = 0; i < n; i++) out[i] = sigmoid(dot(w, rows, i * d, d) + probe.bias);
  return out;
}

/** Fraction of samples where (score ≥ threshold) equals the label. NaN for an empty set. */
export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  if (scores.length !== labels.length) throw bad(`${scores.length} scores for ${labels.length} labels`);
  if (scores.length === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < scores.length; i++) if ((scores[i]! >= threshold ? 1 : 0) === labels[i]) correct++;
  return correct / scores.length;
}

/**
 * Area under the ROC curve via the Mann–Whitney U statistic, ties given their average rank (so a tie between a
 * positive and a negative counts one half). NaN when either class is absent. Labels: 1 = positive.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw bad(`${n} scores for ${labels.length} labels`);
  const idx = new Uint32Array(n);
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i]!)) throw bad(`score ${i} is NaN; AUROC needs a score for every sample`);
    if (labels[i] === 1) nPos++;
    else if (labels[i] !== 0) throw bad(`label ${i} is ${labels[i]}; labels must be 0 or 1`);
    idx[i] = i;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  idx.sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const avgRank = (i + j) / 2 + 1; // 1-based ranks i+1 … j+1
    for (let k = i; k <= j; k++) if (labels[idx[k]!] === 1) rankSumPos += avgRank;
    i = j + 1;
  }
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface LayerSweepEntry {
  layer: number;
  valAccuracy: number;
  valAuroc: number;
  probe: TrainedProbe;
}

/**
 * Train one probe per layer (Arditi et al.'s all-layers sweep). The split depends only on the labels and the seed,
 * so every layer is trained and validated on exactly the same samples and the numbers are comparable. Best layer:
 * highest validation accuracy, then highest AUROC, then the deeper layer (the refusal signal sharpens with depth).
 */
export function sweepLayers(
  featuresByLayer: Map<number, Float32Array>,
  labels: Uint8Array | ArrayLike<number>,
  d: number,
  opts: Partial<ProbeTrainOptions> = {},
): { layers: LayerSweepEntry[]; best: LayerSweepEntry } {
  if (featuresByLayer.size === 0) throw bad('the layer sweep got no layers');
  if (resolveProbeOptions(opts).options.valFraction === 0) throw bad('a layer sweep compares validation metrics; valFraction must be > 0');
  const layers = [...featuresByLayer.keys()].sort((a, b) => a - b);
  const entries = layers.map((layer) => {
    let probe: TrainedProbe;
    try {
      probe = trainProbe(featuresByLayer.get(layer)!, labels, d, opts);
    } catch (e) {
      if (e instanceof CliffscopeError) throw new CliffscopeError(e.code, `layer ${layer}: ${e.message}`, { hint: e.hint, cause: e });
      throw e;
    }
    return { layer, valAccuracy: probe.metrics.valAccuracy, valAuroc: probe.metrics.valAuroc, probe };
  });
  let best = entries[0]!;
  for (const e of entries.slice(1)) {
    const auc = (x: number) => (Number.isNaN(x) ? -Infinity : x);
    if (e.valAccuracy > best.valAccuracy || (e.valAccuracy === best.valAccuracy && auc(e.valAuroc) >= auc(best.valAuroc))) best = e;
  }
  return { layers: entries, best };
}

/**
 * mean(h | refusal) − mean(h | not refusal): the difference-of-means direction, a training-free baseline (the
 * "refusal direction" of Arditi et al.). Not normalised.
 */
export function meanDifferenceDirection(features: Float32Array, labels: Uint8Array | ArrayLike<number>, d: number): Float32Array {
  const n = checkDims(features, labels, d);
  const { pos, neg } = checkLabels(labels);
  if (pos.length === 0 || neg.length === 0) throw bad(`need both classes for a mean difference (have ${pos.length} refusals, ${neg.length} non-refusals)`);
  checkFinite(features, d);
  const sum = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const sign = labels[i] === 1 ? 1 / pos.length : -1 / neg.length;
    const off = i * d;
    for (let j = 0; j < d; j++) sum[j]! += sign * features[off + j]!;
  }
  return Float32Array.from(sum);
}
