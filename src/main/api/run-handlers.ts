/**
 * `run.start` (a job: one pipeline run, streamed and cancellable), `run.report` and `run.delete`.
 *
 * run.start checks every id its config names against the project before it loads the model or creates anything, so
 * a bad request leaves no run behind. Cancelling the call stops the pipeline between items: the run ends
 * 'cancelled' with its finished items kept, and the call answers normally with that status.
 */
import { ContractError, type ParamsOf, type ResultOf, type RunStartParams } from '../../shared/contract.js';
import { CliffscopeError, isCliffscopeError } from '../engine/errors.js';
import { runAblation, DEFAULT_SWEEP, type AblateRunConfig } from '../engine/pipelines/ablate.js';
import type { PipelineEnv } from '../engine/pipelines/common.js';
import { runHeads, type HeadsRunConfig } from '../engine/pipelines/heads.js';
import { runJudge, type JudgeRunConfig } from '../engine/pipelines/judge.js';
import { runProbeTraining, type ProbeRunConfig } from '../engine/pipelines/probe.js';
import { formatRunReport, runReport } from '../engine/pipelines/report.js';
import { PAPER_SELECT_FRACTION, runSelect, type SelectRunConfig } from '../engine/pipelines/select.js';
import type { TranscriptSource } from '../engine/pipelines/sources.js';
import { runTrace, type TraceRunConfig } from '../engine/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate, type GenerateRunConfig } from '../engine/pipelines/transcripts.js';
import type { LoadedModel } from '../engine/runtime/model.js';
import type { SamplingOptions } from '../engine/runtime/sampling.js';
import type { ProjectStore } from '../engine/store/project-store.js';
import type { RunRow } from '../engine/store/types.js';
import type { CallContext } from './context.js';
import { acquireModel } from './model-pool.js';
import { withReader, withWriter } from './projects.js';
import { runReportJson } from './shapes.js';

type StartParams = RunStartParams;
type Sampling = NonNullable<NonNullable<Extract<StartParams, { kind: 'generate' }>['config']>['sampling']>;

/** Drop keys whose value is undefined (the stored config is canonical JSON). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function toSampling(s: Sampling | undefined): SamplingOptions | undefined {
  return s ? { doSample: true, temperature: s.temperature, topP: s.topP ?? 1, topK: s.topK ?? 0, repetitionPenalty: s.repetitionPenalty ?? 1 } : undefined;
}

// ---- checking ids before anything runs --------------------------------------------------------------------------------

class IdChecker {
  constructor(private readonly store: ProjectStore) {}

  private fail(field: string, message: string, hint?: string): never {
    throw new CliffscopeError('bad-argument', `${field}: ${message}`, { file: this.store.file, hint });
  }

  dataset(field: string, id: number): void {
    if (this.store.getDataset(id)) return;
    const have = this.store.listDatasets().map((d) => `#${d.id} ${d.name}`);
    this.fail(field, `${this.store.file} has no dataset #${id}`, have.length ? `datasets here: ${have.join(', ')}` : 'import one first');
  }

  probe(field: string, id: number): void {
    if (this.store.getProbe(id)) return;
    const have = this.store.listProbes().map((p) => `#${p.id} ${p.name}`);
    this.fail(field, `${this.store.file} has no probe #${id}`, have.length ? `probes here: ${have.join(', ')}` : 'train one first (a probe run)');
  }

  run(field: string, id: number, kind?: RunRow['kind']): RunRow {
    const run = this.store.getRun(id);
    if (!run) this.fail(field, `${this.store.file} has no run #${id}`);
    if (kind && run.kind !== kind) this.fail(field, `run #${id} is a ${run.kind} run, not a ${kind} run`);
    return run;
  }

  source(field: string, s: TranscriptSource): void {
    if (s.kind === 'run') this.run(`${field}.runId`, s.runId);
    else this.dataset(`${field}.datasetId`, s.datasetId);
  }
}

function requireConfig(p: StartParams): NonNullable<StartParams['config']> {
  if (p.config === undefined) {
    throw new ContractError('bad-params', `invalid params for run.start: config: required unless resume is given`, [{ path: 'config', message: 'required unless resume is given' }]);
  }
  return p.config;
}

/** Check the request against the project; returns the engine config (the stored one when resuming). */
function prepare(store: ProjectStore, p: StartParams): Record<string, unknown> {
  const ids = new IdChecker(store);
  if (p.resume !== undefined) {
    const run = ids.run('resume', p.resume, p.kind);
    if (run.status === 'done') throw new CliffscopeError('bad-argument', `resume: run #${run.id} is already done`, { file: store.file });
    if (run.status === 'running') throw new CliffscopeError('bad-argument', `resume: run #${run.id} is running`, { file: store.file, hint: 'wait for it, or cancel it first' });
    return run.config;
  }
  switch (p.kind) {
    case 'generate': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.dataset('config.datasetId', c.datasetId);
      if (c.probeId !== undefined) ids.probe('config.probeId', c.probeId);
      c.itemIds?.forEach((id, i) => {
        const item = store.getItem(id);
        if (!item || item.datasetId !== c.datasetId) throw new CliffscopeError('bad-argument', `config.itemIds[${i}]: dataset #${c.datasetId} has no item #${id}`, { file: store.file });
      });
      const cfg: GenerateRunConfig = defined({
        datasetId: c.datasetId,
        itemIds: c.itemIds,
        chat: c.chat ?? true,
        system: c.system,
        maxNewTokens: c.maxNewTokens,
        sampling: toSampling(c.sampling),
        seed: c.seed ?? 0,
        batchSize: c.batchSize ?? 8,
        settings: c.settings ?? [BASELINE_SETTING],
        probeId: c.probeId,
      });
      return cfg as unknown as Record<string, unknown>;
    }
    case 'probe': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.source('config.positive', c.positive);
      ids.source('config.negative', c.negative);
      const cfg: ProbeRunConfig = {
        name: p.name ?? c.name,
        positive: c.positive,
        negative: c.negative,
        positionRule: c.positionRule ?? 'answer-boundary',
        layers: c.layers ?? [],
        labelRule: c.labelRule ?? 'gcg-first32',
        train: defined(c.train ?? {}),
      };
      return cfg as unknown as Record<string, unknown>;
    }
    case 'trace': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.probe('config.probeId', c.probeId);
      c.extraProbeIds?.forEach((id, i) => ids.probe(`config.extraProbeIds[${i}]`, id));
      ids.source('config.source', c.source);
      const cfg: TraceRunConfig = { probeId: c.probeId, extraProbeIds: c.extraProbeIds ?? [], source: c.source, options: defined(c.options ?? {}) };
      return cfg as unknown as Record<string, unknown>;
    }
    case 'heads': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.probe('config.probeId', c.probeId);
      ids.source('config.source', c.source);
      const cfg: HeadsRunConfig = defined({ probeId: c.probeId, source: c.source, label: c.label, variant: c.variant ?? 'code', perToken: c.perToken ?? false });
      return cfg as unknown as Record<string, unknown>;
    }
    case 'ablate': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      const heads = ids.run('config.headsRunId', c.headsRunId, 'heads');
      if (heads.status !== 'done') throw new CliffscopeError('bad-argument', `config.headsRunId: heads run #${heads.id} is ${heads.status}, not done`, { file: store.file });
      if (c.probeId !== undefined && c.probeId !== null) ids.probe('config.probeId', c.probeId);
      ids.dataset('config.harmfulDatasetId', c.harmfulDatasetId);
      if (c.harmlessDatasetId !== undefined && c.harmlessDatasetId !== null) ids.dataset('config.harmlessDatasetId', c.harmlessDatasetId);
      const cfg: AblateRunConfig = defined({
        headsRunId: c.headsRunId,
        probeId: c.probeId ?? null,
        harmfulDatasetId: c.harmfulDatasetId,
        harmlessDatasetId: c.harmlessDatasetId ?? null,
        fractions: c.fractions ?? [...DEFAULT_SWEEP.fractions],
        gammas: c.gammas ?? [...DEFAULT_SWEEP.gammas],
        randomControl: c.randomControl ?? true,
        randomSeed: c.randomSeed ?? 0,
        headSets: c.headSets ?? [],
        judge: c.judge ?? 'jbb',
        chat: c.chat ?? true,
        maxNewTokens: c.maxNewTokens,
        batchSize: c.batchSize ?? 8,
        sampling: toSampling(c.sampling),
        seed: c.seed ?? 0,
      });
      return cfg as unknown as Record<string, unknown>;
    }
    case 'judge': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.run('config.runId', c.runId);
      if (c.harmfulDatasetId !== undefined && c.harmfulDatasetId !== null) ids.dataset('config.harmfulDatasetId', c.harmfulDatasetId);
      if (c.judge.kind === 'probe') ids.probe('config.judge.probeId', c.judge.probeId);
      const judge: JudgeRunConfig['judge'] = c.judge.kind === 'guard' ? { kind: 'guard', modelDir: c.judge.modelDir, maxChars: c.judge.maxChars ?? 512 } : c.judge;
      const cfg: JudgeRunConfig = { runId: c.runId, judge, harmfulDatasetId: c.harmfulDatasetId ?? null };
      return cfg as unknown as Record<string, unknown>;
    }
    case 'select': {
      const c = requireConfig(p) as NonNullable<typeof p.config>;
      ids.dataset('config.datasetId', c.datasetId);
      ids.probe('config.probeId', c.probeId);
      const cfg: SelectRunConfig = {
        datasetId: c.datasetId,
        probeId: c.probeId,
        chat: c.chat ?? true,
        variant: c.variant ?? 'top-ms',
        fraction: c.fraction ?? PAPER_SELECT_FRACTION,
        seed: c.seed ?? 0,
      };
      return cfg as unknown as Record<string, unknown>;
    }
  }
}

async function startPipeline(env: PipelineEnv, p: StartParams, config: Record<string, unknown>, guard: LoadedModel | undefined): Promise<number> {
  const opts = { resume: p.resume, name: p.name };
  switch (p.kind) {
    case 'generate':
      return runGenerate(env, config as unknown as GenerateRunConfig, opts);
    case 'probe':
      return (await runProbeTraining(env, config as unknown as ProbeRunConfig, { resume: p.resume })).runId;
    case 'trace':
      return runTrace(env, config as unknown as TraceRunConfig, opts);
    case 'heads':
      return runHeads(env, config as unknown as HeadsRunConfig, opts);
    case 'ablate':
      return runAblation(env, config as unknown as AblateRunConfig, opts);
    case 'judge':
      return runJudge(env, config as unknown as JudgeRunConfig, { ...opts, guard });
    case 'select':
      return (await runSelect(env, config as unknown as SelectRunConfig, opts)).runId;
  }
}

const maxRunId = (store: ProjectStore) => store.listRuns().reduce((m, r) => Math.max(m, r.id), 0);

export async function runStart(p: ParamsOf<'run.start'>, ctx: CallContext): Promise<ResultOf<'run.start'>> {
  // Ids first, read-only: a bad request opens nothing for writing and loads no model.
  const config = withReader(p.project, (s) => prepare(s, p));
  const model = await acquireModel(p.model);
  const judgeSpec = p.kind === 'judge' ? (config as unknown as JudgeRunConfig).judge : null;
  const guard = judgeSpec?.kind === 'guard' ? await acquireModel({ dir: judgeSpec.modelDir }) : undefined;
  return withWriter(p.project, async (store) => {
    const before = maxRunId(store);
    const env: PipelineEnv = {
      store,
      model,
      signal: ctx.signal,
      onProgress: (done, total, label) => ctx.progress(done, total, label),
      log: (m) => ctx.log('info', m),
    };
    let runId: number;
    try {
      runId = await startPipeline(env, p, config, guard);
    } catch (e) {
      if (!(isCliffscopeError(e) && e.code === 'cancelled')) throw e;
      // Cancelled: the pipeline marked its run 'cancelled' (finished items kept). Answer with that run.
      const run = p.resume !== undefined ? store.getRun(p.resume) : store.listRuns({ kind: p.kind }).filter((r) => r.id > before).at(-1);
      if (!run) throw e;
      runId = run.id;
      ctx.log('warn', e.message);
    }
    const report = runReport(store, runId);
    return { runId, status: report.run.status, report: runReportJson(report) };
  });
}

export async function runReportHandler({ project, runId }: ParamsOf<'run.report'>): Promise<ResultOf<'run.report'>> {
  return withReader(project, (s) => {
    const r = runReport(s, runId);
    return { report: runReportJson(r), text: formatRunReport(r) };
  });
}

export async function runDelete({ project, runId }: ParamsOf<'run.delete'>): Promise<ResultOf<'run.delete'>> {
  // Checked read-only first, so an unknown id never opens the project for writing.
  withReader(project, (s) => new IdChecker(s).run('runId', runId));
  return withWriter(project, (s) => {
    s.deleteRun(runId);
    return { deleted: runId };
  });
}
