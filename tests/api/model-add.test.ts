/**
 * model.add: compiles a checkpoint with progress, reports the provider that loaded it, records the model in the
 * project (once per weights and options), and reuses the compiled graph the second time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCallContext } from '../../src/main/api/context.js';
import { dispatch } from '../../src/main/api/dispatch.js';
import type { JobEvent } from '../../src/shared/contract.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

let root: string;
let previousCache: string | undefined;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-model-add-'));
  previousCache = process.env.CLIFFSCOPE_CACHE;
  process.env.CLIFFSCOPE_CACHE = path.join(root, 'cache');
  writeTinyCheckpoint(path.join(root, 'qwen2'), 'qwen2', { seed: 8 });
});
afterAll(() => {
  if (previousCache === undefined) delete process.env.CLIFFSCOPE_CACHE;
  else process.env.CLIFFSCOPE_CACHE = previousCache;
  fs.rmSync(root, { recursive: true, force: true });
});

describe('model.add', () => {
  it('compiles with progress, records the model, and reuses the graph next time', async () => {
    const project = path.join(root, 'p.cliffscope');
    const events: JobEvent[] = [];
    const ctx = makeCallContext('add', new AbortController().signal, (e) => events.push(e));
    const first = await dispatch('model.add', { project, model: { dir: path.join(root, 'qwen2') } }, { context: ctx });
    expect(first.ok, JSON.stringify(first)).toBe(true);
    if (!first.ok) return;
    const r = first.result as { modelId: number; provider: string; cached: boolean; contentHash: string };
    expect(r.provider).toBe('cpu');
    expect(r.cached).toBe(false);
    expect(events.some((e) => e.kind === 'progress' && e.label === 'writing weights')).toBe(true);
    const opened = await dispatch('project.open', { file: project });
    expect(opened.ok && (opened.result as { models: { id: number; contentHash: string }[] }).models).toEqual([
      expect.objectContaining({ id: r.modelId, contentHash: r.contentHash }),
    ]);
    const again = await dispatch('model.add', { project, model: { dir: path.join(root, 'qwen2') } });
    expect(again.ok && (again.result as { modelId: number }).modelId).toBe(r.modelId);
  });

  it('a folder that is not a checkpoint fails with the file named, and nothing is recorded', async () => {
    const project = path.join(root, 'q.cliffscope');
    const r = await dispatch('model.add', { project, model: { dir: path.join(root, 'nowhere') } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('nowhere');
  });
});
