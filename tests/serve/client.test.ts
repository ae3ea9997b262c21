/**
 * The renderer-side pieces of serve mode, without a server: job ids reach both transports only when given, the HTTP
 * transport sends the tab's session, and httpEvents opens one validated EventSource while anyone listens and cancels
 * with a POST — the same `onEvent`/`cancel` shape as the Electron bridge.
 */
import { describe, expect, it, vi } from 'vitest';
import type { CliffscopeBridge } from '../../src/shared/bridge.js';
import { bridgeEvents, bridgeTransport, httpEvents, httpTransport, makeJobInvoke, type EventSourceLike } from '../../src/shared/client.js';
import type { JobEvent } from '../../src/shared/contract.js';

const generated = { provider: 'cpu', providerNotes: [], transcripts: [], seconds: 0 };
const params = { model: { dir: '/m' }, prompts: ['hi'], maxNewTokens: 1 };

function fakeBridge(): CliffscopeBridge & { invoke: ReturnType<typeof vi.fn> } {
  return {
    invoke: vi.fn(async () => ({ ok: true, result: generated })),
    onEvent: vi.fn(() => () => undefined),
    cancel: vi.fn(),
  } as unknown as CliffscopeBridge & { invoke: ReturnType<typeof vi.fn> };
}

describe('job ids through the transports', () => {
  it('the bridge gets the job id only when there is one', async () => {
    const bridge = fakeBridge();
    const transport = bridgeTransport(bridge);
    await transport('app.info', {});
    await makeJobInvoke(transport)('generate.run', params, 'job-1');
    expect(bridge.invoke.mock.calls[0]).toEqual(['app.info', {}]);
    expect(bridge.invoke.mock.calls[1]).toEqual(['generate.run', params, 'job-1']);
    const events = bridgeEvents(bridge);
    events.cancel('job-1');
    expect(bridge.cancel).toHaveBeenCalledWith('job-1');
  });

  it('HTTP sends the job id in the body and the session in a header', async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ ok: true, result: generated })));
    const transport = httpTransport({ endpoint: '/api/invoke', token: 'T', session: 'tab', fetch });
    await expect(makeJobInvoke(transport)('generate.run', params, 'job-2')).resolves.toEqual(generated);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/invoke');
    expect(JSON.parse(init.body as string)).toEqual({ method: 'generate.run', params, jobId: 'job-2' });
    expect(init.headers).toMatchObject({ authorization: 'Bearer T', 'x-cliffscope-session': 'tab' });
  });
});

class FakeSource implements EventSourceLike {
  static opened: FakeSource[] = [];
  onmessage: ((event: { data: string }) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSource.opened.push(this);
  }
  close(): void {
    this.closed = true;
  }
  send(data: unknown): void {
    this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) });
  }
}

describe('httpEvents', () => {
  const token: JobEvent = { jobId: 'j', at: 1, kind: 'token', prompt: 0, tokenId: 5, position: 3, text: 'a' };

  it('opens one stream while anyone listens, passes valid events and drops the rest', () => {
    FakeSource.opened = [];
    const events = httpEvents({ base: '/api', token: 'a b', session: 'tab', EventSource: FakeSource });
    const a: JobEvent[] = [];
    const b: JobEvent[] = [];
    const offA = events.onEvent((e) => a.push(e));
    const offB = events.onEvent((e) => b.push(e));
    expect(FakeSource.opened).toHaveLength(1);
    const source = FakeSource.opened[0]!;
    expect(source.url).toBe('/api/events?token=a+b&session=tab');
    source.send(token);
    source.send('not json');
    source.send({ ...token, kind: 'mystery' });
    expect(a).toEqual([token]);
    expect(b).toEqual([token]);
    offA();
    expect(source.closed).toBe(false);
    offB();
    expect(source.closed).toBe(true);
    events.onEvent(() => undefined);
    expect(FakeSource.opened).toHaveLength(2);
  });

  it('opens nothing without a token', () => {
    FakeSource.opened = [];
    httpEvents({ token: null, EventSource: FakeSource }).onEvent(() => undefined)();
    expect(FakeSource.opened).toHaveLength(0);
  });

  it('cancels with a POST carrying the token and session, and never throws', async () => {
    const fetch = vi.fn(async () => {
      throw new Error('offline');
    });
    httpEvents({ base: '/api', token: 'T', session: 'tab', fetch }).cancel('job-3');
    await Promise.resolve();
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/cancel');
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body as string)).toEqual({ jobId: 'job-3' });
    expect(init.headers).toMatchObject({ authorization: 'Bearer T', 'x-cliffscope-session': 'tab' });
  });
});
