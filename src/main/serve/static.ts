/**
 * Serve mode's static files: the built renderer (out/renderer) over plain HTTP. GET/HEAD only, no directory listing,
 * nothing outside the renderer folder (lexically or through symlinks), one content type per extension.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { contentTypeFor } from '../electron/app-protocol.js';

export type StaticTarget = { ok: true; file: string } | { ok: false; status: 400 | 403 | 404; reason: string };

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Map a request path (`/assets/x.js`, already split from its query) to a file under `root`, lexically. Decoding may
 * produce `..`, `/` or `\` the HTTP parser never saw (`%2e%2e`, `%2f`, `%5c`), so it is decoded first, then split on
 * both separators, and any `..` segment is refused outright rather than resolved.
 */
export function resolveStaticPath(root: string, rawPath: string): StaticTarget {
  if (!rawPath.startsWith('/')) return { ok: false, status: 400, reason: 'malformed path' };
  let rel: string;
  try {
    rel = decodeURIComponent(rawPath);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (rel.includes('\0')) return { ok: false, status: 400, reason: 'NUL in path' };
  if (rel.endsWith('/') || rel.endsWith('\\')) rel += 'index.html';
  const segments = rel.split(/[\\/]+/).filter(Boolean);
  if (segments.some((s) => s === '..')) return { ok: false, status: 403, reason: 'path traversal' };
  const base = path.resolve(root);
  const file = path.resolve(base, ...segments);
  if (file === base || !isInside(base, file)) return { ok: false, status: 403, reason: 'path traversal' };
  return { ok: true, file };
}

/** Shown instead of the app when out/renderer has not been built. */
export function notBuiltPage(rendererDir: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cliffscope — UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The Cliffscope UI is not built yet</h1>
<p>The server is running, but there is no built renderer in <code>${escapeHtml(rendererDir)}</code>.</p>
<p>In the Cliffscope folder, run <code>npm run build</code>, then reload this page (keep the <code>#token=…</code>
part of the address).</p>
</body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function text(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

/** Answer one static request from `rendererDir`. Security headers are set by the caller on every response. */
export async function serveStatic(
  rendererDir: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rawPath: string,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return text(res, 405, 'method not allowed');
  }
  if (!fs.existsSync(path.join(rendererDir, 'index.html'))) {
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : notBuiltPage(rendererDir));
    return;
  }
  const target = resolveStaticPath(rendererDir, rawPath);
  if (!target.ok) return text(res, target.status, target.reason);
  let real: string;
  let realRoot: string;
  let size: number;
  try {
    [real, realRoot] = await Promise.all([fs.promises.realpath(target.file), fs.promises.realpath(rendererDir)]);
    // A symlink inside the renderer folder must not lead out of it.
    if (!isInside(realRoot, real)) return text(res, 403, 'path traversal');
    const st = await fs.promises.stat(real);
    if (!st.isFile()) return text(res, 404, 'not found'); // directories included: no listings
    size = st.size;
  } catch {
    return text(res, 404, 'not found');
  }
  res.writeHead(200, {
    'content-type': contentTypeFor(real),
    'content-length': String(size),
    // Hashed asset names change on rebuild; index.html must be revalidated so a rebuild is picked up on reload.
    'cache-control': 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = fs.createReadStream(real);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
