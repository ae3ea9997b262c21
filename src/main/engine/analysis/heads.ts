/**
 * Direct head attribution (docs/METHOD.md §3) and the head sets the ablation sweep needs (§4).
 *
 * A head's direct write into the residual stream is Δh_{i,h,t} = W_O^(i)[:, h] z_{i,h,t}, where W_O^(i) is the
 * o_proj weight of layer i as Hugging Face stores it: [d, H·D] row-major (out × in), columns h·D … h·D+D−1 reading
 * head h. Scoring Δh with the probe directly costs d·D per head per position; instead we fold the probe into the
 * projection once per (probe, layer):
 *
 *   w·Δh = Σ_j w_j Σ_k W[j, hD+k] z_k = Σ_k (Σ_j W[j, hD+k] w_j) z_k = u_{i,h} · z,   u_{i,h} = W_O^(i)[:, h]^T w ∈ R^D
 *
 * so every later score is a D-length dot product (H·D per layer and position instead of d·H·D).
 *
 * Variants (all rank heads identically within one probe except final-norm-aware, which reweights by g):
 *   'code'  (default) s = w·Δh / ‖w‖             — the paper's code: signed length of Δh along the probe direction.
 *   'blog'            s = w·Δh + b               — the blog / paper text.
 *   'final-norm-aware' s = w·(g ⊙ Δh) / rms(h_{t_b}) — an improvement, NOT the paper's: when the probe reads the
 *       final RMSNorm's output, ln(h) = g ⊙ h / rms(h) is linear in h once rms is frozen at its actual value, so the
 *       probe logit splits exactly into per-component terms w·(g ⊙ part)/rms (+ b once). This is each head's share
 *       of the logit through the norm; u is then built from w ⊙ g.
 *
 * Direct attribution ignores downstream layers, as the paper does. When the probe reads hidden_states[ℓ] (the
 * residual after ℓ layers) only layers i < ℓ write into it; pass readouts for those layers only.
 */
import type { HeadRef } from '../../../shared/heads.js';
import { SeededRandom } from '../datasets/split.js';
import { CliffscopeError } from '../errors.js';
import type { ProbeLike } from './probe.js';

export type AttributionVariant = 'code' | 'blog' | 'final-norm-aware';

/** docs/METHOD.md §4: fractions of all L·H heads to ablate, and γ values. */
export { ABLATION_FRACTIONS, ABLATION_GAMMAS } from '../../../shared/method.js';

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

function checkPositiveInt(name: string, v: number): void {
  if (!(Number.isInteger(v) && v > 0)) throw bad(`${name} must be a positive integer, got ${v}`);
}

/**
 * u = W_O^T w, i.e. u[h·D + k] = Σ_j W[j, h·D + k]·w[j], for an o_proj weight [d, H·D] row-major. One pass over the
 * weight in storage order (row j scaled by w_j, accumulated), so it streams at memory speed: d·H·D multiply-adds.
 */
export function headReadout(oProjWeight: Float32Array, w: Float32Array, H: number, D: number, d: number): Float32Array {
  checkPositiveInt('H', H);
  checkPositiveInt('D', D);
  checkPositiveInt('d', d);
  const HD = H * D;
  if (oProjWeight.length !== d * HD) {
    throw bad(`o_proj weight has ${oProjWeight.length} values, expected d·H·D = ${d}·${H}·${D} = ${d * HD}`, 'pass the [d, H·D] (out × in) matrix as stored by Hugging Face');
  }
  if (w.length !== d) throw bad(`probe has ${w.length} weights, the residual width is ${d}`);
  const acc = new Float64Array(HD);
  for (let j = 0; j < d; j++) {
    const wj = w[j]!;
    if (wj === 0) continue;
    const row = j * HD;
    for (let c = 0; c < HD; c++) acc[c]! += wj * oProjWeight[row + c]!;
  }
  return Float32Array.from(acc);
}

export interface HeadReadouts {
  variant: AttributionVariant;
  layers: number;
  heads: number;
  headDim: number;
  d: number;
  /** u per layer, [H·D] each (from w, or from w ⊙ g for final-norm-aware). */
  perLayer: Float32Array[];
  /** Probe bias (added by 'blog' only) and ‖w‖ (divided by 'code' only). */
  bias: number;
  weightNorm: number;
}

/** Fold the probe into every layer's o_proj once; the result scores any position of any transcript. */
export function buildHeadReadouts(opts: {
  probe: ProbeLike;
  oProj: (layer: number) => Float32Array;
  layers: number;
  heads: number;
  headDim: number;
  d: number;
  variant?: AttributionVariant;
  /** The final RMSNorm weight g (required for 'final-norm-aware'). */
  finalNormWeight?: Float32Array;
  /**
   * Fold the probe into these layers only (a head's page needs one): the others get no readout, and only
   * headScoreOverTokens on a folded layer may use the result.
   */
  onlyLayers?: readonly number[];
}): HeadReadouts {
  const { probe, layers, heads, headDim, d } = opts;
  const variant = opts.variant ?? 'code';
  checkPositiveInt('layers', layers);
  if (!['code', 'blog', 'final-norm-aware'].includes(variant)) throw bad(`unknown attribution variant ${variant}`);
  if (probe.weights.length !== d) throw bad(`probe has ${probe.weights.length} weights, the residual width is ${d}`);
  let w = probe.weights;
  if (variant === 'final-norm-aware') {
    const g = opts.finalNormWeight;
    if (!g) throw bad('final-norm-aware attribution needs the final norm weight g', 'pass finalNormWeight (model.norm.weight)');
    if (g.length !== d) throw bad(`final norm weight has ${g.length} values, the residual width is ${d}`);
    w = new Float32Array(d);
    for (let j = 0; j < d; j++) w[j] = probe.weights[j]! * g[j]!;
  }
  let sq = 0;
  for (let j = 0; j < d; j++) sq += probe.weights[j]! * probe.weights[j]!;
  const weightNorm = Math.sqrt(sq);
  if (variant === 'code' && weightNorm === 0) throw bad('the probe weights are all zero; the code variant divides by ‖w‖');
  const perLayer: Float32Array[] = [];
  for (let l = 0; l < layers; l++) perLayer.push(!opts.onlyLayers || opts.onlyLayers.includes(l) ? headReadout(opts.oProj(l), w, heads, headDim, d) : new Float32Array(0));
  return { variant, layers, heads, headDim, d, perLayer, bias: probe.bias, weightNorm };
}

/** Root mean square of a pre-norm residual as RMSNorm computes it: sqrt(mean(h²) + eps). */
export function rmsOf(h: Float32Array, eps: number, offset = 0, d = h.length - offset): number {
  if (!(offset >= 0 && d > 0 && offset + d <= h.length)) throw bad(`cannot read ${d} values at offset ${offset} from ${h.length}`);
  let s = 0;
  for (let j = 0; j < d; j++) s += h[offset + j]! * h[offset + j]!;
  return Math.sqrt(s / d + eps);
}

function finishScore(r: HeadReadouts, raw: number, rms: number | undefined): number {
  if (r.variant === 'code') return raw / r.weightNorm;
  if (r.variant === 'blog') return raw + r.bias;
  return raw / rms!;
}

function checkRms(r: HeadReadouts, rms: number | undefined): void {
  if (r.variant === 'final-norm-aware' && !(typeof rms === 'number' && rms > 0 && Number.isFinite(rms))) {
    throw bad(`final-norm-aware attribution needs rms(h_{t_b}) > 0, got ${rms}`, 'compute it with rmsOf(preNormResidual, rms_norm_eps)');
  }
}

/**
 * s_{i,h} at one position for every layer and head: [L·H], index layer·H + head. zAt(layer) gives that layer's
 * concatenated per-head attention outputs before o_proj ([H·D], head-major) at the position (usually t_b).
 */
export function attributeHeads(opts: { readouts: HeadReadouts; zAt: (layer: number) => Float32Array; rms?: number }): Float32Array {
  const r = opts.readouts;
  checkRms(r, opts.rms);
  const { layers: L, heads: H, headDim: D } = r;
  const out = new Float32Array(L * H);
  for (let l = 0; l < L; l++) {
    const z = opts.zAt(l);
    if (z.length !== H * D) throw bad(`z for layer ${l} has ${z.length} values, expected H·D = ${H * D}`);
    const u = r.perLayer[l]!;
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let k = h * D, e = k + D; k < e; k++) s += u[k]! * z[k]!;
      out[l * H + h] = finishScore(r, s, opts.rms);
    }
  }
  return out;
}

/**
 * The same score at every token (heads × tokens): zRows(layer) is that layer's z at every position, row-major
 * [T × H·D]; rms (final-norm-aware only) gives rms(h_t) per token. Output [L·H·T], index (layer·H + head)·T + t.
 */
export function attributeHeadsOverTokens(opts: {
  readouts: HeadReadouts;
  zRows: (layer: number) => Float32Array;
  tokens: number;
  rms?: ArrayLike<number>;
}): Float32Array {
  const r = opts.readouts;
  const { layers: L, heads: H, headDim: D } = r;
  const T = opts.tokens;
  checkPositiveInt('tokens', T);
  if (r.variant === 'final-norm-aware') {
    if (!opts.rms || opts.rms.length !== T) throw bad(`final-norm-aware attribution needs one rms value per token (${T})`);
  }
  const HD = H * D;
  const out = new Float32Array(L * H * T);
  for (let l = 0; l < L; l++) {
    const z = opts.zRows(l);
    if (z.length !== T * HD) throw bad(`z rows for layer ${l} have ${z.length} values, expected T·H·D = ${T * HD}`);
    const u = r.perLayer[l]!;
    for (let t = 0; t < T; t++) {
      const rms = opts.rms ? opts.rms[t] : undefined;
      if (r.variant === 'final-norm-aware') checkRms(r, rms);
      const base = t * HD;
      for (let h = 0; h < H; h++) {
        let s = 0;
        const hk = h * D;
        for (let k = 0; k < D; k++) s += u[hk + k]! * z[base + hk + k]!;
        out[(l * H + h) * T + t] = finishScore(r, s, rms);
      }
    }
  }
  return out;
}

/**
 * One head's score at every token: the row (layer·H + head) of attributeHeadsOverTokens, from that layer's z alone
 * ([T × H·D]); rms per token for final-norm-aware. What a head's page draws for any transcript.
 */
export function headScoreOverTokens(opts: { readouts: HeadReadouts; layer: number; head: number; zRows: Float32Array; tokens: number; rms?: ArrayLike<number> }): Float32Array {
  const r = opts.readouts;
  const { heads: H, headDim: D } = r;
  const { layer, head, tokens: T } = opts;
  checkPositiveInt('tokens', T);
  if (!(Number.isInteger(layer) && layer >= 0 && layer < r.layers)) throw bad(`layer ${layer} is outside 0..${r.layers - 1} (the layers upstream of the probe)`);
  if (!(Number.isInteger(head) && head >= 0 && head < H)) throw bad(`head ${head} is outside 0..${H - 1}`);
  const u = r.perLayer[layer]!;
  if (u.length !== H * D) throw bad(`no readout for layer ${layer}: build the readouts with that layer`);
  const HD = H * D;
  if (opts.zRows.length !== T * HD) throw bad(`z rows have ${opts.zRows.length} values, expected T·H·D = ${T * HD}`);
  if (r.variant === 'final-norm-aware' && (!opts.rms || opts.rms.length !== T)) throw bad(`final-norm-aware attribution needs one rms value per token (${T})`);
  const out = new Float32Array(T);
  const hk = head * D;
  for (let t = 0; t < T; t++) {
    const rms = opts.rms ? opts.rms[t] : undefined;
    if (r.variant === 'final-norm-aware') checkRms(r, rms);
    let s = 0;
    const base = t * HD + hk;
    for (let k = 0; k < D; k++) s += u[hk + k]! * opts.zRows[base + k]!;
    out[t] = finishScore(r, s, rms);
  }
  return out;
}

/** Elementwise mean and population std over a prompt set's score maps (all the same length). */
export function averageAttributions(list: Float32Array[]): { mean: Float32Array; std: Float32Array; count: number } {
  if (list.length === 0) throw bad('nothing to average: the list of attributions is empty');
  const n = list[0]!.length;
  const mean = new Float64Array(n);
  const m2 = new Float64Array(n);
  list.forEach((a, i) => {
    if (a.length !== n) throw bad(`attribution ${i} has ${a.length} values, the first has ${n}`);
    const c = i + 1;
    for (let j = 0; j < n; j++) {
      const dlt = a[j]! - mean[j]!;
      mean[j]! += dlt / c;
      m2[j]! += dlt * (a[j]! - mean[j]!);
    }
  });
  const std = new Float32Array(n);
  for (let j = 0; j < n; j++) std[j] = Math.sqrt(Math.max(0, m2[j]! / list.length));
  return { mean: Float32Array.from(mean), std, count: list.length };
}

export type { HeadRef };
export interface HeadScore extends HeadRef {
  score: number;
}

/**
 * Every head ranked both ways: suppression = most negative first (refusal suppression heads), refusal = most
 * positive first. Ties go to the lower (layer, head).
 */
export function rankHeads(scores: Float32Array, L: number, H: number): { suppression: HeadScore[]; refusal: HeadScore[] } {
  checkPositiveInt('L', L);
  checkPositiveInt('H', H);
  if (scores.length !== L * H) throw bad(`scores have ${scores.length} values, expected L·H = ${L * H}`);
  const all: HeadScore[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i]!)) throw bad(`score of layer ${Math.floor(i / H)} head ${i % H} is NaN`);
    all.push({ layer: Math.floor(i / H), head: i % H, score: scores[i]! });
  }
  const byIndex = (a: HeadScore, b: HeadScore) => a.layer - b.layer || a.head - b.head;
  const suppression = all.slice().sort((a, b) => a.score - b.score || byIndex(a, b));
  const refusal = all.slice().sort((a, b) => b.score - a.score || byIndex(a, b));
  return { suppression, refusal };
}

/** k = round(fraction · total), at least 1 when fraction > 0 (784 heads: 1.5 % → 12, 3 % → 24, 10 % → 78). */
export function headCountForFraction(fraction: number, total: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw bad(`fraction must be within [0, 1], got ${fraction}`);
  checkPositiveInt('total', total);
  if (fraction === 0) return 0;
  return Math.min(total, Math.max(1, Math.round(fraction * total)));
}

/** The first k heads of a ranking, k from headCountForFraction (docs/METHOD.md §4 sweep). */
export function headsByFraction<T extends HeadRef>(ranking: readonly T[], fraction: number, total: number): T[] {
  const k = headCountForFraction(fraction, total);
  if (k > ranking.length) throw bad(`fraction ${fraction} of ${total} heads is ${k}, but the ranking has only ${ranking.length}`);
  return ranking.slice(0, k);
}

/** k heads drawn without replacement (seeded), none from `exclude`; sorted by (layer, head). The random control. */
export function randomHeads(k: number, L: number, H: number, seed: number, exclude: Iterable<HeadRef> = []): HeadRef[] {
  checkPositiveInt('L', L);
  checkPositiveInt('H', H);
  if (!(Number.isInteger(k) && k >= 0)) throw bad(`k must be a non-negative integer, got ${k}`);
  const banned = new Set<number>();
  for (const e of exclude) {
    checkHead(e, L, H);
    banned.add(e.layer * H + e.head);
  }
  const pool: number[] = [];
  for (let i = 0; i < L * H; i++) if (!banned.has(i)) pool.push(i);
  if (k > pool.length) throw bad(`cannot draw ${k} random heads: only ${pool.length} of ${L * H} are not excluded`);
  // Partial Fisher–Yates from the front: position i takes a uniform pick from the rest.
  const rng = new SeededRandom(seed);
  for (let i = 0; i < k; i++) {
    const j = i + rng.below(pool.length - i);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool
    .slice(0, k)
    .sort((a, b) => a - b)
    .map((i) => ({ layer: Math.floor(i / H), head: i % H }));
}

function checkHead(x: HeadRef, L: number, H: number): void {
  if (!(Number.isInteger(x.layer) && x.layer >= 0 && x.layer < L && Number.isInteger(x.head) && x.head >= 0 && x.head < H)) {
    throw bad(`head (layer ${x.layer}, head ${x.head}) is outside a model with ${L} layers × ${H} heads`);
  }
}

/** Ranks 1..n of `xs`, ties given the mean of the ranks they span (as scipy's rankdata 'average'). */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

/**
 * Spearman's rank correlation: Pearson's correlation of the average ranks (ties handled as scipy.stats.spearmanr
 * does). Null for fewer than 2 pairs or when either side is constant.
 */
export function spearman(a: readonly number[], b: readonly number[]): number | null {
  if (a.length !== b.length) throw bad(`spearman: ${a.length} values against ${b.length}`);
  if (a.some((x) => !Number.isFinite(x)) || b.some((x) => !Number.isFinite(x))) throw bad('spearman: every value must be a finite number');
  const n = a.length;
  if (n < 2) return null;
  const ra = averageRanks(a);
  const rb = averageRanks(b);
  const mean = (n + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i]! - mean;
    const db = rb[i]! - mean;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa === 0 || sbb === 0 ? null : sab / Math.sqrt(saa * sbb);
}
