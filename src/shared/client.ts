/**
 * The typed API client, independent of how requests travel. The renderer uses it over the Electron bridge or over
 * HTTP (serve mode); anything else that speaks the contract (tests, scripts) can plug in its own transport.
 *
 * Browser-safe: no Node or Electron imports.
 */
import {
  METHODS,
  validateRequest,
  validateResponse,
  validateResult,
  type ApiClient,
  type ApiErrorInfo,
  type ApiInvoke,
  type ApiResponse,
  type ContractIssue,
  type Method,
  type ResultOf,
} from './contract.js';
import type { CliffscopeBridge } from './bridge.js';

/** Sends one request and resolves with the raw reply envelope (validated by the client, not the transport). */
export type Transport = (method: Method, params: unknown) => Promise<unknown>;

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
    if (this.hint) lines.push(`fix: ${this.hint}`);
    return lines.join('\n');
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** Turn anything thrown into an `ApiError` (contract errors keep their code and issues). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) {
    const withCode = e as Error & { code?: unknown; issues?: ContractIssue[] };
    const code = typeof withCode.code === 'string' ? withCode.code : 'transport';
    return new ApiError({ code, message: e.message, issues: withCode.issues });
  }
  return new ApiError({ code: 'transport', message: String(e) });
}

/**
 * One validated call: params are checked before they leave (so a form error shows without a round trip), the reply
 * envelope and the result are checked when they come back.
 */
export function makeInvoke(transport: Transport): ApiInvoke {
  const invoke = async (method: Method, params?: unknown): Promise<unknown> => {
    let reply: ApiResponse;
    try {
      const req = validateRequest(method, params);
      reply = validateResponse(await transport(req.method, req.params));
    } catch (e) {
      throw toApiError(e);
    }
    if (!reply.ok) throw new ApiError(reply.error);
    try {
      return validateResult(method, reply.result);
    } catch (e) {
      throw toApiError(e);
    }
  };
  return invoke as ApiInvoke;
}

/** `client['model.inspect']({ dir })` — one function per method of the contract. */
export function createApiClient(transport: Transport): ApiClient {
  const invoke = makeInvoke(transport) as (method: Method, params?: unknown) => Promise<ResultOf<Method>>;
  const client: Record<string, (params?: unknown) => Promise<unknown>> = {};
  for (const method of METHODS) client[method] = (params?: unknown) => invoke(method, params);
  return Object.freeze(client) as unknown as ApiClient;
}

/** Transport over the Electron preload bridge (`window.cliffscope`). */
export function bridgeTransport(bridge: CliffscopeBridge): Transport {
  return (method, params) => bridge.invoke(method, params as never);
}

export interface HttpTransportOptions {
  /** Where the serve server answers; default `/api/invoke` on the page's own origin. */
  endpoint?: string;
  /** The session token `cliffscope serve` prints; sent as a bearer token. */
  token: string | null;
  fetch?: typeof globalThis.fetch;
}

/**
 * Transport for serve mode: `POST endpoint` with `{ method, params }` as JSON and `Authorization: Bearer <token>`;
 * the server answers with the same envelope as IPC. Non-JSON replies (proxy errors, 404 pages) become `ApiError`s.
 */
export function httpTransport(opts: HttpTransportOptions): Transport {
  const endpoint = opts.endpoint ?? '/api/invoke';
  return async (method, params) => {
    const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let res: Response;
    try {
      res = await doFetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ method, params }),
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
