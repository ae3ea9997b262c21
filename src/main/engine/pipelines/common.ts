/**
 * What every pipeline shares: the environment it runs in (project store, loaded model, cancellation, progress),
 * the run lifecycle (start or resume, commit each finished item, finish as done / cancelled / failed), and how a
 * transcript is built from a prompt and a response.
 *
 * Each finished item is committed in its own transaction with the rows it produced, so a run killed at any moment
 * keeps its work; resuming skips the committed keys. A resumed run takes its settings from the store, never from the
 * new command line, so one run never mixes two configurations.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { uncalibratedProbeWarning } from '../analysis/probe.js';
import { CliffscopeError, isCliffscopeError } from '../errors.js';
import { COMPILER_VERSION } from '../onnx/compile.js';
import type { LoadedModel } from '../runtime/model.js';
import type { ProjectStore } from '../store/project-store.js';
import type { JsonObject, JsonValue, ModelRow, NewRun, ProbeRow, RunRow } from '../store/types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TranscriptSource } from './sources.js';

export interface PipelineEnv {
  store: ProjectStore;
  model: LoadedModel;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, label: string) => void;
  log?: (message: string) => void;
}

const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Everything needed to reproduce a run's numbers besides its config: code, runtime and hardware path. */
export function runVersions(model: LoadedModel): JsonObject {
  return {
    cliffscope: pkg.version,
    compiler: COMPILER_VERSION,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common ?? null,
    provider: model.session.provider,
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The model's row in the project (added on first use; same weights + compile options = same row). */
export function registerModel(store: ProjectStore, model: LoadedModel): ModelRow {
  return store.addModel({
    path: model.checkpoint.dir,
    contentHash: model.compiled.modelHash,
    config: model.config as unknown as JsonObject,
    compileOptions: model.compiled.options as unknown as JsonObject,
  });
}

export interface RunHandle {
  run: RunRow;
  /** Keys already committed (non-empty only when resuming). */
  done: Set<string>;
  /** The run's config: the stored one when resuming. */
  config: JsonObject;
}

/**
 * Start a new run, or resume `resume` (refused when it was made with a different model or is of another kind).
 *
 * `validate` checks the run's effective config (the stored one when resuming) against the project and the model —
 * ids that exist, probe widths, layers — before any work. A new run that fails it is never created, so bad input
 * leaves no run behind; a resumed run that fails it is marked failed (not left 'running') and stays resumable.
 */
export function beginRun(env: PipelineEnv, spec: Omit<NewRun, 'modelId' | 'versions'>, resume?: number, validate?: (config: JsonObject) => void): RunHandle {
  if (resume !== undefined) {
    const existing = env.store.getRun(resume);
    if (!existing) throw new CliffscopeError('bad-argument', `run #${resume} does not exist in ${env.store.file}`);
    if (existing.kind !== spec.kind) throw new CliffscopeError('bad-argument', `run #${resume} is a ${existing.kind} run, not ${spec.kind}`);
    registerModel(env.store, env.model);
    const { run, done } = env.store.resumeRun(resume, env.model.compiled.modelHash);
    try {
      validate?.(run.config);
    } catch (e) {
      env.store.finishRun(run.id, 'failed', isCliffscopeError(e) ? e.describe() : String((e as Error)?.message ?? e));
      throw e;
    }
    env.log?.(`resuming run #${run.id}: ${done.size} item(s) already done`);
    return { run, done, config: run.config };
  }
  validate?.((spec.config ?? {}) as JsonObject);
  const model = registerModel(env.store, env.model);
  const run = env.store.startRun({ ...spec, modelId: model.id, versions: runVersions(env.model) });
  return { run, done: new Set(), config: run.config };
}

const warnedProbes = new WeakMap<PipelineEnv, Set<number>>();

/** Validation helpers for `beginRun`: things a config refers to must exist, and probes must fit the model. */
export function requireProbe(env: PipelineEnv, probeId: number): ProbeRow {
  const p = env.store.getProbe(probeId);
  if (!p) {
    const have = env.store.listProbes().map((x) => `#${x.id} ${x.name}`);
    throw new CliffscopeError('bad-argument', `probe #${probeId} does not exist in ${env.store.file}`, {
      hint: have.length ? `probes here: ${have.join(', ')}` : 'train one first (cliffscope probe train)',
    });
  }
  const d = env.model.config.hiddenSize;
  if (p.weights.length !== d) {
    throw new CliffscopeError('bad-argument', `probe #${probeId} has width ${p.weights.length}; this model's residual stream has ${d}`, {
      hint: 'use a probe trained on this model',
    });
  }
  // Every pipeline that reads a stored probe loads it here, so this one check warns trace, heads, select, … (once
  // per probe and environment: pipelines load their probe both to validate and to run).
  const warning = uncalibratedProbeWarning(p);
  const seen = warnedProbes.get(env) ?? new Set<number>();
  if (warning && !seen.has(p.id)) {
    seen.add(p.id);
    warnedProbes.set(env, seen);
    env.log?.(`warning: ${warning}`);
  }
  return p;
}

export function requireDatasetId(env: PipelineEnv, datasetId: number): void {
  if (env.store.getDataset(datasetId)) return;
  const have = env.store.listDatasets().map((x) => `${x.name} (#${x.id})`);
  throw new CliffscopeError('bad-argument', `dataset #${datasetId} does not exist in ${env.store.file}`, {
    hint: have.length ? `datasets here: ${have.join(', ')}` : 'import one with: cliffscope dataset import PROJECT FILE --name NAME',
  });
}

export function requireSource(env: PipelineEnv, source: TranscriptSource): void {
  if (source.kind === 'run') requireRunId(env, source.runId);
  else requireDatasetId(env, source.datasetId);
}

export function requireRunId(env: PipelineEnv, runId: number, kind?: RunRow['kind']): RunRow {
  const run = env.store.getRun(runId);
  if (!run) throw new CliffscopeError('bad-argument', `run #${runId} does not exist in ${env.store.file}`);
  if (kind && run.kind !== kind) throw new CliffscopeError('bad-argument', `run #${runId} is a ${run.kind} run, not ${kind}`);
  return run;
}

/** Run `body`, then mark the run done, cancelled (signal) or failed (with the error), and rethrow failures. */
export async function finishing<T>(env: PipelineEnv, run: RunRow, body: () => Promise<T>): Promise<T> {
  try {
    const result = await body();
    if (env.signal?.aborted) {
      env.store.finishRun(run.id, 'cancelled', 'cancelled by the user; finished items are kept');
      throw new CliffscopeError('cancelled', `run #${run.id} was cancelled; ${env.store.resumableItems(run.id).size} finished item(s) are kept`, {
        hint: `resume it with --resume ${run.id}`,
      });
    }
    env.store.finishRun(run.id, 'done');
    return result;
  } catch (e) {
    const current = env.store.getRun(run.id);
    if (current?.status === 'running') {
      if (env.signal?.aborted) env.store.finishRun(run.id, 'cancelled', 'cancelled by the user; finished items are kept');
      else env.store.finishRun(run.id, 'failed', isCliffscopeError(e) ? e.describe() : String((e as Error)?.stack ?? e));
    }
    throw e;
  }
}

export function checkCancelled(env: PipelineEnv): boolean {
  return env.signal?.aborted ?? false;
}

/** A stored summary for a run (its headline numbers), as the item `summary`. */
export function commitSummary(env: PipelineEnv, runId: number, summary: JsonObject): void {
  // A run resumed after its summary was written (but before it was marked done) already has it.
  if (env.store.resumableItems(runId).has('summary')) return;
  env.store.commitItem(runId, 'summary', () => summary as JsonValue);
}

export function readSummary(store: ProjectStore, runId: number): JsonObject | null {
  const item = store.runItems(runId).find((i) => i.key === 'summary' && i.status === 'done');
  return (item?.payload as JsonObject | undefined) ?? null;
}

/** Float32 vectors inside JSON payloads (features committed per item). */
export function encodeFloats(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}
export function decodeFloats(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** The ids of a chat-templated prompt (with the generation prompt), or the raw text with the tokenizer's BOS. */
export function promptIds(tok: Tokenizer, prompt: string, chat: boolean, system?: string): number[] {
  if (!chat) return tok.encode(prompt, { addSpecialTokens: true });
  return tok.encodeChat([...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content: prompt }]).ids;
}

/**
 * A supplied transcript (prompt + a reasoning response from a dataset) as token ids. Responses saved from R1-style
 * models often start with "<think>" although the template already pre-fills it; the duplicate is dropped so the
 * transcript reads exactly as the model would have produced it.
 */
export function suppliedTranscriptIds(tok: Tokenizer, prompt: string, response: string, chat: boolean): { ids: number[]; promptLength: number } {
  const p = promptIds(tok, prompt, chat);
  let text = response;
  const open = tok.thinkMarkers.open?.text;
  if (open && tok.promptPrefillsThink(p) && text.trimStart().startsWith(open)) text = text.trimStart().slice(open.length);
  return { ids: [...p, ...tok.encode(text, { addSpecialTokens: false })], promptLength: p.length };
}

export function requireTokenizer(model: LoadedModel): Tokenizer {
  if (!model.tokenizer) {
    throw new CliffscopeError('missing-file', `${model.checkpoint.dir} has no tokenizer.json; the pipelines need it to read prompts and answers`, {
      file: model.checkpoint.dir,
    });
  }
  return model.tokenizer;
}

/** Batches of `size` from a list. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
