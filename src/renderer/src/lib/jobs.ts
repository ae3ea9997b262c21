/**
 * A job as the Jobs panel shows it, and how its events update it. Pure (unit-tested); the reactive list lives in
 * jobs.svelte.ts.
 */
import type { JobEvent } from '../../../shared/contract.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** A failed job's error, as the API reported it (plain data: ErrorBox shows it through toApiError). */
export interface JobError {
  message: string;
  file?: string;
  hint?: string;
  code: string;
  issues?: { path: string; message: string }[];
}

export interface JobRecord {
  id: string;
  /** The API method, e.g. `run.start`. */
  method: string;
  /** What the user started, e.g. "Train probe demo-refusal-2". */
  label: string;
  status: JobStatus;
  startedAt: number;
  finishedAt: number | null;
  /** Latest progress event. */
  done: number;
  total: number | null;
  stage: string | null;
  /** When the current stage's progress started (ETA is per stage: a demo has several). */
  stageStartedAt: number;
  /** Last log lines (newest last, at most LOG_LINES). */
  logs: { level: string; message: string }[];
  error: JobError | null;
  cancelRequested: boolean;
  /** A short line about the result (e.g. "run #12 done"). */
  outcome: string | null;
}

export const LOG_LINES = 50;

export function newJob(id: string, method: string, label: string, now: number): JobRecord {
  return {
    id,
    method,
    label,
    status: 'running',
    startedAt: now,
    finishedAt: null,
    done: 0,
    total: null,
    stage: null,
    stageStartedAt: now,
    logs: [],
    error: null,
    cancelRequested: false,
    outcome: null,
  };
}

/**
 * Apply one streamed event. Progress and logs update a running job; `done` / `error` events are ignored here
 * because the call's own reply (validated against the method's schema) is what settles a job.
 */
export function applyJobEvent(job: JobRecord, event: JobEvent): JobRecord {
  if (event.jobId !== job.id || job.status !== 'running') return job;
  switch (event.kind) {
    case 'progress': {
      const stage = event.label ?? null;
      // A new stage (or progress going backwards) restarts the ETA clock.
      const restarted = stage !== job.stage || event.done < job.done;
      return { ...job, done: event.done, total: event.total, stage, stageStartedAt: restarted ? event.at : job.stageStartedAt };
    }
    case 'log': {
      const logs = [...job.logs, { level: event.level, message: event.message }];
      return { ...job, logs: logs.length > LOG_LINES ? logs.slice(logs.length - LOG_LINES) : logs };
    }
    default:
      return job;
  }
}

/** Settle a job with its call's outcome. A failure after the user asked to cancel counts as cancelled. */
export function settleJob(
  job: JobRecord,
  outcome: { ok: true; cancelled?: boolean; summary?: string } | { ok: false; error: JobError },
  now: number,
): JobRecord {
  if (outcome.ok) {
    return {
      ...job,
      status: outcome.cancelled || job.cancelRequested ? 'cancelled' : 'done',
      finishedAt: now,
      outcome: outcome.summary ?? null,
      done: job.total !== null && !outcome.cancelled && !job.cancelRequested ? job.total : job.done,
    };
  }
  const cancelled = job.cancelRequested || outcome.error.code === 'cancelled';
  return { ...job, status: cancelled ? 'cancelled' : 'failed', finishedAt: now, error: outcome.error };
}

/** A job id unique within this page: the server scopes ids to the tab. */
export function makeJobId(method: string, seq: number, now: number): string {
  return `${method.replace(/[^a-z0-9]+/gi, '-')}-${now.toString(36)}-${seq}`;
}
