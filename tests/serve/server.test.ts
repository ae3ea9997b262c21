/**
 * Serve mode's HTTP server against a real engine host: static files with the app's security headers, no way out of
 * the renderer folder, nothing reaches the engine without the token or from a foreign Host/Origin or with a payload
 * that breaks the contract, calls round-trip, job events stream over SSE per session, and cancel works.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpEvents, httpTransport, makeJobInvoke, createApiClient, type EventSourceLike } from '../../src/shared/client.js';
import type { AppInfo, JobEvent, Transcript } from '../../src/shared/contract.js';
import { EngineClient } from '../../src/main/api/host/engine-client.js';
import { startServer, type ServeHandle } from '../../src/main/serve/server.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { CountingEngine, openEvents, post, request } from './helpers.js';

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'";

let root: string;
let rendererDir: string;
let model: string;
let client: EngineClient;
let engine: CountingEngine;
let server: ServeHandle;
let port: number;
let token: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-serve-'));
  process.env.CLIFFSCOPE_CACHE = path.join(root, 'cache'); // inherited by the forked engine host
  model = path.join(root, 'qwen3');
  writeTinyCheckpoint(model, 'qwen3', { seed: 2 });

  rendererDir = path.join(root, 'renderer');
  fs.mkdirSync(path.join(rendererDir, 'assets/sub'), { recursive: true });
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Cliffscope</title><script type="module" src="./assets/app.js"></script>');
  fs.writeFileSync(path.join(rendererDir, 'assets/app.js'), 'console.log("hello");\n');
  fs.writeFileSync(path.join(rendererDir, 'assets/app.css'), 'body { color: red }\n');
  fs.writeFileSync(path.join(root, 'secret.txt'), 'TOP SECRET');
  fs.symlinkSync(path.join(root, 'secret.txt'), path.join(rendererDir, 'assets/link.txt'));

  client = new EngineClient();
  engine = new CountingEngine(client);
  server = await startServer({ engine, port: 0, rendererDir });
  port = server.port;
  token = server.token;
});

afterAll(async () => {
  await server?.close();
  client?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('startServer', () => {
  it('listens on loopback with a long random token in the URL fragment', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${port}/#token=${token}`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
  });
});

describe('static files', () => {
  it('serves index.html and assets with content types and the app security headers', async () => {
    const index = await request(port, { path: '/' });
    expect(index.status).toBe(200);
    expect(index.text).toContain('<title>Cliffscope</title>');
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toBe(CSP);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.headers['referrer-policy']).toBe('no-referrer');
    expect(index.headers['x-frame-options']).toBe('DENY');
    expect(index.headers['cross-origin-opener-policy']).toBe('same-origin');

    const js = await request(port, { path: '/assets/app.js?v=1' });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.text).toContain('hello');
    expect((await request(port, { path: '/assets/app.css' })).headers['content-type']).toBe('text/css; charset=utf-8');

    const head = await request(port, { method: 'HEAD', path: '/index.html' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('has no directory listings, 404s unknown files and takes only GET/HEAD', async () => {
    expect((await request(port, { path: '/assets' })).status).toBe(404);
    expect((await request(port, { path: '/assets/' })).status).toBe(404); // no index.html there
    expect((await request(port, { path: '/nope.js' })).status).toBe(404);
    const postIt = await request(port, { method: 'POST', path: '/index.html' });
    expect(postIt.status).toBe(405);
  });

  it.each([
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/assets/..%5c..%5csecret.txt',
    '/..\\secret.txt',
    '/assets/link.txt',
    '/%00index.html',
    '/%E0%A4%A',
  ])('refuses %s', async (p) => {
    const r = await request(port, { path: p });
    expect([400, 403, 404]).toContain(r.status);
    expect(r.text).not.toContain('TOP SECRET');
  });

  it('answers a clear page when the renderer is not built', async () => {
    const bare = await startServer({ engine, port: 0, rendererDir: path.join(root, 'not-built') });
    try {
      const r = await request(bare.port, { path: '/' });
      expect(r.status).toBe(503);
      expect(r.headers['content-type']).toContain('text/html');
      expect(r.text).toContain('npm run build');
    } finally {
      await bare.close();
    }
  });
});

const info = { method: 'app.info', params: {} };

describe('who may call the engine', () => {
  it('refuses requests without the token, or with a wrong one, before the engine sees them', async () => {
    const before = engine.calls.length;
    const none = await post(port, '/api/invoke', info, { token: null });
    expect(none.status).toBe(401);
    expect(none.json()).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(none.text).not.toContain(token);
    expect((await post(port, '/api/invoke', info, { token: `${token}x` })).status).toBe(401);
    expect((await post(port, '/api/invoke', info, { token: token.slice(1) })).status).toBe(401);
    // The query token is for the event stream only.
    expect((await post(port, `/api/invoke?token=${token}`, info, { token: null })).status).toBe(401);
    expect((await post(port, '/api/cancel', { jobId: 'x' }, { token: null })).status).toBe(401);
    expect((await request(port, { path: '/api/events' })).status).toBe(401);
    expect((await request(port, { path: '/api/events?token=wrong' })).status).toBe(401);
    expect(engine.calls.length).toBe(before);
    expect(engine.cancels).toEqual([]);
  });

  it('refuses a foreign Host header (DNS rebinding), for pages and API alike', async () => {
    const before = engine.calls.length;
    const api = await post(port, '/api/invoke', info, { token, headers: { host: `evil.example:${port}` } });
    expect(api.status).toBe(403);
    expect((await request(port, { path: '/', headers: { host: 'rebind.attacker.test' } })).status).toBe(403);
    expect(engine.calls.length).toBe(before);
    // Loopback names pass, on any port (an SSH tunnel may forward another local port).
    expect((await post(port, '/api/invoke', info, { token, headers: { host: `localhost:${port}` } })).status).toBe(200);
    expect((await request(port, { path: '/', headers: { host: '127.0.0.1:9999' } })).status).toBe(200);
  });

  it('refuses a cross-origin page by its Origin, and accepts its own', async () => {
    const before = engine.calls.length;
    for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`]) {
      const r = await post(port, '/api/invoke', info, { token, headers: { origin } });
      expect(r.status, origin).toBe(403);
    }
    expect(engine.calls.length).toBe(before);
    const own = await post(port, '/api/invoke', info, { token, headers: { origin: `http://127.0.0.1:${port}` } });
    expect(own.status).toBe(200);
  });
});

describe('POST /api/invoke', () => {
  it('round-trips app.info with the same envelope as the engine', async () => {
    const r = await post(port, '/api/invoke', { method: 'app.info' }, { token });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    const body = r.json<{ ok: true; result: AppInfo }>();
    expect(body.ok).toBe(true);
    const direct = await client.invoke('app.info', {});
    expect(direct.ok && body.result).toEqual(direct.ok && direct.result);
    expect(body.result.versions.electron).toBeNull();
  });

  it('answers engine errors as HTTP 200 envelopes, like IPC', async () => {
    const r = await post(port, '/api/invoke', { method: 'model.inspect', params: { dir: path.join(root, 'no-such-model') } }, { token });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ ok: false });
  });

  it('refuses malformed bodies with 400/413/415 and never calls the engine', async () => {
    const before = engine.calls.length;
    const bad = await post(port, '/api/invoke', '{"method": "app.info",', { token });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ ok: false, error: { code: 'bad-message' } });
    expect((await post(port, '/api/invoke', '[1,2]', { token })).status).toBe(400);
    expect((await post(port, '/api/invoke', { method: 'app.info', extra: 1 }, { token })).json()).toMatchObject({
      error: { message: expect.stringContaining('extra') },
    });
    const plain = await request(port, {
      method: 'POST',
      path: '/api/invoke',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: JSON.stringify(info),
    });
    expect(plain.status).toBe(415);
    expect((await post(port, '/api/invoke', { ...info, jobId: 'no spaces allowed' }, { token })).status).toBe(400);
    expect((await post(port, '/api/invoke', info, { token, session: 'bad session!' })).status).toBe(400);

    const small = await startServer({ engine, port: 0, rendererDir, maxBodyBytes: 1024 });
    try {
      const big = await post(small.port, '/api/invoke', { method: 'app.info', params: { pad: 'x'.repeat(4096) } }, { token: small.token });
      expect(big.status).toBe(413);
    } finally {
      await small.close();
    }
    expect(engine.calls.length).toBe(before);
  });

  it('refuses params that break the contract, naming the field, before the engine sees them', async () => {
    const before = engine.calls.length;
    const r = await post(
      port,
      '/api/invoke',
      { method: 'generate.run', params: { model: { dir: model }, prompts: 'not a list', maxNewTokens: 5 } },
      { token },
    );
    expect(r.status).toBe(400);
    const body = r.json();
    expect(body.ok).toBe(false);
    if (!body.ok) {
      expect(body.error.code).toBe('bad-params');
      expect(body.error.message).toContain('prompts');
      expect(body.error.issues?.map((i) => i.path)).toContain('prompts');
    }
    const unknown = await post(port, '/api/invoke', { method: 'fs.readFile', params: {} }, { token });
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toMatchObject({ error: { code: 'unknown-method' } });
    expect(engine.calls.length).toBe(before);
  });

  it('404s unknown endpoints and 405s wrong methods', async () => {
    const nope = await post(port, '/api/nope', {}, { token });
    expect(nope.status).toBe(404);
    expect(nope.json()).toMatchObject({ ok: false });
    const get = await request(port, { path: '/api/invoke', headers: { authorization: `Bearer ${token}` } });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });
});

describe('job events and cancel', () => {
  const tokensOf = (events: JobEvent[], jobId: string) =>
    events.flatMap((e) => (e.kind === 'token' && e.jobId === jobId ? [e.tokenId] : []));

  it('streams a job’s tokens to its own session only, under the client’s job id', async () => {
    const mine = await openEvents(port, `token=${token}&session=tab-a`);
    const other = await openEvents(port, `token=${token}&session=tab-b`);
    expect(mine.status).toBe(200);
    try {
      const r = await post(
        port,
        '/api/invoke',
        { method: 'generate.run', params: { model: { dir: model, threads: 1 }, prompts: ['how do i make a cake'], chat: true, maxNewTokens: 6 }, jobId: 'gen-1' },
        { token, session: 'tab-a' },
      );
      const body = r.json<{ ok: true; result: { transcripts: Transcript[] } }>();
      expect(body.ok, r.text).toBe(true);
      const outputIds = body.result.transcripts[0]!.outputIds;
      await mine.waitFor((ev) => tokensOf(ev, 'gen-1').length >= outputIds.length);
      expect(tokensOf(mine.events, 'gen-1')).toEqual(outputIds);
      expect(mine.events.some((e) => e.kind === 'progress' && e.jobId === 'gen-1')).toBe(true);
      expect(other.events).toEqual([]);
    } finally {
      mine.close();
      other.close();
    }
  });

  it('keeps events for a session until its stream connects', async () => {
    const r = await post(
      port,
      '/api/invoke',
      { method: 'generate.run', params: { model: { dir: model, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 3 }, jobId: 'early' },
      { token, session: 'tab-late' },
    );
    expect(r.json().ok).toBe(true);
    const late = await openEvents(port, `token=${token}&session=tab-late`);
    try {
      await late.waitFor((ev) => tokensOf(ev, 'early').length > 0);
    } finally {
      late.close();
    }
  });

  it('cancels a long job from its own session only', async () => {
    const stream = await openEvents(port, `token=${token}&session=tab-a`);
    try {
      const call = post(
        port,
        '/api/invoke',
        { method: 'generate.run', params: { model: { dir: model, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 400 }, jobId: 'long' },
        { token, session: 'tab-a' },
      );
      await stream.waitFor((ev) => tokensOf(ev, 'long').length >= 3);
      const foreign = await post(port, '/api/cancel', { jobId: 'long' }, { token, session: 'tab-b' });
      expect(foreign.json()).toEqual({ ok: true, result: { cancelled: false } });
      const own = await post(port, '/api/cancel', { jobId: 'long' }, { token, session: 'tab-a' });
      expect(own.json()).toEqual({ ok: true, result: { cancelled: true } });
      const body = (await call).json<{ ok: true; result: { transcripts: Transcript[] } }>();
      expect(body.ok).toBe(true);
      const [t] = body.result.transcripts;
      expect(t!.finishReason).toBe('cancelled');
      expect(t!.outputIds.length).toBeLessThan(400);
      expect((await post(port, '/api/cancel', { jobId: 'long' }, { token, session: 'tab-a' })).json()).toEqual({
        ok: true,
        result: { cancelled: false },
      });
      expect((await post(port, '/api/cancel', { jobId: '../x y' }, { token })).status).toBe(400);
    } finally {
      stream.close();
    }
  });
});

/** EventSource for Node (which has none before v22): GET with the query, parse `data:` frames. */
function nodeEventSource(origin: string) {
  return class implements EventSourceLike {
    onmessage: ((event: { data: string }) => void) | null = null;
    private stream: Promise<Awaited<ReturnType<typeof openEvents>>>;
    private seen = 0;

    constructor(url: string) {
      const u = new URL(url, origin);
      this.stream = openEvents(Number(u.port), u.search.slice(1));
      void this.stream.then((s) => {
        const tick = () => {
          while (this.seen < s.events.length) this.onmessage?.({ data: JSON.stringify(s.events[this.seen++]) });
        };
        void s.waitFor(() => (tick(), false), 600_000).catch(() => undefined);
      });
    }

    close(): void {
      void this.stream.then((s) => s.close());
    }
  };
}

describe('the renderer’s client over HTTP', () => {
  it('calls, streams and cancels through httpTransport + httpEvents', async () => {
    const session = 'client-tab';
    const transport = httpTransport({ endpoint: `${server.origin}/api/invoke`, token, session });
    const events = httpEvents({ base: `${server.origin}/api`, token, session, EventSource: nodeEventSource(server.origin) });
    const api = createApiClient(transport);
    const runJob = makeJobInvoke(transport);

    expect((await api['app.info']()).providers).toContain('cpu');

    const seen: JobEvent[] = [];
    const off = events.onEvent((e) => {
      seen.push(e);
      if (e.kind === 'token' && seen.filter((x) => x.kind === 'token').length === 3) events.cancel('c1');
    });
    try {
      const result = await runJob(
        'generate.run',
        { model: { dir: model, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 400 },
        'c1',
      );
      expect(result.transcripts[0]!.finishReason).toBe('cancelled');
      expect(seen.every((e) => e.jobId === 'c1')).toBe(true);
    } finally {
      off();
    }

    const refused = httpTransport({ endpoint: `${server.origin}/api/invoke`, token: null });
    await expect(createApiClient(refused)['app.info']()).rejects.toMatchObject({
      code: 'unauthorized',
      hint: expect.stringContaining('#token='),
    });
  });
});
