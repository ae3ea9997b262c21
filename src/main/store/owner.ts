/**
 * Which process owns a running run. A pid alone is not enough: pids are reused, and one process may open a project
 * twice. So a run records host + pid + a random token made once per process; it is ours exactly when all three
 * match, and its owner is gone when, on the same host, that pid no longer exists (or is now us, under another token).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';

export const PROCESS_TOKEN = randomUUID();

export interface Owner {
  host: string;
  pid: number;
  token: string;
}

export function currentOwner(): Owner {
  return { host: os.hostname(), pid: process.pid, token: PROCESS_TOKEN };
}

export function isOurs(o: { host: string | null; pid: number | null; token: string | null }): boolean {
  return o.host === os.hostname() && o.pid === process.pid && o.token === PROCESS_TOKEN;
}

/**
 * 'alive', 'gone', or 'unknown' (another host: we cannot look at its processes, so we leave its runs alone).
 */
export function ownerState(o: { host: string | null; pid: number | null; token: string | null }): 'alive' | 'gone' | 'unknown' {
  if (o.host === null || o.pid === null) return 'gone'; // marked running without an owner: nobody can finish it
  if (o.host !== os.hostname()) return 'unknown';
  if (o.pid === process.pid) return o.token === PROCESS_TOKEN ? 'alive' : 'gone';
  try {
    process.kill(o.pid, 0); // signal 0: only asks whether the process exists
    return 'alive';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'gone'; // EPERM: exists, belongs to someone else
  }
}

/**
 * The status to show for a run: one recorded as 'running' whose owner process on this machine is gone is
 * 'interrupted' (a `kill -9` leaves no chance to say so), whether or not a writer has opened the file since.
 */
export function shownStatus<S extends string>(status: S, o: { host: string | null; pid: number | null; token: string | null }): S | 'interrupted' {
  return status === 'running' && ownerState(o) === 'gone' ? 'interrupted' : status;
}
