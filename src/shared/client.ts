/**
 * The typed API client, independent of how requests travel. The renderer uses it over the Electron bridge or over
 * HTTP (serve mode); anything else that speaks the contract (tests, scripts) can plug in its own transport.
 *
 * Browser-safe: no Node or Electron imports.
 */
import {
  METHODS,
  validateJobEvent,
  validateRequest,
  validateResponse,
  validateResult,
  type ApiClient,
  type ApiErrorInfo,
  type ApiInvoke,
  type ApiResponse,
  type ContractIssue,
  type JobEvent,
  type Method,
  type ParamsOf,
  type ResultOf,
} from './contract.js';
import type { CliffscopeBridge } from './bridge.js';

/**
 * Sends one request and resolves with the raw reply envelope (validated by the client, not the transport). A call
 * made with a `jobId` streams its events to `onEvent` listeners and can be cancelled by that id.
 */
export type Transport = (method: Method, params: unknown, jobId?: string) => Promise<unknown>;

/** An API call failed: on the far side (engine error, bad params) or on the way (transport). */
export class ApiError extends Error {
  readonly code: string;
  readonly file?: string;
  readonly hint?: string;
  readonly issues?: ContractIssue[];

  constructor(info: ApiErrorInfo) {
    super(info.message);
    this.name = 'ApiError';
    this.code = info.code;
    this.file = info.file;
    this.hint = info.hint;
    this.issues = info.issues;
  }

  /** A block of text fit to show a person: what went wrong, where, and what to do. */
  describe(): string {
    const lines = [this.message];
    if (this.file && !this.message.includes(this.file)) lines.push(`file: ${this.file}`);
    const hint = hintFor(this);
    if (hint) lines.push(`fix: ${hint}`);
    return lines.join('\n');
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/**
 * What to do about an error that came without a hint of its own, by its code: every error a person sees says what
 * went wrong and what to do.
 */
const HINTS_BY_CODE: Record<string, string> = {
  transport: 'check that Cliffscope (the app, or `cliffscope serve`) is still running, then try again',
  'bad-params': 'correct the fields listed and try again',
  'bad-result': 'this is a bug in Cliffscope: please report it with the Jobs tab’s log',
  'bad-message': 'this is a bug in Cliffscope: please report it with the Jobs tab’s log',
  internal: 'this is a bug in Cliffscope: please report it with the Jobs tab’s log',
  forbidden: 'choose a file inside your own folders (or pick it in the file dialog)',
  'unknown-method': 'the page and the engine are different versions: reload the page',
};

/** The hint an error shows: its own, else the one for its code (none for codes that always carry their own). */
export function hintFor(error: { code: string; hint?: string }): string | undefined {
  return error.hint ?? HINTS_BY_CODE[error.code];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Turn anything thrown into an `ApiError` (contract errors keep their code and issues). A plain object with a
 * `message` — an error as it crossed a boundary (`ApiErrorInfo`), or as a job recorded it — keeps its code, file, hint
 * and issues; anything else is described as JSON, never as "[object Object]".
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) {
    const withCode = e as Error & { code?: unknown; issues?: ContractIssue[]; file?: unknown; hint?: unknown };
    // An Error without a code: a form's own check ("choose a model folder"), whose message says what to do.
    const code = typeof withCode.code === 'string' ? withCode.code : 'error';
    return new ApiError({
      code,
      message: e.message || e.name,
      issues: withCode.issues,
      ...(typeof withCode.file === 'string' ? { file: withCode.file } : {}),
      ...(typeof withCode.hint === 'string' ? { hint: withCode.hint } : {}),
    });
  }
  if (isRecord(e) && typeof e.message === 'string') {
    const issues = Array.isArray(e.issues)
      ? e.issues.filter((i): i is ContractIssue => isRecord(i) && typeof i.path === 'string' && typeof i.message === 'string')
      : undefined;
    return new ApiError({
      code: typeof e.code === 'string' && e.code ? e.code : 'internal',
      message: e.message,
      ...(typeof e.file === 'string' ? { file: e.file } : {}),
      ...(typeof e.hint === 'string' ? { hint: e.hint } : {}),
      ...(issues?.length ? { issues } : {}),
    });
  }
  if (typeof e === 'string') return new ApiError({ code: 'error', message: e });
  let text: string;
  try {
    text = JSON.stringify(e) ?? String(e);
  } catch {
    text = String(e);
  }
  return new ApiError({ code: 'internal', message: text });
}

/**
 * One validated call: params are checked before they leave (so a form error shows without a round trip), the reply
 * envelope and the result are checked when they come back.
 */
export function makeInvoke(transport: Transport): ApiInvoke {
  return ((method: Method, params?: unknown) => call(transport, method, params)) as ApiInvoke;
}

/** A call that streams events (progress, tokens) under `jobId`, which also cancels it. */
export type ApiJobInvoke = <M extends Method>(method: M, params: ParamsOf<M>, jobId: string) => Promise<ResultOf<M>>;

/** Like `makeInvoke`, for calls started with a job id (see `JobEvents`). */
export function makeJobInvoke(transport: Transport): ApiJobInvoke {
  return ((method: Method, params: unknown, jobId: string) => call(transport, method, params, jobId)) as ApiJobInvoke;
}

async function call(transport: Transport, method: Method, params: unknown, jobId?: string): Promise<unknown> {
  let reply: ApiResponse;
  try {
    const req = validateRequest(method, params);
    // The job id is passed only when there is one, so transports see exactly (method, params) otherwise.
    const sent = jobId === undefined ? transport(req.method, req.params) : transport(req.method, req.params, jobId);
    reply = validateResponse(await sent);
  } catch (e) {
    // A contract error keeps its code; anything else the transport threw is a failure on the way.
    throw e instanceof Error && typeof (e as { code?: unknown }).code !== 'string' ? new ApiError({ code: 'transport', message: e.message || e.name }) : toApiError(e);
  }
  if (!reply.ok) throw new ApiError(reply.error);
  try {
    return validateResult(method, reply.result);
  } catch (e) {
    throw toApiError(e);
  }
}

/** `client['model.inspect']({ dir })` — one function per method of the contract. */
export function createApiClient(transport: Transport): ApiClient {
  const invoke = makeInvoke(transport) as (method: Method, params?: unknown) => Promise<ResultOf<Method>>;
  const client: Record<string, (params?: unknown) => Promise<unknown>> = {};
  for (const method of METHODS) client[method] = (params?: unknown) => invoke(method, params);
  // One function per method, each checked against its method's schemas at run time.
  return Object.freeze(client) as ApiClient;
}

/** Transport over the Electron preload bridge (`window.cliffscope`). */
export function bridgeTransport(bridge: CliffscopeBridge): Transport {
  return (method, params, jobId) =>
    jobId === undefined ? bridge.invoke(method, params as never) : bridge.invoke(method, params as never, jobId);
}

export interface HttpTransportOptions {
  /** Where the serve server answers; default `/api/invoke` on the page's own origin. */
  endpoint?: string;
  /** The session token `cliffscope serve` prints; sent as a bearer token. */
  token: string | null;
  /** This tab's session id (`x-cliffscope-session`): scopes job ids, events and cancel to the tab. */
  session?: string;
  fetch?: typeof globalThis.fetch;
}

/**
 * Transport for serve mode: `POST endpoint` with `{ method, params }` as JSON and `Authorization: Bearer <token>`;
 * the server answers with the same envelope as IPC. Non-JSON replies (proxy errors, 404 pages) become `ApiError`s.
 */
export function httpTransport(opts: HttpTransportOptions): Transport {
  const endpoint = opts.endpoint ?? '/api/invoke';
  return async (method, params, jobId) => {
    const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.session) headers['x-cliffscope-session'] = opts.session;
    let res: Response;
    try {
      res = await doFetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(jobId === undefined ? { method, params } : { method, params, jobId }),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError({
        code: 'transport',
        message: `cannot reach the Cliffscope server at ${endpoint}: ${e instanceof Error ? e.message : String(e)}`,
        hint: 'is `cliffscope serve` still running?',
      });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError({
        code: res.status === 401 || res.status === 403 ? 'forbidden' : 'transport',
        message: `server answered HTTP ${res.status} ${res.statusText} without an API reply`.trim(),
        hint:
          res.status === 401 || res.status === 403
            ? 'open the exact URL that `cliffscope serve` printed (it carries the session token)'
            : undefined,
      });
    }
    return body;
  };
}

/** Job events and cancellation, the same shape on both faces (the bridge's `onEvent` and `cancel`). */
export interface JobEvents {
  /** Events of calls made with a jobId (progress, tokens, logs). Returns a function that unsubscribes. */
  onEvent(listener: (event: JobEvent) => void): () => void;
  /** Ask the engine to stop the call started with this jobId (fire and forget). */
  cancel(jobId: string): void;
}

/** Inside the app: the preload bridge already has both. */
export function bridgeEvents(bridge: CliffscopeBridge): JobEvents {
  return { onEvent: (listener) => bridge.onEvent(listener), cancel: (jobId) => bridge.cancel(jobId) };
}

/** The part of the browser's EventSource used here (injectable for tests; Node 20 has none). */
export interface EventSourceLike {
  onmessage: ((event: { data: string }) => void) | null;
  close(): void;
}

export interface HttpEventsOptions {
  /** Where the serve API answers; default `/api` on the page's own origin. */
  base?: string;
  token: string | null;
  /** This tab's session id; must be the one its calls are made with. */
  session?: string;
  fetch?: typeof globalThis.fetch;
  EventSource?: new (url: string) => EventSourceLike;
}

/**
 * Serve mode's events: one EventSource on `base/events` while anyone listens (EventSource cannot send headers, so
 * the token goes in the query — the server accepts that for this endpoint only), and `POST base/cancel`. Events that
 * do not match the contract are dropped.
 */
export function httpEvents(opts: HttpEventsOptions): JobEvents {
  const base = opts.base ?? '/api';
  const listeners = new Set<(event: JobEvent) => void>();
  let source: EventSourceLike | null = null;

  function open(): void {
    const Source = opts.EventSource ?? (globalThis as { EventSource?: new (url: string) => EventSourceLike }).EventSource;
    if (!Source || !opts.token) return; // no stream possible; calls still work, they just report no events
    const query = new URLSearchParams({ token: opts.token });
    if (opts.session) query.set('session', opts.session);
    source = new Source(`${base}/events?${query.toString()}`);
    source.onmessage = (message) => {
      let event: JobEvent;
      try {
        event = validateJobEvent(JSON.parse(message.data));
      } catch {
        return;
      }
      for (const listener of [...listeners]) listener(event);
    };
  }

  return {
    onEvent(listener) {
      listeners.add(listener);
      if (!source) open();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && source) {
          source.close();
          source = null;
        }
      };
    },
    cancel(jobId) {
      if (typeof jobId !== 'string') return;
      const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (opts.session) headers['x-cliffscope-session'] = opts.session;
      // Like the bridge's cancel: nothing to wait for; the call itself ends with finishReason "cancelled".
      doFetch(`${base}/cancel`, { method: 'POST', headers, body: JSON.stringify({ jobId }), credentials: 'omit', cache: 'no-store' }).catch(
        () => undefined,
      );
    },
  };
}
