/**
 * Checkpoint → cached instrumented ONNX model. Weights stream tensor by tensor from safetensors into one external-data
 * file (page-aligned), so the model is never held twice in memory; the graph proto itself stays small. Each layer's
 * q, k and v projections are written stacked as one tensor (fusedQkv), the only tensors not copied as they are.
 * The cache key is the checkpoint's content hash plus the compile options plus the compiler version: change any of
 * them and the model is recompiled, otherwise the cached files are reused.
 *
 * Precision options (the graph's inputs and outputs stay float32 either way, so the runtime does not change):
 *  - weights 'int4': every attention/MLP linear weight is quantised blockwise to 4 bits (quantize.ts) and run by
 *    MatMulNBits with int8 compute (accuracy level 4), the LM head too unless `quantizeLmHead: false`; embeddings
 *    and norms stay float.
 *  - activations 'float16': float weights are stored as float16 (norm weights stay float32) and the graph computes
 *    in float16 — meant for GPU providers; on ONNX Runtime's CPU provider it runs, but no faster.
 *  - kvCache: how the KV cache is stored between steps (decoder-graph.ts, kvStreams). The default (defaultKvCache)
 *    is the compute type, which keeps the graph-vs-reference parity, except under int4 weights: there float16, whose
 *    rounding is far inside int4's own error and which decodes after 4,096 tokens 11–17 % faster (bench/README.md).
 *    'float16' under float32 activations halves the cache's memory, 'int8' (one scale per cached vector) quarters it
 *    and reads it with integer products (lossy: see the README).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';
import { type Checkpoint, checkpointHash } from '../model/checkpoint.js';
import { expectedTensors } from '../model/config.js';
import { float32ToF16, readTensorAsFloat32 } from '../model/safetensors.js';
import { buildDecoderGraph, fusedQkv, type Int4WeightRef, KV_CACHE_TYPES, type KvCacheType } from './decoder-graph.js';
import { GraphBuilder } from './graph.js';
import { DataType, type DataTypeId, encodeModel } from './proto.js';
import { INT4_BLOCK_SIZES, type Int4BlockSize, type Int4Scheme, quantizeInt4 } from './quantize.js';

/** Bump when the emitted graph changes meaning, so old caches are not reused. */
export const COMPILER_VERSION = '8';

const WEIGHTS_FILE = 'model.weights';
const ALIGN = 65536; // page alignment that satisfies Windows (64 KiB) as well as Linux/macOS (4 KiB)

export interface CompileOptions {
  /**
   * After head_scale, rescale each token's multi-head output (all heads' z, before o_proj) back to its norm before
   * scaling (see DecoderGraphOptions).
   */
  normPreserve: boolean;
  /** Linear-layer weight storage: float (default) or 4-bit blocks run by MatMulNBits. */
  weights?: 'float32' | 'int4';
  /** Compute type inside the graph: float32 (default) or float16 (for GPU providers). */
  activations?: 'float32' | 'float16';
  /** KV cache storage: default the compute type; float16 or int8 to cut the cache's memory and read traffic. */
  kvCache?: KvCacheType;
  /** int4: values per quantisation block along K (default 32). Smaller = more accurate, larger file. */
  int4BlockSize?: Int4BlockSize;
  /** int4: per-block zero points (default, more accurate) or a fixed zero point. See quantize.ts. */
  int4Scheme?: Int4Scheme;
  /**
   * int4: MatMulNBits accuracy_level. 4 (default) quantises activations to int8 per block and multiplies with
   * integer dot products: 2-2.5× faster on CPU than 0 (multiply in the activation type), for an error that
   * `cliffscope precision` shows to be small next to the int4 weights' own. GPU providers ignore it.
   */
  int4AccuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * int4: quantise the LM head too (default true). Untied, it is a sixth of a 1.5B model's weights: left in float32
   * it is half of what each int4 decode step reads. False keeps it exact, for a slower, larger model.
   */
  quantizeLmHead?: boolean;
}

export type ResolvedCompileOptions = Required<CompileOptions>;

/**
 * The KV cache storage a compile gets unless it names one: the compute type (exact), but float16 under int4 weights
 * (measured on the 1.5B shape: as fast after 16 tokens, faster after 4,096, error ~1e-4 next to int4's ~1e-2).
 */
export function defaultKvCache(o: Pick<CompileOptions, 'weights' | 'activations'>): KvCacheType {
  return o.activations === 'float16' || o.weights === 'int4' ? 'float16' : 'float32';
}

/** Fill in defaults and check values, so that equal models get equal cache keys. */
export function resolveCompileOptions(o: CompileOptions): ResolvedCompileOptions {
  const r: ResolvedCompileOptions = {
    normPreserve: o.normPreserve,
    weights: o.weights ?? 'float32',
    activations: o.activations ?? 'float32',
    kvCache: o.kvCache ?? defaultKvCache(o),
    int4BlockSize: o.int4BlockSize ?? 32,
    int4Scheme: o.int4Scheme ?? 'asymmetric',
    int4AccuracyLevel: o.int4AccuracyLevel ?? 4,
    quantizeLmHead: o.quantizeLmHead ?? true,
  };
  const bad = (what: string) => new CliffscopeError('bad-argument', `compile option ${what}`);
  if (r.weights !== 'float32' && r.weights !== 'int4') throw bad(`weights must be 'float32' or 'int4', got ${String(r.weights)}`);
  if (r.activations !== 'float32' && r.activations !== 'float16') throw bad(`activations must be 'float32' or 'float16', got ${String(r.activations)}`);
  if (!KV_CACHE_TYPES.includes(r.kvCache)) throw bad(`kvCache must be one of ${KV_CACHE_TYPES.join(', ')}, got ${String(r.kvCache)}`);
  if (!(INT4_BLOCK_SIZES as readonly number[]).includes(r.int4BlockSize)) throw bad(`int4BlockSize must be one of ${INT4_BLOCK_SIZES.join(', ')}`);
  if (r.int4Scheme !== 'asymmetric' && r.int4Scheme !== 'symmetric') throw bad(`int4Scheme must be 'asymmetric' or 'symmetric'`);
  if (![0, 1, 2, 3, 4].includes(r.int4AccuracyLevel)) throw bad('int4AccuracyLevel must be 0..4');
  return r;
}

export interface CompiledModel {
  dir: string;
  modelPath: string;
  key: string;
  modelHash: string;
  options: ResolvedCompileOptions;
  /** True when this call reused an existing cache entry. */
  cached: boolean;
}

export interface CompileProgress {
  phase: 'hash' | 'weights' | 'graph';
  done: number;
  total: number;
}

export function defaultCacheRoot(): string {
  if (process.env.CLIFFSCOPE_CACHE) return process.env.CLIFFSCOPE_CACHE;
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'cliffscope');
}

export function compileKey(modelHash: string, options: CompileOptions): string {
  const r = resolveCompileOptions(options);
  // Precision settings enter the key only when they differ from their defaults, so default entries keep their keys;
  // int4 settings only when the weights are int4 (they change nothing otherwise).
  const canonical: Record<string, unknown> = { compiler: COMPILER_VERSION, modelHash, normPreserve: r.normPreserve };
  if (r.activations !== 'float32') canonical.activations = r.activations;
  if (r.kvCache !== defaultKvCache(r)) canonical.kvCache = r.kvCache;
  if (r.weights === 'int4') {
    canonical.int4 = { blockSize: r.int4BlockSize, scheme: r.int4Scheme, accuracyLevel: r.int4AccuracyLevel, lmHead: r.quantizeLmHead };
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 24);
}

/** Compile `ckpt` (or reuse the cache). */
export async function compileCheckpoint(
  ckpt: Checkpoint,
  compileOptions: CompileOptions,
  opts: { cacheRoot?: string; onProgress?: (p: CompileProgress) => void } = {},
): Promise<CompiledModel> {
  const options = resolveCompileOptions(compileOptions);
  const cacheRoot = opts.cacheRoot ?? defaultCacheRoot();
  const compiledRoot = path.join(cacheRoot, 'compiled');
  fs.mkdirSync(compiledRoot, { recursive: true });

  opts.onProgress?.({ phase: 'hash', done: 0, total: 1 });
  const modelHash = await checkpointHash(ckpt, { cacheFile: path.join(cacheRoot, 'hashes.json') });
  opts.onProgress?.({ phase: 'hash', done: 1, total: 1 });

  const key = compileKey(modelHash, options);
  const dir = path.join(compiledRoot, key);
  const result = (cached: boolean): CompiledModel => ({
    dir,
    modelPath: path.join(dir, 'model.onnx'),
    key,
    modelHash,
    options,
    cached,
  });
  // manifest.json is written last, so its presence means the entry is complete.
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return result(true);

  const tmp = path.join(compiledRoot, `${key}.tmp-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const { placements, int4 } = writeWeights(ckpt, path.join(tmp, WEIGHTS_FILE), options, opts.onProgress);
    opts.onProgress?.({ phase: 'graph', done: 0, total: 1 });
    const g = new GraphBuilder();
    for (const [name, p] of placements) g.externalInitializer(name, p.dims, WEIGHTS_FILE, p.offset, p.length, p.dataType);
    const graphOptions = {
      normPreserve: options.normPreserve,
      activations: options.activations,
      kvCache: options.kvCache,
      int4Weight: (hfName: string) => int4.get(hfName),
      int4AccuracyLevel: options.int4AccuracyLevel,
    };
    buildDecoderGraph(ckpt.config, (hfName) => {
      if (!placements.has(hfName)) throw new CliffscopeError('missing-tensor', `tensor ${hfName} was not written`);
      return hfName;
    }, graphOptions, g);
    const bytes = encodeModel(g.build({ producerVersion: COMPILER_VERSION, graphName: ckpt.config.architecture }));
    fs.writeFileSync(path.join(tmp, 'model.onnx'), bytes);
    const manifest = {
      key,
      modelHash,
      compilerVersion: COMPILER_VERSION,
      options,
      source: ckpt.dir,
      architecture: ckpt.config.architecture,
      // Bytes of tensor data in the weights file (the file itself is larger: each tensor starts on a 64 KiB boundary).
      tensorBytes: [...placements.values()].reduce((a, p) => a + p.length, 0),
      createdAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2));
    opts.onProgress?.({ phase: 'graph', done: 1, total: 1 });
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same entry first: use theirs.
      if (!fs.existsSync(path.join(dir, 'manifest.json'))) throw e;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return result(false);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

interface Placement {
  dims: number[];
  offset: number;
  length: number;
  dataType: DataTypeId;
}

const LINEAR = /\.(qkv|o|gate|up|down)_proj\.weight$/;
const NORM = /norm\.weight$/;
const EMBED = 'model.embed_tokens.weight';

/**
 * Stream every weight the graph reads into one file, one tensor in memory at a time: float32 or float16 as the
 * activations ask (norm weights always float32: the graph normalises in float32), linear weights as int4 blocks
 * when asked. Returns the placements by initializer name and the int4 form of each quantised linear by HF name.
 */
function writeWeights(
  ckpt: Checkpoint,
  file: string,
  options: ResolvedCompileOptions,
  onProgress?: (p: CompileProgress) => void,
): { placements: Map<string, Placement>; int4: Map<string, Int4WeightRef> } {
  const wanted = expectedTensors(ckpt.config);
  const placements = new Map<string, Placement>();
  const int4 = new Map<string, Int4WeightRef>();
  const half = options.activations === 'float16';
  const floatType = half ? DataType.FLOAT16 : DataType.FLOAT;
  const fd = fs.openSync(file, 'w');
  let offset = 0;
  const put = (name: string, dims: number[], dataType: DataTypeId, data: ArrayBufferView) => {
    offset = Math.ceil(offset / ALIGN) * ALIGN;
    fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, offset);
    placements.set(name, { dims, offset, length: data.byteLength, dataType });
    offset += data.byteLength;
    return name;
  };
  const toHalf = (name: string, data: Float32Array) => {
    const h = float32ToF16(data);
    for (let i = 0; i < h.length; i++) {
      if ((h[i]! & 0x7c00) === 0x7c00 && Number.isFinite(data[i]!)) {
        throw new CliffscopeError('unsupported-dtype', `tensor ${name} holds ${data[i]}, beyond float16's range (±65504)`, {
          file: ckpt.dir,
          hint: 'compile this model with float32 activations',
        });
      }
    }
    return h;
  };
  // MatMulNBits wants [N, K] = [out, in], exactly the HF layout; scales in the activation type.
  const putInt4 = (prefix: string, data: Float32Array, dims: number[]): Int4WeightRef => {
    const [N, K] = dims as [number, number];
    const q = quantizeInt4(data, N, K, { blockSize: options.int4BlockSize, scheme: options.int4Scheme, float16Scales: half });
    return {
      packed: put(`${prefix}.int4`, [N, q.blocks, q.blockSize / 2], DataType.UINT8, q.packed),
      scales: put(`${prefix}.scales`, [N * q.blocks], floatType, half ? float32ToF16(q.scales) : q.scales),
      zeroPoints: q.zeroPoints ? put(`${prefix}.zero_points`, [q.zeroPoints.length], DataType.UINT8, q.zeroPoints) : null,
      N,
      K,
      blockSize: q.blockSize,
    };
  };
  const quantizeHead = options.weights === 'int4' && options.quantizeLmHead;
  const read = (name: string) => {
    const info = ckpt.tensors.get(name);
    if (!info) throw new CliffscopeError('missing-tensor', `${ckpt.dir}: tensor ${name} is missing`, { file: ckpt.dir });
    return readTensorAsFloat32(info);
  };
  // q, k and v are written as one stacked tensor per layer (fusedQkv), under the name of the first part met.
  const stacked = new Map<string, { name: string; parts: string[] }>();
  for (let i = 0; i < ckpt.config.numLayers; i++) {
    const f = fusedQkv(i);
    stacked.set(f.parts[0]!.weight, { name: f.weight, parts: f.parts.map((x) => x.weight) });
    stacked.set(f.parts[0]!.bias, { name: f.bias, parts: f.parts.map((x) => x.bias) });
  }
  const stackedParts = new Set([...stacked.values()].flatMap((x) => x.parts));
  try {
    let done = 0;
    for (const [hfName, hfDims] of wanted) {
      const fused = stacked.get(hfName);
      if (stackedParts.has(hfName) && !fused) continue; // k and v: written with q
      let name = hfName;
      let dims = hfDims;
      let data: Float32Array;
      if (fused) {
        const parts = fused.parts.map(read);
        data = new Float32Array(parts.reduce((n, x) => n + x.length, 0));
        let at = 0;
        for (const x of parts) {
          data.set(x, at);
          at += x.length;
        }
        name = fused.name;
        dims = hfDims.length === 1 ? [data.length] : [data.length / hfDims[1]!, hfDims[1]!];
      } else {
        data = read(hfName);
      }
      if (options.weights === 'int4' && (LINEAR.test(name) || (quantizeHead && name === 'lm_head.weight'))) {
        int4.set(name, putInt4(name, data, dims));
      } else if (half && !NORM.test(name)) {
        put(name, dims, DataType.FLOAT16, toHalf(name, data));
      } else {
        put(name, dims, DataType.FLOAT, data);
      }
      // A tied LM head reads the embedding table; quantised, it needs its own copy (the gather needs float rows).
      if (quantizeHead && name === EMBED && ckpt.config.tieWordEmbeddings) int4.set(EMBED, putInt4('lm_head.weight', data, dims));
      done += fused ? fused.parts.length : 1;
      onProgress?.({ phase: 'weights', done, total: wanted.size });
    }
  } finally {
    fs.closeSync(fd);
  }
  return { placements, int4 };
}
