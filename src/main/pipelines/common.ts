/**
 * What every pipeline shares: the environment it runs in (project store, loaded model, cancellation, progress) and
 * the run lifecycle (start or resume, commit each finished item, store the summary, finish as done / cancelled /
 * failed).
 *
 * Each finished item is committed in its own transaction with the rows it produced, so a run killed at any moment
 * keeps its work; resuming skips the committed keys. A resumed run takes its settings from the store, never from the
 * new command line, so one run never mixes two configurations.
 */
import * as ort from 'onnxruntime-node';
import type { z } from 'zod';
import { uncalibratedProbeWarning } from '../engine/analysis/probe.js';
import { CliffscopeError, isCliffscopeError } from '../engine/errors.js';
import { COMPILER_VERSION } from '../engine/onnx/compile.js';
import type { LoadedModel } from '../engine/runtime/model.js';
import type { ProjectStore } from '../store/project-store.js';
import { jsonSafe } from '../store/tabular.js';
import type { JsonObject, ModelRow, ProbeRow, RunKind, RunRow } from '../store/types.js';
import type { Tokenizer } from '../engine/tokenizer/tokenizer.js';
import { readStoredConfig } from '../../shared/runs/spec.js';
import type { TranscriptSource } from '../../shared/values.js';
import pkg from '../../../package.json' with { type: 'json' };

export interface PipelineEnv {
  store: ProjectStore;
  model: LoadedModel;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, label: string) => void;
  log?: (message: string) => void;
  /** Another model a run needs besides its own (the guard judge's); the application layer keeps them loaded. */
  loadModel?: (dir: string) => Promise<LoadedModel>;
}

/** A resume, or a name and tags for the run; for one shard of a sharded run, its uid and its share of the items. */
export interface RunOptions {
  resume?: number;
  name?: string;
  tags?: readonly string[];
  /** The run's uid (every shard of a sharded run carries its run's); default a new random one. */
  uid?: string;
  /**
   * The keys of this process's share of the items (a shard, docs/cluster): the others are left alone, and so are
   * the run's aggregates (summary, averaged maps, sweep metrics, the selection), which the merge computes from all
   * items. Absent: every item, then the aggregates.
   */
  shard?: ReadonlySet<string>;
}

/** What the lifecycle needs of a run kind's spec (src/shared/runs/): its kind, its stored-config schema, its links. */
export interface StoredKind<Cfg, Sum> {
  kind: RunKind;
  config: z.ZodType<Cfg>;
  fromStored?(stored: Record<string, unknown>): Record<string, unknown>;
  summary: z.ZodType<Sum>;
  links(config: Cfg): { datasetId?: number | null; parentRunId?: number | null };
}


/** Everything needed to reproduce a run's numbers besides its config: code, runtime and hardware path. */
export function runVersions(model: LoadedModel): JsonObject {
  return {
    cliffscope: pkg.version,
    compiler: COMPILER_VERSION,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common ?? null,
    provider: model.session.provider,
    providerNotes: [...model.session.providerNotes],
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The model's row in the project (added on first use; same weights + compile options = same row). */
export function registerModel(store: ProjectStore, model: LoadedModel): ModelRow {
  return store.models.add({
    path: model.checkpoint.dir,
    contentHash: model.compiled.modelHash,
    config: { ...model.config },
    compileOptions: { ...model.compiled.options },
  });
}

/** One item of a run as a shard plan sees it: its key, and its relative cost for balancing shards (src/main/cluster). */
export interface WorkUnit {
  key: string;
  cost: number;
}

export interface RunHandle<Cfg> {
  run: RunRow;
  /** Keys already committed (non-empty only when resuming). */
  done: Set<string>;
  /** The run's config: the stored one when resuming. */
  config: Cfg;
  /** This process's share of the items, or null for all of them (see RunOptions.shard). */
  shard: ReadonlySet<string> | null;
  /** Whether this process does the item `key`: in its share and not committed yet. */
  todo(key: string): boolean;
  /** Whether `key` is in this process's share (committed or not): what progress counts. */
  owns(key: string): boolean;
}

function handleOf<Cfg>(run: RunRow, done: Set<string>, config: Cfg, shard: ReadonlySet<string> | undefined): RunHandle<Cfg> {
  const owns = (key: string) => !shard || shard.has(key);
  return { run, done, config, shard: shard ?? null, owns, todo: (key) => owns(key) && !done.has(key) };
}

/** A run's stored config as its kind's typed config; a stored config that does not fit is a damaged project. */
export function storedConfig<Cfg>(store: ProjectStore, kind: StoredKind<Cfg, unknown>, run: RunRow): Cfg {
  const parsed = kind.config.safeParse(readStoredConfig(kind, run.config));
  if (parsed.success) return parsed.data;
  throw new CliffscopeError('bad-project', `run #${run.id}'s stored config is not a valid ${kind.kind} config: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`, {
    file: store.file,
    hint: 'the project file was changed by something other than Cliffscope; start a new run',
  });
}

/**
 * Start a new run of `kind` with `config`, or resume `opts.resume` (refused when it was made with a different model or
 * is of another kind; its stored config is used, never `config`).
 *
 * `validate` checks the run's effective config against the project and the model — ids that exist, probe widths,
 * layers — before any work. A new run that fails it is never created, so bad input leaves no run behind; a resumed
 * run that fails it is marked failed (not left 'running') and stays resumable.
 */
export function beginRun<Cfg extends object>(env: PipelineEnv, kind: StoredKind<Cfg, unknown>, config: Cfg, opts: RunOptions, validate?: (config: Cfg) => void): RunHandle<Cfg> {
  if (opts.resume !== undefined) {
    const existing = env.store.runs.require(opts.resume, kind.kind);
    const stored = storedConfig(env.store, kind, existing);
    registerModel(env.store, env.model);
    const { run, done } = env.store.runs.resume(existing.id, env.model.compiled.modelHash);
    try {
      validate?.(stored);
    } catch (e) {
      env.store.runs.finish(run.id, 'failed', isCliffscopeError(e) ? e.describe() : String((e as Error)?.message ?? e));
      throw e;
    }
    env.log?.(`resuming run #${run.id}: ${done.size} item(s) already done`);
    return handleOf(run, done, stored, opts.shard);
  }
  validate?.(config);
  const model = registerModel(env.store, env.model);
  const run = env.store.runs.start({ uid: opts.uid, kind: kind.kind, name: opts.name ?? null, tags: opts.tags ?? [], ...kind.links(config), config: { ...config }, modelId: model.id, versions: runVersions(env.model) });
  return handleOf(run, new Set(), config, opts.shard);
}

const warnedProbes = new WeakMap<PipelineEnv, Set<number>>();

/**
 * A probe that exists and fits the model (its width is the model's residual width). Every pipeline that reads a
 * stored probe loads it here, so this is also where an uncalibrated probe is warned about.
 */
export function requireProbe(env: PipelineEnv, probeId: number): ProbeRow {
  const p = env.store.probes.require(probeId);
  const d = env.model.config.hiddenSize;
  if (p.weights.length !== d) {
    throw new CliffscopeError('bad-argument', `probe #${probeId} has width ${p.weights.length}; this model's residual stream has ${d}`, {
      hint: 'use a probe trained on this model',
    });
  }
  // Once per probe and environment: pipelines load their probe both to validate and to run.
  const warning = uncalibratedProbeWarning(p);
  const seen = warnedProbes.get(env) ?? new Set<number>();
  if (warning && !seen.has(p.id)) {
    seen.add(p.id);
    warnedProbes.set(env, seen);
    env.log?.(`warning: ${warning}`);
  }
  return p;
}

export function requireSource(env: PipelineEnv, source: TranscriptSource): void {
  if (source.kind === 'run') env.store.runs.require(source.runId);
  else env.store.datasets.require(source.datasetId);
}

/** Run `body`, then mark the run done, cancelled (signal) or failed (with the error), and rethrow failures. */
export async function finishing<T>(env: PipelineEnv, run: RunRow, body: () => Promise<T>): Promise<T> {
  try {
    const result = await body();
    if (env.signal?.aborted) {
      env.store.runs.finish(run.id, 'cancelled', 'cancelled by the user; finished items are kept');
      throw new CliffscopeError('cancelled', `run #${run.id} was cancelled; ${env.store.runs.resumableItems(run.id).size} finished item(s) are kept`, {
        hint: `resume it with --resume ${run.id}`,
      });
    }
    env.store.runs.finish(run.id, 'done');
    return result;
  } catch (e) {
    const current = env.store.runs.get(run.id);
    if (current?.status === 'running') {
      if (env.signal?.aborted) env.store.runs.finish(run.id, 'cancelled', 'cancelled by the user; finished items are kept');
      else env.store.runs.finish(run.id, 'failed', isCliffscopeError(e) ? e.describe() : String((e as Error)?.stack ?? e));
    }
    throw e;
  }
}

export function checkCancelled(env: PipelineEnv): boolean {
  return env.signal?.aborted ?? false;
}

/** A run's headline numbers, checked against its kind's summary schema and stored as the item `summary`. */
export function commitSummary<Sum>(store: ProjectStore, kind: StoredKind<unknown, Sum>, runId: number, summary: Sum): void {
  // A run resumed after its summary was written (but before it was marked done) already has it.
  if (store.runs.resumableItems(runId).has('summary')) return;
  // NaN (a metric with nothing to average) is stored as null: check what will be read back.
  const checked = kind.summary.parse(jsonSafe(summary));
  store.runs.commitItem(runId, 'summary', () => checked);
}

/** A run's stored headline numbers as its kind's typed summary; null before the run finishes. */
export function readSummary<Sum>(store: ProjectStore, kind: StoredKind<unknown, Sum>, runId: number): Sum | null {
  const item = store.runs.items(runId).find((i) => i.key === 'summary' && i.status === 'done');
  if (!item) return null;
  const parsed = kind.summary.safeParse(item.payload);
  if (parsed.success) return parsed.data;
  throw new CliffscopeError('bad-project', `run #${runId}'s stored summary is not a valid ${kind.kind} summary: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(summary)'}: ${i.message}`).join('; ')}`, {
    file: store.file,
    hint: 'the project file was changed by something other than Cliffscope; run it again',
  });
}

export function requireTokenizer(model: LoadedModel): Tokenizer {
  if (!model.tokenizer) {
    throw new CliffscopeError('missing-file', `${model.checkpoint.dir} has no tokenizer.json; the pipelines need it to read prompts and answers`, {
      file: model.checkpoint.dir,
    });
  }
  return model.tokenizer;
}
