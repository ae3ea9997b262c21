/**
 * Serve mode: the same renderer in a browser, over the same contract, on node:http. This is how a lab runs
 * Cliffscope on a headless GPU server through an SSH tunnel.
 *
 *   GET  /…                  the built renderer (static files)
 *   POST /api/invoke         { method, params, jobId? } → the ApiResponse envelope, as over IPC
 *   GET  /api/events         Server-Sent Events: the JobEvents of this session's calls made with a jobId
 *   POST /api/cancel         { jobId } → asks the engine to stop that call
 *
 * Security mirrors the Electron app: the page may only talk to its own origin (same CSP and headers), every API
 * request needs the session token (the only way in; there is no way to turn it off), the Host header must name this
 * server (DNS-rebinding defence; bound to every interface, the names allowed must be listed), a cross-origin page is
 * refused by its Origin, and a request is validated against the contract — and every path in it checked against the
 * folders the server may use (file-access.ts) — before anything reaches the engine process. Inference runs in the
 * engine host process, never here.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ApiErrorInfo, type ApiResponse, isContractError, validateRequest } from '../../shared/contract.js';
import type { EngineClient } from '../api/host/engine-client.js';
import { CliffscopeError } from '../engine/errors.js';
import { defaultCacheRoot } from '../engine/onnx/compile.js';
import { type FileAccessPolicy, refusedPath, RootsPolicy } from '../web/file-access.js';
import { SECURITY_HEADERS } from '../web/security.js';
import { DEFAULT_SESSION, JOB_ID, SESSION_ID, Sessions, type Session } from './sessions.js';
import { serveStatic } from './static.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The renderer electron-vite builds (`npm run build`): src/main/serve → out/renderer. */
export const DEFAULT_RENDERER_DIR = path.resolve(here, '../../../out/renderer');
export const DEFAULT_HOST = '127.0.0.1';
/** Largest request body accepted (params of a big generate call, a probe's weights). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The header that carries a tab's session id on invoke and cancel. */
export const SESSION_HEADER = 'x-cliffscope-session';

/** What the server needs from the engine: the EngineClient, or a wrapper around it in tests. */
export type ServeEngine = Pick<EngineClient, 'invoke' | 'cancel'>;

export interface ServeOptions {
  engine: ServeEngine;
  /** Address to bind; default 127.0.0.1. Anything but loopback exposes the engine to whoever holds the token. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default: 32 random bytes, base64url. */
  token?: string;
  rendererDir?: string;
  maxBodyBytes?: number;
  /**
   * Host names (or addresses) a browser may use for this server besides loopback and the bound address. Required
   * when bound to every interface (0.0.0.0, ::): the Host header is then the only defence against DNS rebinding.
   */
  allowedHosts?: readonly string[];
  /** Which paths a request may name; default RootsPolicy.defaults() (home, temp, the start folder, the cache). */
  fileAccess?: FileAccessPolicy;
}

export interface ServeHandle {
  /** The address to open, token included: `http://127.0.0.1:7717/#token=…`. */
  url: string;
  /** `http://host:port`, without the token. */
  origin: string;
  host: string;
  port: number;
  token: string;
  /** Ends event streams and open connections, then stops listening. Does not close the engine. */
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'));
}

function isWildcardHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === '0.0.0.0' || h === '::';
}

/** `::1` → `[::1]` for URLs and Host headers. */
function urlHost(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

export function newToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** Constant-time comparison (hashing first makes the lengths equal, as timingSafeEqual requires). */
function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(token).digest();
  return crypto.timingSafeEqual(a, b);
}

function bearer(req: http.IncomingMessage): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(text);
}

function fail(res: http.ServerResponse, status: number, error: ApiErrorInfo, extra?: Record<string, string>): void {
  sendJson(res, status, { ok: false, error } satisfies ApiResponse, extra);
}

/** A contract error keeps its code and the fields at fault; anything else is a malformed message. */
function errorInfo(e: unknown): ApiErrorInfo {
  if (isContractError(e)) return { code: e.code, message: e.message, issues: e.issues.map((i) => ({ ...i })) };
  return { code: 'bad-message', message: e instanceof Error ? e.message : String(e) };
}

type Body = { ok: true; value: unknown } | { ok: false; status: number; error: ApiErrorInfo };

/** Read a JSON body: content type application/json (which also forces a CORS preflight), at most `limit` bytes. */
async function readJson(req: http.IncomingMessage, limit: number): Promise<Body> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return { ok: false, status: 415, error: { code: 'bad-message', message: 'the request body must be application/json' } };
  }
  const tooLarge: Body = { ok: false, status: 413, error: { code: 'bad-message', message: `request body over ${limit} bytes` } };
  if (Number(req.headers['content-length'] ?? 0) > limit) return tooLarge;
  const text = await new Promise<string | null>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      // Stop collecting but keep the socket, so the 413 can still be sent; the rest is read and dropped.
      req.off('data', onData);
      req.resume();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
  if (text === null) return tooLarge;
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, status: 400, error: { code: 'bad-message', message: 'the request body is not valid JSON' } };
  }
}

/** Check that a body is an object with only the given keys; returns the first problem. */
function shapeProblem(value: unknown, allowed: readonly string[]): string | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'the request body must be a JSON object';
  for (const key of Object.keys(value)) if (!allowed.includes(key)) return `unknown field "${key}" in the request body`;
  return null;
}

export async function startServer(opts: ServeOptions): Promise<ServeHandle> {
  const host = opts.host ?? DEFAULT_HOST;
  const token = opts.token ?? newToken();
  const rendererDir = path.resolve(opts.rendererDir ?? DEFAULT_RENDERER_DIR);
  const limit = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const engine = opts.engine;
  const sessions = new Sessions();
  const wildcard = isWildcardHost(host);
  const extraHosts = (opts.allowedHosts ?? []).map((h) => urlHost(h.trim()).toLowerCase()).filter(Boolean);
  if (wildcard && extraHosts.length === 0) {
    throw new CliffscopeError('bad-argument', `binding to every interface (${host}) needs the names browsers will use for this machine`, {
      hint: 'pass --allow-host NAME (repeatable), e.g. --allow-host gpu-server.lab.example; or bind to loopback and tunnel with ssh -L',
    });
  }
  const files = opts.fileAccess ?? RootsPolicy.defaults([], defaultCacheRoot());
  // Names a browser may use for this server. The port is not checked: an SSH tunnel may map another local port.
  const allowedHostnames = new Set(['localhost', '127.0.0.1', '[::1]', ...(wildcard ? [] : [urlHost(host).toLowerCase()]), ...extraHosts]);

  /** DNS rebinding: a foreign name that resolves to 127.0.0.1 arrives with its own name in Host. */
  function hostAllowed(req: http.IncomingMessage): boolean {
    const value = req.headers.host;
    if (!value || !/^[A-Za-z0-9.\-[\]:]+$/.test(value)) return false;
    let hostname: string;
    try {
      hostname = new URL(`http://${value}`).hostname.toLowerCase();
    } catch {
      return false;
    }
    return allowedHostnames.has(hostname);
  }

  /** A browser sends Origin on cross-origin requests and on every POST; it must be this page's own origin. */
  function originAllowed(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // not a browser, or a same-origin GET (EventSource)
    return origin.toLowerCase() === `http://${req.headers.host ?? ''}`.toLowerCase();
  }

  function sessionOf(req: http.IncomingMessage, fromQuery: string | null): Session | null {
    const header = req.headers[SESSION_HEADER];
    const id = fromQuery ?? (typeof header === 'string' ? header : DEFAULT_SESSION);
    return SESSION_ID.test(id) ? sessions.get(id) : null;
  }

  const badSession: ApiErrorInfo = { code: 'bad-params', message: 'session id must be 1-64 letters, digits, _ or -' };
  const badJobId: ApiErrorInfo = { code: 'bad-params', message: 'job id must be 1-100 letters, digits, _ . : -' };

  async function invoke(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req, limit);
    if (!body.ok) return fail(res, body.status, body.error);
    const problem = shapeProblem(body.value, ['method', 'params', 'jobId']);
    if (problem) return fail(res, 400, { code: 'bad-message', message: problem });
    const { method, params, jobId } = body.value as { method?: unknown; params?: unknown; jobId?: unknown };
    if (jobId !== undefined && (typeof jobId !== 'string' || !JOB_ID.test(jobId))) return fail(res, 400, badJobId);
    const session = sessionOf(req, null);
    if (!session) return fail(res, 400, badSession);
    // Validate here, before anything reaches the engine process; the host validates again on its side.
    let request: ReturnType<typeof validateRequest>;
    try {
      request = validateRequest(method, params);
    } catch (e) {
      return fail(res, 400, errorInfo(e));
    }
    const refused = refusedPath(files, request.params, 'serve reads and writes only inside the folders it was started for; restart it with --allow-dir DIR to add one');
    if (refused) return fail(res, 403, refused);
    const callId = jobId === undefined ? undefined : session.callId(jobId);
    // A client that goes away (tab closed, tunnel dropped) will never read the result: stop the work.
    const abandoned = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abandoned.abort();
    });
    if (callId) session.jobs.add(callId);
    try {
      const response = await engine.invoke(request.method, request.params, {
        callId,
        signal: abandoned.signal,
        // Only calls started with a jobId stream events, under the client's own jobId.
        onEvent: jobId === undefined ? undefined : (e) => session.push({ ...e, jobId }),
      });
      // API-level errors are HTTP 200, like IPC: the envelope says what happened.
      sendJson(res, 200, response);
    } finally {
      if (callId) session.jobs.delete(callId);
    }
  }

  async function cancel(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req, limit);
    if (!body.ok) return fail(res, body.status, body.error);
    const problem = shapeProblem(body.value, ['jobId']);
    if (problem) return fail(res, 400, { code: 'bad-message', message: problem });
    const { jobId } = body.value as { jobId?: unknown };
    if (typeof jobId !== 'string' || !JOB_ID.test(jobId)) return fail(res, 400, badJobId);
    const session = sessionOf(req, null);
    if (!session) return fail(res, 400, badSession);
    const callId = session.callId(jobId);
    // Only this session's own jobs: another tab's job with the same id is a different call id.
    const running = session.jobs.has(callId);
    if (running) engine.cancel(callId);
    sendJson(res, 200, { ok: true, result: { cancelled: running } });
  }

  function events(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams): void {
    const session = sessionOf(req, query.get('session'));
    if (!session) return fail(res, 400, badSession);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no', // a reverse proxy must not hold events back
    });
    res.write('retry: 2000\n\n');
    session.attach(res);
    // A comment now and then keeps tunnels and proxies from closing an idle stream.
    const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      session.detach(res);
    });
  }

  const unauthorized: ApiErrorInfo = {
    code: 'unauthorized',
    message: 'missing or wrong session token',
    hint: 'open the exact URL that `cliffscope serve` printed (it ends with #token=…)',
  };

  async function api(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, query: URLSearchParams): Promise<void> {
    const routes: Record<string, string> = { '/api/invoke': 'POST', '/api/cancel': 'POST', '/api/events': 'GET' };
    const allowed = routes[pathname];
    if (!allowed) return fail(res, 404, { code: 'not-found', message: `no API endpoint ${pathname}` });
    if (req.method !== allowed) {
      return fail(res, 405, { code: 'method-not-allowed', message: `${pathname} takes ${allowed}` }, { allow: allowed });
    }
    if (!originAllowed(req)) {
      return fail(res, 403, { code: 'forbidden', message: 'requests from another origin are refused' });
    }
    // EventSource cannot set headers, so the event stream (and only it) also takes the token from the query.
    const given = pathname === '/api/events' ? (query.get('token') ?? bearer(req)) : bearer(req);
    if (!tokenMatches(given, token)) {
      return fail(res, 401, unauthorized, { 'www-authenticate': 'Bearer' });
    }
    if (pathname === '/api/invoke') return invoke(req, res);
    if (pathname === '/api/cancel') return cancel(req, res);
    return events(req, res, query);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q === -1 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
    if (!hostAllowed(req)) {
      return fail(res, 403, { code: 'forbidden', message: 'unexpected Host header; open the address the server printed' });
    }
    if (pathname === '/api' || pathname.startsWith('/api/')) return api(req, res, pathname, query);
    return serveStatic(rendererDir, req, res, pathname);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      console.error('[cliffscope serve] request failed:', e);
      if (!res.headersSent) fail(res, 500, { code: 'internal', message: 'internal server error' });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const port = (server.address() as net.AddressInfo).port;
  // Bound to every interface: this machine reaches it on loopback; others use its address (see the verb's note).
  const origin = `http://${wildcard ? '127.0.0.1' : urlHost(host)}:${port}`;
  return {
    url: `${origin}/#token=${token}`,
    origin,
    host,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        sessions.endStreams();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
