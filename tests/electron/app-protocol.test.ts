/** The app:// file server and origin check, tested without Electron (they are plain Node). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ENTRY_URL,
  isTrustedAppUrl,
  resolveAppPath,
  serveAppRequest,
} from '../../src/main/electron/app-protocol.js';
import { CONTENT_SECURITY_POLICY } from '../../src/main/web/security.js';

let base: string;
let root: string;
const SECRET = 'TOP-SECRET-CONTENTS';

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-proto-'));
  root = path.join(base, 'renderer');
  fs.mkdirSync(path.join(root, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Cliffscope</title>');
  fs.writeFileSync(path.join(root, 'assets', 'index-abc.js'), 'console.log(1)');
  fs.writeFileSync(path.join(root, 'assets', 'index-abc.css'), 'body{}');
  fs.writeFileSync(path.join(base, 'secret.txt'), SECRET);
  // A sibling folder whose name starts with the root's: a naive startsWith(root) check would let it through.
  fs.mkdirSync(path.join(base, 'renderer-evil'));
  fs.writeFileSync(path.join(base, 'renderer-evil', 'x.txt'), SECRET);
  fs.symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'assets', 'link.txt'));
});

afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

const get = (url: string, method = 'GET') => serveAppRequest(root, { url, method });

describe('serveAppRequest', () => {
  it('serves the entry page with the CSP header', async () => {
    const res = await get(APP_ENTRY_URL);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toContain('<title>Cliffscope</title>');
  });

  it('maps / to index.html and serves assets with their types', async () => {
    expect(await (await get('app://cliffscope/')).text()).toContain('Cliffscope');
    expect((await get('app://cliffscope')).status).toBe(200);
    const js = await get('app://cliffscope/assets/index-abc.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toBe('console.log(1)');
    const css = await get('app://cliffscope/assets/index-abc.css?v=1#x');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await get(APP_ENTRY_URL, 'HEAD');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await get(APP_ENTRY_URL, 'POST')).status).toBe(405);
  });

  it('answers 404 for missing files and folders, still with the CSP', async () => {
    const res = await get('app://cliffscope/nope.js');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect((await get('app://cliffscope/assets')).status).toBe(404);
  });

  it('refuses other hosts', async () => {
    expect((await get('app://evil/index.html')).status).toBe(404);
  });

  it.each([
    'app://cliffscope/../secret.txt',
    'app://cliffscope/%2e%2e/secret.txt',
    'app://cliffscope/..%2fsecret.txt',
    'app://cliffscope/assets/..%2f..%2fsecret.txt',
    'app://cliffscope/..%5csecret.txt',
    'app://cliffscope/%2e%2e%5c%2e%2e%5csecret.txt',
    'app://cliffscope/..%2frenderer-evil%2fx.txt',
    'app://cliffscope/%2fetc%2fpasswd',
    'app://cliffscope/{absolute path of secret.txt, encoded}',
    'app://cliffscope/assets/link.txt',
  ])('never serves a file outside the renderer folder: %s', async (pattern) => {
    const url = pattern.replace('{absolute path of secret.txt, encoded}', encodeURIComponent(path.join(base, 'secret.txt')));
    const res = await get(url);
    expect(res.status).not.toBe(200);
    expect(await res.text()).not.toContain(SECRET);
  });

  it('rejects NULs and broken percent-encoding', async () => {
    expect((await get('app://cliffscope/index.html%00.js')).status).toBe(400);
    expect((await get('app://cliffscope/%E0%A4%A')).status).toBe(400);
  });
});

describe('resolveAppPath', () => {
  it('refuses traversal lexically, before touching the disk', () => {
    expect(resolveAppPath(root, 'app://cliffscope/..%2f..%2fetc%2fpasswd')).toMatchObject({ ok: false, status: 403 });
    expect(resolveAppPath(root, 'app://cliffscope/assets/index-abc.js')).toEqual({
      ok: true,
      file: path.join(root, 'assets', 'index-abc.js'),
    });
    expect(resolveAppPath(root, 'not a url')).toMatchObject({ ok: false, status: 400 });
  });
});

describe('isTrustedAppUrl', () => {
  it('trusts only our own app:// pages', () => {
    expect(isTrustedAppUrl('app://cliffscope/index.html')).toBe(true);
    expect(isTrustedAppUrl('app://cliffscope/')).toBe(true);
    expect(isTrustedAppUrl('app://evil/index.html')).toBe(false);
    expect(isTrustedAppUrl('app://cliffscope.evil/index.html')).toBe(false);
    expect(isTrustedAppUrl('https://cliffscope/index.html')).toBe(false);
    expect(isTrustedAppUrl('file:///work/main/out/renderer/index.html')).toBe(false);
    expect(isTrustedAppUrl('about:blank')).toBe(false);
    expect(isTrustedAppUrl('')).toBe(false);
  });

  it('trusts the dev server only when given, and only its exact origin', () => {
    expect(isTrustedAppUrl('http://localhost:5173/')).toBe(false);
    expect(isTrustedAppUrl('http://localhost:5173/', 'http://localhost:5173')).toBe(true);
    expect(isTrustedAppUrl('http://localhost:5174/', 'http://localhost:5173')).toBe(false);
    expect(isTrustedAppUrl('http://127.0.0.1:5173/', 'http://localhost:5173')).toBe(false);
    expect(isTrustedAppUrl('app://cliffscope/index.html', 'http://localhost:5173')).toBe(true);
  });
});
