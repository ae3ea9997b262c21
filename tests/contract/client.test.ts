import { describe, expect, it, vi } from 'vitest';
import { ApiError, bridgeTransport, createApiClient, hintFor, httpTransport, toApiError, type Transport } from '../../src/shared/client.js';
import type { CliffscopeBridge } from '../../src/shared/bridge.js';
import { METHODS, type ModelInspection } from '../../src/shared/contract.js';

const inspection: ModelInspection = {
  architecture: 'LlamaForCausalLM',
  family: 'llama',
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  hidden: 32,
  vocab: 100,
  dtypes: ['F32'],
  parameters: 12345,
  tied: false,
};

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected the call to fail');
}

describe('createApiClient', () => {
  it('has one function per method and returns validated results', async () => {
    const transport = vi.fn<Transport>(async () => ({ ok: true, result: inspection }));
    const api = createApiClient(transport);
    expect(Object.keys(api).sort()).toEqual([...METHODS].sort());
    expect(Object.keys(api)).toEqual(expect.arrayContaining(['app.info', 'model.inspect', 'generate.run', 'run.start', 'heads.map']));
    await expect(api['model.inspect']({ dir: '/m' })).resolves.toEqual(inspection);
    expect(transport).toHaveBeenCalledWith('model.inspect', { dir: '/m' });
  });

  it('sends {} for a method called without params', async () => {
    const transport = vi.fn<Transport>(async () => ({ ok: false, error: { code: 'internal', message: 'x' } }));
    await rejection(createApiClient(transport)['app.info']());
    expect(transport).toHaveBeenCalledWith('app.info', {});
  });

  it('rejects bad params before anything is sent', async () => {
    const transport = vi.fn<Transport>();
    const api = createApiClient(transport);
    const e = await rejection(api['model.inspect']({ dir: 5 } as unknown as { dir: string }));
    expect(e.code).toBe('bad-params');
    expect(e.message).toContain('dir:');
    expect(e.issues?.[0]?.path).toBe('dir');
    expect(transport).not.toHaveBeenCalled();
  });

  it('turns an error reply into an ApiError carrying code, file and hint', async () => {
    const api = createApiClient(async () => ({
      ok: false,
      error: { code: 'missing-file', message: '/m/config.json: not found', file: '/m/config.json', hint: 'add it' },
    }));
    const e = await rejection(api['model.inspect']({ dir: '/m' }));
    expect(e.code).toBe('missing-file');
    expect(e.file).toBe('/m/config.json');
    expect(e.describe()).toBe('/m/config.json: not found\nfix: add it');
  });

  it('rejects a malformed reply or a result that breaks the contract', async () => {
    const bad = await rejection(createApiClient(async () => 'hello')['model.inspect']({ dir: '/m' }));
    expect(bad.code).toBe('bad-message');
    const wrong = await rejection(
      createApiClient(async () => ({ ok: true, result: { ...inspection, layers: -1 } }))['model.inspect']({ dir: '/m' }),
    );
    expect(wrong.code).toBe('bad-result');
    expect(wrong.message).toContain('layers:');
  });

  it('wraps transport failures', async () => {
    const e = await rejection(
      createApiClient(async () => {
        throw new Error('socket closed');
      })['app.info'](),
    );
    expect(e.code).toBe('transport');
    expect(e.message).toBe('socket closed');
  });
});

describe('bridgeTransport', () => {
  it('forwards method and params to window.cliffscope.invoke', async () => {
    const invoke = vi.fn(async () => ({ ok: true as const, result: inspection }));
    const bridge = { invoke } as unknown as CliffscopeBridge;
    await expect(createApiClient(bridgeTransport(bridge))['model.inspect']({ dir: '/x' })).resolves.toEqual(inspection);
    expect(invoke).toHaveBeenCalledWith('model.inspect', { dir: '/x' });
  });
});

describe('httpTransport', () => {
  it('POSTs JSON with the bearer token and reads the envelope', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>(
      async () => new Response(JSON.stringify({ ok: true, result: inspection }), { status: 200 }),
    );
    const api = createApiClient(httpTransport({ token: 's3cret', fetch }));
    await expect(api['model.inspect']({ dir: '/m' })).resolves.toEqual(inspection);
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('/api/invoke');
    expect(init?.method).toBe('POST');
    expect((init?.headers as Record<string, string>).authorization).toBe('Bearer s3cret');
    expect(JSON.parse(String(init?.body))).toEqual({ method: 'model.inspect', params: { dir: '/m' } });
  });

  it('sends no authorization header without a token', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>(
      async () => new Response(JSON.stringify({ ok: false, error: { code: 'forbidden', message: 'no token' } })),
    );
    const e = await rejection(createApiClient(httpTransport({ token: null, fetch }))['app.info']());
    expect(e.code).toBe('forbidden');
    expect((fetch.mock.calls[0]![1]?.headers as Record<string, string>).authorization).toBeUndefined();
  });

  it('explains a non-JSON answer', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>(
      async () => new Response('<h1>nope</h1>', { status: 401, statusText: 'Unauthorized' }),
    );
    const e = await rejection(createApiClient(httpTransport({ token: 'x', fetch }))['app.info']());
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain('HTTP 401');
    expect(e.hint).toContain('cliffscope serve');
  });

  it('explains an unreachable server', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>(async () => {
      throw new TypeError('fetch failed');
    });
    const e = await rejection(createApiClient(httpTransport({ token: 'x', fetch, endpoint: '/e' }))['app.info']());
    expect(e.code).toBe('transport');
    expect(e.message).toContain('/e');
  });
});

describe('toApiError', () => {
  it('keeps an error that crossed a boundary as plain data (a job’s record) whole', () => {
    const e = toApiError({ code: 'bad-argument', message: 'layer 0: a probe needs at least 4 samples, got 0', hint: 'use the label rule "all"', file: '/p.cliffscope', issues: [{ path: 'config', message: 'x' }] });
    expect([e.code, e.message, e.hint, e.file, e.issues]).toEqual(['bad-argument', 'layer 0: a probe needs at least 4 samples, got 0', 'use the label rule "all"', '/p.cliffscope', [{ path: 'config', message: 'x' }]]);
  });

  it('never describes anything as "[object Object]", and says what to do by the error’s code', () => {
    const odd = toApiError({ status: 500 });
    expect(odd.message).toBe('{"status":500}');
    expect(hintFor(odd)).toContain('report it');
    expect(toApiError(new Error('choose a model folder')).describe()).toBe('choose a model folder');
    expect(hintFor({ code: 'bad-params' })).toBe('correct the fields listed and try again');
    expect(hintFor({ code: 'bad-argument', hint: 'its own' })).toBe('its own');
  });
});
