/**
 * What a handler gets besides its params: a way to report progress and logs for the call it serves, and a signal
 * that fires when the caller cancels. Calls that finish quickly simply ignore it.
 */
import type { JobEvent } from '../../shared/contract.js';

export interface CallContext {
  /** The call's id; events carry it as `jobId`. */
  readonly jobId: string;
  readonly signal: AbortSignal;
  progress(done: number, total: number | null, label?: string): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
  /** Any other event kind of the contract (e.g. streamed tokens); jobId and timestamp are filled in. */
  emit?(event: DistributiveOmit<JobEvent, 'jobId' | 'at'>): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A context that reports to `emit` (or nowhere) and is cancelled by `signal`. */
export function makeCallContext(jobId: string, signal: AbortSignal, emit?: (event: JobEvent) => void): CallContext {
  return {
    jobId,
    signal,
    progress: (done, total, label) =>
      emit?.({ jobId, at: Date.now(), kind: 'progress', done, total: total !== null && total > 0 ? total : null, ...(label ? { label } : {}) }),
    log: (level, message) => emit?.({ jobId, at: Date.now(), kind: 'log', level, message }),
    emit: (event) => emit?.({ ...event, jobId, at: Date.now() } as JobEvent),
  };
}

/** For calls made without a caller that listens (tests, one-off CLI use). */
export function detachedContext(): CallContext {
  return makeCallContext('detached', new AbortController().signal);
}
