/**
 * Serve mode's static files: the built renderer (out/renderer) over plain HTTP. GET/HEAD only, no directory listing,
 * nothing outside the renderer folder (lexically or through symlinks: web/security.ts), one content type per extension.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { contentTypeFor, realFileUnder, type ResolvedPath, resolveUnder } from '../web/security.js';

/** Map a request path (`/assets/x.js`, already split from its query) to a file under `root` (see resolveUnder). */
export function resolveStaticPath(root: string, rawPath: string): ResolvedPath {
  if (!rawPath.startsWith('/')) return { ok: false, status: 400, reason: 'malformed path' };
  return resolveUnder(root, rawPath);
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
  const found = await realFileUnder(rendererDir, target.file);
  if (!found.ok) return text(res, found.status, found.reason);
  const { real, size } = found;
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
