/**
 * `run.start` (a job: one pipeline run, streamed and cancellable), `run.report` and `run.delete`.
 *
 * run.start resolves the request against the project (defaults, every id) read-only before it loads the model or
 * creates anything, so a bad request leaves no run behind. Cancelling the call stops the pipeline between items:
 * the run ends 'cancelled' with its finished items kept, and the call answers normally with that status.
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { isCliffscopeError } from '../engine/errors.js';
import type { ProjectStore } from '../store/project-store.js';
import type { CallContext } from './context.js';
import { acquireModel, callPipelineEnv } from './model-pool.js';
import { withReader, withWriter } from './projects.js';
import { runShard } from './cluster/sharded-runs.js';
import { executeRun, formatRunReport, planRun, projectLookup, runReport } from './runs.js';
import { runSummary } from './shapes.js';

const maxRunId = (store: ProjectStore) => store.runs.list().reduce((m, r) => Math.max(m, r.id), 0);

export async function runStart(p: ParamsOf<'run.start'>, ctx: CallContext): Promise<ResultOf<'run.start'>> {
  if (p.shard) return runShard({ ...p, shard: p.shard }, ctx);
  // Read-only first: a bad request opens nothing for writing and loads no model.
  const config = withReader(p.project, (s) => planRun(s, p));
  const model = await acquireModel(p.model, ctx);
  return withWriter(p.project, async (store) => {
    const before = maxRunId(store);
    const env = callPipelineEnv(store, model, p.model, ctx);
    let runId: number;
    try {
      runId = await executeRun(env, p.kind, config, { resume: p.resume, name: p.name, tags: p.tags });
    } catch (e) {
      if (!(isCliffscopeError(e) && e.code === 'cancelled')) throw e;
      // Cancelled: the pipeline marked its run 'cancelled' (finished items kept). Answer with that run.
      const run = p.resume !== undefined ? store.runs.get(p.resume) : store.runs.list({ kind: p.kind }).filter((r) => r.id > before).at(-1);
      if (!run) throw e;
      runId = run.id;
      ctx.log('warn', e.message);
    }
    const report = runReport(store, runId);
    return { runId, status: report.run.status, report };
  });
}

export async function runReportHandler({ project, runId }: ParamsOf<'run.report'>): Promise<ResultOf<'run.report'>> {
  return withReader(project, (s) => {
    const report = runReport(s, runId);
    return { report, text: formatRunReport(report) };
  });
}

export async function runUpdate({ project, runId, name, tags }: ParamsOf<'run.update'>): Promise<ResultOf<'run.update'>> {
  // Checked read-only first, so an unknown id never opens the project for writing.
  withReader(project, (s) => projectLookup(s).run('runId', runId));
  return withWriter(project, (s) => ({ run: runSummary(s.runs.update(runId, { name, tags })) }));
}

export async function runDelete({ project, runId }: ParamsOf<'run.delete'>): Promise<ResultOf<'run.delete'>> {
  // Checked read-only first, so an unknown id never opens the project for writing.
  withReader(project, (s) => projectLookup(s).run('runId', runId));
  return withWriter(project, (s) => {
    s.runs.delete(runId);
    return { deleted: runId };
  });
}
