/**
 * What both faces that serve the renderer's pages share — Electron's app:// protocol and `serve`'s HTTP — so neither
 * takes it from the other: the content security policy and the headers every page carries, one content type per
 * extension, and how a request path maps to a file inside the built renderer (and never outside it, lexically or
 * through a symlink). Plain Node: no electron import.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** Sent with every page; index.html repeats it in a meta tag for dev. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'";

/** Headers every response carries, in the app and in serve mode alike. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

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

export function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export type ResolvedPath = { ok: true; file: string } | { ok: false; status: 400 | 403 | 404; reason: string };

/**
 * Map a URL path (still percent-encoded, without query) to a file under `root`, lexically. Decoding may produce
 * `..`, `/` or `\` the URL parser never saw (`%2e%2e`, `%2f`, `%5c`), so it is decoded first, then split on both
 * separators, and any `..` segment is refused outright rather than resolved. A path ending in `/` (or empty) means
 * its index.html.
 */
export function resolveUnder(root: string, urlPath: string): ResolvedPath {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (rel.includes('\0')) return { ok: false, status: 400, reason: 'NUL in path' };
  if (rel === '' || rel.endsWith('/') || rel.endsWith('\\')) rel += 'index.html';
  const segments = rel.split(/[\\/]+/).filter(Boolean);
  if (segments.some((s) => s === '..')) return { ok: false, status: 403, reason: 'path traversal' };
  const base = path.resolve(root);
  const file = path.resolve(base, ...segments);
  if (file === base || !isInside(base, file)) return { ok: false, status: 403, reason: 'path traversal' };
  return { ok: true, file };
}

/**
 * The regular file behind a resolved path, following symlinks only as far as they stay inside `root`: its real
 * path and size, or why not (403 outside, 404 missing or not a file — folders are never listed).
 */
export async function realFileUnder(root: string, file: string): Promise<{ ok: true; real: string; size: number } | { ok: false; status: 403 | 404; reason: string }> {
  try {
    const [real, realRoot] = await Promise.all([fs.realpath(file), fs.realpath(root)]);
    if (!isInside(realRoot, real)) return { ok: false, status: 403, reason: 'path traversal' };
    const st = await fs.stat(real);
    if (!st.isFile()) return { ok: false, status: 404, reason: 'not found' };
    return { ok: true, real, size: st.size };
  } catch {
    return { ok: false, status: 404, reason: 'not found' };
  }
}
