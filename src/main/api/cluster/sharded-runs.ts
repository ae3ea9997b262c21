/**
 * A run split over processes: one shard's share run into its own project file (`run.start` with `shard`), and the
 * shard files merged back into the project's run (`run.merge`), whose aggregates are then computed from all items.
 *
 * Every shard of a run agrees on the split without talking to the others: the run's items and their costs come
 * from the project and the resolved config alone (the same on every task), and the run's uid is derived from the
 * kind, config, model and shard count unless the plan names one.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ParamsOf, ResultOf, RunStartParams } from '../../../shared/contract.js';
import { specOf } from '../../../shared/runs/registry.js';
import { CliffscopeError, isCliffscopeError } from '../../engine/errors.js';
import { storedConfig } from '../../pipelines/common.js';
import { canonicalJson } from '../../store/json.js';
import { openForReading } from '../../store/project-file.js';
import { checkShardSet, mergeShardFile, openShardFile, prepareShardFile, type ShardFileMerge, type ShardMeta } from '../../store/shards.js';
import type { CallContext } from '../context.js';
import { acquireModel, callPipelineEnv } from '../model-pool.js';
import { resolveFile, withReader, withWriter } from '../projects.js';
import { executeRun, planRun, runReport, shardingOf } from '../runs.js';
import { assignShards } from './shards.js';

/**
 * The uid every shard of a run computes alike when the plan names none: a digest of what makes the run (kind,
 * resolved config, model, shard count), laid out as a UUID.
 */
export function derivedRunUid(kind: string, config: unknown, modelHash: string, count: number): string {
  const h = createHash('sha256').update(canonicalJson({ kind, config, modelHash, count })).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Where a shard's file goes when the request names none: a folder beside the project. */
export function defaultShardFile(project: string, kind: string, uid: string, index: number, count: number): string {
  return path.join(`${resolveFile(project)}.shards`, `${kind}-${uid.slice(0, 8)}-${index}of${count}.cliffscope`);
}

type ShardStart = RunStartParams & { shard: NonNullable<RunStartParams['shard']> };

/**
 * `run.start` with `shard`: this process's share of the run, into its own project file (created from the project,
 * or continued when the same command ran before). The run's aggregates are left to the merge.
 */
export async function runShard(p: ShardStart, ctx: CallContext): Promise<ResultOf<'run.start'>> {
  if (p.resume !== undefined) {
    throw new CliffscopeError('bad-argument', 'resume: leave it out with shard: running the same shard again continues its own file', { hint: 'rerun the shard command as it was' });
  }
  const { index, count } = p.shard;
  const sharding = shardingOf(p.kind);
  // Read-only first: a bad request loads no model and writes no file.
  const config = withReader(p.project, (s) => planRun(s, p));
  const model = await acquireModel(p.model, ctx);
  const shape = { layers: model.config.numLayers, heads: model.config.numHeads };
  const units = withReader(p.project, (s) => sharding.units(s, config as never, shape));
  const runUid = p.shard.runUid ?? derivedRunUid(p.kind, config, model.compiled.modelHash, count);
  const assignment = assignShards(units, count);
  const keys = new Set(assignment[index]!);
  const meta: ShardMeta = { runUid, kind: p.kind, config, modelHash: model.compiled.modelHash, index, count, assignment };
  const project = resolveFile(p.project);
  const file = resolveFile(p.shard.out ?? defaultShardFile(project, p.kind, runUid, index, count));
  const input = openForReading(project, { allowVacuumInto: true });
  let how: 'created' | 'resumed';
  try {
    how = prepareShardFile(input, project, file, meta);
  } finally {
    input.close();
  }
  ctx.log('info', `shard ${index}/${count} of run ${runUid}: ${keys.size} of ${units.length} item(s), ${how === 'created' ? 'in a new file' : 'continuing'} ${file}`);

  return withWriter(file, async (store) => {
    const existing = store.runs.getByUid(runUid);
    const env = callPipelineEnv(store, model, p.model, ctx);
    let runId = existing?.id;
    if (existing?.status !== 'done') {
      try {
        runId = await executeRun(env, p.kind, config as never, { uid: runUid, shard: keys, name: p.name, tags: p.tags, resume: existing?.id });
      } catch (e) {
        if (!(isCliffscopeError(e) && e.code === 'cancelled')) throw e;
        runId = store.runs.getByUid(runUid)?.id;
        if (runId === undefined) throw e;
        ctx.log('warn', e.message);
      }
    }
    const report = runReport(store, runId!);
    const done = [...store.runs.resumableItems(runId!)].filter((k) => keys.has(k)).length;
    return { runId: runId!, status: report.run.status, report, shard: { file, index, count, runUid, items: keys.size, done } };
  });
}

/** Keys the run's planned items miss in the project, with the shard each belongs to. */
function accounting(store: { runs: { items(runId: number): { key: string; status: string }[] } }, runId: number, meta: ShardMeta) {
  const status = new Map(store.runs.items(runId).map((i) => [i.key, i.status]));
  const expected = meta.assignment.flatMap((keys, shard) => keys.map((key) => ({ key, shard })));
  const missing = expected.filter((e) => status.get(e.key) !== 'done');
  return { expected: expected.length, missing, failed: missing.filter((e) => status.get(e.key) === 'failed').length };
}

/**
 * `run.merge`: the shard files' items into the project's run (checked first, all of them, before anything is
 * written; then one transaction per file). A run with every item is finished here: its aggregates are computed from
 * the items, as one process would have at its end.
 */
export async function mergeShards(p: ParamsOf<'run.merge'>, ctx: CallContext): Promise<ResultOf<'run.merge'>> {
  const project = resolveFile(p.project);
  const shards: { file: string; db: ReturnType<typeof openShardFile>['db']; meta: ShardMeta; modelHash: string }[] = [];
  try {
    for (const f of p.files) shards.push({ file: resolveFile(f), ...openShardFile(resolveFile(f)) });
    withReader(project, (s) => checkShardSet(s.db, project, shards));
    const meta = shards[0]!.meta;
    const kind = specOf(meta.kind as never).kind;
    return await withWriter(project, (store) => {
      const files: ShardFileMerge[] = [];
      let target: { runId: number; created: boolean } | null = null;
      for (const [i, s] of shards.entries()) {
        if (ctx.signal.aborted) throw new CliffscopeError('cancelled', `merge cancelled after ${i} of ${shards.length} file(s); merging again continues`);
        const r = mergeShardFile(store.db, s.file, s.db, s.meta);
        target ??= { runId: r.runId, created: r.created };
        files.push({ file: r.file, index: r.index, added: r.added, identical: r.identical });
        ctx.progress(i + 1, shards.length, 'shard files');
      }
      const runId = target!.runId;
      const acct = accounting(store, runId, meta);
      const run = store.runs.require(runId);
      if (acct.missing.length === 0 && run.status !== 'done') {
        // Every item is here: the run's aggregates, from its items, and it is done.
        store.runs.start(runId);
        try {
          shardingOf(kind).aggregate(store, runId, storedConfig(store, specOf(kind), run) as never);
          store.runs.finish(runId, 'done');
        } catch (e) {
          store.runs.finish(runId, 'failed', isCliffscopeError(e) ? e.describe() : String((e as Error)?.message ?? e));
          throw e;
        }
      } else if (acct.missing.length > 0) {
        const shardsMissing = [...new Set(acct.missing.map((m) => m.shard))].sort((a, b) => a - b);
        store.runs.markIncomplete(
          runId,
          `merged from shards; ${acct.missing.length} of ${acct.expected} item(s) still missing (shard${shardsMissing.length > 1 ? 's' : ''} ${shardsMissing.join(', ')}${acct.failed ? `; ${acct.failed} failed` : ''}): merge their files when they finish, or resume the run here`,
        );
      }
      const report = runReport(store, runId);
      return {
        runId,
        runUid: meta.runUid,
        kind,
        created: target!.created,
        files,
        items: { expected: acct.expected, done: acct.expected - acct.missing.length, failed: acct.failed, missing: acct.missing.length },
        missing: acct.missing.slice(0, 50),
        complete: acct.missing.length === 0,
        report,
      };
    });
  } finally {
    for (const s of shards) s.db.close();
  }
}
