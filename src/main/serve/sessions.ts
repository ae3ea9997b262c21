/**
 * Client sessions of serve mode. Everyone who holds the token may call the engine, but job ids are scoped per
 * browser tab, the way Electron scopes them per window: a tab sends a random session id with its calls
 * (`x-cliffscope-session`) and its event stream (`?session=`), and only sees and cancels its own jobs.
 *
 * Each session gets a short server-side key, so the engine's call id (`key:jobId`) stays within the host protocol's
 * 128-character limit whatever the client sent.
 */
import type http from 'node:http';
import type { JobEvent } from '../../shared/contract.js';

export const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The same job id rule as the Electron bridge. */
export const JOB_ID = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Calls made without a session id (curl, scripts) share this one. */
export const DEFAULT_SESSION = 'default';

/** Events kept for a session while no stream is connected (e.g. the call started before EventSource connected). */
const BACKLOG_LIMIT = 5_000;
/** Sessions with no stream and no job for this long are forgotten. */
const IDLE_MS = 10 * 60_000;

export class Session {
  readonly streams = new Set<http.ServerResponse>();
  /** Engine call ids of this session's jobs in flight. */
  readonly jobs = new Set<string>();
  private backlog: string[] = [];
  lastUsed = Date.now();

  constructor(readonly key: string) {}

  callId(jobId: string): string {
    return `${this.key}:${jobId}`;
  }

  /** Send one event to every open stream of this session, or keep it until one connects. */
  push(event: JobEvent): void {
    this.lastUsed = Date.now();
    const frame = `data: ${JSON.stringify(event)}\n\n`;
    if (this.streams.size === 0) {
      this.backlog.push(frame);
      if (this.backlog.length > BACKLOG_LIMIT) this.backlog.shift();
      return;
    }
    for (const res of this.streams) res.write(frame);
  }

  attach(res: http.ServerResponse): void {
    this.lastUsed = Date.now();
    for (const frame of this.backlog) res.write(frame);
    this.backlog = [];
    this.streams.add(res);
  }

  detach(res: http.ServerResponse): void {
    this.lastUsed = Date.now();
    this.streams.delete(res);
  }

  idle(now: number): boolean {
    return this.streams.size === 0 && this.jobs.size === 0 && now - this.lastUsed > IDLE_MS;
  }
}

export class Sessions {
  private readonly byId = new Map<string, Session>();
  private counter = 0;

  get(id: string): Session {
    let s = this.byId.get(id);
    if (!s) {
      this.prune();
      s = new Session(`s${++this.counter}`);
      this.byId.set(id, s);
    }
    return s;
  }

  /** End every event stream (server shutdown). */
  endStreams(): void {
    for (const s of this.byId.values()) for (const res of s.streams) res.end();
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, s] of this.byId) if (s.idle(now)) this.byId.delete(id);
  }
}
