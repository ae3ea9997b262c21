/**
 * The two-part KV cache (runtime/kv-cache.ts): settling recent positions into the past, row selection, and — on a
 * real compiled model — that results do not depend on where the past/recent boundary falls.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/main/engine/runtime/generate.js';
import { emptyKvCache, type KvCache, SETTLE_AFTER, selectKvRows, settle, withRecent } from '../../src/main/engine/runtime/kv-cache.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

/** [B, Hkv, T, D] whose value at (b, h, t, d) is b*1000 + h*100 + (t + offset)*10 + d: positions are readable. */
function part(B: number, Hkv: number, T: number, D: number, offset: number): ort.Tensor {
  const data = new Float32Array(B * Hkv * T * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hkv; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
    data[((b * Hkv + h) * T + t) * D + d] = b * 1000 + h * 100 + (t + offset) * 10 + d;
  }
  return new ort.Tensor('float32', data, [B, Hkv, T, D]);
}

function cacheOf(B: number, pastLen: number, recentLen: number): KvCache {
  const [Hkv, D] = [2, 3];
  return {
    batch: B,
    length: pastLen + recentLen,
    pastLength: pastLen,
    pastKeys: [part(B, Hkv, pastLen, D, 0)],
    pastValues: [part(B, Hkv, pastLen, D, 0)],
    recentKeys: [part(B, Hkv, recentLen, D, pastLen)],
    recentValues: [part(B, Hkv, recentLen, D, pastLen)],
  };
}

describe('KV cache parts', () => {
  it('settles recent positions after the past, per row and kv head', () => {
    const settled = settle(cacheOf(2, 3, 4));
    expect(settled).toMatchObject({ batch: 2, length: 7, pastLength: 7 });
    expect(settled.recentKeys[0]!.dims).toEqual([2, 2, 0, 3]);
    // Exactly the tensor a single 7-position cache would hold.
    expect(Array.from(settled.pastKeys[0]!.data as Float32Array)).toEqual(Array.from(part(2, 2, 7, 3, 0).data as Float32Array));
    expect(settled.pastKeys[0]!.dims).toEqual([2, 2, 7, 3]);
  });

  it('settles only once recent reaches SETTLE_AFTER positions', () => {
    const base = cacheOf(1, 5, 0);
    const short = withRecent(base, [part(1, 2, SETTLE_AFTER - 1, 3, 5)], [part(1, 2, SETTLE_AFTER - 1, 3, 5)]);
    expect(short).toMatchObject({ length: 5 + SETTLE_AFTER - 1, pastLength: 5 });
    const due = withRecent(base, [part(1, 2, SETTLE_AFTER, 3, 5)], [part(1, 2, SETTLE_AFTER, 3, 5)]);
    expect(due).toMatchObject({ length: 5 + SETTLE_AFTER, pastLength: 5 + SETTLE_AFTER });
    expect(Array.from(due.pastValues[0]!.data as Float32Array)).toEqual(Array.from(part(1, 2, 5 + SETTLE_AFTER, 3, 0).data as Float32Array));
  });

  it('selects rows from both parts, in the order asked', () => {
    const picked = selectKvRows(cacheOf(3, 2, 1), [2, 0]);
    expect(picked).toMatchObject({ batch: 2, length: 3, pastLength: 2 });
    const first = (t: ort.Tensor) => (t.data as Float32Array)[0];
    expect(first(picked.pastKeys[0]!)).toBe(2000); // row 2, head 0, position 0
    expect(first(picked.recentValues[0]!)).toBe(2020); // row 2, head 0, position 2
    expect(picked.pastKeys[0]!.dims).toEqual([2, 2, 2, 3]);
  });

  it('starts empty', () => {
    const c = emptyKvCache(4, 3, 2, 8);
    expect(c).toMatchObject({ batch: 4, length: 0, pastLength: 0 });
    expect(c.pastKeys).toHaveLength(3);
    expect(c.recentValues[2]!.dims).toEqual([4, 2, 0, 8]);
  });
});

describe('on a compiled model, the past/recent boundary changes nothing', () => {
  let root: string;
  let model: LoadedModel;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-kv-'));
    writeTinyCheckpoint(path.join(root, 'm'), 'llama3-rope', { seed: 4 }); // GQA, 512 positions
    model = await loadModel(path.join(root, 'm'), { cacheRoot: path.join(root, 'cache') });
  });
  afterAll(async () => {
    await model?.session.release();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('teacher forcing one token at a time, in chunks of 7 and all at once agree across several settles', async () => {
    const ids = Array.from({ length: 3 * SETTLE_AFTER + 11 }, (_, i) => 1 + ((i * 37) % 50));
    const opts = { logitPositions: ids.map((_, t) => t), residLayers: [2], zLayers: [1] };
    const whole = await teacherForce(model.session, ids, { ...opts, chunkSize: ids.length });
    for (const chunkSize of [1, 7]) {
      const chunked = await teacherForce(model.session, ids, { ...opts, chunkSize });
      let diff = 0;
      for (let i = 0; i < whole.logits.length; i++) diff = Math.max(diff, Math.abs(whole.logits[i]! - chunked.logits[i]!));
      expect(diff, `chunk ${chunkSize}`).toBeLessThanOrEqual(1e-4);
    }
  });

  it('greedy batched generation past several settles equals one-by-one', async () => {
    const reqs = [{ ids: [1, 12, 13, 14] }, { ids: [1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29] }, { ids: [1, 30] }];
    const opts = { maxNewTokens: 2 * SETTLE_AFTER + 9 };
    const batched = await generate(model.session, reqs, { ...opts, batchSize: 3 });
    expect(batched.every((r) => r.finishReason === 'length' && r.outputIds.length === opts.maxNewTokens)).toBe(true);
    for (const [i, r] of reqs.entries()) {
      const [single] = await generate(model.session, [r], { ...opts, batchSize: 1 });
      expect(batched[i]!.outputIds, `prompt ${i}`).toEqual(single!.outputIds);
    }
  });
});
