/**
 * The refusal probe (docs/METHOD.md §1): scoring, AUROC / accuracy, the paper preset's optimiser steps checked against
 * values worked by hand (first steps) and by an independent numpy run (later steps), the default L-BFGS fit against
 * scipy's optimum, the paper's balancing and stratified split, epoch selection and its tie-breaking, calibration,
 * the layer sweep, the mean-difference baseline, and every rejection of bad input.
 */
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  auroc,
  calibrationOf,
  DEFAULT_PROBE_PRESET,
  expectedCalibrationError,
  isUncalibrated,
  meanDifferenceDirection,
  PAPER_PROBE_PRESET,
  resolveProbeOptions,
  uncalibratedProbeWarning,
  UNCALIBRATED_BAND,
  probeLogit,
  scoreProbe,
  scoreRows,
  sigmoid,
  sweepResidIndices,
  trainProbe,
} from '../../src/main/engine/analysis/probe.js';
import { expectBadArgument } from '../support/assertions.js';

/** Deterministic pseudo-normal values (Box–Muller over an LCG), for synthetic activations. */
function gaussians(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Two clusters at ±shift along every coordinate, nPos refusals first then nNeg others. */
function clusters(nPos: number, nNeg: number, d: number, shift: number, seed: number) {
  const n = nPos + nNeg;
  const noise = gaussians(n * d, seed);
  const features = new Float32Array(n * d);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i < nPos ? 1 : 0;
    for (let j = 0; j < d; j++) features[i * d + j] = noise[i * d + j]! + (labels[i] ? shift : -shift);
  }
  return { features, labels };
}

// Five samples, d = 2, used for the optimiser checks (full batch, no validation, no balancing).
const X = new Float32Array([1, 0, 2, 1, -1, 3, -2, 0, 0.5, -1]);
const Y = new Uint8Array([1, 1, 0, 0, 1]);
const FULL_BATCH = { preset: 'paper-adam', balance: false, maxPerClass: null, valFraction: 0, batchSize: 5 } as const;

describe('probe scoring', () => {
  it('sigmoid matches closed forms and stays finite far out', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(sigmoid(Math.log(3))).toBeCloseTo(0.75, 15);
    expect(sigmoid(-Math.log(3))).toBeCloseTo(0.25, 15);
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(-1000)).toBe(0);
  });

  it('scoreProbe / probeLogit compute sigmoid(w·h + b), honouring the offset', () => {
    const probe = { weights: new Float32Array([1, 2]), bias: -1 };
    expect(probeLogit(probe, new Float32Array([0.5, 0.25]))).toBe(0); // 0.5 + 0.5 − 1
    expect(scoreProbe(probe, new Float32Array([0.5, 0.25]))).toBe(0.5);
    expect(scoreProbe(probe, new Float32Array([9, 0.5, 0.25]), 1)).toBe(0.5);
    expect(scoreProbe(probe, new Float32Array([1, 1]))).toBeCloseTo(1 / (1 + Math.exp(-2)), 12);
    expectBadArgument(() => scoreProbe(probe, new Float32Array([1, 2]), 1), /offset 1/);
  });

  it('scoreRows scores every row, and a NaN row scores NaN', () => {
    const probe = { weights: new Float32Array([1, 2]), bias: -1 };
    const out = scoreRows(probe, new Float32Array([0.5, 0.25, 1, 1, NaN, 0]), 2);
    expect(out.length).toBe(3);
    expect(out[0]).toBe(0.5);
    expect(out[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    expect(out[2]).toBeNaN();
    expectBadArgument(() => scoreRows(probe, new Float32Array(6), 3), /d = 3/);
    expectBadArgument(() => scoreRows({ weights: new Float32Array(2), bias: 0 }, new Float32Array(5), 2), /multiple/);
  });
});

describe('accuracy and AUROC', () => {
  it('accuracy thresholds at 0.5 inclusive', () => {
    expect(accuracy([0.2, 0.5, 0.7, 0.4], [0, 1, 1, 1])).toBe(0.75);
    expect(accuracy([0.2, 0.5], [0, 1], 0.6)).toBe(0.5);
    expect(accuracy([], [])).toBeNaN();
  });

  it('AUROC is the fraction of correctly ordered (positive, negative) pairs', () => {
    // Pairs: (0.35 vs 0.1) ✓, (0.35 vs 0.4) ✗, (0.8 vs 0.1) ✓, (0.8 vs 0.4) ✓ → 3/4.
    expect(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    expect(auroc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
  });

  it('AUROC counts a tie between a positive and a negative as one half (average ranks)', () => {
    // Pairs: (0.5 vs 0.2) 1, (0.5 vs 0.5) ½, (0.9 vs 0.2) 1, (0.9 vs 0.5) 1 → 3.5/4.
    expect(auroc([0.2, 0.5, 0.5, 0.9], [0, 1, 0, 1])).toBe(0.875);
    expect(auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
  });

  it('AUROC is NaN with one class and rejects NaN scores', () => {
    expect(auroc([0.1, 0.2], [1, 1])).toBeNaN();
    expectBadArgument(() => auroc([0.1, NaN], [0, 1]), /NaN/);
  });
});

describe('trainProbe: optimiser steps', () => {
  it('SGD: the first full-batch step is −lr·mean((p − y)·x) from zero weights (worked by hand)', () => {
    // p = 0.5 everywhere, so p − y = [−½, −½, ½, ½, −½]; mean((p−y)x) = [−0.65, 0.3]; mean(p − y) = −0.1.
    const p = trainProbe(X, Y, 2, { ...FULL_BATCH, optimizer: 'sgd', lr: 0.5, epochs: 1, selectBy: 'last' });
    expect(p.weights[0]).toBeCloseTo(0.325, 7);
    expect(p.weights[1]).toBeCloseTo(-0.15, 7);
    expect(p.bias).toBeCloseTo(0.05, 12);
  });

  it('SGD with L2: two steps match numpy (penalty l2/2·‖w‖² on the weights, not the bias)', () => {
    const p = trainProbe(X, Y, 2, { ...FULL_BATCH, optimizer: 'sgd', lr: 0.5, l2: 0.1, epochs: 2, selectBy: 'last' });
    expect(p.weights[0]).toBeCloseTo(0.5466719766836852, 6);
    expect(p.weights[1]).toBeCloseTo(-0.2448368814084505, 6);
    expect(p.bias).toBeCloseTo(0.10029157361527152, 12);
    expect(p.metrics.trainLoss[0]).toBeCloseTo(0.4678594671263319, 12);
    expect(p.metrics.trainLoss[1]).toBeCloseTo(0.352449361110394, 12);
  });

  it('Adam: the first step moves every parameter by lr·g/(|g| + eps) ≈ lr·sign(g)', () => {
    const p = trainProbe(X, Y, 2, { ...FULL_BATCH, lr: 0.1, epochs: 1, selectBy: 'last' });
    expect(p.weights[0]).toBeCloseTo((0.1 * 0.65) / (0.65 + 1e-8), 7);
    expect(p.weights[1]).toBeCloseTo((-0.1 * 0.3) / (0.3 + 1e-8), 7);
    expect(p.bias).toBeCloseTo((0.1 * 0.1) / (0.1 + 1e-8), 12);
  });

  it('Adam: three steps with bias correction match numpy, with and without L2', () => {
    const a = trainProbe(X, Y, 2, { ...FULL_BATCH, lr: 0.1, epochs: 3, selectBy: 'last' });
    expect(a.weights[0]).toBeCloseTo(0.29857187778710675, 6);
    expect(a.weights[1]).toBeCloseTo(-0.29687923966489094, 6);
    expect(a.bias).toBeCloseTo(0.2977904414015385, 12);
    expect(a.metrics.trainLoss.map((x) => +x.toFixed(12))).toEqual(
      [0.5941938152610226, 0.5075566470386386, 0.4328084901119718].map((x) => +x.toFixed(12)),
    );
    const b = trainProbe(X, Y, 2, { ...FULL_BATCH, lr: 0.1, l2: 0.1, epochs: 3, selectBy: 'last' });
    expect(b.weights[0]).toBeCloseTo(0.29821355681353173, 6);
    expect(b.weights[1]).toBeCloseTo(-0.29564310544976397, 6);
    expect(b.bias).toBeCloseTo(0.29778657805312486, 12);
  });

  it('without a validation split: val metrics are NaN and the last epoch is kept', () => {
    const p = trainProbe(X, Y, 2, { ...FULL_BATCH, epochs: 3 });
    expect(p.metrics.nVal).toBe(0);
    expect(p.metrics.valAccuracy).toBeNaN();
    expect(p.metrics.bestEpoch).toBe(2);
    expect(p.split.train).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('trainProbe: the paper recipe', () => {
  it('the paper-adam preset is the paper recipe; the default is the L-BFGS fit', () => {
    expect(PAPER_PROBE_PRESET).toEqual({
      preset: 'paper-adam',
      maxIterations: 1000,
      tolerance: 1e-6,
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
    const { features, labels } = clusters(30, 30, 4, 1, 1);
    expect(trainProbe(features, labels, 4, { preset: 'paper-adam' }).options).toEqual(PAPER_PROBE_PRESET);
    expect(trainProbe(features, labels, 4).options).toEqual(DEFAULT_PROBE_PRESET);
    expect(DEFAULT_PROBE_PRESET).toMatchObject({ preset: 'lbfgs', optimizer: 'lbfgs', l2: 'auto', balance: true, maxPerClass: 200, valFraction: 0.2 });
  });

  it('balances by downsampling the larger class, then splits each class 80/20', () => {
    const { features, labels } = clusters(30, 10, 3, 1, 2);
    const p = trainProbe(features, labels, 3);
    expect(p.metrics.inputClassCounts).toEqual({ positive: 30, negative: 10 });
    expect(p.metrics.classCounts).toEqual({ positive: 10, negative: 10 });
    expect(p.metrics.nVal).toBe(4); // round(10·0.2) = 2 per class
    expect(p.metrics.nTrain).toBe(16);
    const { train, val } = p.split;
    expect(new Set([...train, ...val]).size).toBe(20);
    expect(train).toEqual([...train].sort((a, b) => a - b));
    const count = (rows: number[], y: number) => rows.filter((i) => labels[i] === y).length;
    expect([count(train, 1), count(train, 0), count(val, 1), count(val, 0)]).toEqual([8, 8, 2, 2]);
    // All 10 negatives are used; 10 of the 30 positives.
    expect(count([...train, ...val], 0)).toBe(10);
  });

  it('caps each class at maxPerClass and keeps at least one of each class on each side', () => {
    const { features, labels } = clusters(300, 250, 2, 1, 3);
    const p = trainProbe(features, labels, 2);
    expect(p.metrics.classCounts).toEqual({ positive: 200, negative: 200 });
    expect(p.metrics.nVal).toBe(80);
    const small = clusters(2, 2, 2, 1, 4);
    const q = trainProbe(small.features, small.labels, 2);
    expect(q.metrics.nVal).toBe(2); // round(2·0.2) = 0, clamped up to 1 per class
    expect(q.metrics.nTrain).toBe(2);
  });

  it('without balancing, both classes are kept whole', () => {
    const { features, labels } = clusters(30, 10, 3, 1, 5);
    const p = trainProbe(features, labels, 3, { balance: false });
    expect(p.metrics.classCounts).toEqual({ positive: 30, negative: 10 });
    expect(p.metrics.nVal).toBe(6 + 2);
  });

  it('is deterministic for a seed, the split depends on the seed, and not on the features', () => {
    const { features, labels } = clusters(40, 40, 8, 0.5, 6);
    const a = trainProbe(features, labels, 8, { seed: 7 });
    const b = trainProbe(features, labels, 8, { seed: 7 });
    expect(Array.from(b.weights)).toEqual(Array.from(a.weights));
    expect(b.bias).toBe(a.bias);
    expect(b.split).toEqual(a.split);
    const c = trainProbe(features, labels, 8, { seed: 8 });
    expect(c.split.val).not.toEqual(a.split.val);
    const other = clusters(40, 40, 8, 0.5, 99).features;
    expect(trainProbe(other, labels, 8, { seed: 7 }).split).toEqual(a.split);
  });

  it('learns a separable refusal direction on raw (unstandardised) features', () => {
    const { features, labels } = clusters(200, 200, 16, 1, 7);
    const p = trainProbe(features, labels, 16, { preset: 'paper-adam' });
    expect(p.metrics.valAccuracy).toBeGreaterThanOrEqual(0.95);
    expect(p.metrics.valAuroc).toBeGreaterThanOrEqual(0.99);
    expect(p.metrics.trainLoss).toHaveLength(5);
    expect(p.metrics.trainLoss[4]!).toBeLessThan(p.metrics.trainLoss[0]!);
    // Raw features in, raw features scored: a refusal-cluster centre scores above ½, the other below.
    expect(scoreProbe(p, new Float32Array(16).fill(1))).toBeGreaterThan(0.5);
    expect(scoreProbe(p, new Float32Array(16).fill(-1))).toBeLessThan(0.5);
  });

  it('reports the kept epoch: best validation accuracy (ties to the lower loss), the first best, lowest loss, or the last', () => {
    const { features, labels } = clusters(60, 60, 6, 0.3, 8);
    const opts = { lr: 0.05, batchSize: 8, epochs: 6 };
    const acc = trainProbe(features, labels, 6, { ...opts, selectBy: 'val-accuracy' });
    const perEpoch = acc.metrics.valAccuracyPerEpoch;
    const bestAcc = Math.max(...perEpoch);
    const tiedLosses = acc.metrics.valLoss.filter((_, e) => perEpoch[e] === bestAcc);
    expect(perEpoch[acc.metrics.bestEpoch]).toBe(bestAcc);
    expect(acc.metrics.valLoss[acc.metrics.bestEpoch]).toBe(Math.min(...tiedLosses));
    expect(acc.metrics.valAccuracy).toBe(perEpoch[acc.metrics.bestEpoch]);
    const first = trainProbe(features, labels, 6, { ...opts, selectBy: 'val-accuracy-first' });
    expect(first.metrics.bestEpoch).toBe(perEpoch.indexOf(bestAcc));
    expect(first.metrics.training?.kept).toMatch(/first epoch reaching the best validation accuracy/);
    const loss = trainProbe(features, labels, 6, { ...opts, selectBy: 'val-loss' });
    expect(loss.metrics.bestEpoch).toBe(loss.metrics.valLoss.indexOf(Math.min(...loss.metrics.valLoss)));
    const last = trainProbe(features, labels, 6, { ...opts, selectBy: 'last' });
    expect(last.metrics.bestEpoch).toBe(5);
    // The last epoch's weights are returned: its recorded train loss is the loss of the returned probe.
    let bce = 0;
    for (const i of last.split.train) {
      const r = scoreProbe(last, features, i * 6);
      bce -= labels[i] ? Math.log(r) : Math.log(1 - r);
    }
    expect(bce / last.split.train.length).toBeCloseTo(last.metrics.trainLoss[5]!, 5);
  });

  it('rejects bad input with clear errors', () => {
    const { features, labels } = clusters(4, 4, 2, 1, 9);
    expectBadArgument(() => trainProbe(features.subarray(0, 6), labels.subarray(0, 3), 2), /at least 4 samples/);
    expectBadArgument(() => trainProbe(features, new Uint8Array(8).fill(1), 2), /both refusals/);
    expectBadArgument(() => trainProbe(features, labels, 3), /not a multiple of d = 3/);
    expectBadArgument(() => trainProbe(features, labels.subarray(0, 7), 2), /7 labels for 8 feature rows/);
    const withNaN = features.slice();
    withNaN[5] = NaN;
    expectBadArgument(() => trainProbe(withNaN, labels, 2), /feature row 2 has a non-finite value/);
    expectBadArgument(() => trainProbe(features, Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 2]), 2), /label 7 is 2/);
    expectBadArgument(() => trainProbe(features, Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]), 2), /at least 2 samples of each class/);
    expectBadArgument(() => trainProbe(features, labels, 0), /positive integer/);
    expectBadArgument(() => trainProbe(features, labels, 2, { valFraction: 1 }), /valFraction/);
    expectBadArgument(() => trainProbe(features, labels, 2, { lr: -1 }), /lr/);
  });
});

describe('trainProbe: ties in validation accuracy', () => {
  it('go to the lower validation loss, and a tie in both to the later epoch; val-accuracy-first keeps the first', () => {
    // All-zero features and balanced full batches: every gradient is zero, so every epoch has the same accuracy
    // and the same loss — a tie in both.
    const labels = Uint8Array.from({ length: 20 }, (_, i) => (i < 10 ? 1 : 0));
    const features = new Float32Array(20 * 3);
    const opts = { preset: 'paper-adam', batchSize: 64, epochs: 5 } as const;
    const tied = trainProbe(features, labels, 3, { ...opts, selectBy: 'val-accuracy' });
    expect(new Set(tied.metrics.valLoss).size).toBe(1);
    expect(tied.metrics.bestEpoch).toBe(4);
    expect(trainProbe(features, labels, 3, { ...opts, selectBy: 'val-accuracy-first' }).metrics.bestEpoch).toBe(0);
  });
});

describe('trainProbe: the default L-BFGS fit', () => {
  // The optimum of mean BCE + l2/2·‖w‖² on the five points X, Y, from scipy.optimize.minimize (BFGS, gtol 1e-13).
  const SCIPY = [
    { l2: 0.1, w: [1.3068905002122704, -0.639184976244018], b: 0.9253861038049586, f: 0.2106246374358342 },
    { l2: 0.01, w: [2.425168144050414, -1.1210580642279298], b: 1.4827929171024432, f: 0.054567463181321885 },
  ];
  const LBFGS_FULL = { balance: false, maxPerClass: null, valFraction: 0 } as const;

  it('converges to the known optimum', () => {
    for (const ref of SCIPY) {
      const p = trainProbe(X, Y, 2, { ...LBFGS_FULL, l2: ref.l2, tolerance: 1e-10 });
      expect(p.metrics.training).toMatchObject({ optimizer: 'lbfgs', preset: 'lbfgs', converged: true, l2: ref.l2 });
      // Weights are stored as float32 (7 significant digits); the bias as a double.
      expect(p.weights[0]).toBeCloseTo(ref.w[0]!, 6);
      expect(p.weights[1]).toBeCloseTo(ref.w[1]!, 6);
      expect(p.bias).toBeCloseTo(ref.b, 8);
      const penalty = 0.5 * ref.l2 * (p.weights[0]! ** 2 + p.weights[1]! ** 2);
      expect(p.metrics.trainLoss[0]! + penalty).toBeCloseTo(ref.f, 7); // penalty from the float32 weights
    }
  });

  it("l2 'auto' is the mean per-coordinate variance over n_train (scikit-learn's C = 1 at unit average variance)", () => {
    // Per-coordinate variances of X: 2.14 and 1.74 → mean 1.94; n = 5 → 0.388. scipy: w = [0.73843854, −0.38022218].
    const p = trainProbe(X, Y, 2, { ...LBFGS_FULL, tolerance: 1e-10 });
    expect(p.metrics.training!.l2).toBeCloseTo(0.388, 12);
    expect(p.weights[0]).toBeCloseTo(0.7384385379505755, 6);
    expect(p.weights[1]).toBeCloseTo(-0.3802221816812534, 6);
    expect(p.bias).toBeCloseTo(0.6685208900201477, 8);
    // Scaling every feature by k scales the 'auto' penalty with it: the scores do not change.
    const scaled = trainProbe(X.map((x) => x * 1000), Y, 2, LBFGS_FULL);
    expect(scoreProbe(scaled, Float32Array.from([1000, 2000]))).toBeCloseTo(scoreProbe(p, Float32Array.from([1, 2])), 5);
  });

  it('reaches a zero gradient on residual-like features far from the origin (d > n)', () => {
    // 24 samples of width 40 around a large common offset, as real residual streams are.
    const n = 24;
    const d = 40;
    const noise = gaussians(n * d, 21);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 2);
    const features = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) features[i * d + j] = 50 + (j % 7) * 10 + noise[i * d + j]! + (labels[i] ? 0.4 : -0.4);
    const l2 = 0.05;
    const p = trainProbe(features, labels, d, { ...LBFGS_FULL, l2 });
    expect(p.metrics.training!.converged).toBe(true);
    // The gradient of the objective at the returned weights, computed here independently (float32 weights: 1e-5).
    const gw = new Float64Array(d);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const g = scoreProbe(p, features, i * d) - labels[i]!;
      gb += g / n;
      for (let j = 0; j < d; j++) gw[j]! += (g * features[i * d + j]!) / n;
    }
    for (let j = 0; j < d; j++) gw[j]! += l2 * p.weights[j]!;
    expect(Math.abs(gb)).toBeLessThan(1e-5);
    expect(Math.max(...Array.from(gw, Math.abs))).toBeLessThan(1e-4);
  });

  it('says when it stopped before converging', () => {
    const { features, labels } = clusters(10, 10, 2, 1, 22);
    const p = trainProbe(features, labels, 2, { ...LBFGS_FULL, maxIterations: 1 });
    expect(p.metrics.training).toMatchObject({ converged: false, iterations: 1 });
    expect(p.metrics.training!.kept).toMatch(/NOT converged/);
    expect(trainProbe(features, labels, 2, LBFGS_FULL).metrics.training!.kept).toMatch(/^the optimum: converged after \d+ L-BFGS iterations/);
  });

  it('stays calibrated on a small, easily separable set where the paper recipe gives flat scores (the vanished cliff)', () => {
    // 20 refusals + 20 others, well apart: every probe separates them, but only a trained one says so with its scores.
    const { features, labels } = clusters(20, 20, 16, 1, 23);
    const paper = trainProbe(features, labels, 16, { preset: 'paper-adam' });
    expect(paper.metrics.valAccuracy).toBe(1);
    expect(isUncalibrated(paper.metrics.calibration!)).toBe(true);
    expect(Math.abs(paper.metrics.calibration!.meanScore.positive - 0.5)).toBeLessThan(UNCALIBRATED_BAND);
    expect(paper.metrics.calibration!.loss).toBeGreaterThan(0.6); // barely below ln 2 = 0.693
    // Ties broken by the loss: the paper preset keeps its last (best-loss) epoch, not its first.
    expect(paper.metrics.bestEpoch).toBe(4);

    const fit = trainProbe(features, labels, 16);
    const c = fit.metrics.calibration!;
    expect(fit.metrics.valAccuracy).toBe(1);
    expect(isUncalibrated(c)).toBe(false);
    expect(c).toMatchObject({ set: 'validation', chanceLoss: Math.LN2, eceBins: 10 });
    expect(c.meanScore.positive).toBeGreaterThan(0.9);
    expect(c.meanScore.negative).toBeLessThan(0.1);
    expect(c.scoreGap).toBeGreaterThan(0.8);
    expect(c.loss).toBeLessThan(0.15);
    expect(c.ece).toBeLessThan(0.1);
    expect(fit.metrics.training!.reason).toMatch(/default/);
  });
});

describe('resolveProbeOptions: which preset and why', () => {
  it('default, named preset, optimizer, or gradient settings that ask for Adam', () => {
    expect(resolveProbeOptions({})).toMatchObject({ options: { preset: 'lbfgs', optimizer: 'lbfgs' }, reason: expect.stringMatching(/^the default/) });
    expect(resolveProbeOptions({ preset: 'paper-adam' })).toMatchObject({ options: PAPER_PROBE_PRESET, reason: 'preset paper-adam was requested' });
    expect(resolveProbeOptions({ optimizer: 'sgd' }).options).toMatchObject({ preset: 'paper-adam', optimizer: 'sgd', lr: 1e-3 });
    const inferred = resolveProbeOptions({ lr: 0.2, epochs: 60 });
    expect(inferred.options).toMatchObject({ preset: 'paper-adam', optimizer: 'adam', lr: 0.2, epochs: 60 });
    expect(inferred.reason).toMatch(/lr, epochs/);
    // Undefined values (an option left out on a command line) change nothing.
    expect(resolveProbeOptions({ lr: undefined, seed: 3 }).options).toMatchObject({ preset: 'lbfgs', seed: 3 });
    expectBadArgument(() => resolveProbeOptions({ preset: 'sklearn' as never }), /unknown probe preset/);
    expectBadArgument(() => resolveProbeOptions({ l2: -1 }), /l2/);
    expectBadArgument(() => resolveProbeOptions({ tolerance: 0 }), /tolerance/);
  });
});

describe('calibration', () => {
  it('ECE over 10 equal-width bins, worked by hand', () => {
    // Bin [0.1, 0.2): scores 0.1, 0.15 with labels 0, 1 → |0.5 − 0.125| = 0.375, weight 2/5.
    // Bin [0.9, 1]: scores 0.9, 1.0, 0.95 with labels 1, 1, 0 → |2/3 − 0.95| = 0.28333…, weight 3/5.
    const ece = expectedCalibrationError([0.1, 0.15, 0.9, 1, 0.95], [0, 1, 1, 1, 0]);
    expect(ece).toBeCloseTo((2 / 5) * 0.375 + (3 / 5) * (0.95 - 2 / 3), 12);
    expect(expectedCalibrationError([0, 1], [0, 1])).toBe(0);
    expect(expectedCalibrationError([], [])).toBeNaN();
    expectBadArgument(() => expectedCalibrationError([1.5], [1]), /probabilities/);
  });

  it('mean score per class, their gap, and the uncalibrated band around 0.5', () => {
    const c = calibrationOf([0.52, 0.54, 0.47, 0.49], [1, 1, 0, 0], 0.68, 'validation');
    expect(c.meanScore.positive).toBeCloseTo(0.53, 12);
    expect(c.meanScore.negative).toBeCloseTo(0.48, 12);
    expect(c.scoreGap).toBeCloseTo(0.05, 12);
    expect(isUncalibrated(c)).toBe(true);
    expect(isUncalibrated({ meanScore: { positive: 0.56, negative: 0.48 } })).toBe(false);
    expect(isUncalibrated({ meanScore: { positive: 0.9, negative: 0.1 } })).toBe(false);
  });

  it('warns about an uncalibrated stored probe, and stays silent for calibrated or older probes', () => {
    const flat = { id: 3, metrics: { calibration: { meanScore: { positive: 0.503, negative: 0.497 } } } };
    expect(uncalibratedProbeWarning(flat)).toMatch(/probe #3 is uncalibrated: mean scores 0\.503 \(refusals\) and 0\.497/);
    expect(uncalibratedProbeWarning({ id: 4, metrics: { calibration: { meanScore: { positive: 0.95, negative: 0.04 } } } })).toBeNull();
    expect(uncalibratedProbeWarning({ id: 5, metrics: { valAccuracy: 1 } })).toBeNull();
    expect(uncalibratedProbeWarning({ id: 6, metrics: null })).toBeNull();
  });
});

describe('residual-stack sweep and mean difference', () => {
  it('finds the informative residual-stack entry and validates every entry on the same samples', () => {
    const d = 8;
    const informative = clusters(50, 50, d, 1, 10);
    const noise = Float32Array.from(gaussians(100 * d, 11));
    const byLayer = new Map([
      [3, informative.features],
      [0, noise],
    ]);
    const { entries, best } = sweepResidIndices(byLayer, informative.labels, d);
    expect(entries.map((e) => e.residIndex)).toEqual([0, 3]);
    expect(best.residIndex).toBe(3);
    expect(entries[1]!.valAccuracy).toBeGreaterThan(entries[0]!.valAccuracy);
    expect(entries[0]!.probe.split).toEqual(entries[1]!.probe.split);
  });

  it('breaks a tie in accuracy and AUROC towards the deeper layer, and needs validation', () => {
    const { features, labels } = clusters(30, 30, 4, 2, 12);
    const { best } = sweepResidIndices(
      new Map([
        [1, features],
        [5, features],
      ]),
      labels,
      4,
    );
    expect(best.residIndex).toBe(5);
    expectBadArgument(() => sweepResidIndices(new Map([[0, features]]), labels, 4, { valFraction: 0 }), /valFraction/);
    expectBadArgument(() => sweepResidIndices(new Map([[2, features.subarray(0, 8)]]), labels, 4), /residual-stack index 2: .*labels/);
  });

  it('mean difference = mean(refusal rows) − mean(other rows)', () => {
    // Refusals [1,2], [3,4] → mean [2,3]; others [0,0], [2,−2] → mean [1,−1]; difference [1,4].
    const dir = meanDifferenceDirection(new Float32Array([1, 2, 0, 0, 3, 4, 2, -2]), Uint8Array.from([1, 0, 1, 0]), 2);
    expect(Array.from(dir)).toEqual([1, 4]);
    expectBadArgument(() => meanDifferenceDirection(new Float32Array(4), Uint8Array.from([1, 1]), 2), /both classes/);
  });
});
