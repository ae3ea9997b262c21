/**
 * The `app://cliffscope/...` scheme that serves the built renderer, and the checks built on its origin. Plain Node (no
 * `electron` import) so it can be tested without Electron; main.ts wires it to `protocol.handle`. The policy, headers
 * and path rules are web/security.ts's, shared with `serve`.
 */
import fs from 'node:fs/promises';
import { contentTypeFor, realFileUnder, type ResolvedPath, resolveUnder, SECURITY_HEADERS } from '../web/security.js';

export const APP_SCHEME = 'app';
export const APP_HOST = 'cliffscope';
/** Where the window is pointed. */
export const APP_ENTRY_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/**
 * Map `app://cliffscope/<path>` to a file under `rootDir`: anything that is not our host is refused, the rest as
 * web/security.ts's resolveUnder does it (no decoding tricks, nothing outside `rootDir`).
 */
export function resolveAppPath(rootDir: string, requestUrl: string): ResolvedPath {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return { ok: false, status: 400, reason: 'malformed URL' };
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) {
    return { ok: false, status: 404, reason: `not an ${APP_SCHEME}://${APP_HOST} URL` };
  }
  return resolveUnder(rootDir, url.pathname);
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' } });
}

/**
 * Answer one app:// request from `rootDir` (the built renderer). Only GET/HEAD; symlinks that lead outside
 * `rootDir` are refused as well. Every response carries the CSP.
 */
export async function serveAppRequest(rootDir: string, request: { url: string; method: string }): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'method not allowed');
  const resolved = resolveAppPath(rootDir, request.url);
  if (!resolved.ok) return plain(resolved.status, resolved.reason);
  const found = await realFileUnder(rootDir, resolved.file);
  if (!found.ok) return plain(found.status, found.reason);
  let body: Buffer;
  try {
    body = await fs.readFile(found.real);
  } catch {
    return plain(404, 'not found');
  }
  return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), {
    status: 200,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': contentTypeFor(found.real),
      'content-length': String(body.length),
      'cache-control': 'no-cache',
    },
  });
}

/**
 * Is `url` (an IPC sender frame's URL) one of ours? Our app:// pages always; the electron-vite dev server's origin
 * only when `devServerUrl` is given (unpackaged dev runs). Custom schemes have an opaque `URL.origin` in Node, so the
 * scheme and host are compared directly.
 */
export function isTrustedAppUrl(url: string, devServerUrl?: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST) return true;
  if (devServerUrl) {
    try {
      const dev = new URL(devServerUrl);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === dev.origin;
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * The dev server the window may load instead of app://, or undefined. electron-vite's `npm run dev` sets
 * ELECTRON_RENDERER_URL, but so can anyone who starts the app, and the page it names gets the whole bridge: so it is
 * honoured only in a development build (electron-vite dev; `npm start` and packaged apps are production builds), and
 * only for an http URL on this machine (the Vite dev server).
 */
export function devServerUrl(envValue: string | undefined, developmentBuild: boolean): string | undefined {
  if (!developmentBuild || !envValue) return undefined;
  try {
    const u = new URL(envValue);
    const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
    return u.protocol === 'http:' && loopback ? u.href : undefined;
  } catch {
    return undefined;
  }
}
