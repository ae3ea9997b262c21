/**
 * The instrumented decoder graph, assembled layer by layer from plain ONNX ops (plus ONNX Runtime's
 * SimplifiedLayerNormalization for RMSNorm). One graph serves prefill, chunked teacher forcing and decoding:
 *
 *   inputs   input_ids [B,S] · position_ids [B,S] · attn_bias [B,S,T] (additive 0/-inf, T = past + recent + S)
 *            head_scale [B,L,H] (γ per head, per row) · past_key.{i}/past_value.{i} [B,Hkv,past,D]
 *            recent_key.{i}/recent_value.{i} [B,Hkv,recent,D] (T = past + recent + S)
 *            tap selectors: resid_rows/resid_layers, z_rows/z_layers, logit_rows, logprob_rows/logprob_targets
 *   outputs  logits [Kl,V] · token_logprobs [Kp] · resid_taps [Lr,K,d] · z_taps [Lz,Kz,H,D]
 *            present_key.{i}/present_value.{i} [B,Hkv,recent+S,D]: the recent part with this chunk appended
 *
 * Rows are flat indices b*S + s into the current chunk. Taps are gathered *before* they leave the graph, so a run
 * only materialises the positions and layers it asked for (a 4,096-token transcript on a 7B model never copies out
 * every layer's residual stream). The residual stack is indexed like Hugging Face's `hidden_states`, except that
 * the final-normed state gets its own slot: 0 = embeddings (`blocks.0.hook_resid_pre`), i+1 =
 * `blocks.{i}.hook_resid_post`, L+1 = `ln_final.hook_normalized`.
 *
 * Activations run flattened to [B*S, d] so every linear layer is a Gemm on the checkpoint's own [out, in] weight
 * (transB = 1): no transposed copies, and tied embeddings serve as the LM head without a second copy. q, k and v
 * are one Gemm on their stacked weights (fusedQkv). Attention keeps the query heads that share a kv head together
 * as rows of one product, so each step reads every cached key and value once.
 *
 * Precision variants (see compile.ts) keep the interface above unchanged, all float32/int64:
 *  - int4 weights: a linear layer whose weight resolves through `int4Weight` becomes a MatMulNBits (com.microsoft)
 *    on the same [N = out, K = in] layout, bias as the op's own input.
 *  - float16 activations: the graph computes in float16 between casts at the boundaries (embeddings come out of a
 *    float16 table; head_scale and past KV are cast in; logits, taps and present KV are cast out). Attention scores,
 *    softmax, log-softmax, RMSNorm (input and statistics) and the norm-preserve ratio stay float32, because float16
 *    overflows there (sums of squares, exp) long before it does in a matmul.
 */
import type { ModelConfig } from '../model/config.js';
import { ropeInverseFrequencies } from '../model/config.js';
import { DataType } from './proto.js';
import { GraphBuilder } from './graph.js';

export interface DecoderGraphOptions {
  /**
   * After head_scale, rescale each token's multi-head output (all heads' z, before o_proj) back to its norm before
   * scaling. The RefusalCliff code does this over the whole batch tensor; we do it per token so results do not
   * depend on batching.
   */
  normPreserve: boolean;
  /** Compute type inside the graph (default float32). Weights must have been stored to match, see `WeightRef`. */
  activations?: 'float32' | 'float16';
  /** The int4 form of a linear layer's weight, by HF name; undefined = that layer stays a float Gemm. */
  int4Weight?: (hfName: string) => Int4WeightRef | undefined;
  /** MatMulNBits accuracy_level: 0 = unset (compute in the activation type), 1 fp32, 2 fp16, 3 bf16, 4 int8. */
  int4AccuracyLevel?: number;
}

/**
 * Initializer names of one linear weight in MatMulNBits form (layout in quantize.ts): packed codes
 * [N, blocks, blockSize/2] uint8, scales [N * blocks] in the compute type, zero points uint8 or null (= 8).
 */
export interface Int4WeightRef {
  packed: string;
  scales: string;
  zeroPoints: string | null;
  N: number;
  K: number;
  blockSize: number;
}

/**
 * Layer `layer`'s q, k and v projections stacked as one [q; k; v] matrix (rows of q, then k, then v, each in HF's
 * [out, in] layout; biases stacked the same way), as the compiler writes it: the graph reads it by these names.
 */
export function fusedQkv(layer: number) {
  const p = `model.layers.${layer}.self_attn`;
  return {
    weight: `${p}.qkv_proj.weight`,
    bias: `${p}.qkv_proj.bias`,
    parts: (['q', 'k', 'v'] as const).map((x) => ({ weight: `${p}.${x}_proj.weight`, bias: `${p}.${x}_proj.bias` })),
  };
}

/** Names of the graph's inputs and outputs, shared with the runtime. */
export const IO = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  attnBias: 'attn_bias',
  headScale: 'head_scale',
  residRows: 'resid_rows',
  residLayers: 'resid_layers',
  zRows: 'z_rows',
  zLayers: 'z_layers',
  logitRows: 'logit_rows',
  logprobRows: 'logprob_rows',
  logprobTargets: 'logprob_targets',
  pastKey: (i: number) => `past_key.${i}`,
  pastValue: (i: number) => `past_value.${i}`,
  recentKey: (i: number) => `recent_key.${i}`,
  recentValue: (i: number) => `recent_value.${i}`,
  logits: 'logits',
  tokenLogprobs: 'token_logprobs',
  residTaps: 'resid_taps',
  zTaps: 'z_taps',
  presentKey: (i: number) => `present_key.${i}`,
  presentValue: (i: number) => `present_value.${i}`,
} as const;

/**
 * Resolves an HF tensor name to the name of its (external) initializer. With float16 activations the graph expects
 * norm weights (1-D `*norm.weight`) in float32 and every other float tensor in float16.
 */
export type WeightRef = (hfName: string) => string;

export function buildDecoderGraph(cfg: ModelConfig, weight: WeightRef, opts: DecoderGraphOptions, g = new GraphBuilder()) {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D, numLayers: L, vocabSize: V } = cfg;
  const G = H / Hkv;
  const eps = { float: cfg.rmsNormEps };
  const f = DataType.FLOAT;
  const i64 = DataType.INT64;
  // Compute type, and casts into / out of it; both are no-ops (no node) in the float32 graph.
  const half = opts.activations === 'float16';
  const ct = half ? DataType.FLOAT16 : f;
  const toCompute = (x: string, name?: string) => (half ? g.op('Cast', [x], { to: ct }, { name: name ?? `${x}.f16` }) : x);
  const toFloat = (x: string, name?: string) => (half ? g.op('Cast', [x], { to: f }, { name: name ?? `${x}.f32` }) : x);

  // ---- inputs
  const inputIds = g.input(IO.inputIds, i64, ['batch', 'seq']);
  const positionIds = g.input(IO.positionIds, i64, ['batch', 'seq']);
  const attnBias = g.input(IO.attnBias, f, ['batch', 'seq', 'total']);
  const headScale = g.input(IO.headScale, f, ['batch', L, H]);
  const residRows = g.input(IO.residRows, i64, ['resid_rows']);
  const residLayers = g.input(IO.residLayers, i64, ['resid_layers']);
  const zRows = g.input(IO.zRows, i64, ['z_rows']);
  const zLayers = g.input(IO.zLayers, i64, ['z_layers']);
  const logitRows = g.input(IO.logitRows, i64, ['logit_rows']);
  const logprobRows = g.input(IO.logprobRows, i64, ['logprob_rows']);
  const logprobTargets = g.input(IO.logprobTargets, i64, ['logprob_rows']);
  // The KV cache comes in two parts (see runtime/kv-cache.ts): a long settled past that attention only reads, and
  // the few most recent positions, which the graph extends by this chunk and hands back as present.
  const past = Array.from({ length: L }, (_, i) => ({
    key: toCompute(g.input(IO.pastKey(i), f, ['batch', Hkv, 'past', D])),
    value: toCompute(g.input(IO.pastValue(i), f, ['batch', Hkv, 'past', D])),
    recentKey: toCompute(g.input(IO.recentKey(i), f, ['batch', Hkv, 'recent', D])),
    recentValue: toCompute(g.input(IO.recentValue(i), f, ['batch', Hkv, 'recent', D])),
  }));

  // ---- shapes computed from the inputs: [B, S] and the 4-/5-D views attention needs
  const bs = g.op('Shape', [inputIds], {}, { name: 'shape.bs' });
  const b = g.op('Slice', [bs, g.int64([0]), g.int64([1])], {}, { name: 'shape.b' });
  const s = g.op('Slice', [bs, g.int64([1]), g.int64([2])], {}, { name: 'shape.s' });
  const shapeBHSD = g.op('Concat', [b, g.int64([H]), s, g.int64([D])], { axis: 0 }, { name: 'shape.bhsd' });
  const shapeFlatZ = g.int64([-1, H * D]);

  // Additive mask as [B,1,1,S,T] so it broadcasts over kv heads and query groups.
  const bias5 = g.op('Unsqueeze', [attnBias, g.int64([1, 2])], {}, { name: 'attn.bias5' });

  // Rotary tables from positions, computed in float32 as transformers does: angle = pos * inv_freq,
  // duplicated over the two halves so rotate_half can be a single matmul.
  const inv = ropeInverseFrequencies(cfg);
  const invFull = g.float32([...inv, ...inv], [1, 1, D]);
  const posF = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: DataType.FLOAT }), g.int64([2])], {}, { name: 'rope.pos' });
  const angle = g.op('Mul', [posF, invFull], {}, { name: 'rope.angle' });
  const cos = g.op('Unsqueeze', [toCompute(g.op('Cos', [angle], {}, { name: 'rope.cos' })), g.int64([2])], {}, { name: 'rope.cos4' });
  const sin = g.op('Unsqueeze', [toCompute(g.op('Sin', [angle], {}, { name: 'rope.sin' })), g.int64([2])], {}, { name: 'rope.sin4' });
  // rotate_half(x) = [-x2, x1] as x @ R, with R a signed permutation matrix [D, D].
  const rot = new Float32Array(D * D);
  for (let j = 0; j < D / 2; j++) {
    rot[(j + D / 2) * D + j] = -1; // out[j] = -x[j + D/2]
    rot[j * D + (j + D / 2)] = 1; // out[j + D/2] = x[j]
  }
  const rotate = g.floatConst(ct, rot, [D, D]);
  const applyRope = (x: string, name: string) =>
    g.op(
      'Add',
      [
        g.op('Mul', [x, cos], {}, { name: `${name}.cos` }),
        g.op('Mul', [g.op('MatMul', [x, rotate], {}, { name: `${name}.rot` }), sin], {}, { name: `${name}.sin` }),
      ],
      {},
      { name: `${name}.rope` },
    );

  // RMSNorm in float32 whatever the compute type: its mean of squares overflows float16 for |x| > ~256.
  const rmsNorm = (x: string, w: string, name: string) =>
    toCompute(g.op('SimplifiedLayerNormalization', [toFloat(x), weight(w)], { axis: -1, epsilon: eps }, { name }), `${name}.f16`);
  const linear = (x: string, w: string, bias: string | null, name: string) => {
    const q = opts.int4Weight?.(w);
    if (!q) return g.op('Gemm', bias ? [x, weight(w), weight(bias)] : [x, weight(w)], { transB: 1 }, { name });
    // MatMulNBits inputs: A, B, scales, zero_points?, g_idx?, bias? ('' = absent; trailing absent ones dropped).
    const inputs = [x, q.packed, q.scales, q.zeroPoints ?? '', '', bias ? weight(bias) : ''];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    const attrs = { K: q.K, N: q.N, bits: 4, block_size: q.blockSize, accuracy_level: opts.int4AccuracyLevel ?? 0 };
    return g.op('MatMulNBits', inputs, attrs, { name, domain: 'com.microsoft' });
  };

  // ---- embeddings
  const embed = g.op('Gather', [weight('model.embed_tokens.weight'), inputIds], { axis: 0 }, { name: 'hook_embed' });
  let h = g.op('Reshape', [embed, g.int64([-1, d])], {}, { name: 'blocks.0.hook_resid_pre' });
  const residStack: string[] = [h];
  const zStack: string[] = [];

  // Ablation scales for every layer at once, [L, B, 1, H, 1]: one Gather per layer then picks that layer's γ,
  // broadcast over positions and head_dim.
  const gammaAll = toCompute(g.op('Unsqueeze', [g.op('Transpose', [headScale], { perm: [1, 0, 2] }), g.int64([2, 4])], {}, { name: 'head_scale.by_layer' }));
  const shapeQkv = g.op('Concat', [bs, g.int64([H + 2 * Hkv, D])], { axis: 0 }, { name: 'shape.bs_qkv_d' });
  const shapeRows = g.op('Concat', [b, g.int64([Hkv, -1, D])], { axis: 0 }, { name: 'shape.b_kv_rows_d' });
  const shapeScores = g.op('Concat', [b, g.int64([Hkv, G]), s, g.int64([-1])], { axis: 0 }, { name: 'shape.scores5' });
  const total = g.op('Slice', [g.op('Shape', [attnBias]), g.int64([2]), g.int64([3])], {}, { name: 'shape.t' });
  const shapeScoresRows = g.op('Concat', [b, g.int64([Hkv, -1]), total], { axis: 0 }, { name: 'shape.scores4' });
  // Attention weights split at the settled past: [past, recent + S].
  const pastLen = g.op('Slice', [g.op('Shape', [past[0]!.key]), g.int64([2]), g.int64([3])], {}, { name: 'shape.past' });
  const splitPast = g.op('Concat', [pastLen, g.op('Sub', [total, pastLen])], { axis: 0 }, { name: 'shape.split_past' });

  // ---- transformer blocks
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    const n = `blocks.${i}`;
    const x = rmsNorm(h, `${p}.input_layernorm.weight`, `${n}.ln1.hook_normalized`);
    // q, k and v come out of one product on the stacked [q; k; v] weight (see fusedQkv): a single pass over x,
    // and one well-shaped product instead of two thin ones for grouped-query k and v.
    const qkvNames = fusedQkv(i);
    const qkv = g.op('Reshape', [linear(x, qkvNames.weight, cfg.qkvBias ? qkvNames.bias : null, `${n}.attn.qkv_flat`), shapeQkv], {}, { name: `${n}.attn.qkv` });
    let q: string;
    let k: string;
    let v: string;
    if (cfg.qkNorm) {
      // Per-head RMSNorm on q and k comes before the rotation: split three ways, normalise, rotate each.
      const [q0, k0, v0] = g.opMulti('Split', [qkv, g.int64([H, Hkv, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_q_pre`, `${n}.attn.hook_k_pre`, `${n}.attn.hook_v`] }) as [string, string, string];
      q = applyRope(rmsNorm(q0, `${p}.self_attn.q_norm.weight`, `${n}.attn.q_norm`), `${n}.attn.hook_q`);
      k = applyRope(rmsNorm(k0, `${p}.self_attn.k_norm.weight`, `${n}.attn.k_norm`), `${n}.attn.hook_k`);
      v = v0;
    } else {
      // Rotate q and k together (one rotation over H + Hkv heads), then split them.
      const [qk, v0] = g.opMulti('Split', [qkv, g.int64([H + Hkv, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_qk_pre`, `${n}.attn.hook_v`] }) as [string, string];
      [q, k] = g.opMulti('Split', [applyRope(qk, `${n}.attn.hook_qk`), g.int64([H, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_q`, `${n}.attn.hook_k`] }) as [string, string];
      v = v0;
    }

    // KV cache, [B, Hkv, ·, D]: this chunk is appended to the recent part only, so no step copies the settled past.
    const toHeads = [0, 2, 1, 3];
    // float16: the cache leaves the graph as float32 (lossless both ways), so the runtime's interface is unchanged.
    const append = (recent: string, kv: string, output: string) => {
      const where = half ? { name: `${output}.f16` } : { outputs: [output] };
      const all = g.op('Concat', [recent, g.op('Transpose', [kv], { perm: toHeads })], { axis: 2 }, where);
      if (half) g.op('Cast', [all], { to: f }, { outputs: [output] });
      return all;
    };
    const recentKeys = append(past[i]!.recentKey, k, IO.presentKey(i));
    const recentValues = append(past[i]!.recentValue, v, IO.presentValue(i));

    // Grouped-query attention without repeating K/V: the G query heads that share a kv head are stacked as rows,
    // q [B, Hkv, G*S, D] (row g*S + s), so each kv head is one product that reads its keys and values once.
    // Query head h reads kv head floor(h / G), as in transformers' repeat_kv.
    const qRows = g.op('Reshape', [g.op('Transpose', [q], { perm: toHeads }), shapeRows], {}, { name: `${n}.attn.q_rows` });
    // float16: scale q before the product (so q·k cannot overflow), then bias and softmax in float32.
    const scale = 1 / Math.sqrt(D);
    const qScaled = half ? g.op('Mul', [qRows, g.float16([scale], [])]) : qRows;
    // Scores against the past and the recent keys side by side: [B, Hkv, G*S, T]. The key transposes fuse into the
    // products (no copy of the keys).
    const keysT = (keys: string, part: string) => g.op('Transpose', [keys], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.k_t_${part}` });
    const scoresBy = (keys: string, part: string) => g.op('MatMul', [qScaled, keysT(keys, part)], {}, { name: `${n}.attn.qk_${part}` });
    const qk = g.op('Concat', [scoresBy(past[i]!.key, 'past'), scoresBy(recentKeys, 'recent')], { axis: -1 }, { name: `${n}.attn.qk` });
    const rawScores = half ? toFloat(qk) : g.op('Mul', [qk, g.float32([scale], [])]);
    // Viewed as [B, Hkv, G, S, T] for the [B, 1, 1, S, T] mask, then back to rows for the products with the values.
    const scores = g.op('Add', [g.op('Reshape', [rawScores, shapeScores]), bias5], {}, { name: `${n}.attn.hook_attn_scores` });
    const pattern = toCompute(g.op('Softmax', [scores], { axis: -1 }, { name: `${n}.attn.hook_pattern` }));
    const [pPast, pRecent] = g.opMulti('Split', [g.op('Reshape', [pattern, shapeScoresRows]), splitPast], { axis: -1 }, { outputs: 2, name: `${n}.attn.pattern_parts` }) as [string, string];
    const mixed = g.op(
      'Add',
      [g.op('MatMul', [pPast, past[i]!.value], {}, { name: `${n}.attn.mixed_past` }), g.op('MatMul', [pRecent, recentValues], {}, { name: `${n}.attn.mixed_recent` })],
      {},
      { name: `${n}.attn.mixed` },
    );
    // hook_z: per-head outputs before o_proj, [B, S, H, D].
    const z = g.op('Transpose', [g.op('Reshape', [mixed, shapeBHSD])], { perm: toHeads }, { name: `${n}.attn.hook_z` });
    zStack.push(z);

    // Ablation: γ per (row, layer, head), broadcast over positions and head_dim.
    const gamma = g.op('Gather', [gammaAll, g.int64([i], [])], { axis: 0 }, { name: `${n}.attn.gamma` });
    let scaled = g.op('Reshape', [g.op('Mul', [z, gamma], {}, { name: `${n}.attn.z_scaled` }), shapeFlatZ], {}, { name: `${n}.attn.z_flat` });
    if (opts.normPreserve) {
      // Norms in float32: 1e-30 and sums of squares do not fit float16.
      const before = g.op('ReduceL2', [toFloat(g.op('Reshape', [z, shapeFlatZ]))], { axes: [-1], keepdims: 1 });
      const after = g.op('ReduceL2', [toFloat(scaled)], { axes: [-1], keepdims: 1 });
      const ratio = toCompute(g.op('Div', [before, g.op('Max', [after, g.float32([1e-30], [])])], {}, { name: `${n}.attn.norm_ratio` }));
      scaled = g.op('Mul', [scaled, ratio], {}, { name: `${n}.attn.z_norm_preserved` });
    }
    const attnOut = linear(
      scaled,
      `${p}.self_attn.o_proj.weight`,
      cfg.oBias ? `${p}.self_attn.o_proj.bias` : null,
      `${n}.hook_attn_out`,
    );
    h = g.op('Add', [h, attnOut], {}, { name: `${n}.hook_resid_mid` });

    const x2 = rmsNorm(h, `${p}.post_attention_layernorm.weight`, `${n}.ln2.hook_normalized`);
    const mlpBias = (w: string) => (cfg.mlpBias ? `${p}.mlp.${w}_proj.bias` : null);
    const gate = linear(x2, `${p}.mlp.gate_proj.weight`, mlpBias('gate'), `${n}.mlp.gate`);
    const up = linear(x2, `${p}.mlp.up_proj.weight`, mlpBias('up'), `${n}.mlp.up`);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])], {}, { name: `${n}.mlp.silu` }), up], {}, { name: `${n}.mlp.hook_post` });
    const mlpOut = linear(act, `${p}.mlp.down_proj.weight`, mlpBias('down'), `${n}.hook_mlp_out`);
    h = g.op('Add', [h, mlpOut], {}, { name: `${n}.hook_resid_post` });
    residStack.push(h);
  }

  const final = rmsNorm(h, 'model.norm.weight', 'ln_final.hook_normalized');
  residStack.push(final);
  // Tied models read the embedding table as the LM head (int4: a quantised copy, the table itself stays float).
  const lmHead = cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';

  // ---- outputs, each gathered to the rows/layers the caller asked for
  // One LM-head product over logit rows ++ log-prob rows, then split: two products would each pre-pack the
  // vocab × d weight, holding the model's largest matrix twice.
  const headRows = g.op('Concat', [logitRows, logprobRows], { axis: 0 }, { name: 'lm_head.rows' });
  const headOut = toFloat(linear(g.op('Gather', [final, headRows], { axis: 0 }), lmHead, null, 'lm_head.out'));
  const nLogits = g.op('Shape', [logitRows], {}, { name: 'lm_head.n_logits' });
  const logits = g.op('Slice', [headOut, g.int64([0]), nLogits, g.int64([0])], {}, { name: 'logits.selected' });
  g.output(IO.logits, logits, f, ['logit_rows', V]);

  const lpLogits = g.op('Slice', [headOut, nLogits, g.int64([2 ** 62]), g.int64([0])], {}, { name: 'logprobs.logits' });
  const logSoftmax = g.op('LogSoftmax', [lpLogits], { axis: -1 });
  const picked = g.op('GatherElements', [logSoftmax, g.op('Unsqueeze', [logprobTargets, g.int64([1])])], { axis: 1 });
  g.output(IO.tokenLogprobs, g.op('Reshape', [picked, g.int64([-1])]), f, ['logprob_rows']);

  // Each stack entry gathers its rows only when the caller selected it: for the others the row list is cut to
  // length 0, so a run that taps one layer never copies the rest. Entries come out in stack order; the runtime
  // asks for its layers in ascending order and puts them back in the order its caller wanted.
  const stackTaps = (entries: string[], rows: string, layers: string, rowShape: number[], name: string) => {
    const k = g.op('Shape', [rows], {}, { name: `${name}.k` });
    // selected[e] = 1 when entry e is among the layers asked for, computed for all entries at once. A -1 sentinel
    // keeps the reduction off an empty list (no layers asked for: every entry 0).
    const asked = g.op('Unsqueeze', [g.op('Concat', [layers, g.int64([-1])], { axis: 0 }), g.int64([1])]);
    const hits = g.op('Cast', [g.op('Equal', [asked, g.int64(entries.map((_, idx) => idx))])], { to: DataType.FLOAT });
    const selected = g.op('Cast', [g.op('ReduceMax', [hits], { axes: [0], keepdims: 0 })], { to: DataType.INT64 }, { name: `${name}.selected` });
    const counts = g.op('Mul', [selected, k], {}, { name: `${name}.counts` });
    const parts = entries.map((e, idx) => {
      const count = g.op('Slice', [counts, g.int64([idx]), g.int64([idx + 1])], {}, { name: `${name}.count${idx}` });
      const take = g.op('Slice', [rows, g.int64([0]), count, g.int64([0])], {}, { name: `${name}.rows${idx}` });
      return g.op('Gather', [e, take], { axis: 0 }, { name: `${name}.part${idx}` });
    });
    const shape = g.op('Concat', [g.int64([-1]), k, g.int64(rowShape)], { axis: 0 }, { name: `${name}.shape` });
    return g.op('Reshape', [g.op('Concat', parts, { axis: 0 }, { name: `${name}.flat` }), shape], {}, { name });
  };
  g.output(IO.residTaps, toFloat(stackTaps(residStack, residRows, residLayers, [d], 'taps.resid')), f, ['resid_layers', 'resid_rows', d]);
  const zFlat = zStack.map((z) => g.op('Reshape', [z, g.int64([-1, H, D])]));
  g.output(IO.zTaps, toFloat(stackTaps(zFlat, zRows, zLayers, [H, D], 'taps.z')), f, ['z_layers', 'z_rows', H, D]);

  for (let i = 0; i < L; i++) {
    g.outputs.push({ name: IO.presentKey(i), dataType: f, shape: ['batch', Hkv, 'recent_total', D] });
    g.outputs.push({ name: IO.presentValue(i), dataType: f, shape: ['batch', Hkv, 'recent_total', D] });
  }
  return g;
}

/** Index of a TransformerLens-style residual hook in the graph's residual stack. */
export function residStackIndex(cfg: ModelConfig, hook: { kind: 'resid_pre0' } | { kind: 'resid_post'; layer: number } | { kind: 'ln_final' }): number {
  if (hook.kind === 'resid_pre0') return 0;
  if (hook.kind === 'ln_final') return cfg.numLayers + 1;
  return hook.layer + 1;
}
