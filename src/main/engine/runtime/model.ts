/**
 * Load a Hugging Face checkpoint folder as a ready-to-run model: validate it, compile (or reuse) the instrumented
 * graph, open an ONNX Runtime session, and load the tokenizer when the folder has one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Checkpoint, openCheckpoint } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import { type CompiledModel, type CompileOptions, type CompileProgress, compileCheckpoint } from '../onnx/compile.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { DecoderSession, type SessionOptions } from './decoder-session.js';
import { planProviders } from './providers.js';

export interface LoadOptions extends SessionOptions {
  normPreserve?: boolean;
  /** Weight/activation precision of the compiled graph (int4 weights, float16 activations); default float32. */
  precision?: Omit<CompileOptions, 'normPreserve'>;
  cacheRoot?: string;
  onProgress?: (p: CompileProgress) => void;
}

export interface LoadedModel {
  checkpoint: Checkpoint;
  config: ModelConfig;
  compiled: CompiledModel;
  session: DecoderSession;
  /** Null when the folder has no tokenizer.json (token ids only). */
  tokenizer: Tokenizer | null;
}

/**
 * Intra-op threads when the user does not choose: one for tiny models (below ~20M parameters a step is microseconds
 * of work and thread hand-offs dominate: measured 2–3× faster on the demo model), else ONNX Runtime's default of
 * one thread per physical core.
 */
export function defaultThreads(checkpoint: Checkpoint): number | undefined {
  let parameters = 0;
  for (const t of checkpoint.tensors.values()) parameters += t.shape.reduce((a, b) => a * b, 1);
  return parameters < 20_000_000 ? 1 : undefined;
}

export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const checkpoint = openCheckpoint(dir);
  // GPU providers run float16 activations and weights unless asked otherwise; the CPU stays float32 (ONNX Runtime's
  // CPU kernels would only cast float16 back to float32). An explicit provider that cannot run here fails now,
  // before anything is compiled.
  const gpuFirst = planProviders(opts.provider ?? 'auto').candidates[0] !== 'cpu';
  const options = (activations: 'float32' | 'float16'): CompileOptions => ({
    normPreserve: opts.normPreserve ?? false,
    ...opts.precision,
    activations: opts.precision?.activations ?? activations,
  });
  const sessionOptions = { threads: opts.threads ?? defaultThreads(checkpoint), provider: opts.provider };
  let compiled = await compileCheckpoint(checkpoint, options(gpuFirst ? 'float16' : 'float32'), { cacheRoot: opts.cacheRoot, onProgress: opts.onProgress });
  let session = await DecoderSession.create(compiled.modelPath, checkpoint.config, sessionOptions);
  if (session.provider === 'cpu' && compiled.options.activations === 'float16' && opts.precision?.activations === undefined) {
    // `auto`'s GPU provider did not load after all: use the float32 graph the CPU is built for.
    const notes = session.providerNotes;
    await session.release();
    compiled = await compileCheckpoint(checkpoint, options('float32'), { cacheRoot: opts.cacheRoot, onProgress: opts.onProgress });
    session = await DecoderSession.create(compiled.modelPath, checkpoint.config, { ...sessionOptions, provider: 'cpu' });
    session.providerNotes.push(...notes, 'compiled float32 for the CPU');
  }
  const tokenizer = fs.existsSync(path.join(dir, 'tokenizer.json')) ? await Tokenizer.fromDir(dir) : null;
  return { checkpoint, config: checkpoint.config, compiled, session, tokenizer };
}
