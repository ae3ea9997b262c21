/**
 * Loaded models, kept for the life of the engine host so consecutive calls on the same checkpoint do not reload it.
 * Keyed by folder and the options that change the compiled graph or the session.
 */
import path from 'node:path';
import type { ModelRef } from '../../shared/contract.js';
import type { CompileProgress } from '../engine/onnx/compile.js';
import { loadModel, type LoadedModel } from '../engine/runtime/model.js';

const pool = new Map<string, Promise<LoadedModel>>();

function key(ref: ModelRef): string {
  return JSON.stringify([path.resolve(ref.dir), ref.normPreserve ?? false, ref.provider ?? 'auto', ref.threads ?? 0]);
}

/** The loaded model for `ref` (loading and compiling it on first use; `onProgress` sees that compile). */
export function acquireModel(ref: ModelRef, cacheRoot?: string, onProgress?: (p: CompileProgress) => void): Promise<LoadedModel> {
  const k = key(ref);
  let entry = pool.get(k);
  if (!entry) {
    entry = loadModel(path.resolve(ref.dir), { normPreserve: ref.normPreserve, provider: ref.provider, threads: ref.threads, cacheRoot, onProgress });
    // A failed load is not cached: the user may fix the folder and try again.
    entry.catch(() => pool.delete(k));
    pool.set(k, entry);
  }
  return entry;
}

export async function releaseAllModels(): Promise<void> {
  const entries = [...pool.values()];
  pool.clear();
  for (const e of entries) await e.then((m) => m.session.release()).catch(() => undefined);
}
