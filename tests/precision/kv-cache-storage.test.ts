/**
 * KV cache storage under float32 activations: float16 (half the cache's bytes) and int8 with one scale per cached
 * vector (about a quarter, read by integer products). Both are lossy, so they are held to their own tolerances
 * against the reference; the float32 default keeps the 1e-4 parity of graph-vs-reference.test.ts. Attention reads
 * the stored form also for the chunk that wrote it, so chunking still changes nothing, and batched generation still
 * equals one-by-one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { buildAttentionBias } from '../../src/main/engine/runtime/attention-bias.js';
import { generate } from '../../src/main/engine/runtime/generate.js';
import { kvCacheBytes } from '../../src/main/engine/runtime/kv-cache.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { type TinyVariant, writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { expectPatternMatchesReference, expectTapsMatchReference, maxAbsDiff, seededIds } from '../support/assertions.js';
import { referenceForward } from '../support/reference-forward.js';

// Measured on these fixtures (|logits| ≲ 4): float16 within 2.6e-4 of the reference, int8 within 5e-3 (2.3e-2 on
// Qwen3, whose normed q and k give the sharpest scores).
const TOLERANCE = { float16: 2e-3, int8: 5e-2 };

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-kv-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe.each<[TinyVariant, 'float16' | 'int8']>([
  ['llama-gqa', 'float16'],
  ['llama-gqa', 'int8'],
  ['qwen2', 'int8'],
  ['qwen3', 'int8'],
  ['mistral', 'int8'],
])('%s with a %s KV cache', (variant, kvCache) => {
  let model: LoadedModel;
  let weight: (n: string) => Float32Array;
  const ids = seededIds(21, 7);
  beforeAll(async () => {
    const dir = path.join(root, variant);
    if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, variant, { seed: 3 });
    model = await loadModel(dir, { cacheRoot: path.join(root, 'cache'), precision: { kvCache } });
    const ckpt = openCheckpoint(dir);
    weight = (n) => readTensorAsFloat32(ckpt.tensors.get(n)!);
  });
  afterAll(async () => model?.session.release());

  it('matches the reference within its tolerance, taps and patterns included', async () => {
    expect(model.session.kvCacheType).toBe(kvCache);
    const { numLayers: L, numHeads: H } = model.config;
    const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
    headScale[0]![1] = 0;
    const pattern = { layers: [L - 1], heads: [0, H - 1], positions: [20, 5] };
    const got = await teacherForce(model.session, ids, {
      residLayers: Array.from({ length: L + 2 }, (_, i) => i),
      zLayers: Array.from({ length: L }, (_, i) => i),
      logitPositions: ids.map((_, t) => t),
      pattern,
      headScale,
      chunkSize: 6,
    });
    const ref = referenceForward(model.config, weight, ids, { headScale });
    const err = maxAbsDiff(got.logits, ref.logits);
    expectTapsMatchReference(got, ref, L, TOLERANCE[kvCache]);
    expectPatternMatchesReference(got, ref, pattern, H, TOLERANCE[kvCache]);
    // Lossy, measurably: not the float32 cache by accident.
    expect(err).toBeGreaterThan(1e-6);
  });

  it('reads the cache as stored, so chunking changes nothing', async () => {
    const opts = { logitPositions: ids.map((_, t) => t), logprobs: true };
    const whole = await teacherForce(model.session, ids, { ...opts, chunkSize: 512 });
    for (const chunkSize of [1, 5]) {
      const chunked = await teacherForce(model.session, ids, { ...opts, chunkSize });
      expect(maxAbsDiff(chunked.logits, whole.logits), `chunk ${chunkSize}`).toBeLessThanOrEqual(1e-4);
    }
  });

  it('batched generation with rows joining mid-run equals one-by-one', async () => {
    const prompts = [[1, 12, 13, 14], [1, 20, 21, 22, 23, 24, 25, 26], [1, 30], [1, 40, 41, 42, 43]];
    const [probe] = await generate(model.session, [{ ids: prompts[1]! }], { maxNewTokens: 10 });
    const opts = { maxNewTokens: 10, stopIds: [probe!.outputIds[3]!] };
    const batched = await generate(model.session, prompts.map((ids) => ({ ids })), { ...opts, batchSize: 2 });
    for (const [i, ids] of prompts.entries()) {
      const [alone] = await generate(model.session, [{ ids }], opts);
      expect(batched[i]!.outputIds, `prompt ${i}`).toEqual(alone!.outputIds);
    }
  });

  it('holds the cache in fewer bytes than float32', async () => {
    const { numLayers: L, numKvHeads: Hkv, headDim: D } = model.config;
    const out = await model.session.step({
      batch: 1,
      seq: 5,
      ids: ids.slice(0, 5),
      positions: [0, 1, 2, 3, 4],
      bias: buildAttentionBias({ batch: 1, seq: 5, past: 0 }),
      cache: model.session.emptyCache(1),
    });
    // Keys and values per position: float16 values, or int8 codes plus one float32 scale per vector.
    const perPosition = L * Hkv * 2 * (kvCache === 'float16' ? 2 * D : D + 4);
    expect(kvCacheBytes(out.cache)).toBe(5 * perPosition);
    expect(perPosition).toBeLessThan(L * Hkv * 2 * 4 * D);
  });
});
