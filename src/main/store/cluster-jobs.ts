/**
 * The Slurm job directories planned from a project (`cluster.plan`), so the workbench's Jobs tab can list them and
 * read each one's state. A job's state lives in its directory (manifest, exit files, shard files), not here: the
 * project keeps only where the directories are, as a JSON list in its `meta` table under `cluster_jobs` (no table of
 * its own, so no schema change). A project file is untrusted: entries of the wrong shape are skipped, never thrown.
 */
import type { Statements } from './statements.js';

export const CLUSTER_JOBS_KEY = 'cluster_jobs';
/** Enough for years of studies; the oldest are dropped first (their directories are untouched). */
export const MAX_CLUSTER_JOBS = 500;

export interface PlannedJob {
  /** The job directory (absolute). */
  dir: string;
  /** The uid of the run its shards write (and the merge adds to the project). */
  runUid: string;
  kind: string;
  name: string | null;
  shards: number;
  /** ISO time of planning. */
  plannedAt: string;
}

const isPlannedJob = (j: unknown): j is PlannedJob => {
  if (j === null || typeof j !== 'object') return false;
  const o = j as Record<string, unknown>;
  return (
    typeof o.dir === 'string' &&
    typeof o.runUid === 'string' &&
    typeof o.kind === 'string' &&
    (o.name === null || typeof o.name === 'string') &&
    Number.isInteger(o.shards) &&
    typeof o.plannedAt === 'string'
  );
};

export class ClusterJobsStore {
  constructor(private readonly sql: Statements) {}

  /** The planned jobs, oldest first (entries of the wrong shape, or text that is not JSON, are left out). */
  list(): PlannedJob[] {
    const text = this.sql.get<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, CLUSTER_JOBS_KEY)?.value;
    if (text === undefined) return [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return [];
    }
    return Array.isArray(value) ? value.filter(isPlannedJob).map(({ dir, runUid, kind, name, shards, plannedAt }) => ({ dir, runUid, kind, name, shards, plannedAt })) : [];
  }

  /** Record a planned job (a directory recorded before is replaced by the new plan). */
  add(job: PlannedJob): void {
    const jobs = [...this.list().filter((j) => j.dir !== job.dir), job].slice(-MAX_CLUSTER_JOBS);
    this.sql.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, CLUSTER_JOBS_KEY, JSON.stringify(jobs));
  }
}
