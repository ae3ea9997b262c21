/**
 * Helpers for the serve tests: raw HTTP requests (so Host and Origin can be set at will), a minimal SSE reader, and
 * an engine wrapper that counts what reaches the engine.
 */
import http from 'node:http';
import type { ApiResponse, JobEvent } from '../../src/shared/contract.js';
import type { CallOptions, EngineClient } from '../../src/main/api/host/engine-client.js';
import type { ServeEngine } from '../../src/main/serve/server.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = ApiResponse>(): T;
}

export function request(
  port: number,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** POST a JSON body to /api/… with the bearer token (unless `token` is null). */
export function post(
  port: number,
  path: string,
  body: unknown,
  opts: { token?: string | null; session?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.session) headers['x-cliffscope-session'] = opts.session;
  return request(port, { method: 'POST', path, headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** An open /api/events stream: the events so far, and a way to wait for more. */
export interface EventStream {
  status: number;
  events: JobEvent[];
  waitFor(predicate: (events: JobEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function openEvents(port: number, query: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/api/events?${query}`, agent: false }, (res) => {
      const events: JobEvent[] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of frame.split('\n')) if (line.startsWith('data: ')) events.push(JSON.parse(line.slice(6)) as JobEvent);
        }
        for (const w of [...waiters]) w();
      });
      resolve({
        status: res.statusCode ?? 0,
        events,
        waitFor: (predicate, timeoutMs = 60_000) =>
          new Promise<void>((done, fail) => {
            if (predicate(events)) return done();
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out waiting for events; got ${events.length}`));
            }, timeoutMs);
            const check = () => {
              if (!predicate(events)) return;
              clearTimeout(timer);
              waiters.delete(check);
              done();
            };
            waiters.add(check);
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
    });
  });
}

/** Passes calls to a real EngineClient and records what got through. */
export class CountingEngine implements ServeEngine {
  readonly calls: { method: string; callId?: string }[] = [];
  readonly cancels: string[] = [];

  constructor(private readonly inner: EngineClient) {}

  invoke(method: string, params: unknown, opts: CallOptions = {}): Promise<ApiResponse> {
    this.calls.push({ method, callId: opts.callId });
    return this.inner.invoke(method, params, opts);
  }

  cancel(callId: string): void {
    this.cancels.push(callId);
    this.inner.cancel(callId);
  }
}
