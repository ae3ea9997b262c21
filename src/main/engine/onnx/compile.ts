/**
 * Checkpoint → cached instrumented ONNX model. Weights stream tensor by tensor from safetensors into one external-data
 * file (float32, page-aligned), so the model is never held twice in memory; the graph proto itself stays small.
 * The cache key is the checkpoint's content hash plus the compile options plus the compiler version: change any of
 * them and the model is recompiled, otherwise the cached files are reused.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';
import { type Checkpoint, checkpointHash } from '../model/checkpoint.js';
import { expectedTensors } from '../model/config.js';
import { readTensorAsFloat32 } from '../model/safetensors.js';
import { buildDecoderGraph, type DecoderGraphOptions } from './decoder-graph.js';
import { GraphBuilder } from './graph.js';
import { encodeModel } from './proto.js';

/** Bump when the emitted graph changes meaning, so old caches are not reused. */
export const COMPILER_VERSION = '1';

const WEIGHTS_FILE = 'model.weights';
const ALIGN = 65536; // page alignment that satisfies Windows (64 KiB) as well as Linux/macOS (4 KiB)

export type CompileOptions = DecoderGraphOptions;

export interface CompiledModel {
  dir: string;
  modelPath: string;
  key: string;
  modelHash: string;
  options: CompileOptions;
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
  const canonical = JSON.stringify({ compiler: COMPILER_VERSION, modelHash, normPreserve: options.normPreserve });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 24);
}

/** Compile `ckpt` (or reuse the cache). */
export async function compileCheckpoint(
  ckpt: Checkpoint,
  options: CompileOptions,
  opts: { cacheRoot?: string; onProgress?: (p: CompileProgress) => void } = {},
): Promise<CompiledModel> {
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
    const placements = writeWeights(ckpt, path.join(tmp, WEIGHTS_FILE), opts.onProgress);
    opts.onProgress?.({ phase: 'graph', done: 0, total: 1 });
    const g = new GraphBuilder();
    for (const [name, p] of placements) g.externalInitializer(name, p.dims, WEIGHTS_FILE, p.offset, p.length);
    buildDecoderGraph(ckpt.config, (hfName) => {
      if (!placements.has(hfName)) throw new CliffscopeError('missing-tensor', `tensor ${hfName} was not written`);
      return hfName;
    }, options, g);
    const bytes = encodeModel(g.build({ producerVersion: COMPILER_VERSION, graphName: ckpt.config.architecture }));
    fs.writeFileSync(path.join(tmp, 'model.onnx'), bytes);
    const manifest = {
      key,
      modelHash,
      compilerVersion: COMPILER_VERSION,
      options,
      source: ckpt.dir,
      architecture: ckpt.config.architecture,
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
}

/** Stream every weight the graph reads into one float32 file, one tensor in memory at a time. */
function writeWeights(ckpt: Checkpoint, file: string, onProgress?: (p: CompileProgress) => void): Map<string, Placement> {
  const wanted = expectedTensors(ckpt.config);
  const placements = new Map<string, Placement>();
  const fd = fs.openSync(file, 'w');
  try {
    let offset = 0;
    let done = 0;
    for (const [name, dims] of wanted) {
      const info = ckpt.tensors.get(name);
      if (!info) throw new CliffscopeError('missing-tensor', `${ckpt.dir}: tensor ${name} is missing`, { file: ckpt.dir });
      const data = readTensorAsFloat32(info);
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, offset);
      placements.set(name, { dims, offset, length: data.byteLength });
      offset += data.byteLength;
      onProgress?.({ phase: 'weights', done: ++done, total: wanted.size });
    }
  } finally {
    fs.closeSync(fd);
  }
  return placements;
}
