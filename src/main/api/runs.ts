/**
 * Run kinds in the application layer: each kind's pipeline beside its spec (src/shared/runs/), and the steps every
 * face's run goes through — resolve the request against the project (defaults, ids), or take the stored config of a
 * run being resumed; run the pipeline; read the run back as a typed report.
 */
import { ContractError, RunReport } from '../../shared/contract.js';
import { isRunKind, isShardable, type RunConfig, type RunInput, type RunKind, type RunSummaryOf, SHARDABLE_KINDS, type ShardableKind, specOf } from '../../shared/runs/registry.js';
import { type ProjectLookup, readStoredConfig } from '../../shared/runs/spec.js';
import { describeProvider } from '../../shared/values.js';
import { CliffscopeError, isCliffscopeError } from '../engine/errors.js';
import { ablateUnits, aggregateAblation, runAblation } from '../pipelines/ablate.js';
import { aggregateCausal, causalUnits, runCausal } from '../pipelines/causal.js';
import { type PipelineEnv, type RunOptions, storedConfig, type WorkUnit } from '../pipelines/common.js';
import { aggregateHeads, headsUnits, runHeads } from '../pipelines/heads.js';
import { aggregateJudge, judgeUnits, runJudge } from '../pipelines/judge.js';
import { runProbeTraining } from '../pipelines/probe.js';
import { aggregateSelect, runSelect, selectUnits } from '../pipelines/select.js';
import { aggregateTrace, runTrace, traceUnits } from '../pipelines/trace.js';
import { aggregateTranscripts, runGenerate, transcriptsUnits } from '../pipelines/transcripts.js';
import { aggregateTruncate, runTruncate, truncateUnits } from '../pipelines/truncate.js';
import type { ProjectStore } from '../store/project-store.js';
import { jsonSafe } from '../store/tabular.js';
import type { RunRow } from '../store/types.js';
import { runSummary } from './shapes.js';

type Pipeline<K extends RunKind> = (env: PipelineEnv, config: RunConfig<K>, opts: RunOptions) => Promise<number>;

/**
 * How a run kind's items can be split over processes (src/main/api/cluster): its items with their costs, read from
 * the project without the model (`shape` is the model's layers × heads), and the aggregates computed from all items
 * once they are merged back (summary, averaged maps, sweep metrics, the selection), without the model.
 */
export interface Sharding<K extends RunKind> {
  units(store: ProjectStore, config: RunConfig<K>, shape: { layers: number; heads: number }): WorkUnit[];
  aggregate(store: ProjectStore, runId: number, config: RunConfig<K>): void;
}

/** Each kind's pipeline (a new kind's spec is not runnable until it is listed here; each returns its run id). */
const PIPELINES: { [K in RunKind]: Pipeline<K> } = {
  transcripts: runGenerate,
  probe: async (env, config, opts) => (await runProbeTraining(env, config, opts)).runId,
  trace: runTrace,
  heads: runHeads,
  ablate: runAblation,
  judge: runJudge,
  select: async (env, config, opts) => (await runSelect(env, config, opts)).runId,
  truncate: runTruncate,
  causal: runCausal,
};

/** How each kind whose items can be split over processes (SHARDABLE_KINDS) lists its items and recomputes its aggregates. */
const SHARDING: { [K in ShardableKind]: Sharding<K> } = {
  transcripts: { units: (store, config) => transcriptsUnits(store, config), aggregate: (store, runId) => aggregateTranscripts(store, runId) },
  trace: { units: traceUnits, aggregate: aggregateTrace },
  heads: { units: headsUnits, aggregate: aggregateHeads },
  ablate: { units: ablateUnits, aggregate: aggregateAblation },
  judge: { units: judgeUnits, aggregate: (store, runId) => aggregateJudge(store, runId, null) },
  select: { units: selectUnits, aggregate: (store, runId, config) => void aggregateSelect(store, runId, config) },
  truncate: { units: (store, config) => truncateUnits(store, config), aggregate: aggregateTruncate },
  causal: { units: (store, config) => causalUnits(store, config), aggregate: aggregateCausal },
};

/** Run `kind`'s pipeline with a resolved (or stored) config. */
export function executeRun<K extends RunKind>(env: PipelineEnv, kind: K, config: RunConfig<K>, opts: RunOptions): Promise<number> {
  const pipeline: Pipeline<K> = PIPELINES[kind];
  return pipeline(env, config, opts);
}

/** How `kind` splits over processes, or a clear error for a kind that does not. */
export function shardingOf<K extends RunKind>(kind: K): Sharding<K> {
  if (!isShardable(kind)) {
    throw new CliffscopeError('bad-argument', `${kind} runs cannot be split into shards (they work on all their items at once)`, {
      hint: `shardable kinds: ${SHARDABLE_KINDS.join(', ')}`,
    });
  }
  return (SHARDING as { [K in RunKind]?: Sharding<K> })[kind]!;
}

/** The project as a run's `resolve` sees it: every lookup names the request field at fault. */
export function projectLookup(store: ProjectStore): ProjectLookup {
  const at = <T>(field: string, get: () => T): T => {
    try {
      return get();
    } catch (e) {
      if (isCliffscopeError(e)) throw new CliffscopeError(e.code, `${field}: ${e.message}`, { file: e.file, hint: e.hint, cause: e });
      throw e;
    }
  };
  const fail = (field: string, message: string, hint?: string): never => {
    throw new CliffscopeError('bad-argument', `${field}: ${message}`, { file: store.file, hint });
  };
  return {
    dataset: (field, id) => at(field, () => store.datasets.require(id)),
    probe: (field, id) => {
      const p = at(field, () => store.probes.require(id));
      return { id: p.id, residIndex: p.residIndex };
    },
    run: (field, id, kind) => at(field, () => store.runs.require(id, kind)),
    item(field, id, datasetId) {
      const item = store.datasets.item(id);
      if (!item || item.datasetId !== datasetId) fail(field, `dataset #${datasetId} has no item #${id}`);
    },
    fail,
  };
}

/** A new run's config: `input` with its kind's defaults, every id checked against the project. */
export function resolveRun<K extends RunKind>(store: ProjectStore, kind: K, input: RunInput<K>, name?: string): RunConfig<K> {
  return specOf(kind).resolve(input, projectLookup(store), { name });
}

/** A run that `resume` may continue: of `kind`, not done, not running. */
export function resumableRun(store: ProjectStore, kind: RunKind, runId: number): RunRow {
  const run = projectLookup(store).run('resume', runId, kind);
  if (run.status === 'done') throw new CliffscopeError('bad-argument', `resume: run #${run.id} is already done`, { file: store.file });
  if (run.status === 'running') throw new CliffscopeError('bad-argument', `resume: run #${run.id} is running`, { file: store.file, hint: 'wait for it, or cancel it first' });
  return store.runs.require(runId);
}

/**
 * What a run.start request runs with: the resolved config of a new run, or the stored config of the run it resumes
 * (a config given with `resume` is refused: a run never mixes two configurations).
 */
export function planRun<K extends RunKind>(store: ProjectStore, p: { kind: K; config?: RunInput<K>; resume?: number; name?: string }): RunConfig<K> {
  if (p.resume !== undefined) {
    if (p.config !== undefined) {
      throw new ContractError('bad-params', `invalid params for run.start: config: leave it out with resume (run #${p.resume} keeps its stored settings)`, [
        { path: 'config', message: 'leave it out with resume' },
      ]);
    }
    return storedConfig(store, specOf(p.kind), resumableRun(store, p.kind, p.resume));
  }
  if (p.config === undefined) {
    throw new ContractError('bad-params', 'invalid params for run.start: config: required unless resume is given', [{ path: 'config', message: 'required unless resume is given' }]);
  }
  return resolveRun(store, p.kind, p.config, p.name);
}

/**
 * A run's report, typed by its kind: its stored config and summary are checked against the kind's schemas (what
 * does not fit is a damaged project, named as such).
 */
export function runReport(store: ProjectStore, runId: number): RunReport {
  const run = store.runs.require(runId);
  const model = run.modelId !== null ? store.models.get(run.modelId) : null;
  const items = store.runs.items(runId);
  const summary = items.find((i) => i.key === 'summary' && i.status === 'done')?.payload ?? null;
  const parsed = RunReport.safeParse({
    kind: run.kind,
    run: { ...runSummary(run), config: isRunKind(run.kind) ? readStoredConfig(specOf(run.kind), run.config) : run.config, versions: jsonSafe(run.versions) },
    model: model ? { path: model.path, contentHash: model.contentHash } : null,
    items: { done: items.filter((i) => i.status === 'done').length, failed: items.filter((i) => i.status === 'failed').length },
    summary,
  });
  if (parsed.success) return parsed.data;
  throw new CliffscopeError('bad-project', `run #${runId}'s stored config or summary does not fit a ${run.kind} run: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
    file: store.file,
    hint: 'the project file was changed by something other than Cliffscope',
  });
}

/** The report as the CLI prints it: what ran, how far it got, then the kind's own lines. */
export function formatRunReport(r: RunReport): string {
  const { run } = r;
  const lines = [
    `run #${run.id} ${run.kind}${run.name ? ` "${run.name}"` : ''}${run.tags.length ? ` [${run.tags.join(', ')}]` : ''} — ${run.status}${run.error ? ` (${run.error.split('\n')[0]})` : ''}`,
    `  model     ${r.model ? `${r.model.path} (${r.model.contentHash.slice(0, 12)})` : '—'}`,
    `  items     ${r.items.done} done${r.items.failed ? `, ${r.items.failed} failed` : ''}`,
    `  started   ${run.startedAt ?? '—'}   finished ${run.finishedAt ?? '—'}`,
  ];
  // Where it ran (runVersions); runs stored before providers were recorded have none.
  const provider = run.versions.provider;
  if (typeof provider === 'string') {
    const notes = Array.isArray(run.versions.providerNotes) ? run.versions.providerNotes.filter((n) => typeof n === 'string') : [];
    lines.push(`  provider  ${describeProvider(provider, notes)}`);
  }
  return [...lines, ...reportLines(r)].join('\n');
}

function reportLines(r: RunReport): string[] {
  return r.summary === null ? [] : linesOf(r.kind, r.summary);
}

function linesOf<K extends RunKind>(kind: K, summary: RunSummaryOf<K>): string[] {
  return specOf(kind).report(summary);
}
