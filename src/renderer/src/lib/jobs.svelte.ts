/**
 * Every long call the page starts goes through `jobs.start`: it gets a job id, its progress and logs stream into
 * a reactive record (shown by the Jobs panel and by the panel that started it), and it can be cancelled.
 */
import type { JobEvent, Method, ParamsOf, ResultOf } from '../../../shared/contract.js';
import { cancel as cancelCall, onEvent, runJob, toApiError } from './api.js';
import { applyJobEvent, makeJobId, newJob, settleJob, type JobRecord } from './jobs.js';

export interface StartOptions<M extends Method> {
  /** Also receive this job's raw events (e.g. generate.run's tokens). */
  onEvent?: (event: JobEvent) => void;
  /** A line for the Jobs panel once it succeeds; `cancelled` when the result says it was stopped. */
  describe?: (result: ResultOf<M>) => { summary?: string; cancelled?: boolean };
}

class Jobs {
  list = $state<JobRecord[]>([]);
  #seq = 0;
  #listeners = new Map<string, (event: JobEvent) => void>();
  #unsubscribe: (() => void) | null = null;

  get running(): JobRecord[] {
    return this.list.filter((j) => j.status === 'running');
  }

  get(id: string | null | undefined): JobRecord | undefined {
    return id ? this.list.find((j) => j.id === id) : undefined;
  }

  /** Start `method` as a job. Resolves with its result; rejects with an ApiError (also recorded on the job). */
  start<M extends Method>(method: M, params: ParamsOf<M>, label: string, opts: StartOptions<M> = {}): { id: string; result: Promise<ResultOf<M>> } {
    const now = Date.now();
    const id = makeJobId(method, ++this.#seq, now);
    this.list = [newJob(id, method, label, now), ...this.list];
    this.#subscribe();
    if (opts.onEvent) this.#listeners.set(id, opts.onEvent);
    const result = runJob(method, params, id).then(
      (value) => {
        const d = opts.describe?.(value) ?? {};
        this.#update(id, (j) => settleJob(j, { ok: true, ...d }, Date.now()));
        return value;
      },
      (e: unknown) => {
        const err = toApiError(e);
        const error = { message: err.message, code: err.code, ...(err.file ? { file: err.file } : {}), ...(err.hint ? { hint: err.hint } : {}), ...(err.issues?.length ? { issues: err.issues } : {}) };
        this.#update(id, (j) => settleJob(j, { ok: false, error }, Date.now()));
        throw err;
      },
    );
    // Keep the listener until the call settles (its last events may arrive just before the reply).
    void result.finally(() => setTimeout(() => this.#listeners.delete(id), 1000)).catch(() => undefined);
    return { id, result };
  }

  cancel(id: string): void {
    const job = this.get(id);
    if (!job || job.status !== 'running') return;
    this.#update(id, (j) => ({ ...j, cancelRequested: true }));
    cancelCall(id);
  }

  /** Forget finished jobs. */
  clearFinished(): void {
    this.list = this.list.filter((j) => j.status === 'running');
  }

  #update(id: string, f: (job: JobRecord) => JobRecord): void {
    this.list = this.list.map((j) => (j.id === id ? f(j) : j));
  }

  #subscribe(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = onEvent((event) => {
      const index = this.list.findIndex((j) => j.id === event.jobId);
      if (index >= 0 && (event.kind === 'progress' || event.kind === 'log')) {
        const next = applyJobEvent(this.list[index]!, event);
        if (next !== this.list[index]) this.list[index] = next;
      }
      this.#listeners.get(event.jobId)?.(event);
    });
  }
}

export const jobs = new Jobs();
