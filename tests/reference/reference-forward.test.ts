/**
 * Hand-checked unit tests of the reference forward pass on tiny 1-layer models (hidden 4, head_dim 2, vocab 5).
 *
 * The embedding rows are ±1 vectors (RMS exactly 1) and rms_norm_eps is 0, so every RMSNorm with weight 1 is the
 * identity and every expected value below can be worked out on paper. Weights not mentioned are zero.
 */
import { describe, expect, it } from 'vitest';
import { expectedTensors, parseModelConfig, type ModelConfig } from '../../src/main/engine/model/config.js';
import {
  applyRotary,
  referenceForward,
  referenceGreedy,
  referenceRopeInvFreq,
} from '../support/reference-forward.js';

// Rows 0-3 are orthogonal (a 4x4 Hadamard matrix); row 4 = -row 3.
const E = [
  [1, 1, 1, 1],
  [1, -1, 1, -1],
  [1, 1, -1, -1],
  [1, -1, -1, 1],
  [-1, 1, 1, -1],
];

const I4 = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

const silu = (x: number) => x / (1 + Math.exp(-x));

function tinyConfig(extra: Record<string, unknown> = {}): ModelConfig {
  const { rms_norm_eps: eps = 0, ...rest } = extra;
  const cfg = parseModelConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_size: 4,
    intermediate_size: 1,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    head_dim: 2,
    vocab_size: 5,
    rope_theta: 10000,
    tie_word_embeddings: true,
    ...rest,
  });
  // eps 0 keeps every RMSNorm the identity on paper; a config.json may not say 0 (it is refused), so it is set here.
  return { ...cfg, rmsNormEps: eps as number };
}

/**
 * All tensors of `cfg` (by HF name): embedding = E, norm weights 1, everything else 0, then `set` (matrices as rows,
 * [out][in]). The returned function throws for any name the config does not have.
 */
function tinyWeights(cfg: ModelConfig, set: Record<string, number[][] | number[]> = {}) {
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) t.fill(1);
    tensors.set(name, t);
  }
  tensors.get('model.embed_tokens.weight')!.set(E.flat());
  for (const [name, value] of Object.entries(set)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`test: ${name} is not a tensor of this config`);
    const flat = (value as number[][] | number[]).flat();
    if (flat.length !== t.length) throw new Error(`test: ${name} needs ${t.length} values, got ${flat.length}`);
    t.set(flat);
  }
  return (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`unexpected tensor ${name}`);
    return t;
  };
}

/** Row t of a [T * width] array. */
function row(a: Float32Array, t: number, width: number): number[] {
  return Array.from(a.subarray(t * width, (t + 1) * width));
}

function expectClose(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]} (tol ${tol})\n` +
        `actual:   [${Array.from(actual).join(', ')}]\nexpected: [${expected.join(', ')}]`);
    }
  }
}

const mean = (rows: number[][]) => rows[0]!.map((_, i) => rows.reduce((s, r) => s + r[i]!, 0) / rows.length);
const add = (...vs: number[][]) => vs[0]!.map((_, i) => vs.reduce((s, v) => s + v[i]!, 0));
const norm = (v: number[]) => Math.hypot(...v);
/** Two-way softmax: probability of the second of two scores. */
const p2 = (s0: number, s1: number) => 1 / (1 + Math.exp(s0 - s1));

describe('reference forward: embedding, norms, unembedding', () => {
  it('with a zeroed layer the residual is the embedding and logits are E · x', () => {
    const cfg = tinyConfig();
    const r = referenceForward(cfg, tinyWeights(cfg), [0, 2, 4]);
    expectClose(r.embed, [...E[0]!, ...E[2]!, ...E[4]!]);
    expectClose(r.residPost[0]!, [...E[0]!, ...E[2]!, ...E[4]!]);
    expectClose(r.lnFinal, [...E[0]!, ...E[2]!, ...E[4]!]);
    // E is orthogonal on rows 0-3 and row 4 = -row 3.
    expectClose(row(r.logits, 0, 5), [4, 0, 0, 0, 0]);
    expectClose(row(r.logits, 1, 5), [0, 0, 4, 0, 0]);
    expectClose(row(r.logits, 2, 5), [0, 0, 0, -4, 4]);
    expect(r.z[0]!.length).toBe(3 * 2 * 2);
  });

  it('final norm weight and eps: lnFinal = x / sqrt(mean(x^2) + eps) * w', () => {
    const cfg = tinyConfig({ rms_norm_eps: 0.5 });
    const r = referenceForward(cfg, tinyWeights(cfg, { 'model.norm.weight': [2, 1, 1, 1] }), [0]);
    const s = 1 / Math.sqrt(1 + 0.5);
    expectClose(r.lnFinal, [2 * s, s, s, s]);
    // logits = E · lnFinal = s * (E · [2, 1, 1, 1])
    expectClose(r.logits, [5 * s, 1 * s, 1 * s, 1 * s, -1 * s]);
  });

  it('untied models read lm_head', () => {
    const cfg = tinyConfig({ tie_word_embeddings: false });
    const lmHead = [...I4, [1, 1, 0, 0]];
    const r = referenceForward(cfg, tinyWeights(cfg, { 'lm_head.weight': lmHead }), [1]);
    expectClose(r.logits, [1, -1, 1, -1, 0]);
  });
});

describe('reference forward: attention', () => {
  // q = k = 0 makes every score 0, so attention averages v over the visible keys; v_proj = I makes v = x.
  const flatScores = { 'model.layers.0.self_attn.v_proj.weight': I4, 'model.layers.0.self_attn.o_proj.weight': I4 };

  it('causal: token t averages v over s <= t; o_proj adds z to the residual', () => {
    const cfg = tinyConfig();
    const r = referenceForward(cfg, tinyWeights(cfg, flatScores), [0, 1, 2]);
    const z0 = E[0]!;
    const z1 = [1, 0, 1, 0]; // mean(E0, E1)
    const z2 = [1, 1 / 3, 1 / 3, -1 / 3]; // mean(E0, E1, E2)
    expectClose(r.z[0]!, [...z0, ...z1, ...z2]);
    expectClose(r.residPost[0]!, [...add(E[0]!, z0), ...add(E[1]!, z1), ...add(E[2]!, z2)]);
    // hook_pattern [head, query, key]: uniform over the visible keys, 0 on the future, for both heads.
    const causal = [1, 0, 0, 1 / 2, 1 / 2, 0, 1 / 3, 1 / 3, 1 / 3];
    expectClose(r.pattern[0]!, [...causal, ...causal]);
  });

  it('sliding window W (Mistral): query t sees keys t - W < s <= t', () => {
    const mistral = (w: number) =>
      tinyConfig({ architectures: ['MistralForCausalLM'], sliding_window: w, max_position_embeddings: 64 });
    const ids = [0, 1, 2, 3];
    const cfg2 = mistral(2);
    expect(cfg2.slidingWindow).toBe(2);
    const r2 = referenceForward(cfg2, tinyWeights(cfg2, flatScores), ids);
    expectClose(r2.z[0]!, [...E[0]!, ...mean([E[0]!, E[1]!]), ...mean([E[1]!, E[2]!]), ...mean([E[2]!, E[3]!])]);

    // Query 3 of head 0 reads keys 2 and 3 only.
    expectClose(r2.pattern[0]!.subarray(3 * 4, 4 * 4), [0, 0, 1 / 2, 1 / 2]);

    const cfg1 = mistral(1);
    const r1 = referenceForward(cfg1, tinyWeights(cfg1, flatScores), ids);
    expectClose(r1.z[0]!, [...E[0]!, ...E[1]!, ...E[2]!, ...E[3]!]);

    // A window at least as long as the input is plain causal attention.
    const cfg4 = mistral(4);
    const r4 = referenceForward(cfg4, tinyWeights(cfg4, flatScores), ids);
    expectClose(r4.z[0]!.subarray(12), mean([E[0]!, E[1]!, E[2]!, E[3]!]));
  });

  it('GQA: query head h reads kv head floor(h / (H / Hkv)); head_dim need not be hidden / heads', () => {
    // 4 query heads, 2 kv heads of dim 2 (hidden / heads would be 1): heads 0,1 -> kv 0 = x[0..1]; heads 2,3 -> kv 1.
    const cfg = tinyConfig({ num_attention_heads: 4, num_key_value_heads: 2 });
    expect(cfg.headDim).toBe(2);
    const r = referenceForward(cfg, tinyWeights(cfg, { 'model.layers.0.self_attn.v_proj.weight': I4 }), [1, 2]);
    const m = mean([E[1]!, E[2]!]); // [1, 0, 0, -1]
    // z index (t * H + h) * D + j
    expectClose(row(r.z[0]!, 0, 8), [1, -1, 1, -1, 1, -1, 1, -1]);
    expectClose(row(r.z[0]!, 1, 8), [m[0]!, m[1]!, m[0]!, m[1]!, m[2]!, m[3]!, m[2]!, m[3]!]);

    // One kv head shared by both query heads.
    const mqa = tinyConfig({ num_key_value_heads: 1 });
    const v = [
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    const r1 = referenceForward(mqa, tinyWeights(mqa, { 'model.layers.0.self_attn.v_proj.weight': v }), [1, 2]);
    expectClose(row(r1.z[0]!, 1, 4), [m[2]!, m[3]!, m[2]!, m[3]!]);
  });

  // q of both heads = [x0, 0] = [1, 0]; k of head 0 = [x0, 0] = [1, 0], k of head 1 = [0, x0] = [0, 1]; v = x.
  // head_dim 2 has one rotary pair with inv_freq 1, so position p rotates by p radians:
  //   R(p) [a, b] = [a cos p - b sin p, b cos p + a sin p]
  const rotaryWeights = {
    'model.layers.0.self_attn.q_proj.weight': [
      [1, 0, 0, 0],
      [0, 0, 0, 0],
      [1, 0, 0, 0],
      [0, 0, 0, 0],
    ],
    'model.layers.0.self_attn.k_proj.weight': [
      [1, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [1, 0, 0, 0],
    ],
    'model.layers.0.self_attn.v_proj.weight': I4,
  };

  it('rotary at position 1 (rotate_half convention, sign of sin included)', () => {
    const cfg = tinyConfig();
    const r = referenceForward(cfg, tinyWeights(cfg, rotaryWeights), [0, 1]);
    // Token 1 at position 1: q = R(1)[1, 0] = [cos 1, sin 1].
    // head 0: k0 = [1, 0], k1 = R(1)[1, 0] -> scores cos 1, 1
    // head 1: k0 = [0, 1], k1 = R(1)[0, 1] = [-sin 1, cos 1] -> scores sin 1, 0
    const c = Math.cos(1);
    const s = Math.sin(1);
    const scale = 1 / Math.sqrt(2);
    const ph0 = p2(c * scale, 1 * scale);
    const ph1 = p2(s * scale, 0);
    // z = (1 - p) v0 + p v1, v0 = E0, v1 = E1 split into heads
    const z1h0 = [(1 - ph0) * 1 + ph0 * 1, (1 - ph0) * 1 + ph0 * -1];
    const z1h1 = [(1 - ph1) * 1 + ph1 * 1, (1 - ph1) * 1 + ph1 * -1];
    expectClose(row(r.z[0]!, 0, 4), E[0]!);
    expectClose(row(r.z[0]!, 1, 4), [...z1h0, ...z1h1], 1e-6);
    // The pattern holds those probabilities: [head][query][key], T = 2.
    expectClose(r.pattern[0]!, [1, 0, 1 - ph0, ph0, 1, 0, 1 - ph1, ph1], 1e-6);
    // Sanity: the sign of sin matters here (with sin -> -sin the head-1 probability would be p2(-s / √2, 0)).
    expect(Math.abs(ph1 - p2(-s * scale, 0))).toBeGreaterThan(0.1);

    // Without rotation (both at position 0) head 0 scores tie and head 1 scores are 0 and 0.
    const flat = referenceForward(cfg, tinyWeights(cfg, rotaryWeights), [0, 1], { positions: [0, 0] });
    expectClose(row(flat.z[0]!, 1, 4), [1, 0, 1, 0]);
  });

  it('rotary depends only on relative position: shifting positions leaves outputs unchanged', () => {
    const cfg = tinyConfig();
    const w = tinyWeights(cfg, rotaryWeights);
    const a = referenceForward(cfg, w, [0, 1, 3]);
    const b = referenceForward(cfg, w, [0, 1, 3], { positions: [7, 8, 9] });
    expectClose(b.z[0]!, Array.from(a.z[0]!), 1e-5);
    expectClose(b.logits, Array.from(a.logits), 1e-5);
  });

  it('Qwen3: per-head RMSNorm of q and k with q_norm / k_norm, before rotary', () => {
    // A tiny eps keeps the all-zero head 1 finite (0 / sqrt(0 + eps) = 0) and changes nothing else measurably.
    const cfg = tinyConfig({ architectures: ['Qwen3ForCausalLM'], rms_norm_eps: 1e-12 });
    expect(cfg.qkNorm).toBe(true);
    const w = tinyWeights(cfg, {
      // head 0: raw q = [3 x0, 4 x0] = [3, 4]; raw k = [x0, x1]; head 1 left at zero.
      'model.layers.0.self_attn.q_proj.weight': [
        [3, 0, 0, 0],
        [4, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
      'model.layers.0.self_attn.k_proj.weight': [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
      'model.layers.0.self_attn.v_proj.weight': I4,
      'model.layers.0.self_attn.q_norm.weight': [1, 2],
      'model.layers.0.self_attn.k_norm.weight': [0.5, 1],
    });
    const r = referenceForward(cfg, w, [0, 1]);
    const rot = ([a, b]: number[], p: number) => [a! * Math.cos(p) - b! * Math.sin(p), b! * Math.cos(p) + a! * Math.sin(p)];
    const dot = (u: number[], v: number[]) => u[0]! * v[0]! + u[1]! * v[1]!;
    const rmsQ = Math.sqrt((9 + 16) / 2);
    const q1 = rot([3 / rmsQ, (4 / rmsQ) * 2], 1); // normalised, weighted, then rotated to position 1
    const k0 = rot([0.5, 1], 0); // E0 head 0 = [1, 1], RMS 1
    const k1 = rot([0.5, -1], 1); // E1 head 0 = [1, -1], RMS 1
    const p = p2(dot(q1, k0) / Math.sqrt(2), dot(q1, k1) / Math.sqrt(2));
    expectClose(row(r.z[0]!, 1, 4).slice(0, 2), [1, 1 - 2 * p]);
    // Rotating first and normalising after would give a different answer (non-uniform norm weights).
    const wrongK1 = rot([1, -1], 1).map((x, i) => x * [0.5, 1][i]!);
    expect(Math.abs(p - p2(dot(q1, k0) / Math.sqrt(2), dot(q1, wrongK1) / Math.sqrt(2)))).toBeGreaterThan(1e-3);
  });
});

describe('reference forward: rotary frequencies', () => {
  it('default: theta^(-2j/D), pairs (j, j + D/2)', () => {
    const cfg = tinyConfig({ num_attention_heads: 1, num_key_value_heads: 1, head_dim: 4, rope_theta: 100 });
    const inv = referenceRopeInvFreq(cfg);
    expectClose(inv, [1, Math.fround(0.1)], 1e-12);
    const v = Float64Array.from([9, 1, 2, 3, 4]);
    applyRotary(v, 1, 4, 1, inv); // head vector [1, 2, 3, 4] at offset 1, position 1
    const a = 1; // angle of pair (0, 2)
    const b = Math.fround(0.1); // angle of pair (1, 3)
    expectClose(v, [
      9,
      1 * Math.cos(a) - 3 * Math.sin(a),
      2 * Math.cos(b) - 4 * Math.sin(b),
      3 * Math.cos(a) + 1 * Math.sin(a),
      4 * Math.cos(b) + 2 * Math.sin(b),
    ], 1e-12);
  });

  it('linear scaling divides every frequency by the factor', () => {
    const cfg = tinyConfig({ head_dim: 4, rope_theta: 100, rope_scaling: { type: 'linear', factor: 4 } });
    expectClose(referenceRopeInvFreq(cfg), [Math.fround(0.25), Math.fround(0.025)], 1e-12);
  });

  it('llama3 scaling: high frequencies kept, low divided by factor, middle band blended', () => {
    const cfg = tinyConfig({
      num_attention_heads: 1,
      num_key_value_heads: 1,
      head_dim: 8,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const f = [0, 1, 2, 3].map((j) => 500000 ** (-j / 4));
    const wavelen = f.map((x) => (2 * Math.PI) / x); // ≈ 6.3, 167, 4443, 118000
    // thresholds: high-frequency wavelen 8192 / 4 = 2048, low-frequency wavelen 8192 / 1 = 8192
    expect(wavelen[1]).toBeLessThan(2048);
    expect(wavelen[2]).toBeGreaterThan(2048);
    expect(wavelen[2]).toBeLessThan(8192);
    expect(wavelen[3]).toBeGreaterThan(8192);
    const smooth = (8192 / wavelen[2]! - 1) / (4 - 1);
    const expected = [f[0]!, f[1]!, (1 - smooth) * (f[2]! / 8) + smooth * f[2]!, f[3]! / 8];
    const got = referenceRopeInvFreq(cfg);
    for (let j = 0; j < 4; j++) expect(got[j]! / expected[j]! - 1).toBeCloseTo(0, 6);
  });
});

describe('reference forward: biases and MLP', () => {
  it('SwiGLU: down(silu(gate h) * up h) after post_attention_layernorm', () => {
    const cfg = tinyConfig();
    const w = tinyWeights(cfg, {
      'model.layers.0.mlp.gate_proj.weight': [[1, 0, 0, 0]],
      'model.layers.0.mlp.up_proj.weight': [[0, 1, 0, 0]],
      'model.layers.0.mlp.down_proj.weight': [[1], [0], [0], [0]],
      'model.layers.0.post_attention_layernorm.weight': [3, 1, 1, 1],
    });
    const r = referenceForward(cfg, w, [1]);
    // h = [3, -1, 1, -1]; gate = 3, up = -1
    expectClose(r.residPost[0]!, [1 - silu(3), -1, 1, -1]);
  });

  it('Llama attention_bias + mlp_bias: q/k/v/o and gate/up/down biases are added', () => {
    const cfg = tinyConfig({ attention_bias: true, mlp_bias: true });
    expect([cfg.qkvBias, cfg.oBias, cfg.mlpBias]).toEqual([true, true, true]);
    const w = tinyWeights(cfg, {
      'model.layers.0.self_attn.q_proj.bias': [1, 2, 3, 4],
      'model.layers.0.self_attn.k_proj.bias': [4, 3, 2, 1],
      'model.layers.0.self_attn.v_proj.bias': [1, 2, 3, 4], // v is the same for every token, so z = b_v
      'model.layers.0.self_attn.o_proj.weight': I4,
      'model.layers.0.self_attn.o_proj.bias': [0.5, 0, 0, 0],
      'model.layers.0.mlp.gate_proj.bias': [1],
      'model.layers.0.mlp.up_proj.bias': [2],
      'model.layers.0.mlp.down_proj.weight': [[1], [0], [0], [0]],
      'model.layers.0.mlp.down_proj.bias': [0, 0, 0, -1],
    });
    const r = referenceForward(cfg, w, [0, 3]);
    expectClose(r.z[0]!, [1, 2, 3, 4, 1, 2, 3, 4]);
    const delta = [1 + 0.5 + 2 * silu(1), 2, 3, 4 - 1];
    expectClose(r.residPost[0]!, [...add(E[0]!, delta), ...add(E[3]!, delta)], 1e-6);
  });

  it('Qwen2: q/k/v biases but no o_proj bias', () => {
    const cfg = tinyConfig({ architectures: ['Qwen2ForCausalLM'] });
    expect([cfg.qkvBias, cfg.oBias]).toEqual([true, false]);
    const w = tinyWeights(cfg, {
      'model.layers.0.self_attn.v_proj.bias': [1, 2, 3, 4],
      'model.layers.0.self_attn.o_proj.weight': I4,
    });
    const r = referenceForward(cfg, w, [2]);
    expectClose(r.residPost[0]!, add(E[2]!, [1, 2, 3, 4]));
  });
});

describe('reference forward: head ablation', () => {
  // Flat scores, v = x, o_proj = I: residPost = x + (ablated) z, so the ablation can be read off directly.
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, {
    'model.layers.0.self_attn.v_proj.weight': I4,
    'model.layers.0.self_attn.o_proj.weight': I4,
  });
  const ids = [0, 1, 2];
  const base = referenceForward(cfg, w, ids);
  const zBase = [0, 1, 2].map((t) => row(base.z[0]!, t, 4));
  const delta = (r: ReturnType<typeof referenceForward>, t: number) =>
    row(r.residPost[0]!, t, 4).map((x, i) => x - E[ids[t]!]![i]!);

  it('headScale 0 removes that head’s contribution; z is what o_proj reads, after the ablation', () => {
    const r = referenceForward(cfg, w, ids, { headScale: [[0, 1]] });
    for (let t = 0; t < 3; t++) {
      expectClose(delta(r, t), [0, 0, zBase[t]![2]!, zBase[t]![3]!]);
      // o_proj = I here, so hook_z is exactly what reached the residual stream.
      expectClose(row(r.z[0]!, t, 4), delta(r, t));
    }
    // The attention pattern itself is untouched by the ablation.
    expectClose(r.pattern[0]!, Array.from(base.pattern[0]!), 0);
    // The logits follow the ablated residual, not the clean one.
    expect(Math.abs(r.logits[0]! - base.logits[0]!)).toBeGreaterThan(1e-3);
  });

  it('headScale multiplies each head’s z', () => {
    const r = referenceForward(cfg, w, ids, { headScale: [[0.5, 2]] });
    for (let t = 0; t < 3; t++) {
      const z = zBase[t]!;
      expectClose(delta(r, t), [0.5 * z[0]!, 0.5 * z[1]!, 2 * z[2]!, 2 * z[3]!]);
    }
  });

  it('normPreserve rescales each token’s multi-head z back to its original L2 norm', () => {
    const r = referenceForward(cfg, w, ids, { headScale: [[0, 1]], normPreserve: true });
    // token 0: z = [1, 1, 1, 1] (norm 2) -> [0, 0, 1, 1] (norm √2) -> [0, 0, √2, √2]
    expectClose(delta(r, 0), [0, 0, Math.SQRT2, Math.SQRT2]);
    // token 1: z = [1, 0, 1, 0] (norm √2) -> [0, 0, 1, 0] (norm 1) -> [0, 0, √2, 0]
    expectClose(delta(r, 1), [0, 0, Math.SQRT2, 0]);
    for (let t = 0; t < 3; t++) {
      expect(norm(delta(r, t))).toBeCloseTo(norm(zBase[t]!), 6);
      expectClose(row(r.z[0]!, t, 4), delta(r, t));
    }
  });

  it('normPreserve: a uniform scale is undone, and an all-zero z stays zero', () => {
    const uniform = referenceForward(cfg, w, ids, { headScale: [[0.3, 0.3]], normPreserve: true });
    expectClose(uniform.residPost[0]!, Array.from(base.residPost[0]!));
    const zeroed = referenceForward(cfg, w, ids, { headScale: [[0, 0]], normPreserve: true });
    expectClose(zeroed.residPost[0]!, [...E[0]!, ...E[1]!, ...E[2]!]);
    expect(Array.from(zeroed.logits).every(Number.isFinite)).toBe(true);
    const noScale = referenceForward(cfg, w, ids, { normPreserve: true });
    expectClose(noScale.residPost[0]!, Array.from(base.residPost[0]!));
  });
});

describe('reference forward: multi-layer properties (seeded random weights)', () => {
  // mulberry32
  function rng(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
    };
  }
  const cfg = parseModelConfig({
    architectures: ['Qwen3ForCausalLM'],
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 6,
    vocab_size: 11,
    rms_norm_eps: 1e-6,
    rope_theta: 1000,
    tie_word_embeddings: false,
  });
  const rand = rng(42);
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < t.length; i++) t[i] = name.endsWith('norm.weight') ? 1 + rand() : 2 * rand();
    tensors.set(name, t);
  }
  const w = (name: string) => tensors.get(name)!;
  const ids = [3, 1, 4, 1, 5, 9, 2, 6];

  it('causality: outputs for a prefix do not depend on later tokens', () => {
    const full = referenceForward(cfg, w, ids);
    const prefix = referenceForward(cfg, w, ids.slice(0, 5));
    expect(full.residPost).toHaveLength(3);
    expect(full.z[2]!.length).toBe(8 * 4 * 6);
    for (let l = 0; l < 3; l++) {
      expectClose(prefix.residPost[l]!, Array.from(full.residPost[l]!.subarray(0, 5 * 16)), 1e-6);
      expectClose(prefix.z[l]!, Array.from(full.z[l]!.subarray(0, 5 * 24)), 1e-6);
    }
    expectClose(prefix.logits, Array.from(full.logits.subarray(0, 5 * 11)), 1e-5);
    expect(Array.from(full.logits).every(Number.isFinite)).toBe(true);
  });

  it('headScale all ones is the identity; ablating a layer-2 head leaves layers 0-1 untouched', () => {
    const base = referenceForward(cfg, w, ids);
    const ones = referenceForward(cfg, w, ids, { headScale: [1, 1, 1].map(() => [1, 1, 1, 1]) });
    expectClose(ones.logits, Array.from(base.logits), 0);
    const ablated = referenceForward(cfg, w, ids, { headScale: [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1]] });
    expectClose(ablated.residPost[1]!, Array.from(base.residPost[1]!), 0);
    // Layer 2's hook_z: head 1 is zero, the other heads as before.
    const w2 = 6;
    for (let t = 0; t < ids.length; t++) {
      for (let h = 0; h < 4; h++) {
        const want = h === 1 ? new Array<number>(w2).fill(0) : Array.from(base.z[2]!.subarray((t * 4 + h) * w2, (t * 4 + h + 1) * w2));
        expectClose(ablated.z[2]!.subarray((t * 4 + h) * w2, (t * 4 + h + 1) * w2), want, 0);
      }
    }
    expectClose(ablated.pattern[2]!, Array.from(base.pattern[2]!), 0);
    expect(Math.max(...Array.from(ablated.residPost[2]!).map((x, i) => Math.abs(x - base.residPost[2]![i]!)))).toBeGreaterThan(1e-3);
  });

  it('rejects bad input', () => {
    expect(() => referenceForward(cfg, w, [11])).toThrow(/out of range/);
    expect(() => referenceForward(cfg, w, [])).toThrow(/empty/);
    expect(() => referenceForward(cfg, w, [1, 2], { positions: [0] })).toThrow(/positions/);
    expect(() => referenceForward(cfg, w, [1], { headScale: [[1, 1, 1, 1]] })).toThrow(/headScale/);
    expect(() => referenceForward(cfg, (n) => (n.includes('q_proj') ? new Float32Array(3) : w(n)), [1])).toThrow(
      /q_proj.weight has 3 elements/,
    );
  });
});

describe('reference greedy decoding', () => {
  it('picks the argmax each step, first index on ties, and stops after a stop id', () => {
    // Zeroed layer: logits of the last token are E · E[id], maximal at id itself.
    const cfg = tinyConfig();
    const w = tinyWeights(cfg);
    expect(referenceGreedy(cfg, w, [0, 2], 3)).toEqual([2, 2, 2]);
    expect(referenceGreedy(cfg, w, [3], 5, [3])).toEqual([3]);
    expect(referenceGreedy(cfg, w, [1], 0)).toEqual([]);
    // lm_head rows 1 and 3 are equal: ties go to the lower id.
    const untied = tinyConfig({ tie_word_embeddings: false });
    const lmHead = [[0, 0, 0, 0], E[2]!, E[0]!, E[2]!, E[1]!];
    expect(referenceGreedy(untied, tinyWeights(untied, { 'lm_head.weight': lmHead }), [2], 2)).toEqual([1, 4]);
  });
});
