/**
 * Cancel always frees the engine: a call that does not stop by itself within the grace period has its host process
 * ended, the call answers `cancelled`, and later calls run in a fresh host. Also: the host starts whatever the working
 * directory (tsx is resolved from the package), and what the host sends back is checked against the contract.
 */
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient, forkNodeHost, type HostProcess } from '../../src/main/api/host/engine-client.js';
import type { FromHost, ToHost } from '../../src/main/api/host/protocol.js';
import { forkStuckHost } from './helpers/fork-stuck-host.js';

/** A host in this process that answers with whatever `reply` makes of a call. */
function scriptedHost(reply: (m: Extract<ToHost, { type: 'invoke' }>, send: (m: FromHost) => void) => void): () => HostProcess {
  return () => {
    let listener: (m: FromHost) => void = () => {};
    let exit: (d: string) => void = () => {};
    return {
      send: (m) => {
        if (m.type === 'invoke') setImmediate(() => reply(m, (out) => listener(out)));
      },
      onMessage: (l) => (listener = l),
      onExit: (l) => (exit = l),
      kill: () => exit('killed'),
      pid: 1,
    };
  };
}

let client: EngineClient | null = null;
afterEach(() => {
  client?.close();
  client = null;
});

describe('cancel frees the engine', () => {
  it('ends a host stuck in a call that never yields, answers cancelled, and the next call runs in a fresh host', async () => {
    client = new EngineClient(forkStuckHost, { cancelGraceMs: 500 });
    expect((await client.invoke('app.info', {})).ok).toBe(true);
    const first = client.pid;
    const stuck = client.invoke('project.recent', {}, { callId: 'stuck' });
    await new Promise((r) => setTimeout(r, 300)); // let it enter the loop
    client.cancel('stuck');
    const r = await stuck;
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('cancelled');
      expect(r.error.message).toMatch(/restarted/);
    }
    expect((await client.invoke('app.info', {})).ok).toBe(true);
    expect(client.pid).not.toBe(first);
  });

  it('leaves a call that stops by itself alone', async () => {
    let kills = 0;
    const spawn = scriptedHost((m, send) => setTimeout(() => send({ type: 'reply', callId: m.callId, response: { ok: false, error: { code: 'cancelled', message: 'stopped' } } }), 50));
    client = new EngineClient(() => {
      const h = spawn();
      return { ...h, kill: () => void kills++, pid: 1 };
    }, { cancelGraceMs: 200 });
    const call = client.invoke('app.info', {}, { callId: 'quick' });
    client.cancel('quick');
    expect((await call).ok).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(kills).toBe(0);
  });
});

describe('the host starts from any working directory', () => {
  it('resolves tsx from the package, not from the cwd', async () => {
    const cwd = process.cwd();
    process.chdir(os.tmpdir());
    try {
      client = new EngineClient(forkNodeHost);
      const r = await client.invoke('app.info', {});
      expect(r.ok, JSON.stringify(r)).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('replies and events from the host are checked against the contract', () => {
  it('turns a reply whose result does not fit the method into bad-result', async () => {
    client = new EngineClient(scriptedHost((m, send) => send({ type: 'reply', callId: m.callId, response: { ok: true, result: { providers: 'all of them' } } })));
    const r = await client.invoke('app.info', {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('bad-result');
  });

  it('turns a malformed envelope into bad-result and drops malformed events', async () => {
    const events: unknown[] = [];
    client = new EngineClient(
      scriptedHost((m, send) => {
        send({ type: 'event', event: { jobId: m.callId, kind: 'log', level: 'info', message: 42 } as never });
        send({ type: 'event', event: { jobId: m.callId, kind: 'made-up' } as never });
        send({ type: 'reply', callId: m.callId, response: { ok: 'yes' } as never });
      }),
    );
    const r = await client.invoke('app.info', {}, { onEvent: (e) => events.push(e) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('bad-result');
    expect(events).toEqual([]);
  });
});
