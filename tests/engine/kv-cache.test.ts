/**
 * The two-part KV cache (runtime/kv-cache.ts): settling recent positions into the past, row selection, right-aligned
 * rebuilds from several caches, every stream of an int8 cache, and — on a real compiled model — that results do not
 * depend on where the past/recent boundary falls.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/main/engine/runtime/generate.js';
import { kvStreams } from '../../src/main/engine/onnx/decoder-graph.js';
import { emptyKvCache, type KvCache, rebuildKvCache, SETTLE_AFTER, selectKvRows, settle, withRecent } from '../../src/main/engine/runtime/kv-cache.js';
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

const FLOAT = kvStreams('float32');

/** A one-layer float32 cache whose key and value hold `part` values: past then recent. */
function cacheOf(B: number, pastLen: number, recentLen: number): KvCache {
  const [Hkv, D] = [2, 3];
  return {
    batch: B,
    length: pastLen + recentLen,
    pastLength: pastLen,
    kvHeads: Hkv,
    headDim: D,
    streams: FLOAT,
    past: [[part(B, Hkv, pastLen, D, 0), part(B, Hkv, pastLen, D, 0)]],
    recent: [[part(B, Hkv, recentLen, D, pastLen), part(B, Hkv, recentLen, D, pastLen)]],
  };
}

const values = (t: ort.Tensor) => Array.from(t.data as Float32Array);

describe('KV cache parts', () => {
  it('settles recent positions after the past, per row and kv head', () => {
    const settled = settle(cacheOf(2, 3, 4));
    expect(settled).toMatchObject({ batch: 2, length: 7, pastLength: 7 });
    expect(settled.recent[0]![0]!.dims).toEqual([2, 2, 0, 3]);
    // Exactly the tensor a single 7-position cache would hold.
    expect(values(settled.past[0]![0]!)).toEqual(values(part(2, 2, 7, 3, 0)));
    expect(settled.past[0]![1]!.dims).toEqual([2, 2, 7, 3]);
  });

  it('settles only once recent reaches SETTLE_AFTER positions', () => {
    const base = cacheOf(1, 5, 0);
    const present = (n: number) => [[part(1, 2, n, 3, 5), part(1, 2, n, 3, 5)]];
    const short = withRecent(base, present(SETTLE_AFTER - 1));
    expect(short).toMatchObject({ length: 5 + SETTLE_AFTER - 1, pastLength: 5 });
    const due = withRecent(base, present(SETTLE_AFTER));
    expect(due).toMatchObject({ length: 5 + SETTLE_AFTER, pastLength: 5 + SETTLE_AFTER });
    expect(values(due.past[0]![1]!)).toEqual(values(part(1, 2, 5 + SETTLE_AFTER, 3, 0)));
  });

  it('selects rows from both parts, in the order asked', () => {
    const picked = selectKvRows(cacheOf(3, 2, 1), [2, 0]);
    expect(picked).toMatchObject({ batch: 2, length: 3 });
    const first = (t: ort.Tensor) => (t.data as Float32Array)[0];
    expect(first(picked.past[0]![0]!)).toBe(2000); // row 2, head 0, position 0
    expect((picked.past[0]![1]!.data as Float32Array)[2 * 3]).toBe(2020); // row 2, head 0, position 2
    expect(picked.past[0]![0]!.dims).toEqual([2, 2, 3, 3]);
  });

  it('rebuilds rows of different lengths right-aligned, from several caches, trimmed to the longest', () => {
    const a = cacheOf(2, 3, 2); // 5 positions
    const b = cacheOf(1, 0, 2); // 2 positions
    // Row 1 of a keeps its last 4 positions (1..4), b's row 0 both of its positions.
    const out = rebuildKvCache([
      { cache: a, row: 1, length: 4 },
      { cache: b, row: 0, length: 2 },
    ]);
    expect(out).toMatchObject({ batch: 2, length: 4, pastLength: 4 });
    const v = values(out.past[0]![0]!);
    const at = (row: number, head: number, slot: number) => v[((row * 2 + head) * 4 + slot) * 3]!;
    expect([0, 1, 2, 3].map((slot) => at(0, 1, slot))).toEqual([1110, 1120, 1130, 1140]);
    // b's row is right-aligned: two slots of zero padding, then its positions 0 and 1.
    expect([0, 1, 2, 3].map((slot) => at(1, 1, slot))).toEqual([0, 0, 100, 110]);
  });

  it('copies every stream of an int8 cache alike, whatever its type and width', () => {
    const streams = kvStreams('int8');
    expect(streams.map((s) => [s.name, s.type, s.width])).toEqual([
      ['key', 'uint8', 'head'],
      ['key_scale', 'float32', 1],
      ['value', 'int8', 'head'],
      ['value_scale', 'float32', 1],
    ]);
    const cache = emptyKvCache(1, 1, 1, 2, streams);
    const filled: KvCache = {
      ...cache,
      length: 3,
      past: [[new ort.Tensor('uint8', Uint8Array.of(1, 2, 3, 4, 5, 6), [1, 1, 3, 2]), new ort.Tensor('float32', Float32Array.of(0.1, 0.2, 0.3), [1, 1, 3, 1]), new ort.Tensor('int8', Int8Array.of(-1, -2, -3, -4, -5, -6), [1, 1, 3, 2]), new ort.Tensor('float32', Float32Array.of(1, 2, 3), [1, 1, 3, 1])]],
      pastLength: 3,
    };
    const out = rebuildKvCache([{ cache: filled, row: 0, length: 2 }]);
    expect(Array.from(out.past[0]![0]!.data as Uint8Array)).toEqual([3, 4, 5, 6]);
    expect(Array.from(out.past[0]![1]!.data as Float32Array)).toEqual([Math.fround(0.2), Math.fround(0.3)]);
    expect(Array.from(out.past[0]![2]!.data as Int8Array)).toEqual([-3, -4, -5, -6]);
    expect(out.past[0]![3]!.dims).toEqual([1, 1, 2, 1]);
    expect(out.past[0]![2]!.type).toBe('int8');
  });

  it('starts empty', () => {
    const c = emptyKvCache(4, 3, 2, 8, FLOAT);
    expect(c).toMatchObject({ batch: 4, length: 0, pastLength: 0 });
    expect(c.past).toHaveLength(3);
    expect(c.recent[2]![1]!.dims).toEqual([4, 2, 0, 8]);
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
