/**
 * Hugging Face `config.json` → one normalised description of a decoder, the only shape of model the rest of the engine
 * knows. Four HF architectures map onto it; they differ only in a few flags (biases, q/k norm, rope scaling, window).
 */
import { CliffscopeError } from '../errors.js';

export type Family = 'llama' | 'qwen2' | 'qwen3' | 'mistral';

export const SUPPORTED_ARCHITECTURES: Record<string, Family> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  MistralForCausalLM: 'mistral',
};

/** Rotary scaling variants we reproduce exactly. */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  /** The HF class name, e.g. `Qwen2ForCausalLM`. */
  architecture: string;
  family: Family;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2, Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias). */
  oBias: boolean;
  /** gate/up/down projections carry a bias (Llama with mlp_bias). */
  mlpBias: boolean;
  /** Per-head RMSNorm on q and k before rotary (Qwen3). */
  qkNorm: boolean;
  /** Keys older than this many positions are masked (Mistral); null = full causal attention. */
  slidingWindow: number | null;
  /** dtype the checkpoint declares (`torch_dtype`), informational: tensors carry their own. */
  torchDtype: string | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

type Json = Record<string, unknown>;

function num(raw: Json, key: string, file: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new CliffscopeError('bad-config', `${file}: "${key}" is missing`, {
      file,
      hint: `config.json of a ${String(raw.architectures ?? 'causal LM')} must give "${key}"`,
    });
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new CliffscopeError('bad-config', `${file}: "${key}" must be a number, got ${JSON.stringify(v)}`, { file });
  }
  return v;
}

/**
 * Largest sizes accepted. Real checkpoints sit far below (Llama 3.1 405B: 126 layers, hidden 16384, 128 heads,
 * vocabulary 128256); beyond these a config.json is damaged or hostile, and building per-layer structures from it
 * would take minutes and gigabytes before any tensor is looked at.
 */
export const CONFIG_LIMITS = {
  num_hidden_layers: 1024,
  hidden_size: 1 << 17,
  intermediate_size: 1 << 20,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 2048,
  vocab_size: 1 << 23,
  max_position_embeddings: 1 << 24,
  original_max_position_embeddings: 1 << 24,
  sliding_window: 1 << 24,
} as const;

function positiveInt(raw: Json, key: keyof typeof CONFIG_LIMITS, file: string, fallback?: number): number {
  const v = num(raw, key, file, fallback);
  const max = CONFIG_LIMITS[key];
  if (!Number.isInteger(v) || v <= 0 || v > max) {
    throw new CliffscopeError('bad-config', `${file}: "${key}" must be a positive integer of at most ${max}, got ${v}`, {
      file,
      hint: 'config.json is damaged or not from a real checkpoint; re-download it',
    });
  }
  return v;
}

/**
 * A real number within (min, max] (or [min, max] with `closedMin`). Values outside their meaningful range make the
 * forward pass produce NaN or meaningless numbers (rms_norm_eps 0 divides by zero on a zero row, 1e300 overflows,
 * rope_theta 0 gives infinite frequencies), so they are refused here rather than noticed as NaN logits later.
 */
function realInRange(
  raw: Json,
  key: string,
  file: string,
  range: { min: number; max: number; closedMin?: boolean; why: string },
  fallback?: number,
): number {
  const v = num(raw, key, file, fallback);
  const above = range.closedMin ? v >= range.min : v > range.min;
  if (!above || v > range.max) {
    const lo = range.closedMin ? `[${range.min}` : `(${range.min}`;
    throw new CliffscopeError('bad-config', `${file}: "${key}" is ${v}, outside its meaningful range ${lo}, ${range.max}]`, {
      file,
      hint: `${range.why}; fix config.json (or re-download the checkpoint)`,
    });
  }
  return v;
}

/** Token ids (one or a list) that must each be a non-negative integer below the vocabulary size. */
export function tokenIds(v: unknown, key: string, file: string, vocabSize: number): number[] {
  const ids = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
  for (const id of ids) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new CliffscopeError('bad-config', `${file}: "${key}" holds ${JSON.stringify(id)}, which is not a token id of this model (vocab_size ${vocabSize})`, {
        file,
        hint: `every id in "${key}" must be an integer in 0..${vocabSize - 1}; generation would never stop on an id the model cannot produce`,
      });
    }
  }
  return ids as number[];
}

function parseRopeScaling(raw: Json, file: string): RopeScaling {
  const rs = (raw.rope_scaling ?? null) as Json | null;
  if (rs === null) return { type: 'default' };
  if (typeof rs !== 'object') {
    throw new CliffscopeError('bad-config', `${file}: "rope_scaling" must be an object or null`, { file });
  }
  const type = String(rs.rope_type ?? rs.type ?? 'default');
  if (type === 'default') return { type: 'default' };
  const factor = () => realInRange(rs, 'factor', file, { min: 0, max: 1e6, why: 'rope_scaling.factor divides the rotary frequencies' });
  if (type === 'linear') return { type: 'linear', factor: factor() };
  if (type === 'llama3') {
    const why = 'llama3 rope scaling blends frequencies between low_freq_factor and high_freq_factor';
    const scaling = {
      type: 'llama3' as const,
      factor: factor(),
      lowFreqFactor: realInRange(rs, 'low_freq_factor', file, { min: 0, max: 1e6, why }),
      highFreqFactor: realInRange(rs, 'high_freq_factor', file, { min: 0, max: 1e6, why }),
      originalMaxPositionEmbeddings: positiveInt(rs, 'original_max_position_embeddings', file),
    };
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
      throw new CliffscopeError('bad-config', `${file}: rope_scaling high_freq_factor (${scaling.highFreqFactor}) must be above low_freq_factor (${scaling.lowFreqFactor})`, {
        file,
        hint: why,
      });
    }
    return scaling;
  }
  throw new CliffscopeError('bad-config', `${file}: rope_scaling type "${type}" is not supported`, {
    file,
    hint: 'supported rope_scaling types: default (null), linear, llama3',
  });
}

/** Validate and normalise a parsed config.json. `file` is used in error messages only. */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CliffscopeError('bad-config', `${file}: expected a JSON object`, { file });
  }
  const cfg = raw as Json;
  const archs = Array.isArray(cfg.architectures) ? cfg.architectures.map(String) : [];
  const architecture = archs.find((a) => a in SUPPORTED_ARCHITECTURES);
  if (!architecture) {
    const named = archs.length ? archs.join(', ') : `model_type "${String(cfg.model_type ?? '?')}"`;
    throw new CliffscopeError('unsupported-architecture', `${file}: architecture ${named} is not supported`, {
      file,
      hint: `Cliffscope compiles ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')}`,
    });
  }
  const family = SUPPORTED_ARCHITECTURES[architecture]!;

  const hiddenSize = positiveInt(cfg, 'hidden_size', file);
  const numHeads = positiveInt(cfg, 'num_attention_heads', file);
  const numKvHeads = positiveInt(cfg, 'num_key_value_heads', file, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new CliffscopeError(
      'bad-config',
      `${file}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`,
      { file },
    );
  }
  // Qwen3 (and some Llama variants) set head_dim independently of hidden_size / heads.
  const headDim = positiveInt(cfg, 'head_dim', file, hiddenSize / numHeads);
  if (headDim % 2 !== 0) {
    throw new CliffscopeError('bad-config', `${file}: head_dim ${headDim} must be even for rotary embeddings`, { file });
  }

  const attentionBias = cfg.attention_bias === true;
  const useSliding = family === 'mistral' || cfg.use_sliding_window === true;
  // A missing, null or non-positive window means none, as in transformers.
  const window = cfg.sliding_window;
  const slidingWindow = useSliding && typeof window === 'number' && window > 0 ? positiveInt(cfg, 'sliding_window', file) : null;
  const vocabSize = positiveInt(cfg, 'vocab_size', file);

  return {
    architecture,
    family,
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size', file),
    numLayers: positiveInt(cfg, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings: positiveInt(cfg, 'max_position_embeddings', file, 2048),
    rmsNormEps: realInRange(cfg, 'rms_norm_eps', file, { min: 0, max: 1, why: 'rms_norm_eps keeps RMSNorm from dividing by zero; real models use 1e-5 or 1e-6' }, 1e-6),
    ropeTheta: realInRange(cfg, 'rope_theta', file, { min: 1, max: 1e12, why: 'rope_theta is the rotary base; real models use 1e4 to 1e7' }, 10000),
    ropeScaling: parseRopeScaling(cfg, file),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    qkvBias: family === 'qwen2' || attentionBias,
    oBias: family !== 'qwen2' && attentionBias,
    mlpBias: cfg.mlp_bias === true,
    qkNorm: family === 'qwen3',
    slidingWindow,
    torchDtype: typeof cfg.torch_dtype === 'string' ? cfg.torch_dtype : null,
    bosTokenId: tokenIds(cfg.bos_token_id, 'bos_token_id', file, vocabSize)[0] ?? null,
    eosTokenIds: tokenIds(cfg.eos_token_id, 'eos_token_id', file, vocabSize),
  };
}

/**
 * Every tensor a checkpoint of this config must hold, with its HF name and shape ([out, in] for linear layers).
 * The compiler, the shape check and the reference forward pass all read weights by these names.
 */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const t = new Map<string, number[]>();
  t.set('model.embed_tokens.weight', [c.vocabSize, d]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    t.set(`${p}.input_layernorm.weight`, [d]);
    t.set(`${p}.self_attn.q_proj.weight`, [q, d]);
    t.set(`${p}.self_attn.k_proj.weight`, [kv, d]);
    t.set(`${p}.self_attn.v_proj.weight`, [kv, d]);
    if (c.qkvBias) {
      t.set(`${p}.self_attn.q_proj.bias`, [q]);
      t.set(`${p}.self_attn.k_proj.bias`, [kv]);
      t.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    if (c.qkNorm) {
      t.set(`${p}.self_attn.q_norm.weight`, [c.headDim]);
      t.set(`${p}.self_attn.k_norm.weight`, [c.headDim]);
    }
    t.set(`${p}.self_attn.o_proj.weight`, [d, q]);
    if (c.oBias) t.set(`${p}.self_attn.o_proj.bias`, [d]);
    t.set(`${p}.post_attention_layernorm.weight`, [d]);
    t.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, d]);
    t.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, d]);
    t.set(`${p}.mlp.down_proj.weight`, [d, c.intermediateSize]);
    if (c.mlpBias) {
      t.set(`${p}.mlp.gate_proj.bias`, [c.intermediateSize]);
      t.set(`${p}.mlp.up_proj.bias`, [c.intermediateSize]);
      t.set(`${p}.mlp.down_proj.bias`, [d]);
    }
  }
  t.set('model.norm.weight', [d]);
  if (!c.tieWordEmbeddings) t.set('lm_head.weight', [c.vocabSize, d]);
  return t;
}

/**
 * Rotary inverse frequencies, one per pair of dimensions (head_dim / 2), including rope scaling. Mirrors
 * transformers' `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters` and
 * `_compute_llama3_parameters`.
 */
export function ropeInverseFrequencies(c: ModelConfig): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.pow(c.ropeTheta, (2 * j) / c.headDim);
  const rs = c.ropeScaling;
  if (rs.type === 'linear') {
    for (let j = 0; j < half; j++) inv[j] = inv[j]! / rs.factor;
  } else if (rs.type === 'llama3') {
    const lowWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
    for (let j = 0; j < half; j++) {
      const f = inv[j]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) {
        inv[j] = f / rs.factor;
      } else if (wavelen >= highWavelen) {
        // Between the two thresholds: blend scaled and unscaled frequencies smoothly.
        const smooth =
          (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        inv[j] = (1 - smooth) * (f / rs.factor) + smooth * f;
      }
    }
  }
  // transformers computes these in float32; round the same way so angles agree with it at long positions.
  for (let j = 0; j < half; j++) inv[j] = Math.fround(inv[j]!);
  return inv;
}
