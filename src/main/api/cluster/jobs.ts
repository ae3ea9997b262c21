/**
 * A sharded run as a Slurm job array, from the project's side: `cluster.plan` writes the job directory (no model is
 * loaded, nothing is submitted), `cluster.status` reads each shard's state back, `cluster.collect` merges the shard
 * files there are and resubmits only the shards that failed or were killed. Slurm does the scheduling, retries and
 * accounting; this only writes the array job and reads its state. The project records where each planned job
 * directory is (`cluster.list` reads them back for the workbench's Jobs tab).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParamsOf, ResultOf } from '../../../shared/contract.js';
import { isRunKind, specOf } from '../../../shared/runs/registry.js';
import { CliffscopeError } from '../../engine/errors.js';
import { readUntrustedText } from '../../engine/io/untrusted-file.js';
import { openCheckpoint } from '../../engine/model/checkpoint.js';
import { inspectProjectFile, openForReading } from '../../store/project-file.js';
import { readShardMeta } from '../../store/shards.js';
import type { CallContext } from '../context.js';
import { resolveFile, withReader, withWriter } from '../projects.js';
import { planRun, shardingOf } from '../runs.js';
import { mergeShards } from './sharded-runs.js';
import { assignShards } from './shards.js';
import {
  commandRunner,
  type JobManifest,
  jobPaths,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  readExitCode,
  readManifest,
  type Runner,
  shellQuote,
  shardState,
  slurmTaskStates,
  submitJob,
  writeJobDir,
} from './slurm.js';

/** This checkout's `cliffscope` command: what a task runs when the plan names no other. */
const CLIFFSCOPE_BIN = fileURLToPath(new URL('../../../../bin/cliffscope.js', import.meta.url));

/** The run.start request a task runs (kind, model, config, name, tags), beside the manifest. */
export const requestFile = (dir: string) => path.join(dir, 'run.json');

const commandsOf = (dir: string) => ({
  submit: `cliffscope slurm submit ${shellQuote(dir)}`,
  status: `cliffscope slurm status ${shellQuote(dir)}`,
  collect: `cliffscope slurm collect ${shellQuote(dir)}`,
  sbatch: `sbatch ${shellQuote(jobPaths(dir).script)}`,
});

/** `cluster.plan`: the job directory for `run` split into `shards`. */
export async function planClusterJob(p: ParamsOf<'cluster.plan'>): Promise<ResultOf<'cluster.plan'>> {
  const run = p.run;
  if (run.resume !== undefined || run.shard !== undefined) {
    throw new CliffscopeError('bad-argument', 'run: plan a new run (leave out resume and shard: the plan splits it)');
  }
  const sharding = shardingOf(run.kind);
  const project = resolveFile(run.project);
  const dir = resolveFile(p.jobDir);
  if (fs.existsSync(jobPaths(dir).manifest)) {
    throw new CliffscopeError('bad-argument', `${dir} already holds a job (manifest.json)`, { hint: 'choose a new directory, or use `cliffscope slurm status/collect` on it' });
  }
  // The model's shape from its config (headers only: nothing is loaded or compiled here).
  const checkpoint = openCheckpoint(path.resolve(run.model.dir));
  const shape = { layers: checkpoint.config.numLayers, heads: checkpoint.config.numHeads };
  const { config, units } = withReader(project, (s) => {
    const config = planRun(s, run);
    return { config, units: sharding.units(s, config as never, shape) };
  });
  if (units.length === 0) throw new CliffscopeError('bad-argument', `the ${run.kind} run has no items to split`);
  const setup = p.setupFile !== undefined ? readUntrustedText(resolveFile(p.setupFile), { maxBytes: 1 << 20, what: 'setup file', code: 'bad-argument' }) : null;
  const runUid = randomUUID();
  const manifest: JobManifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    createdAt: new Date().toISOString(),
    project,
    run: { uid: runUid, kind: run.kind, name: run.name ?? null },
    // Known once a shard loads the model (it records the hash; merging refuses shards that disagree).
    modelHash: null,
    verb: [...specOf(run.kind).cli.verb.split(' '), '--request', requestFile(dir), '--run-uid', runUid],
    shards: p.shards,
    items: assignShards(units, p.shards),
    resources: p.resources ?? {},
    command: { node: p.node ?? 'node', cliffscope: p.cliffscope ?? CLIFFSCOPE_BIN },
    setup,
    submissions: [],
  };
  writeJobDir(dir, manifest);
  // The tasks' input: the project as it is now, and the run as a request (the shard and project come from the task).
  const request = { kind: run.kind, model: { ...run.model, dir: path.resolve(run.model.dir) }, config, ...(run.name ? { name: run.name } : {}), ...(run.tags?.length ? { tags: run.tags } : {}) };
  fs.writeFileSync(requestFile(dir), `${JSON.stringify(request, null, 2)}\n`);
  const input = openForReading(project, { allowVacuumInto: true });
  try {
    input.prepare('VACUUM INTO ?').run(jobPaths(dir).input);
  } finally {
    input.close();
  }
  // Recorded last, so a plan that failed half-way is not listed.
  await withWriter(project, (s) => s.clusterJobs.add({ dir, runUid, kind: run.kind, name: run.name ?? null, shards: p.shards, plannedAt: manifest.createdAt }));
  return { dir, runUid, kind: run.kind, shards: p.shards, items: manifest.items.map((keys) => keys.length), commands: commandsOf(dir) };
}

/** `cluster.list`: the job directories planned from the project, with the run each one's merge made. */
export async function listClusterJobs(p: ParamsOf<'cluster.list'>): Promise<ResultOf<'cluster.list'>> {
  return withReader(p.project, (s) => ({
    jobs: s.clusterJobs
      .list()
      .flatMap((j) => (isRunKind(j.kind) && j.shards >= 1 ? [{ ...j, kind: j.kind }] : []))
      .map((j) => ({ ...j, runId: s.runs.getByUid(j.runUid)?.id ?? null, exists: fs.existsSync(jobPaths(j.dir).manifest) })),
  }));
}

/** Whether a submission's array (`0-7%2`, `1,4`) includes shard `i`. */
export function arrayIncludes(array: string, i: number): boolean {
  return array
    .split('%')[0]!
    .split(',')
    .some((part) => {
      const [a, b] = part.split('-').map(Number);
      return i >= a! && i <= (b ?? a!);
    });
}

/** Done items in a shard file (0 when it does not exist yet). */
function shardDone(file: string, runUid: string): number {
  if (inspectProjectFile(file).kind !== 'project') return 0;
  const db = openForReading(file);
  try {
    if (readShardMeta(db, file)?.runUid !== runUid) return 0;
    return Number(db.prepare(`SELECT COUNT(*) FROM run_items i JOIN runs r ON r.id = i.run_id WHERE r.uid = ? AND i.status = 'done'`).pluck().get(runUid));
  } finally {
    db.close();
  }
}

/** `cluster.status`: each shard's state, from its exit file, squeue / sacct and its shard file. */
export async function clusterStatus(p: ParamsOf<'cluster.status'>, run: Runner = commandRunner()): Promise<ResultOf<'cluster.status'>> {
  const dir = resolveFile(p.jobDir);
  const m = readManifest(dir);
  const paths = jobPaths(dir);
  const { states, notes } = await slurmTaskStates(
    m.submissions.map((s) => s.jobId),
    run,
  );
  const shards = m.items.map((keys, index) => {
    const exitCode = readExitCode(dir, index);
    const submitted = m.submissions.some((s) => arrayIncludes(s.array, index));
    const file = paths.shardFile(index);
    return {
      index,
      state: shardState(exitCode, states.get(index), submitted),
      items: keys.length,
      done: Math.min(keys.length, shardDone(file, m.run.uid)),
      exitCode,
      slurm: states.get(index) ?? null,
      file,
      log: paths.log(index),
    };
  });
  return { dir, project: m.project, runUid: m.run.uid, kind: specOf(m.run.kind as never).kind, shards, submissions: m.submissions, notes, commands: commandsOf(dir) };
}

/** `cluster.submit`: the array (or some of its shards) to sbatch. */
export async function submitClusterJob(p: ParamsOf<'cluster.submit'>, run: Runner = commandRunner()): Promise<ResultOf<'cluster.submit'>> {
  const dir = resolveFile(p.jobDir);
  const m = readManifest(dir);
  for (const i of p.shards ?? []) if (i >= m.shards) throw new CliffscopeError('bad-argument', `shards: the job has shards 0..${m.shards - 1}, not ${i}`);
  const { jobId, array } = await submitJob(dir, run, p.shards);
  return { jobId, array };
}

/** `cluster.collect`: merge the shard files there are, then resubmit the shards that failed or were killed. */
export async function collectClusterJob(p: ParamsOf<'cluster.collect'>, ctx: CallContext, run: Runner = commandRunner()): Promise<ResultOf<'cluster.collect'>> {
  const dir = resolveFile(p.jobDir);
  const before = await clusterStatus({ jobDir: dir }, run);
  const files = before.shards.filter((s) => s.done > 0).map((s) => s.file);
  const merge = files.length ? await mergeShards({ project: p.project ?? before.project, files }, ctx) : null;
  let resubmitted: ResultOf<'cluster.collect'>['resubmitted'] = null;
  const again = before.shards.filter((s) => ['failed', 'cancelled', 'lost'].includes(s.state) && s.done < s.items).map((s) => s.index);
  if (again.length && p.resubmit !== false) {
    const sub = await submitJob(dir, run, again);
    resubmitted = { jobId: sub.jobId, array: sub.array, shards: again };
    ctx.log('info', `resubmitted shard${again.length > 1 ? 's' : ''} ${again.join(', ')} as job ${sub.jobId}`);
  }
  return { merge, resubmitted, status: resubmitted ? await clusterStatus({ jobDir: dir }, run) : before };
}
