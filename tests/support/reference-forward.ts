/**
 * An independent reference forward pass for the four decoder families Cliffscope compiles (Llama, Qwen2, Qwen3,
 * Mistral), written as plain loops over arrays in the spirit of llama2.c's run.c. It shares no math with the
 * compiler (not even `ropeInverseFrequencies`); it only reads the normalised `ModelConfig` and fetches weights by
 * their Hugging Face names. Everything is accumulated in float64; results are returned as Float32Array.
 *
 * What it computes, for one sequence of token ids, is what transformers' *ForCausalLM computes with no KV cache and
 * no padding:
 *
 *   x = embed_tokens[ids]                                               -> embed
 *   per layer:
 *     h = rmsnorm(x) * input_layernorm
 *     q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)
 *     (Qwen3) q, k = per-head rmsnorm over head_dim * q_norm / k_norm   -- before rotary
 *     q, k = rotary(q, k, position)                                     -- HF rotate_half: pairs (j, j + D/2)
 *     pattern[h, t, s] = softmax_s(q[t,h] . k[s,g(h)] / sqrt(D)),  g(h) = floor(h / (H / Hkv))   -> pattern[layer]
 *       over visible keys s:  s <= t, and with a sliding window W also  s > t - W (0 elsewhere)
 *     z[t, h] = sum_s pattern[h, t, s] v[s,g(h)]
 *     (ablation) z[t, h] *= headScale[layer][h]; optionally rescale each token's H*D vector to its old L2 norm
 *                                                                       -> z[layer]
 *     x = x + Wo z (+bo)
 *     h = rmsnorm(x) * post_attention_layernorm
 *     x = x + Wdown (silu(Wgate h (+bg)) * (Wup h (+bu))) (+bd)         -> residPost[layer]
 *   lnFinal = rmsnorm(x) * model.norm                                   -> lnFinal
 *   logits = (lm_head or embed_tokens when tied) lnFinal                 -> logits
 *
 * Conventions worth knowing when comparing against another implementation:
 *  - Masks use sequence indices t, s (transformers' cache_position = 0..T-1); rotary uses `positions` (position_ids).
 *    With the default positions the two coincide.
 *  - Sliding window: transformers' `sliding_window_overlay` keeps `kv_idx > q_idx - sliding_window` (AND-ed with the
 *    causal `kv_idx <= q_idx`), so query t sees exactly W keys: t - W < s <= t (itself and the W - 1 before it).
 *    Beware older transformers: some 4.3x/4.4x releases' eager `_make_causal_mask` (tril with diagonal
 *    `past - W - 1`) and the flash-attention path until huggingface/transformers#40163 let a query see W + 1 keys.
 *    Only inputs longer than W can tell the two apart.
 *  - `z` is reported AFTER the head ablation (and the norm-preserving rescale): it is exactly what o_proj reads, as a
 *    TransformerLens ablation hook on hook_z leaves the cached value. A head at γ = 0 has z = 0.
 *  - Rotary inverse frequencies and angles are rounded to float32 the way transformers computes them
 *    (`inv_freq` and `inv_freq @ position_ids` are float32 tensors there); cos/sin and everything else is float64.
 */
import type { ModelConfig } from '../../src/main/engine/model/config.js';

export interface ReferenceOptions {
  /** Multiplier for each head's z, [layer][head]; default all 1. */
  headScale?: number[][];
  /** After scaling, rescale each token's concatenated z (all heads) back to its pre-scaling L2 norm. */
  normPreserve?: boolean;
  /** Rotary position of each token; default 0..T-1. */
  positions?: number[];
}

export interface ReferenceResult {
  /** Token embeddings, [T * d]. */
  embed: Float32Array;
  /** Residual stream after each layer, [T * d] each. */
  residPost: Float32Array[];
  /** Output of the final RMSNorm, [T * d]. */
  lnFinal: Float32Array;
  /** Per-head attention output as o_proj reads it (after ablation), [T * H * D] each, index (t * H + h) * D + j. */
  z: Float32Array[];
  /** Attention probabilities per layer, [H * T * T] each, index (h * T + t) * T + s (query t, key s). */
  pattern: Float32Array[];
  /** [T * V]. */
  logits: Float32Array;
}

type WeightFn = (name: string) => Float32Array;

// ---------------------------------------------------------------------------------------------------------------
// Small building blocks. Vectors are Float64Array; weights are row-major Float32Array [out, in] as HF stores them.
// ---------------------------------------------------------------------------------------------------------------

/** Fetch a weight and check it has the number of elements we expect. */
function getWeight(weight: WeightFn, name: string, size: number): Float32Array {
  const w = weight(name);
  if (w.length !== size) {
    throw new Error(`reference: ${name} has ${w.length} elements, expected ${size}`);
  }
  return w;
}

/** out = W x (+ b), W is [rows, cols] row-major. */
function matVec(w: Float32Array, rows: number, cols: number, x: Float64Array, bias?: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += w[r * cols + c]! * x[c]!;
    out[r] = bias ? sum + bias[r]! : sum;
  }
  return out;
}

/** x / sqrt(mean(x^2) + eps) * w */
function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * scale * w[i]!;
  return out;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

function l2Norm(x: Float64Array): number {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  return Math.sqrt(ss);
}

/** Concatenate per-token vectors into one Float32Array. */
function flatten(rows: Float64Array[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let t = 0; t < rows.length; t++) {
    for (let i = 0; i < width; i++) out[t * width + i] = rows[t]![i]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Rotary embeddings
// ---------------------------------------------------------------------------------------------------------------

/**
 * Inverse frequency for each rotary pair j = 0 .. D/2 - 1, following transformers' rope init functions:
 *  - default: 1 / theta^(2j / D)
 *  - linear:  default / factor
 *  - llama3 (`_compute_llama3_parameters`): with wavelen = 2π / f, lowWavelen = orig / lowFreqFactor and
 *    highWavelen = orig / highFreqFactor:
 *      wavelen < highWavelen                -> f            (high frequency: unchanged)
 *      wavelen > lowWavelen                 -> f / factor   (low frequency: scaled)
 *      otherwise (highWavelen <= wavelen <= lowWavelen):
 *        smooth = (orig / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
 *        -> (1 - smooth) * f / factor + smooth * f
 * The attention scaling factor of all three variants is 1. The result is rounded to float32 like transformers'.
 */
export function referenceRopeInvFreq(cfg: ModelConfig): Float64Array {
  const D = cfg.headDim;
  const invFreq = new Float64Array(D / 2);
  for (let j = 0; j < D / 2; j++) {
    const f = 1 / Math.pow(cfg.ropeTheta, (2 * j) / D);
    const rs = cfg.ropeScaling;
    let scaled = f;
    if (rs.type === 'linear') {
      scaled = f / rs.factor;
    } else if (rs.type === 'llama3') {
      const wavelen = (2 * Math.PI) / f;
      const lowFreqWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
      const highFreqWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
      if (wavelen < highFreqWavelen) {
        scaled = f;
      } else if (wavelen > lowFreqWavelen) {
        scaled = f / rs.factor;
      } else {
        const smooth =
          (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        scaled = ((1 - smooth) * f) / rs.factor + smooth * f;
      }
    }
    invFreq[j] = Math.fround(scaled);
  }
  return invFreq;
}

/**
 * Rotate one head vector (length D, starting at `offset` in `vec`) in place, HF style:
 *   out[j]       = x[j] cos(a_j) - x[j + D/2] sin(a_j)
 *   out[j + D/2] = x[j + D/2] cos(a_j) + x[j] sin(a_j),     a_j = position * invFreq[j]
 */
export function applyRotary(vec: Float64Array, offset: number, D: number, position: number, invFreq: Float64Array): void {
  const half = D / 2;
  for (let j = 0; j < half; j++) {
    const angle = Math.fround(position * invFreq[j]!);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const a = vec[offset + j]!;
    const b = vec[offset + j + half]!;
    vec[offset + j] = a * cos - b * sin;
    vec[offset + j + half] = b * cos + a * sin;
  }
}

/** Per-head RMSNorm over head_dim (Qwen3's q_norm / k_norm), in place for head vector at `offset`. */
function headRmsNorm(vec: Float64Array, offset: number, D: number, w: Float32Array, eps: number): void {
  const normed = rmsNorm(vec.subarray(offset, offset + D), w, eps);
  vec.set(normed, offset);
}

// ---------------------------------------------------------------------------------------------------------------
// The forward pass
// ---------------------------------------------------------------------------------------------------------------

export function referenceForward(
  cfg: ModelConfig,
  weight: WeightFn,
  ids: number[],
  opts: ReferenceOptions = {},
): ReferenceResult {
  const T = ids.length;
  const d = cfg.hiddenSize;
  const H = cfg.numHeads;
  const Hkv = cfg.numKvHeads;
  const D = cfg.headDim;
  const V = cfg.vocabSize;
  const I = cfg.intermediateSize;
  const eps = cfg.rmsNormEps;
  const groupSize = H / Hkv; // query heads per kv head

  if (T === 0) throw new Error('reference: empty input');
  if (!Number.isInteger(groupSize)) throw new Error(`reference: ${H} heads do not divide into ${Hkv} kv heads`);
  const positions = opts.positions ?? ids.map((_, t) => t);
  if (positions.length !== T) throw new Error(`reference: ${positions.length} positions for ${T} tokens`);
  const headScale = opts.headScale;
  if (headScale) {
    if (headScale.length !== cfg.numLayers || headScale.some((row) => row.length !== H)) {
      throw new Error(`reference: headScale must be [${cfg.numLayers}][${H}]`);
    }
  }

  // Embedding lookup.
  const embedTokens = getWeight(weight, 'model.embed_tokens.weight', V * d);
  const x: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const id = ids[t]!;
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`reference: token id ${id} out of range`);
    const row = new Float64Array(d);
    for (let i = 0; i < d; i++) row[i] = embedTokens[id * d + i]!;
    x.push(row);
  }
  const embed = flatten(x, d);

  const invFreq = referenceRopeInvFreq(cfg);
  const residPost: Float32Array[] = [];
  const zOut: Float32Array[] = [];
  const patternOut: Float32Array[] = [];

  for (let layer = 0; layer < cfg.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const inputNorm = getWeight(weight, `${p}.input_layernorm.weight`, d);
    const wq = getWeight(weight, `${p}.self_attn.q_proj.weight`, H * D * d);
    const wk = getWeight(weight, `${p}.self_attn.k_proj.weight`, Hkv * D * d);
    const wv = getWeight(weight, `${p}.self_attn.v_proj.weight`, Hkv * D * d);
    const bq = cfg.qkvBias ? getWeight(weight, `${p}.self_attn.q_proj.bias`, H * D) : undefined;
    const bk = cfg.qkvBias ? getWeight(weight, `${p}.self_attn.k_proj.bias`, Hkv * D) : undefined;
    const bv = cfg.qkvBias ? getWeight(weight, `${p}.self_attn.v_proj.bias`, Hkv * D) : undefined;
    const qNorm = cfg.qkNorm ? getWeight(weight, `${p}.self_attn.q_norm.weight`, D) : undefined;
    const kNorm = cfg.qkNorm ? getWeight(weight, `${p}.self_attn.k_norm.weight`, D) : undefined;
    const wo = getWeight(weight, `${p}.self_attn.o_proj.weight`, d * H * D);
    const bo = cfg.oBias ? getWeight(weight, `${p}.self_attn.o_proj.bias`, d) : undefined;
    const postNorm = getWeight(weight, `${p}.post_attention_layernorm.weight`, d);
    const wGate = getWeight(weight, `${p}.mlp.gate_proj.weight`, I * d);
    const wUp = getWeight(weight, `${p}.mlp.up_proj.weight`, I * d);
    const wDown = getWeight(weight, `${p}.mlp.down_proj.weight`, d * I);
    const bGate = cfg.mlpBias ? getWeight(weight, `${p}.mlp.gate_proj.bias`, I) : undefined;
    const bUp = cfg.mlpBias ? getWeight(weight, `${p}.mlp.up_proj.bias`, I) : undefined;
    const bDown = cfg.mlpBias ? getWeight(weight, `${p}.mlp.down_proj.bias`, d) : undefined;

    // q, k, v for every token.
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = rmsNorm(x[t]!, inputNorm, eps);
      const qt = matVec(wq, H * D, d, h, bq);
      const kt = matVec(wk, Hkv * D, d, h, bk);
      const vt = matVec(wv, Hkv * D, d, h, bv);
      if (qNorm && kNorm) {
        for (let head = 0; head < H; head++) headRmsNorm(qt, head * D, D, qNorm, eps);
        for (let head = 0; head < Hkv; head++) headRmsNorm(kt, head * D, D, kNorm, eps);
      }
      for (let head = 0; head < H; head++) applyRotary(qt, head * D, D, positions[t]!, invFreq);
      for (let head = 0; head < Hkv; head++) applyRotary(kt, head * D, D, positions[t]!, invFreq);
      q.push(qt);
      k.push(kt);
      v.push(vt);
    }

    // Attention: z[t] holds all heads of token t, head-major.
    const z: Float64Array[] = [];
    const pattern = new Float32Array(H * T * T);
    const scale = 1 / Math.sqrt(D);
    for (let t = 0; t < T; t++) {
      const zt = new Float64Array(H * D);
      // Keys s visible from query t: causal s <= t, and with a window W also s > t - W.
      const first = cfg.slidingWindow === null ? 0 : Math.max(0, t - cfg.slidingWindow + 1);
      for (let head = 0; head < H; head++) {
        const kvHead = Math.floor(head / groupSize);
        const scores = new Float64Array(t + 1 - first);
        let max = -Infinity;
        for (let s = first; s <= t; s++) {
          let dot = 0;
          for (let j = 0; j < D; j++) dot += q[t]![head * D + j]! * k[s]![kvHead * D + j]!;
          scores[s - first] = dot * scale;
          if (dot * scale > max) max = dot * scale;
        }
        let sum = 0;
        for (let i = 0; i < scores.length; i++) {
          scores[i] = Math.exp(scores[i]! - max);
          sum += scores[i]!;
        }
        for (let s = first; s <= t; s++) {
          const prob = scores[s - first]! / sum;
          pattern[(head * T + t) * T + s] = prob;
          for (let j = 0; j < D; j++) zt[head * D + j]! += prob * v[s]![kvHead * D + j]!;
        }
      }
      z.push(zt);
    }
    patternOut.push(pattern);

    for (let t = 0; t < T; t++) {
      // Head ablation, in place: z[t] becomes what o_proj reads.
      const zt = z[t]!;
      if (headScale) {
        const normBefore = l2Norm(zt);
        for (let head = 0; head < H; head++) {
          for (let j = 0; j < D; j++) zt[head * D + j]! *= headScale[layer]![head]!;
        }
        if (opts.normPreserve) {
          const normAfter = l2Norm(zt);
          if (normAfter > 0) {
            for (let i = 0; i < H * D; i++) zt[i]! *= normBefore / normAfter;
          }
        }
      }
    }
    zOut.push(flatten(z, H * D));

    for (let t = 0; t < T; t++) {
      const zt = z[t]!;
      // Output projection and residual.
      const attnOut = matVec(wo, d, H * D, zt, bo);
      for (let i = 0; i < d; i++) x[t]![i]! += attnOut[i]!;

      // SwiGLU MLP and residual.
      const h = rmsNorm(x[t]!, postNorm, eps);
      const gate = matVec(wGate, I, d, h, bGate);
      const up = matVec(wUp, I, d, h, bUp);
      const act = new Float64Array(I);
      for (let i = 0; i < I; i++) act[i] = silu(gate[i]!) * up[i]!;
      const mlpOut = matVec(wDown, d, I, act, bDown);
      for (let i = 0; i < d; i++) x[t]![i]! += mlpOut[i]!;
    }
    residPost.push(flatten(x, d));
  }

  // Final norm and unembedding.
  const finalNorm = getWeight(weight, 'model.norm.weight', d);
  const lmHead = cfg.tieWordEmbeddings ? embedTokens : getWeight(weight, 'lm_head.weight', V * d);
  const ln: Float64Array[] = [];
  const logitRows: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const n = rmsNorm(x[t]!, finalNorm, eps);
    ln.push(n);
    logitRows.push(matVec(lmHead, V, d, n));
  }

  return { embed, residPost, lnFinal: flatten(ln, d), z: zOut, pattern: patternOut, logits: flatten(logitRows, V) };
}

/** Index of the largest value; the first one on ties (like torch.argmax). */
function argmax(values: Float32Array, start: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) {
    if (values[start + i]! > values[start + best]!) best = i;
  }
  return best;
}

/**
 * Greedy decoding by recomputing the full forward pass each step. Returns only the new tokens; when a stop id is
 * produced it is included as the last token (as `generate` does with eos) and decoding ends.
 */
export function referenceGreedy(
  cfg: ModelConfig,
  weight: WeightFn,
  promptIds: number[],
  maxNewTokens: number,
  stopIds: number[] = [],
): number[] {
  const ids = [...promptIds];
  const generated: number[] = [];
  for (let step = 0; step < maxNewTokens; step++) {
    const { logits } = referenceForward(cfg, weight, ids);
    const next = argmax(logits, (ids.length - 1) * cfg.vocabSize, cfg.vocabSize);
    generated.push(next);
    ids.push(next);
    if (stopIds.includes(next)) break;
  }
  return generated;
}
