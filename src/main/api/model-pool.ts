/**
 * Loaded models, kept for the life of the process (the engine host, or one CLI command) so consecutive calls on the
 * same checkpoint do not reload it. Keyed by folder and every option that changes the compiled graph or the session.
 */
import path from 'node:path';
import type { ModelRef } from '../../shared/contract.js';
import { canonicalJson } from '../store/json.js';
import { loadModel, type LoadedModel } from '../engine/runtime/model.js';
import type { PipelineEnv } from '../pipelines/common.js';
import type { ProjectStore } from '../store/project-store.js';
import type { CallContext } from './context.js';

const pool = new Map<string, Promise<LoadedModel>>();

/** What a first load reports while it compiles. */
const PHASES: Record<string, string> = { hash: 'hashing the checkpoint', weights: 'writing weights', graph: 'building the graph' };

function key(ref: ModelRef): string {
  return canonicalJson([path.resolve(ref.dir), ref.normPreserve ?? false, ref.provider ?? 'auto', ref.threads ?? 0, ref.precision ?? {}, ref.cache ? path.resolve(ref.cache) : null]);
}

/** The loaded model for `ref`, loading (and compiling) it on first use; that compile's progress goes to `ctx`. */
export function acquireModel(ref: ModelRef, ctx?: Pick<CallContext, 'progress'>): Promise<LoadedModel> {
  const k = key(ref);
  let entry = pool.get(k);
  if (!entry) {
    entry = loadModel(path.resolve(ref.dir), {
      normPreserve: ref.normPreserve,
      provider: ref.provider,
      threads: ref.threads,
      precision: ref.precision,
      cacheRoot: ref.cache,
      onProgress: ctx ? (p) => ctx.progress(p.done, p.total, PHASES[p.phase]) : undefined,
    });
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

/**
 * What a pipeline run by an API call works with: the call's project and model, its cancel signal, progress and log;
 * another model the run needs (a guard judge) loads with the same runtime choices as `ref`.
 */
export function callPipelineEnv(store: ProjectStore, model: LoadedModel, ref: ModelRef, ctx: CallContext): PipelineEnv {
  return {
    store,
    model,
    signal: ctx.signal,
    onProgress: (done, total, label) => ctx.progress(done, total, label),
    log: (m) => ctx.log('info', m),
    loadModel: (dir) => acquireModel({ ...ref, dir }),
  };
}
