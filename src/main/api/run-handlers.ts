/**
 * `run.start` (a job: one pipeline run, streamed and cancellable), `run.report` and `run.delete` (refused for a run
 * that others stand on).
 *
 * run.start resolves the request against the project (defaults, every id) read-only before it loads the model or
 * creates anything, so a bad request leaves no run behind. Cancelling the call stops the pipeline between items:
 * the run ends 'cancelled' with its finished items kept, and the call answers normally with that status.
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { CliffscopeError, isCliffscopeError } from '../engine/errors.js';
import { runReferences } from '../pipelines/references.js';
import type { ProjectStore } from '../store/project-store.js';
import type { RunRow } from '../store/types.js';
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
  withReader(project, (s) => {
    const run = projectLookup(s).run('runId', runId);
    // Deleting what other runs stand on would take their rows with it (traces of its transcripts) or leave them
    // naming a run that is gone: refuse, naming them.
    const others = dependentRuns(s, runId);
    if (others.length) {
      const names = others.map((r) => `#${r.id} ${r.kind}${r.name ? ` "${r.name}"` : ''}`).join(', ');
      throw new CliffscopeError('bad-argument', `run #${runId} (${run.kind}) is what ${others.length === 1 ? 'run' : 'runs'} ${names} stand${others.length === 1 ? 's' : ''} on; it was not deleted`, {
        file: s.file,
        hint: 'delete those runs first (newest first), or keep them all: `project export --run` copies a run with everything it stands on',
      });
    }
  });
  return withWriter(project, (s) => {
    s.runs.delete(runId);
    return { deleted: runId };
  });
}

/**
 * The runs that stand on `runId`: derived from it, naming it (or a probe it trained) in their config, or holding rows
 * that read its transcripts or its probes.
 */
export function dependentRuns(s: ProjectStore, runId: number): RunRow[] {
  const probes = new Set(s.probes.list().filter((p) => p.runId === runId).map((p) => p.id));
  const readsRows = new Set(
    s
      .query(
        `SELECT run_id FROM traces WHERE transcript_id IN (SELECT id FROM transcripts WHERE run_id = @run) OR probe_id IN (SELECT id FROM probes WHERE run_id = @run)
         UNION SELECT run_id FROM head_maps WHERE transcript_id IN (SELECT id FROM transcripts WHERE run_id = @run) OR probe_id IN (SELECT id FROM probes WHERE run_id = @run)
         UNION SELECT run_id FROM verdicts WHERE transcript_id IN (SELECT id FROM transcripts WHERE run_id = @run)
         UNION SELECT run_id FROM selections WHERE transcript_id IN (SELECT id FROM transcripts WHERE run_id = @run)`,
        { run: runId },
      )
      .map((r) => Number(r.run_id)),
  );
  return s.runs.list().filter((r) => {
    if (r.id === runId) return false;
    if (r.parentRunId === runId || readsRows.has(r.id)) return true;
    let names = false;
    runReferences.config(r.kind, r.config, (table, id) => {
      if ((table === 'run' && id === runId) || (table === 'probe' && probes.has(id))) names = true;
      return id;
    });
    return names;
  });
}
