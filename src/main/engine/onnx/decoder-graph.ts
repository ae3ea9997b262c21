/**
 * The instrumented decoder graph, assembled layer by layer from plain ONNX ops (plus ONNX Runtime's
 * SimplifiedLayerNormalization for RMSNorm and, for an int8 KV cache, MatMulInteger). One graph serves prefill,
 * chunked teacher forcing and decoding:
 *
 *   inputs   input_ids [B,S] · position_ids [B,S] · attn_bias [B,S,T] (additive 0/-inf, T = past + recent + S)
 *            head_scale [B,L,H] (γ per head, per row)
 *            past_{stream}.{i} [B,Hkv,past,w] · recent_{stream}.{i} [B,Hkv,recent,w]: the KV cache (see kvStreams)
 *            tap selectors: resid_rows/resid_layers, z_rows/z_layers, pattern_index/pattern_layers, logit_rows,
 *            logprob_rows/logprob_targets
 *   outputs  logits [Kl,V] · token_logprobs [Kp] · resid_taps [Lr,K,d] · z_taps [Lz,Kz,H,D] · pattern_taps [Lp,Kp,T]
 *            present_{stream}.{i} [B,Hkv,recent+S,w]: the recent part with this chunk appended
 *
 * Rows are flat indices b*S + s into the current chunk. Taps are gathered *before* they leave the graph, so a run
 * only materialises the positions and layers it asked for (a 4,096-token transcript on a 7B model never copies out
 * every layer's residual stream). The residual stack is indexed like Hugging Face's `hidden_states`, except that
 * the final-normed state gets its own slot: 0 = embeddings (`blocks.0.hook_resid_pre`), i+1 =
 * `blocks.{i}.hook_resid_post`, L+1 = `ln_final.hook_normalized`. `blocks.{i}.attn.hook_z` is what o_proj reads:
 * each head's attention output after its γ (and after the norm-preserving rescale when that option is on), as a
 * TransformerLens ablation hook on hook_z leaves it. `blocks.{i}.attn.hook_pattern` is the softmax over keys; its
 * pattern_index selects (row, head) pairs as flat indices (b*H + h)*S + s.
 *
 * The forward below reads like the reference (tests/support/reference-forward.ts), one builder per piece:
 *
 *   x = embed(ids)
 *   per layer i:   x = x + attention_i(rmsNorm(x))      q/k/v → rotary → cache → softmax → γ → o_proj
 *                  x = x + mlp_i(rmsNorm(x))             SwiGLU
 *   logits = lm_head(rmsNorm(x))
 *
 * Activations run flattened to [B*S, d] so every linear layer is a Gemm on the checkpoint's own [out, in] weight
 * (transB = 1): no transposed copies, and tied embeddings serve as the LM head without a second copy. q, k and v
 * are one Gemm on their stacked weights (fusedQkv). Attention keeps the query heads that share a kv head together
 * as rows of one product, so each step reads every cached key and value once per kv head.
 *
 * Precision variants (see compile.ts) keep the interface above, all float32/int64 except the KV cache:
 *  - int4 weights: a linear layer whose weight resolves through `int4Weight` becomes a MatMulNBits (com.microsoft)
 *    on the same [N = out, K = in] layout, bias as the op's own input.
 *  - float16 activations: the graph computes in float16 between casts at the boundaries (embeddings come out of a
 *    float16 table; head_scale is cast in; logits and taps are cast out). Attention scores, softmax, log-softmax,
 *    RMSNorm (input and statistics) and the norm-preserve ratio stay float32, because float16 overflows there (sums
 *    of squares, exp) long before it does in a matmul.
 *  - KV cache storage (kvStreams): float32, float16 (the float16 graph's default: the values it computes, stored
 *    as they are), or int8 with one scale per cached vector. Attention always reads the stored form, also for the
 *    chunk that wrote it, so results never depend on how a sequence was chunked.
 */
import type { ModelConfig } from '../model/config.js';
import { ropeInverseFrequencies } from '../model/config.js';
import { DataType, type DataTypeId } from './proto.js';
import { GraphBuilder } from './graph.js';
import { KV_CACHE_TYPES, type KvCacheType } from '../../../shared/values.js';

export { KV_CACHE_TYPES, type KvCacheType };

export interface DecoderGraphOptions {
  /**
   * After head_scale, rescale each token's multi-head output (all heads' z, before o_proj) back to its norm before
   * scaling. The RefusalCliff code does this over the whole batch tensor; we do it per token so results do not
   * depend on batching.
   */
  normPreserve: boolean;
  /** Compute type inside the graph (default float32). Weights must have been stored to match, see `WeightRef`. */
  activations?: 'float32' | 'float16';
  /** KV cache storage; default: the compute type. */
  kvCache?: KvCacheType;
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
 * One tensor of a layer's KV cache, [B, Hkv, positions, width]. Every stream has its positions on axis 2, so the
 * runtime copies, settles and selects rows of all of them the same way.
 */
export interface KvStream {
  name: 'key' | 'value' | 'key_scale' | 'value_scale';
  type: 'float32' | 'float16' | 'uint8' | 'int8';
  /** Values per position: the head dimension, or 1 for a scale. */
  width: 'head' | 1;
}

/**
 * The streams of a cache type. int8: each cached key and value vector (one position of one kv head) is stored as
 * codes with its own scale, max|x| / 127; keys as uint8 offset by 128 and values as int8, the operand types of
 * the fast u8×s8 integer product (MatMulInteger).
 */
export function kvStreams(type: KvCacheType): readonly KvStream[] {
  if (type === 'int8') {
    return [
      { name: 'key', type: 'uint8', width: 'head' },
      { name: 'key_scale', type: 'float32', width: 1 },
      { name: 'value', type: 'int8', width: 'head' },
      { name: 'value_scale', type: 'float32', width: 1 },
    ];
  }
  return [
    { name: 'key', type, width: 'head' },
    { name: 'value', type, width: 'head' },
  ];
}

const STREAM_TYPE: Record<KvStream['type'], DataTypeId> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
};

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
  patternIndex: 'pattern_index',
  patternLayers: 'pattern_layers',
  logitRows: 'logit_rows',
  logprobRows: 'logprob_rows',
  logprobTargets: 'logprob_targets',
  past: (stream: KvStream['name'], i: number) => `past_${stream}.${i}`,
  recent: (stream: KvStream['name'], i: number) => `recent_${stream}.${i}`,
  logits: 'logits',
  tokenLogprobs: 'token_logprobs',
  residTaps: 'resid_taps',
  zTaps: 'z_taps',
  patternTaps: 'pattern_taps',
  present: (stream: KvStream['name'], i: number) => `present_${stream}.${i}`,
} as const;

/**
 * Resolves an HF tensor name to the name of its (external) initializer. With float16 activations the graph expects
 * norm weights (1-D `*norm.weight`) in float32 and every other float tensor in float16.
 */
export type WeightRef = (hfName: string) => string;

export function buildDecoderGraph(cfg: ModelConfig, weight: WeightRef, opts: DecoderGraphOptions, g = new GraphBuilder()) {
  const c = graphContext(cfg, weight, opts, g);
  const inputs = declareInputs(c);
  const shapes = attentionShapes(c, inputs);
  const rope = rotary(c, inputs.positionIds);

  // x = embed_tokens[ids]
  let x = g.op('Reshape', [embed(c, inputs.inputIds), g.int64([-1, cfg.hiddenSize])], {}, { name: 'blocks.0.hook_resid_pre' });
  const taps: StackTaps = { resid: [x], z: [], pattern: [] };
  // Pattern rows are gathered inside each layer: a layer's whole pattern ([B, Hkv, G, S, T], 100 MB for a 512-token
  // chunk against 4,096 keys on the 1.5B shape) is then freed with the layer instead of living until the taps.
  const patternSelection = stackSelection(c, cfg.numLayers, inputs.patternIndex, inputs.patternLayers, 'taps.pattern');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    const n = `blocks.${i}`;
    // x = x + attention(rmsnorm(x) * input_layernorm)
    const attn = attention(c, i, rmsNorm(c, x, `${p}.input_layernorm.weight`, `${n}.ln1.hook_normalized`), inputs, shapes, rope, patternSelection.takes[i]!);
    x = g.op('Add', [x, attn.out], {}, { name: `${n}.hook_resid_mid` });
    // x = x + mlp(rmsnorm(x) * post_attention_layernorm)
    x = g.op('Add', [x, mlp(c, i, rmsNorm(c, x, `${p}.post_attention_layernorm.weight`, `${n}.ln2.hook_normalized`))], {}, { name: `${n}.hook_resid_post` });
    taps.resid.push(x);
    taps.z.push(attn.z);
    taps.pattern.push(attn.pattern);
  }
  const final = rmsNorm(c, x, 'model.norm.weight', 'ln_final.hook_normalized');
  taps.resid.push(final);

  lmHeadOutputs(c, final, inputs);
  tapOutputs(c, inputs, shapes, taps, patternSelection.k);
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const s of c.streams) g.outputs.push({ name: IO.present(s.name, i), dataType: STREAM_TYPE[s.type], shape: ['batch', cfg.numKvHeads, 'recent_total', streamWidth(c, s)] });
  }
  return g;
}

/** Index of a TransformerLens-style residual hook in the graph's residual stack. */
export function residStackIndex(cfg: ModelConfig, hook: { kind: 'resid_pre0' } | { kind: 'resid_post'; layer: number } | { kind: 'ln_final' }): number {
  if (hook.kind === 'resid_pre0') return 0;
  if (hook.kind === 'ln_final') return cfg.numLayers + 1;
  return hook.layer + 1;
}

// ---------------------------------------------------------------------------------------------------------------
// What every builder shares

interface GraphContext {
  cfg: ModelConfig;
  g: GraphBuilder;
  weight: WeightRef;
  opts: DecoderGraphOptions;
  /** Compute type: float16 or float32. */
  half: boolean;
  ct: DataTypeId;
  kvCache: KvCacheType;
  streams: readonly KvStream[];
  /** Casts into / out of the compute type; no node at all in the float32 graph. */
  toCompute: (x: string, name?: string) => string;
  toFloat: (x: string, name?: string) => string;
}

function graphContext(cfg: ModelConfig, weight: WeightRef, opts: DecoderGraphOptions, g: GraphBuilder): GraphContext {
  const half = opts.activations === 'float16';
  const ct = half ? DataType.FLOAT16 : DataType.FLOAT;
  const kvCache = opts.kvCache ?? (half ? 'float16' : 'float32');
  return {
    cfg,
    g,
    weight,
    opts,
    half,
    ct,
    kvCache,
    streams: kvStreams(kvCache),
    toCompute: (x, name) => (half ? g.op('Cast', [x], { to: ct }, { name: name ?? `${x}.f16` }) : x),
    toFloat: (x, name) => (half ? g.op('Cast', [x], { to: DataType.FLOAT }, { name: name ?? `${x}.f32` }) : x),
  };
}

const streamWidth = (c: GraphContext, s: KvStream) => (s.width === 'head' ? c.cfg.headDim : 1);

/** RMSNorm in float32 whatever the compute type: its mean of squares overflows float16 for |x| > ~256. */
function rmsNorm(c: GraphContext, x: string, w: string, name: string): string {
  const normed = c.g.op('SimplifiedLayerNormalization', [c.toFloat(x), c.weight(w)], { axis: -1, epsilon: { float: c.cfg.rmsNormEps } }, { name });
  return c.toCompute(normed, `${name}.f16`);
}

/** x W^T (+ b) on the checkpoint's [out, in] weight: a Gemm, or MatMulNBits when the weight is int4. */
function linear(c: GraphContext, x: string, w: string, bias: string | null, name: string): string {
  const q = c.opts.int4Weight?.(w);
  if (!q) return c.g.op('Gemm', bias ? [x, c.weight(w), c.weight(bias)] : [x, c.weight(w)], { transB: 1 }, { name });
  // MatMulNBits inputs: A, B, scales, zero_points?, g_idx?, bias? ('' = absent; trailing absent ones dropped).
  const inputs = [x, q.packed, q.scales, q.zeroPoints ?? '', '', bias ? c.weight(bias) : ''];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const attrs = { K: q.K, N: q.N, bits: 4, block_size: q.blockSize, accuracy_level: c.opts.int4AccuracyLevel ?? 0 };
  return c.g.op('MatMulNBits', inputs, attrs, { name, domain: 'com.microsoft' });
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs and the shapes computed from them

interface Inputs {
  inputIds: string;
  positionIds: string;
  attnBias: string;
  headScale: string;
  residRows: string;
  residLayers: string;
  zRows: string;
  zLayers: string;
  patternIndex: string;
  patternLayers: string;
  logitRows: string;
  logprobRows: string;
  logprobTargets: string;
  /**
   * The KV cache comes in two parts (see runtime/kv-cache.ts): a long settled past that attention only reads, and
   * the few most recent positions, which the graph extends by this chunk and hands back as present. By layer, then
   * stream name.
   */
  cache: Record<KvStream['name'], { past: string; recent: string }>[];
}

function declareInputs(c: GraphContext): Inputs {
  const { g, cfg } = c;
  const i64 = DataType.INT64;
  const f = DataType.FLOAT;
  return {
    inputIds: g.input(IO.inputIds, i64, ['batch', 'seq']),
    positionIds: g.input(IO.positionIds, i64, ['batch', 'seq']),
    attnBias: g.input(IO.attnBias, f, ['batch', 'seq', 'total']),
    headScale: g.input(IO.headScale, f, ['batch', cfg.numLayers, cfg.numHeads]),
    residRows: g.input(IO.residRows, i64, ['resid_rows']),
    residLayers: g.input(IO.residLayers, i64, ['resid_layers']),
    zRows: g.input(IO.zRows, i64, ['z_rows']),
    zLayers: g.input(IO.zLayers, i64, ['z_layers']),
    patternIndex: g.input(IO.patternIndex, i64, ['pattern_rows']),
    patternLayers: g.input(IO.patternLayers, i64, ['pattern_layers']),
    logitRows: g.input(IO.logitRows, i64, ['logit_rows']),
    logprobRows: g.input(IO.logprobRows, i64, ['logprob_rows']),
    logprobTargets: g.input(IO.logprobTargets, i64, ['logprob_rows']),
    cache: Array.from({ length: cfg.numLayers }, (_, i) => {
      const layer = {} as Inputs['cache'][number];
      for (const s of c.streams) {
        const shape = (part: string) => ['batch', cfg.numKvHeads, part, streamWidth(c, s)];
        layer[s.name] = { past: g.input(IO.past(s.name, i), STREAM_TYPE[s.type], shape('past')), recent: g.input(IO.recent(s.name, i), STREAM_TYPE[s.type], shape('recent')) };
      }
      return layer;
    }),
  };
}

/** Shapes every layer's attention uses, computed once from the inputs. */
interface AttentionShapes {
  /** [B, S] */
  bs: string;
  b: string;
  s: string;
  /** T = past + recent + S, as a 1-element shape. */
  total: string;
  /** [B, S, H + 2 Hkv, D]: the fused q/k/v product per head. */
  qkv: string;
  /** [B, Hkv, G*S, D]: query heads grouped under their kv head, as rows. */
  rows: string;
  /** [B, Hkv, G, S, T]: scores viewed for the [B, 1, 1, S, T] mask. */
  scores5: string;
  /** [B, Hkv, G*S, T]: scores back as rows. */
  scores4: string;
  /** [-1, T]: a pattern [B, Hkv, G, S, T] as rows (b*H + h)*S + s. */
  patternRows: string;
  /** [B, H, S, D]: attention output per head. */
  bhsd: string;
  /** [past, recent + S]: where the weights split between the two cache parts. */
  splitPast: string;
  /** [1] bool: the settled past holds any position. */
  hasPast: string;
  /** [1] bool: this step has more query rows per kv head (G*S) than a head has dimensions (see attend). */
  manyQueries: string;
  /** The additive mask as [B, 1, 1, S, T]. */
  bias5: string;
  /** γ for every layer at once, [L, B, 1, H, 1], in the compute type. */
  gammaAll: string;
}

function attentionShapes(c: GraphContext, inputs: Inputs): AttentionShapes {
  const { g, cfg } = c;
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = cfg;
  const G = H / Hkv;
  const bs = g.op('Shape', [inputs.inputIds], {}, { name: 'shape.bs' });
  const b = g.op('Slice', [bs, g.int64([0]), g.int64([1])], {}, { name: 'shape.b' });
  const s = g.op('Slice', [bs, g.int64([1]), g.int64([2])], {}, { name: 'shape.s' });
  const total = g.op('Slice', [g.op('Shape', [inputs.attnBias]), g.int64([2]), g.int64([3])], {}, { name: 'shape.t' });
  const pastLen = g.op('Slice', [g.op('Shape', [inputs.cache[0]!.key.past]), g.int64([2]), g.int64([3])], {}, { name: 'shape.past' });
  return {
    bs,
    b,
    s,
    total,
    qkv: g.op('Concat', [bs, g.int64([H + 2 * Hkv, D])], { axis: 0 }, { name: 'shape.bs_qkv_d' }),
    rows: g.op('Concat', [b, g.int64([Hkv, -1, D])], { axis: 0 }, { name: 'shape.b_kv_rows_d' }),
    scores5: g.op('Concat', [b, g.int64([Hkv, G]), s, g.int64([-1])], { axis: 0 }, { name: 'shape.scores5' }),
    scores4: g.op('Concat', [b, g.int64([Hkv, -1]), total], { axis: 0 }, { name: 'shape.scores4' }),
    bhsd: g.op('Concat', [b, g.int64([H]), s, g.int64([D])], { axis: 0 }, { name: 'shape.bhsd' }),
    patternRows: g.op('Concat', [g.int64([-1]), total], { axis: 0 }, { name: 'shape.pattern_rows' }),
    splitPast: g.op('Concat', [pastLen, g.op('Sub', [total, pastLen])], { axis: 0 }, { name: 'shape.split_past' }),
    hasPast: g.op('Greater', [pastLen, g.int64([0], [])], {}, { name: 'shape.has_past' }),
    manyQueries: g.op('Greater', [g.op('Mul', [s, g.int64([G])]), g.int64([D])], {}, { name: 'shape.many_queries' }),
    bias5: g.op('Unsqueeze', [inputs.attnBias, g.int64([1, 2])], {}, { name: 'attn.bias5' }),
    // One Gather per layer then picks that layer's γ, broadcast over positions and head_dim.
    gammaAll: c.toCompute(g.op('Unsqueeze', [g.op('Transpose', [inputs.headScale], { perm: [1, 0, 2] }), g.int64([2, 4])], {}, { name: 'head_scale.by_layer' })),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Embeddings and rotary positions

function embed(c: GraphContext, inputIds: string): string {
  return c.g.op('Gather', [c.weight('model.embed_tokens.weight'), inputIds], { axis: 0 }, { name: 'hook_embed' });
}

/**
 * Rotary tables from positions, computed in float32 as transformers does: angle = pos * inv_freq, duplicated over
 * the two halves so rotate_half can be a single matmul. Returns x ↦ x cos + rotate_half(x) sin for [B, S, heads, D].
 */
function rotary(c: GraphContext, positionIds: string): (x: string, name: string) => string {
  const { g } = c;
  const D = c.cfg.headDim;
  const inv = ropeInverseFrequencies(c.cfg);
  const invFull = g.float32([...inv, ...inv], [1, 1, D]);
  const posF = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: DataType.FLOAT }), g.int64([2])], {}, { name: 'rope.pos' });
  const angle = g.op('Mul', [posF, invFull], {}, { name: 'rope.angle' });
  const cos = g.op('Unsqueeze', [c.toCompute(g.op('Cos', [angle], {}, { name: 'rope.cos' })), g.int64([2])], {}, { name: 'rope.cos4' });
  const sin = g.op('Unsqueeze', [c.toCompute(g.op('Sin', [angle], {}, { name: 'rope.sin' })), g.int64([2])], {}, { name: 'rope.sin4' });
  // rotate_half(x) = [-x2, x1] as x @ R, with R a signed permutation matrix [D, D].
  const rot = new Float32Array(D * D);
  for (let j = 0; j < D / 2; j++) {
    rot[(j + D / 2) * D + j] = -1; // out[j] = -x[j + D/2]
    rot[j * D + (j + D / 2)] = 1; // out[j + D/2] = x[j]
  }
  const rotate = g.floatConst(c.ct, rot, [D, D]);
  return (x, name) =>
    g.op(
      'Add',
      [g.op('Mul', [x, cos], {}, { name: `${name}.cos` }), g.op('Mul', [g.op('MatMul', [x, rotate], {}, { name: `${name}.rot` }), sin], {}, { name: `${name}.sin` })],
      {},
      { name: `${name}.rope` },
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Attention

/** [B, S, heads, D] ↔ [B, heads, S, D] */
const TO_HEADS = [0, 2, 1, 3];

/**
 * One attention block on the normed input x [B*S, d]: q, k, v with rotary, the chunk appended to the cache,
 * softmax over the cached and new keys, each head's output scaled by γ, then o_proj. Returns o_proj's output,
 * hook_z [B*S, H*D] and the rows `patternRows` selects of hook_pattern [B, Hkv, G, S, T] viewed as [B*H*S, T].
 */
function attention(c: GraphContext, layer: number, x: string, inputs: Inputs, shapes: AttentionShapes, rope: ReturnType<typeof rotary>, patternRows: string) {
  const p = `model.layers.${layer}`;
  const n = `blocks.${layer}`;
  const { q, k, v } = projectQkv(c, layer, x, shapes, rope);
  const cache = appendToCache(c, layer, k, v, inputs.cache[layer]!);
  const { pattern, mixed } = attend(c, layer, q, cache, shapes, patternRows);
  const z = scaleHeads(c, layer, c.g.op('Reshape', [mixed, shapes.bhsd], {}, { name: `${n}.attn.z_heads` }), shapes);
  const out = linear(c, z, `${p}.self_attn.o_proj.weight`, c.cfg.oBias ? `${p}.self_attn.o_proj.bias` : null, `${n}.hook_attn_out`);
  return { out, z, pattern };
}

/**
 * q, k and v [B, S, heads, D] from one product on the stacked [q; k; v] weight (see fusedQkv): a single pass over x,
 * and one well-shaped product instead of two thin ones for grouped-query k and v. Then (Qwen3) per-head RMSNorm on
 * q and k, and rotary on both.
 */
function projectQkv(c: GraphContext, layer: number, x: string, shapes: AttentionShapes, rope: ReturnType<typeof rotary>) {
  const { cfg } = c;
  const { numHeads: H, numKvHeads: Hkv } = cfg;
  const p = `model.layers.${layer}`;
  const n = `blocks.${layer}`;
  const fused = fusedQkv(layer);
  const flat = linear(c, x, fused.weight, cfg.qkvBias ? fused.bias : null, `${n}.attn.qkv_flat`);
  const qkv = c.g.op('Reshape', [flat, shapes.qkv], {}, { name: `${n}.attn.qkv` });
  if (cfg.qkNorm) {
    // Per-head RMSNorm on q and k comes before the rotation: split three ways, normalise, rotate each.
    const [q0, k0, v] = c.g.opMulti('Split', [qkv, c.g.int64([H, Hkv, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_q_pre`, `${n}.attn.hook_k_pre`, `${n}.attn.hook_v`] }) as [string, string, string];
    const q = rope(rmsNorm(c, q0, `${p}.self_attn.q_norm.weight`, `${n}.attn.q_norm`), `${n}.attn.hook_q`);
    const k = rope(rmsNorm(c, k0, `${p}.self_attn.k_norm.weight`, `${n}.attn.k_norm`), `${n}.attn.hook_k`);
    return { q, k, v };
  }
  // Rotate q and k together (one rotation over H + Hkv heads), then split them.
  const [qk, v] = c.g.opMulti('Split', [qkv, c.g.int64([H + Hkv, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_qk_pre`, `${n}.attn.hook_v`] }) as [string, string];
  const [q, k] = c.g.opMulti('Split', [rope(qk, `${n}.attn.hook_qk`), c.g.int64([H, Hkv])], { axis: 2 }, { outputs: [`${n}.attn.hook_q`, `${n}.attn.hook_k`] }) as [string, string];
  return { q, k, v };
}

/** A layer's cache as attention reads it, by stream: the settled past and the recent part with this chunk. */
type LayerCache = Record<KvStream['name'], { past: string; recent: string }>;

/**
 * Append this chunk's k and v [B, S, Hkv, D] to the recent part of the cache, in the cache's storage form, and
 * expose the result as present. Only the recent part is copied; the settled past is read in place.
 */
function appendToCache(c: GraphContext, layer: number, k: string, v: string, cache: LayerCache): LayerCache {
  const { g } = c;
  const n = `blocks.${layer}`;
  const heads = (x: string, name: string) => g.op('Transpose', [x], { perm: TO_HEADS }, { name });
  const stored: Partial<Record<KvStream['name'], string>> = {};
  if (c.kvCache === 'int8') {
    Object.assign(stored, quantizeVectors(c, heads(k, `${n}.attn.k_heads`), 'key', n), quantizeVectors(c, heads(v, `${n}.attn.v_heads`), 'value', n));
  } else {
    const type = STREAM_TYPE[c.kvCache];
    const store = (x: string) => (type === c.ct ? x : g.op('Cast', [x], { to: type }, { name: `${x}.stored` }));
    stored.key = store(heads(k, `${n}.attn.k_heads`));
    stored.value = store(heads(v, `${n}.attn.v_heads`));
  }
  const out = {} as LayerCache;
  for (const s of c.streams) {
    const recent = g.op('Concat', [cache[s.name].recent, stored[s.name]!], { axis: 2 }, { outputs: [IO.present(s.name, layer)] });
    out[s.name] = { past: cache[s.name].past, recent };
  }
  return out;
}

/**
 * int8 cache form of vectors x [B, Hkv, S, D] (float): one scale per vector, max|x| / 127, and codes round(x /
 * scale) — keys as uint8 offset by 128, values as int8 (see kvStreams).
 */
function quantizeVectors(c: GraphContext, x: string, stream: 'key' | 'value', n: string): Partial<Record<KvStream['name'], string>> {
  const { g } = c;
  const name = `${n}.attn.${stream}_int8`;
  const xf = c.toFloat(x);
  const scale = g.op('Div', [g.op('Max', [g.op('ReduceMax', [g.op('Abs', [xf])], { axes: [-1], keepdims: 1 }), g.float32([1e-30], [])]), g.float32([127], [])], {}, { name: `${name}.scale` });
  const codes = g.op('Round', [g.op('Div', [xf, scale])], {}, { name: `${name}.round` });
  const q =
    stream === 'key'
      ? g.op('Cast', [g.op('Add', [codes, g.float32([128], [])])], { to: DataType.UINT8 }, { name: `${name}.codes` })
      : g.op('Cast', [codes], { to: DataType.INT8 }, { name: `${name}.codes` });
  return stream === 'key' ? { key: q, key_scale: scale } : { value: q, value_scale: scale };
}

/**
 * softmax(q k^T / √D + bias) v for grouped-query attention without repeating K/V: the G query heads that share a
 * kv head are stacked as rows, q [B, Hkv, G*S, D] (row g*S + s), so each kv head is one product that reads its
 * keys and values once. Query head h reads kv head floor(h / G), as in transformers' repeat_kv. Returns the rows
 * `patternRows` of the pattern [B, Hkv, G, S, T] (float32) viewed as [B*H*S, T] (rows (b*H + h)*S + s, since
 * h = kv*G + g), and the mixed values [B, Hkv, G*S, D] (compute type).
 *
 * The cache comes in two parts, and there are two ways to attend over both; in the float32 graph an If picks the
 * cheaper per step:
 * a decode step (few queries) takes scores against each part and splits the weights again (copies of G*S × T
 * values, small), a prefill or teacher-forcing chunk concatenates the parts' keys and values instead (copies of
 * T × D values, small next to scores of 3,072 query rows).
 */
function attend(c: GraphContext, layer: number, q: string, cache: LayerCache, shapes: AttentionShapes, patternRows: string) {
  const { g } = c;
  const n = `blocks.${layer}`;
  const qRows = g.op('Reshape', [g.op('Transpose', [q], { perm: TO_HEADS }), shapes.rows], {}, { name: `${n}.attn.q_rows` });
  const scale = 1 / Math.sqrt(c.cfg.headDim);
  /** Mask, softmax and the weighted values, from scores [B, Hkv, G*S, T] (float32). */
  const softmaxAndMix = (rawScores: string, mix: (weights: string) => string) => {
    // Viewed as [B, Hkv, G, S, T] for the [B, 1, 1, S, T] mask, then back to rows for the products with the values.
    const scores = g.op('Add', [g.op('Reshape', [rawScores, shapes.scores5]), shapes.bias5], {}, { name: `${n}.attn.hook_attn_scores` });
    const pattern = g.op('Softmax', [scores], { axis: -1 }, { name: `${n}.attn.hook_pattern` });
    const tapped = g.op('Gather', [g.op('Reshape', [pattern, shapes.patternRows]), patternRows], { axis: 0 }, { name: `${n}.attn.pattern_taps` });
    return { pattern: tapped, mixed: mix(g.op('Reshape', [pattern, shapes.scores4], {}, { name: `${n}.attn.pattern_rows` })) };
  };
  if (c.kvCache === 'int8') return softmaxAndMix(int8Scores(c, n, qRows, cache, scale), (w) => int8Mix(c, n, w, cache, shapes));

  const qScaled = g.op('Mul', [qRows, g.floatConst(c.ct, [scale], [])], {}, { name: `${n}.attn.q_scaled` });
  const byParts = () => softmaxAndMix(floatScores(c, n, qScaled, cache), (w) => floatMix(c, n, w, cache, shapes));
  // float16 rounds partial sums differently on the two ways, so chunking would change results: it keeps one way
  // (the float16 graph is meant for GPU providers, whose copies cost little next to their products).
  if (c.half) return byParts();
  const outputs = (r: { pattern: string; mixed: string }) => [
    { name: r.pattern, dataType: DataType.FLOAT },
    { name: r.mixed, dataType: c.ct },
  ];
  const perPart = g.subgraph(`${n}.attn.per_part`, () => outputs(byParts()));
  const joined = g.subgraph(`${n}.attn.joined`, () => {
    const all = (part: LayerCache['key']) => g.op('Concat', [loadFloat(c, part.past), loadFloat(c, part.recent)], { axis: 2 });
    const keysT = g.op('Transpose', [all(cache.key)], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.k_t` });
    const scores = c.toFloat(g.op('MatMul', [qScaled, keysT], {}, { name: `${n}.attn.qk` }));
    return outputs(softmaxAndMix(scores, (w) => g.op('MatMul', [c.toCompute(w), all(cache.value)], {}, { name: `${n}.attn.mixed` })));
  });
  const [pattern, mixed] = g.opMulti('If', [shapes.manyQueries], { then_branch: { graph: joined }, else_branch: { graph: perPart } }, { outputs: [`${n}.attn.pattern`, `${n}.attn.mixed_heads`] }) as [string, string];
  return { pattern, mixed };
}

/** The stored keys or values of one cache part in the compute type (a cast only when storage differs). */
function loadFloat(c: GraphContext, x: string): string {
  return STREAM_TYPE[c.kvCache] === c.ct ? x : c.g.op('Cast', [x], { to: c.ct }, { name: `${x}.loaded` });
}

/**
 * Scores of q (already scaled by 1/√D: a pass over q instead of over the scores, and in float16 q·k cannot overflow)
 * against the past and the recent keys side by side, [B, Hkv, G*S, T], float32. The key transposes fuse into the
 * products (no copy of the keys); float16 scores are cast up for the mask and softmax.
 */
function floatScores(c: GraphContext, n: string, qScaled: string, cache: LayerCache): string {
  const { g } = c;
  const keysT = (keys: string, part: string) => g.op('Transpose', [loadFloat(c, keys)], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.k_t_${part}` });
  const scoresBy = (keys: string, part: string) => g.op('MatMul', [qScaled, keysT(keys, part)], {}, { name: `${n}.attn.qk_${part}` });
  const qk = g.op('Concat', [scoresBy(cache.key.past, 'past'), scoresBy(cache.key.recent, 'recent')], { axis: -1 }, { name: `${n}.attn.qk` });
  return c.toFloat(qk);
}

/** The weights [B, Hkv, G*S, T] split at the past, each part times its values, summed: [B, Hkv, G*S, D]. */
function floatMix(c: GraphContext, n: string, weights: string, cache: LayerCache, shapes: AttentionShapes): string {
  const { g } = c;
  const [pPast, pRecent] = g.opMulti('Split', [weights, shapes.splitPast], { axis: -1 }, { outputs: 2, name: `${n}.attn.pattern_parts` }) as [string, string];
  const part = (weights: string, values: string, name: string) => g.op('MatMul', [c.toCompute(weights), loadFloat(c, values)], {}, { name: `${n}.attn.mixed_${name}` });
  return g.op('Add', [part(pPast, cache.value.past, 'past'), part(pRecent, cache.value.recent, 'recent')], {}, { name: `${n}.attn.mixed` });
}

/**
 * Scores against int8 keys: q (scaled by 1/√D) is quantised per row to int8, each part's keys multiply it as
 * uint8 codes (zero point 128) in one integer product [B, Hkv, T, G*S], which the key scales (per key row) and q's
 * scales (per column) turn back into floats before the transpose to [B, Hkv, G*S, T].
 */
function int8Scores(c: GraphContext, n: string, qRows: string, cache: LayerCache, scale: number): string {
  const { g } = c;
  const qf = g.op('Mul', [c.toFloat(qRows), g.float32([scale], [])], {}, { name: `${n}.attn.q_scaled` });
  const qScale = g.op('Div', [g.op('Max', [g.op('ReduceMax', [g.op('Abs', [qf])], { axes: [-1], keepdims: 1 }), g.float32([1e-30], [])]), g.float32([127], [])], {}, { name: `${n}.attn.q_int8.scale` });
  const qCodes = g.op('Cast', [g.op('Round', [g.op('Div', [qf, qScale])])], { to: DataType.INT8 }, { name: `${n}.attn.q_int8.codes` });
  const qT = g.op('Transpose', [qCodes], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.q_int8.t` });
  const qScaleT = g.op('Transpose', [qScale], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.q_int8.scale_t` });
  const zero = g.rawInitializer(`${n}.attn.key_zero_point`, DataType.UINT8, [], Uint8Array.of(128));
  const scoresBy = (part: 'past' | 'recent') => {
    const ints = g.op('MatMulInteger', [cache.key[part], qT, zero], {}, { name: `${n}.attn.qk_${part}_int` });
    return g.op('Mul', [g.op('Mul', [g.op('Cast', [ints], { to: DataType.FLOAT }), cache.key_scale[part]]), qScaleT], {}, { name: `${n}.attn.kq_${part}` });
  };
  const kq = g.op('Concat', [scoresBy('past'), scoresBy('recent')], { axis: 2 }, { name: `${n}.attn.kq` });
  return g.op('Transpose', [kq], { perm: [0, 1, 3, 2] }, { name: `${n}.attn.qk` });
}

/**
 * The weighted sum over int8 values: the weights [B, Hkv, G*S, T] times the value scales of their positions are
 * quantised per row to uint8 (they are ≥ 0), split at the past, and each part multiplies its int8 values in one
 * integer product; the int32 sums add up before one conversion back to floats.
 */
function int8Mix(c: GraphContext, n: string, weights: string, cache: LayerCache, shapes: AttentionShapes): string {
  const { g } = c;
  const name = `${n}.attn.mixed`;
  const valueScales = g.op('Concat', [cache.value_scale.past, cache.value_scale.recent], { axis: 2 }, { name: `${name}.value_scales` });
  const scaled = g.op('Mul', [weights, g.op('Transpose', [valueScales], { perm: [0, 1, 3, 2] })], {}, { name: `${name}.weights` });
  const rowScale = g.op('Div', [g.op('Max', [g.op('ReduceMax', [scaled], { axes: [-1], keepdims: 1 }), g.float32([1e-30], [])]), g.float32([255], [])], {}, { name: `${name}.scale` });
  const codes = g.op('Cast', [g.op('Round', [g.op('Div', [scaled, rowScale])])], { to: DataType.UINT8 }, { name: `${name}.codes` });
  const [past, recent] = g.opMulti('Split', [codes, shapes.splitPast], { axis: -1 }, { outputs: 2, name: `${n}.attn.pattern_parts` }) as [string, string];
  // An integer product over an empty past leaves its output unwritten (ONNX Runtime's CPU kernel): take 0 then.
  const fromPast = g.op('MatMulInteger', [past, cache.value.past], {}, { name: `${name}_past` });
  const ints = g.op(
    'Add',
    [g.op('Where', [shapes.hasPast, fromPast, g.rawInitializer(`${name}.int_zero`, DataType.INT32, [], new Uint8Array(4))], {}, { name: `${name}_past.checked` }), g.op('MatMulInteger', [recent, cache.value.recent], {}, { name: `${name}_recent` })],
    {},
    { name: `${name}.int` },
  );
  return c.toCompute(g.op('Mul', [g.op('Cast', [ints], { to: DataType.FLOAT }), rowScale], {}, { name }));
}

/**
 * Ablation: each head's output [B, H, S, D] times γ of its (row, layer, head), then (option) each token's rescale
 * back to its norm before scaling. Returns hook_z flattened for o_proj, [B*S, H*D]: exactly what o_proj reads.
 */
function scaleHeads(c: GraphContext, layer: number, heads: string, shapes: AttentionShapes): string {
  const { g } = c;
  const { numHeads: H, headDim: D } = c.cfg;
  const n = `blocks.${layer}`;
  const flat = [-1, H * D];
  const gamma = g.op('Gather', [shapes.gammaAll, g.int64([layer], [])], { axis: 0 }, { name: `${n}.attn.gamma` });
  // [B, H, S, D] → [B, S, H, D], so rows are tokens and each token's heads sit side by side.
  const z = g.op('Transpose', [heads], { perm: TO_HEADS }, { name: `${n}.attn.z_attn` });
  const scaled = g.op('Mul', [z, gamma], {}, { name: `${n}.attn.z_scaled` });
  if (!c.opts.normPreserve) return g.op('Reshape', [scaled, g.int64(flat)], {}, { name: `${n}.attn.hook_z` });
  const scaledFlat = g.op('Reshape', [scaled, g.int64(flat)], {}, { name: `${n}.attn.z_flat` });
  // Norms in float32: 1e-30 and sums of squares do not fit float16.
  const before = g.op('ReduceL2', [c.toFloat(g.op('Reshape', [z, g.int64(flat)]))], { axes: [-1], keepdims: 1 });
  const after = g.op('ReduceL2', [c.toFloat(scaledFlat)], { axes: [-1], keepdims: 1 });
  const ratio = c.toCompute(g.op('Div', [before, g.op('Max', [after, g.float32([1e-30], [])])], {}, { name: `${n}.attn.norm_ratio` }));
  return g.op('Mul', [scaledFlat, ratio], {}, { name: `${n}.attn.hook_z` });
}

// ---------------------------------------------------------------------------------------------------------------
// MLP

/** SwiGLU: down(silu(gate(x)) * up(x)) on the normed input x [B*S, d]. */
function mlp(c: GraphContext, layer: number, x: string): string {
  const { g, cfg } = c;
  const p = `model.layers.${layer}.mlp`;
  const n = `blocks.${layer}`;
  const bias = (w: string) => (cfg.mlpBias ? `${p}.${w}_proj.bias` : null);
  const gate = linear(c, x, `${p}.gate_proj.weight`, bias('gate'), `${n}.mlp.gate`);
  const up = linear(c, x, `${p}.up_proj.weight`, bias('up'), `${n}.mlp.up`);
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])], {}, { name: `${n}.mlp.silu` }), up], {}, { name: `${n}.mlp.hook_post` });
  return linear(c, act, `${p}.down_proj.weight`, bias('down'), `${n}.hook_mlp_out`);
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs

/**
 * Logits at the logit rows and the log-probability of each target at the log-prob rows, from one LM-head product
 * over logit rows ++ log-prob rows, then split: two products would each pre-pack the vocab × d weight, holding the
 * model's largest matrix twice. Tied models read the embedding table as the LM head (int4: a quantised copy, the
 * table itself stays float).
 */
function lmHeadOutputs(c: GraphContext, final: string, inputs: Inputs): void {
  const { g, cfg } = c;
  const f = DataType.FLOAT;
  const lmHead = cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const headRows = g.op('Concat', [inputs.logitRows, inputs.logprobRows], { axis: 0 }, { name: 'lm_head.rows' });
  const headOut = c.toFloat(linear(c, g.op('Gather', [final, headRows], { axis: 0 }), lmHead, null, 'lm_head.out'));
  const nLogits = g.op('Shape', [inputs.logitRows], {}, { name: 'lm_head.n_logits' });
  const logits = g.op('Slice', [headOut, g.int64([0]), nLogits, g.int64([0])], {}, { name: 'logits.selected' });
  g.output(IO.logits, logits, f, ['logit_rows', cfg.vocabSize]);

  const lpLogits = g.op('Slice', [headOut, nLogits, g.int64([2 ** 62]), g.int64([0])], {}, { name: 'logprobs.logits' });
  const logSoftmax = g.op('LogSoftmax', [lpLogits], { axis: -1 });
  const picked = g.op('GatherElements', [logSoftmax, g.op('Unsqueeze', [inputs.logprobTargets, g.int64([1])])], { axis: 1 });
  g.output(IO.tokenLogprobs, g.op('Reshape', [picked, g.int64([-1])]), f, ['logprob_rows']);
}

interface StackTaps {
  /** Residual stack entries, [B*S, d] each. */
  resid: string[];
  /** hook_z per layer, [B*S, H*D]. */
  z: string[];
  /** Per layer, the rows of hook_pattern its layer gathered (attend), [k or 0, T]. */
  pattern: string[];
}

function tapOutputs(c: GraphContext, inputs: Inputs, shapes: AttentionShapes, taps: StackTaps, patternCount: string): void {
  const { g, cfg } = c;
  const { hiddenSize: d, numHeads: H, headDim: D } = cfg;
  const f = DataType.FLOAT;
  g.output(IO.residTaps, c.toFloat(stackTaps(c, taps.resid, inputs.residRows, inputs.residLayers, g.int64([d]), 'taps.resid')), f, ['resid_layers', 'resid_rows', d]);
  const zRows = taps.z.map((z) => g.op('Reshape', [z, g.int64([-1, H, D])]));
  g.output(IO.zTaps, c.toFloat(stackTaps(c, zRows, inputs.zRows, inputs.zLayers, g.int64([H, D]), 'taps.z')), f, ['z_layers', 'z_rows', H, D]);
  g.output(IO.patternTaps, stackGathered(c, taps.pattern, patternCount, shapes.total, 'taps.pattern'), f, ['pattern_layers', 'pattern_rows', 'total']);
}

/**
 * Gather `rows` of each stack entry selected by `layers`, [selected, rows, ...rowShape]. Each entry gathers its rows
 * only when the caller selected it: for the others the row list is cut to length 0, so a run that taps one layer
 * never copies the rest. Entries come out in stack order; the runtime asks for its layers in ascending order and
 * puts them back in the order its caller wanted.
 */
function stackTaps(c: GraphContext, entries: string[], rows: string, layers: string, rowShape: string, name: string): string {
  const selection = stackSelection(c, entries.length, rows, layers, name);
  const parts = entries.map((e, idx) => c.g.op('Gather', [e, selection.takes[idx]!], { axis: 0 }, { name: `${name}.part${idx}` }));
  return stackGathered(c, parts, selection.k, rowShape, name);
}

/** Per stack entry, the rows to gather from it: all of `rows` if `layers` selects the entry, none otherwise. */
function stackSelection(c: GraphContext, entries: number, rows: string, layers: string, name: string): { k: string; takes: string[] } {
  const { g } = c;
  const k = g.op('Shape', [rows], {}, { name: `${name}.k` });
  // selected[e] = 1 when entry e is among the layers asked for, computed for all entries at once. A -1 sentinel
  // keeps the reduction off an empty list (no layers asked for: every entry 0).
  const asked = g.op('Unsqueeze', [g.op('Concat', [layers, g.int64([-1])], { axis: 0 }), g.int64([1])]);
  const hits = g.op('Cast', [g.op('Equal', [asked, g.int64(Array.from({ length: entries }, (_, idx) => idx))])], { to: DataType.FLOAT });
  const selected = g.op('Cast', [g.op('ReduceMax', [hits], { axes: [0], keepdims: 0 })], { to: DataType.INT64 }, { name: `${name}.selected` });
  const counts = g.op('Mul', [selected, k], {}, { name: `${name}.counts` });
  const takes = Array.from({ length: entries }, (_, idx) => {
    const count = g.op('Slice', [counts, g.int64([idx]), g.int64([idx + 1])], {}, { name: `${name}.count${idx}` });
    return g.op('Slice', [rows, g.int64([0]), count, g.int64([0])], {}, { name: `${name}.rows${idx}` });
  });
  return { k, takes };
}

/** The gathered parts of every entry (stackSelection's rows of each), as [selected, k, ...rowShape]. */
function stackGathered(c: GraphContext, parts: string[], k: string, rowShape: string, name: string): string {
  const { g } = c;
  const shape = g.op('Concat', [g.int64([-1]), k, rowShape], { axis: 0 }, { name: `${name}.shape` });
  return g.op('Reshape', [g.op('Concat', parts, { axis: 0 }, { name: `${name}.flat` }), shape], {}, { name });
}
