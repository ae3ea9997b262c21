/**
 * Benchmark checkpoints: Qwen2ForCausalLM folders with seeded random BF16 weights, generated on demand and cached by
 * shape + seed. Never committed; nothing here needs a tokenizer (the bench feeds token ids).
 *
 * Weights are drawn as N(0, 0.02²) (norm weights N(1, 0.02²)) by looking up a table of 65,536 normal quantiles,
 * already rounded to bfloat16, with two 16-bit indices from each 32-bit mulberry32 draw. That makes generating the
 * 1.78 B values of the full shape take seconds instead of minutes, and the values are still a fine stand-in for a
 * real model's: same dtype, same shapes, same magnitude, no structure a kernel could exploit.
 *
 * The shards are written one at a time, so only one shard's tensors are ever in memory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { float32ToBf16, writeSafetensors, type TensorToWrite } from '../src/main/engine/model/safetensors.js';

/** Bump when generated checkpoints change, so stale caches are not reused. */
const GENERATOR_VERSION = 1;
const COMPLETE_MARKER = '.bench-complete';

export interface BenchShape {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  /** Upper bound on one shard's bytes (a tensor bigger than this gets a shard of its own). */
  shardBytes: number;
}

/** DeepSeek-R1-Distill-Qwen-1.5B's shape. */
export const FULL_SHAPE: BenchShape = {
  name: 'deepseek-r1-distill-qwen-1.5b-shape',
  hidden: 1536,
  layers: 28,
  heads: 12,
  kvHeads: 2,
  headDim: 128,
  intermediate: 8960,
  vocab: 151936,
  maxPositions: 131072,
  shardBytes: 1 << 30,
};

/** Small enough that generation, compiles and every measurement fit in well under a minute. */
export const QUICK_SHAPE: BenchShape = {
  name: 'quick',
  hidden: 512,
  layers: 8,
  heads: 8,
  kvHeads: 2,
  headDim: 64,
  intermediate: 1536,
  vocab: 32000,
  maxPositions: 4096,
  shardBytes: 32 << 20,
};

interface TensorSpec {
  name: string;
  shape: number[];
  kind: 'weight' | 'bias' | 'norm';
}

/** Every tensor of the checkpoint, named and ordered as transformers' Qwen2 state_dict. */
export function tensorSpecs(s: BenchShape): TensorSpec[] {
  const d = s.hidden;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, d], kind: 'weight' }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, d], kind: 'weight' },
      { name: `${p}.self_attn.q_proj.bias`, shape: [q], kind: 'bias' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, d], kind: 'weight' },
      { name: `${p}.self_attn.k_proj.bias`, shape: [kv], kind: 'bias' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, d], kind: 'weight' },
      { name: `${p}.self_attn.v_proj.bias`, shape: [kv], kind: 'bias' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [d, q], kind: 'weight' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [s.intermediate, d], kind: 'weight' },
      { name: `${p}.mlp.up_proj.weight`, shape: [s.intermediate, d], kind: 'weight' },
      { name: `${p}.mlp.down_proj.weight`, shape: [d, s.intermediate], kind: 'weight' },
      { name: `${p}.input_layernorm.weight`, shape: [d], kind: 'norm' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [d], kind: 'norm' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [d], kind: 'norm' });
  out.push({ name: 'lm_head.weight', shape: [s.vocab, d], kind: 'weight' });
  return out;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Parameter counts that the throughput bound and the memory target are computed from. */
export function paramCounts(s: BenchShape) {
  const d = s.hidden;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const perLayerLinear = q * d + 2 * kv * d + d * q + 3 * s.intermediate * d;
  const linear = s.layers * perLayerLinear;
  const embed = s.vocab * d;
  const lmHead = s.vocab * d;
  const total = tensorSpecs(s).reduce((a, t) => a + numel(t.shape), 0);
  return {
    total,
    /** q, k, v, o, gate, up, down over all layers. */
    linear,
    embed,
    lmHead,
    /** Everything else: biases and norms. */
    other: total - linear - embed - lmHead,
    /** Weights one decode step reads in full: every linear layer plus the LM head (embedding rows are negligible). */
    readPerToken: linear + lmHead,
  };
}

/** KV-cache bytes per token of one sequence, float32. */
export function kvBytesPerToken(s: BenchShape): number {
  return 2 * s.layers * s.kvHeads * s.headDim * 4;
}

export function configJson(s: BenchShape): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    hidden_act: 'silu',
    vocab_size: s.vocab,
    max_position_embeddings: s.maxPositions,
    max_window_layers: s.layers,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    rope_scaling: null,
    sliding_window: 4096,
    use_sliding_window: false,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    bos_token_id: 0,
    eos_token_id: 1,
    initializer_range: 0.02,
    use_cache: true,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Seeded values.

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const dd = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo || p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(p < lo ? p : 1 - p));
    const x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((dd[0]! * q + dd[1]!) * q + dd[2]!) * q + dd[3]!) * q + 1);
    return p < lo ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** bfloat16 bits of mean + std · z for 65,536 equally likely quantiles z of the standard normal. */
function bf16NormalTable(mean: number, std: number): Uint16Array {
  const values = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) values[i] = mean + std * normalQuantile((i + 0.5) / 65536);
  return float32ToBf16(values);
}

/** Fill `out` with table entries chosen by a mulberry32 stream started at `seed` (two 16-bit draws per step). */
function fillFromTable(out: Uint16Array, table: Uint16Array, seed: number): void {
  let a = seed >>> 0;
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    out[i] = table[t & 0xffff]!;
    if (i + 1 < n) out[i + 1] = table[t >>> 16]!;
  }
}

/** A per-tensor seed from the run seed and the tensor's name, so values do not depend on how tensors are sharded. */
function tensorSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}:${name}`).digest().readUInt32LE(0);
}

// ---------------------------------------------------------------------------------------------------------------

export function checkpointKey(shape: BenchShape, seed: number): string {
  const canonical = JSON.stringify({ generator: GENERATOR_VERSION, shape, seed });
  return `${shape.name}-${createHash('sha256').update(canonical).digest('hex').slice(0, 12)}`;
}

export interface GeneratedCheckpoint {
  dir: string;
  /** False when an earlier run's complete folder was reused. */
  generated: boolean;
  seconds: number;
  bytes: number;
  shards: number;
}

/**
 * The checkpoint folder for `shape` and `seed` under `root`, generating it unless a complete one is already there.
 * A folder without the completion marker (an interrupted run) is deleted and regenerated.
 */
export function ensureCheckpoint(root: string, shape: BenchShape, seed: number, log: (msg: string) => void): GeneratedCheckpoint {
  const dir = path.join(root, 'checkpoints', checkpointKey(shape, seed));
  const specs = tensorSpecs(shape);
  const plan = planShards(specs, shape.shardBytes);
  const bytes = specs.reduce((a, t) => a + numel(t.shape) * 2, 0);
  if (fs.existsSync(path.join(dir, COMPLETE_MARKER))) return { dir, generated: false, seconds: 0, bytes, shards: plan.length };

  const t0 = performance.now();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson(shape), null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: 1 }, null, 2) + '\n');

  const weightTable = bf16NormalTable(0, 0.02);
  const normTable = bf16NormalTable(1, 0.02);
  const weightMap: Record<string, string> = {};
  plan.forEach((members, s) => {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(plan.length).padStart(5, '0')}.safetensors`;
    const tensors: TensorToWrite[] = members.map((t) => {
      const data = new Uint16Array(numel(t.shape));
      fillFromTable(data, t.kind === 'norm' ? normTable : weightTable, tensorSeed(seed, t.name));
      weightMap[t.name] = file;
      return { name: t.name, dtype: 'BF16', shape: t.shape, data };
    });
    writeSafetensors(path.join(dir, file), tensors, { format: 'pt' });
    log(`checkpoint: wrote shard ${s + 1}/${plan.length} (${members.length} tensors)`);
  });
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: bytes }, weight_map: weightMap }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(dir, COMPLETE_MARKER), new Date().toISOString() + '\n');
  return { dir, generated: true, seconds: (performance.now() - t0) / 1000, bytes, shards: plan.length };
}

/** Group tensors, in order, into shards of at most `maxBytes` BF16 bytes (a bigger tensor gets its own). */
function planShards(specs: TensorSpec[], maxBytes: number): TensorSpec[][] {
  const shards: TensorSpec[][] = [];
  let current: TensorSpec[] = [];
  let size = 0;
  for (const t of specs) {
    const b = numel(t.shape) * 2;
    if (current.length > 0 && size + b > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += b;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}
