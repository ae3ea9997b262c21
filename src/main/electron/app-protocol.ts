/**
 * The `app://cliffscope/...` scheme that serves the built renderer, and the checks built on its origin. Plain Node (no
 * `electron` import) so it can be tested without Electron; main.ts wires it to `protocol.handle`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export const APP_SCHEME = 'app';
export const APP_HOST = 'cliffscope';
/** Where the window is pointed. */
export const APP_ENTRY_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** Sent with every app:// response; index.html repeats it in a meta tag for serve mode and dev. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type ResolvedAppPath = { ok: true; file: string } | { ok: false; status: 400 | 403 | 404; reason: string };

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Map `app://cliffscope/<path>` to a file under `rootDir`, lexically: anything that is not our host, cannot be
 * decoded, holds a NUL, or would land outside `rootDir` (`..`, encoded `%2e%2e`, `%2f`, backslashes) is refused.
 * A path ending in `/` means its index.html.
 */
export function resolveAppPath(rootDir: string, requestUrl: string): ResolvedAppPath {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return { ok: false, status: 400, reason: 'malformed URL' };
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) {
    return { ok: false, status: 404, reason: `not an ${APP_SCHEME}://${APP_HOST} URL` };
  }
  let rel: string;
  try {
    rel = decodeURIComponent(url.pathname);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (rel.includes('\0')) return { ok: false, status: 400, reason: 'NUL in path' };
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  const root = path.resolve(rootDir);
  // Decoding may have produced `..`, separators or backslashes the URL parser never saw; resolve, then contain.
  const segments = rel.split(/[\\/]+/).filter(Boolean);
  if (segments.some((s) => s === '..')) return { ok: false, status: 403, reason: 'path traversal' };
  const file = path.resolve(root, ...segments);
  if (!isInside(root, file) || file === root) return { ok: false, status: 403, reason: 'path traversal' };
  return { ok: true, file };
}

function plain(status: number, text: string): Response {
  return new Response(text, {
    status,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
    },
  });
}

/**
 * Answer one app:// request from `rootDir` (the built renderer). Only GET/HEAD; symlinks that lead outside
 * `rootDir` are refused as well. Every response carries the CSP.
 */
export async function serveAppRequest(rootDir: string, request: { url: string; method: string }): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'method not allowed');
  const resolved = resolveAppPath(rootDir, request.url);
  if (!resolved.ok) return plain(resolved.status, resolved.reason);
  let real: string;
  let realRoot: string;
  try {
    [real, realRoot] = await Promise.all([fs.realpath(resolved.file), fs.realpath(rootDir)]);
  } catch {
    return plain(404, 'not found');
  }
  if (!isInside(realRoot, real)) return plain(403, 'path traversal');
  let body: Buffer;
  try {
    const st = await fs.stat(real);
    if (!st.isFile()) return plain(404, 'not found');
    body = await fs.readFile(real);
  } catch {
    return plain(404, 'not found');
  }
  return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), {
    status: 200,
    headers: {
      'content-type': contentTypeFor(real),
      'content-length': String(body.length),
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
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
