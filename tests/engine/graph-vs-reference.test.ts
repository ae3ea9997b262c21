/**
 * The compiled ONNX graph against the independent plain-TypeScript reference, on a tiny seeded checkpoint of every
 * supported architecture and variant: logits, every residual tap and every per-head output within 1e-4; head_scale
 * with one head at 0 equals the reference with that head removed; the norm-preserving variant; chunked teacher forcing
 * equals one full pass; per-token log-probabilities equal log-softmax of the logits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { TINY_VARIANTS, writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { referenceForward } from '../support/reference-forward.js';
import { expectTapsMatchReference, maxAbsDiff, seededIds } from '../support/assertions.js';

const TOL = 1e-4;

function weightsOf(dir: string) {
  const ckpt = openCheckpoint(dir);
  const cache = new Map<string, Float32Array>();
  return (name: string) => {
    if (!cache.has(name)) cache.set(name, readTensorAsFloat32(ckpt.tensors.get(name)!));
    return cache.get(name)!;
  };
}

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-graph-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function allTaps(model: LoadedModel, ids: number[], extra: Parameters<typeof teacherForce>[2] = {}) {
  const L = model.config.numLayers;
  return teacherForce(model.session, ids, {
    residLayers: Array.from({ length: L + 2 }, (_, i) => i),
    zLayers: Array.from({ length: L }, (_, i) => i),
    logitPositions: ids.map((_, t) => t),
    logprobs: true,
    ...extra,
  });
}

describe.each(TINY_VARIANTS)('graph vs reference: %s', (variant) => {
  let dir: string;
  let model: LoadedModel;
  let weight: (name: string) => Float32Array;
  // Longer than the mistral fixture's sliding window (8), so the window is exercised.
  const ids = seededIds(21, 7);

  beforeAll(async () => {
    dir = path.join(root, variant);
    writeTinyCheckpoint(dir, variant, { seed: 3 });
    model = await loadModel(dir, { cacheRoot: path.join(root, 'cache') });
    weight = weightsOf(dir);
  });
  afterAll(async () => model?.session.release());

  it('matches logits, every residual tap and every per-head output', async () => {
    const got = await allTaps(model, ids);
    const ref = referenceForward(model.config, weight, ids);
    const L = model.config.numLayers;
    expectTapsMatchReference(got, ref, L, TOL);
  });

  it('head_scale with one head at 0 equals the reference with that head removed', async () => {
    const { numLayers: L, numHeads: H } = model.config;
    const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
    headScale[L - 1]![1] = 0;
    headScale[0]![H - 1] = 0.5;
    const got = await allTaps(model, ids, { headScale });
    const ref = referenceForward(model.config, weight, ids, { headScale });
    const plain = referenceForward(model.config, weight, ids);
    expect(maxAbsDiff(got.logits, ref.logits)).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(got.resid.get(L)!, ref.residPost[L - 1]!)).toBeLessThanOrEqual(TOL);
    // The ablation must actually change something, or the comparison above proves nothing.
    expect(maxAbsDiff(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('chunked teacher forcing equals one full pass', async () => {
    const full = await allTaps(model, ids, { chunkSize: 512 });
    const chunked = await allTaps(model, ids, { chunkSize: 4 });
    expect(maxAbsDiff(chunked.logits, full.logits)).toBeLessThanOrEqual(1e-5);
    for (const [layer, v] of full.resid) expect(maxAbsDiff(chunked.resid.get(layer)!, v)).toBeLessThanOrEqual(1e-5);
    for (const [layer, v] of full.z) expect(maxAbsDiff(chunked.z.get(layer)!, v)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(chunked.tokenLogprobs.subarray(1), full.tokenLogprobs.subarray(1))).toBeLessThanOrEqual(1e-5);
  });

  it('per-token log-probabilities are log-softmax of the previous position’s logits', async () => {
    const got = await allTaps(model, ids, { chunkSize: 5 });
    const V = model.config.vocabSize;
    expect(Number.isNaN(got.tokenLogprobs[0])).toBe(true);
    for (let t = 1; t < ids.length; t++) {
      const row = got.logits.subarray((t - 1) * V, t * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      expect(got.tokenLogprobs[t]!).toBeCloseTo(row[ids[t]!]! - lse, 4);
    }
  });

  it('returns layers in the order asked, including repeats', async () => {
    const L = model.config.numLayers;
    const layers = [L, 0, L + 1, L];
    const got = await teacherForce(model.session, ids, { residLayers: layers, positions: [4, 9] });
    const full = await allTaps(model, ids);
    const d = model.config.hiddenSize;
    for (const l of layers) {
      const want = full.resid.get(l)!;
      expect(maxAbsDiff(got.resid.get(l)!, [...want.subarray(4 * d, 5 * d), ...want.subarray(9 * d, 10 * d)])).toBeLessThanOrEqual(1e-6);
    }
  });

  it('taps only the positions asked for', async () => {
    const positions = [3, 0, 20];
    const got = await teacherForce(model.session, ids, { residLayers: [2], zLayers: [1], positions, chunkSize: 6 });
    const ref = referenceForward(model.config, weight, ids);
    const d = model.config.hiddenSize;
    const w = model.config.numHeads * model.config.headDim;
    expect(got.resid.get(2)!.length).toBe(positions.length * d);
    positions.forEach((p, k) => {
      expect(maxAbsDiff(got.resid.get(2)!.subarray(k * d, (k + 1) * d), ref.residPost[1]!.subarray(p * d, (p + 1) * d))).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(got.z.get(1)!.subarray(k * w, (k + 1) * w), ref.z[1]!.subarray(p * w, (p + 1) * w))).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('norm-preserving head_scale', () => {
  it('matches the reference and differs from plain scaling', async () => {
    const dir = path.join(root, 'np-llama');
    writeTinyCheckpoint(dir, 'llama-gqa', { seed: 5 });
    const model = await loadModel(dir, { cacheRoot: path.join(root, 'cache'), normPreserve: true });
    const { numLayers: L, numHeads: H } = model.config;
    const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
    headScale[0]![0] = 0;
    headScale[1]![2] = 0.25;
    const ids = seededIds(9, 11);
    const got = await allTaps(model, ids, { headScale });
    const weight = weightsOf(dir);
    const ref = referenceForward(model.config, weight, ids, { headScale, normPreserve: true });
    const plain = referenceForward(model.config, weight, ids, { headScale });
    expect(maxAbsDiff(got.logits, ref.logits)).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
    await model.session.release();
  });
});
