/**
 * The engine host process: calls cross a real process boundary, stream progress and tokens, can be cancelled,
 * reject bad payloads without side effects, and a host killed mid-call fails that call cleanly and is replaced.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobEvent } from '../../src/shared/contract.js';
import { EngineClient } from '../../src/main/api/host/engine-client.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

let root: string;
let model: string;
let client: EngineClient;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-host-'));
  model = path.join(root, 'qwen3');
  writeTinyCheckpoint(model, 'qwen3', { seed: 2 });
  process.env.CLIFFSCOPE_CACHE = path.join(root, 'cache'); // inherited by the forked host
  client = new EngineClient();
});
afterAll(() => {
  client.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('engine host', () => {
  it('answers in a separate process', async () => {
    const r = await client.invoke('app.info', {});
    expect(r.ok).toBe(true);
    expect(client.pid).not.toBe(process.pid);
    if (r.ok) expect((r.result as { providers: string[] }).providers).toContain('cpu');
  });

  it('streams tokens and progress while generating', async () => {
    const events: JobEvent[] = [];
    const r = await client.invoke(
      'generate.run',
      { model: { dir: model, threads: 1 }, prompts: ['how do i make a cake', 'tell me a story'], chat: true, maxNewTokens: 5 },
      { onEvent: (e) => events.push(e) },
    );
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    const result = r.result as { transcripts: { outputIds: number[]; finishReason: string }[] };
    expect(result.transcripts).toHaveLength(2);
    result.transcripts.forEach((t, i) => {
      const streamed = events.flatMap((e) => (e.kind === 'token' && e.prompt === i ? [e.tokenId] : []));
      expect(streamed).toEqual(t.outputIds);
    });
    expect(events.some((e) => e.kind === 'progress')).toBe(true);
  });

  it('cancels a running call, returning what was generated', async () => {
    let tokens = 0;
    const controller = new AbortController();
    const r = await client.invoke(
      'generate.run',
      { model: { dir: model, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 400 },
      {
        signal: controller.signal,
        onEvent: (e) => {
          if (e.kind === 'token' && ++tokens === 3) controller.abort();
        },
      },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [t] = (r.result as { transcripts: { outputIds: number[]; finishReason: string }[] }).transcripts;
    expect(t!.finishReason).toBe('cancelled');
    expect(t!.outputIds.length).toBeLessThan(400);
    expect(t!.outputIds.length).toBeGreaterThanOrEqual(3);
  });

  it('rejects a malformed payload with the field at fault, and keeps serving', async () => {
    const r = await client.invoke('generate.run', { model: { dir: model }, prompts: 'not a list', maxNewTokens: 5 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('bad-params');
      expect(r.error.message).toContain('prompts');
    }
    expect((await client.invoke('app.info', {})).ok).toBe(true);
  });

  it('fails the call in flight when the host is killed, then starts a fresh host', async () => {
    const first = client.pid!;
    const call = client.invoke(
      'generate.run',
      { model: { dir: model, threads: 1 }, prompts: ['tell me a story'], maxNewTokens: 5000 },
      { onEvent: (e) => e.kind === 'token' && process.kill(first, 'SIGKILL') },
    );
    const r = await call;
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('engine-exited');
      expect(r.error.message).toContain('SIGKILL');
    }
    expect((await client.invoke('app.info', {})).ok).toBe(true);
    expect(client.pid).not.toBe(first);
  });
});
