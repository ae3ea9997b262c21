/**
 * The refusal probe (METHOD.md §1): logistic regression r(h) = sigmoid(w·h + b) on raw residual vectors, trained the
 * way the paper does it (balanced, ≤200 per class, stratified 80/20 split, Adam lr 1e-3, batch 64, 5 epochs, keep the
 * epoch with the best validation accuracy), plus the Arditi-style all-layers sweep and a mean-difference baseline.
 *
 * Pure and deterministic: everything random (downsampling, the split, minibatch order) comes from one seeded stream,
 * so the same features, labels and options give bit-identical weights on any machine. Features are NOT standardised:
 * the probe must apply unchanged to raw residual vectors at every token of a transcript (§2) and inside head
 * attribution (§3), which a per-feature standardisation would silently break.
 */
import { SeededRandom } from '../datasets/split.js';
import { CliffscopeError } from '../errors.js';

export interface ProbeTrainOptions {
  /** Downsample the larger class (seeded) to the size of the smaller one. */
  balance: boolean;
  /** Keep at most this many samples per class (seeded), null for no cap. Applied after balancing. */
  maxPerClass: number | null;
  /** Fraction of each class held out for validation (0 ≤ f < 1). 0 = no validation: the last epoch is kept. */
  valFraction: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  batchSize: number;
  epochs: number;
  /** L2 penalty: the objective is mean BCE + l2/2·‖w‖² (the bias is not penalised). */
  l2: number;
  /** Which epoch's weights to keep. 'val-accuracy' keeps the first epoch reaching the best validation accuracy. */
  selectBy: 'val-accuracy' | 'val-loss' | 'last';
  seed: number;
}

/** The paper's recipe (METHOD.md §1). */
export const PAPER_PROBE_PRESET: Readonly<ProbeTrainOptions> = Object.freeze({
  balance: true,
  maxPerClass: 200,
  valFraction: 0.2,
  optimizer: 'adam',
  lr: 1e-3,
  batchSize: 64,
  epochs: 5,
  l2: 0,
  selectBy: 'val-accuracy',
  seed: 0,
});

/** Adam's constants (PyTorch defaults, which the paper's code uses). */
export const ADAM = Object.freeze({ beta1: 0.9, beta2: 0.999, eps: 1e-8 });

/** Anything with a direction and a bias can score residual vectors. */
export interface ProbeLike {
  weights: Float32Array;
  bias: number;
}

export interface ProbeMetrics {
  /** Accuracy / AUROC of the kept weights (threshold 0.5 on the probability). */
  trainAccuracy: number;
  valAccuracy: number;
  valAuroc: number;
  /** Mean BCE over the whole train / validation set at the end of each epoch (penalty excluded). NaN without validation. */
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

function resolveOptions(opts: Partial<ProbeTrainOptions>): ProbeTrainOptions {
  const o: ProbeTrainOptions = { ...PAPER_PROBE_PRESET, ...opts };
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw bad(`valFraction must be within [0, 1), got ${o.valFraction}`);
  if (o.maxPerClass !== null && !(Number.isInteger(o.maxPerClass) && o.maxPerClass >= 2)) {
    throw bad(`maxPerClass must be an integer ≥ 2 or null, got ${o.maxPerClass}`);
  }
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw bad(`lr must be a positive number, got ${o.lr}`);
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw bad(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw bad(`epochs must be a positive integer, got ${o.epochs}`);
  if (!(o.l2 >= 0 && Number.isFinite(o.l2))) throw bad(`l2 must be ≥ 0, got ${o.l2}`);
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd') throw bad(`optimizer must be 'adam' or 'sgd', got ${String(o.optimizer)}`);
  if (!['val-accuracy', 'val-loss', 'last'].includes(o.selectBy)) throw bad(`selectBy must be val-accuracy, val-loss or last, got ${o.selectBy}`);
  if (!Number.isSafeInteger(o.seed)) throw bad(`seed must be an integer, got ${o.seed}`);
  return o;
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

/** Mean BCE, accuracy and AUROC of (w, b) on the given rows. */
function evaluate(
  features: Float32Array,
  labels: ArrayLike<number>,
  d: number,
  rows: number[],
  w: Float64Array,
  b: number,
): { loss: number; accuracy: number; auroc: number } {
  if (rows.length === 0) return { loss: NaN, accuracy: NaN, auroc: NaN };
  const probs = new Float64Array(rows.length);
  const ys = new Uint8Array(rows.length);
  let loss = 0;
  rows.forEach((r, i) => {
    const z = dot(w, features, r * d, d) + b;
    const y = labels[r]!;
    loss += bceFromLogit(z, y);
    probs[i] = sigmoid(z);
    ys[i] = y;
  });
  return { loss: loss / rows.length, accuracy: accuracy(probs, ys), auroc: auroc(probs, ys) };
}

/**
 * Train a logistic-regression refusal probe on n rows of width d (row-major). Weights start at zero (the problem is
 * convex, so no random init is needed). Labels: 1 = refusal.
 */
export function trainProbe(
  features: Float32Array,
  labels: Uint8Array | ArrayLike<number>,
  d: number,
  opts: Partial<ProbeTrainOptions> = {},
): TrainedProbe {
  const o = resolveOptions(opts);
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
      for (let j = 0; j < d; j++) gw[j] = gw[j]! / size + o.l2 * w[j]!;
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
    // Strict improvement keeps the earliest epoch among ties, as "save when val acc > best" does.
    const better =
      selectBy === 'last' ||
      (selectBy === 'val-accuracy' && va.accuracy > best.acc) ||
      (selectBy === 'val-loss' && va.loss < best.loss);
    if (better) best = { epoch, w: Float64Array.from(w), b, acc: va.accuracy, loss: va.loss };
  }

  const kept = { w: best.w, b: best.b };
  const trFinal = evaluate(features, labels, d, train, kept.w, kept.b);
  const vaFinal = evaluate(features, labels, d, val, kept.w, kept.b);
  return {
    weights: Float32Array.from(kept.w),
    bias: kept.b,
    d,
    metrics: {
      trainAccuracy: trFinal.accuracy,
      valAccuracy: vaFinal.accuracy,
      valAuroc: vaFinal.auroc,
      trainLoss,
      valLoss,
      valAccuracyPerEpoch,
      bestEpoch: best.epoch,
      nTrain: train.length,
      nVal: val.length,
      classCounts: split.used,
      inputClassCounts: { positive: pos.length, negative: neg.length },
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
  if ((opts.valFraction ?? PAPER_PROBE_PRESET.valFraction) === 0) throw bad('a layer sweep compares validation metrics; valFraction must be > 0');
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
