/**
 * The compiled ONNX graph against the independent plain-TypeScript reference, on a tiny seeded checkpoint of every
 * supported architecture and variant: logits, every residual tap, every per-head output (hook_z, as o_proj reads it)
 * and attention patterns (hook_pattern) within 1e-4; head_scale with one head at 0 equals the reference with that
 * head removed, hook_z included; the norm-preserving variant; chunked teacher forcing equals one full pass; several
 * transcripts forced as one packed batch equal each forced alone; per-token log-probabilities equal log-softmax of
 * the logits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce, teacherForceBatch } from '../../src/main/engine/runtime/teacher-force.js';
import { TINY_VARIANTS, writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { referenceForward } from '../support/reference-forward.js';
import { expectPatternMatchesReference, expectTapsMatchReference, maxAbsDiff, seededIds } from '../support/assertions.js';

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
    // Every tap, hook_z included: it holds what o_proj reads, so the removed head writes exactly nothing.
    expectTapsMatchReference(got, ref, L, TOL);
    const D = model.config.headDim;
    const removed = ids.flatMap((_, t) => Array.from(got.z.get(L - 1)!.subarray((t * H + 1) * D, (t * H + 2) * D)));
    expect(removed.every((x) => x === 0)).toBe(true);
    // The ablation must actually change something, or the comparison above proves nothing.
    expect(maxAbsDiff(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('hook_pattern of chosen heads and queries matches the reference, chunked and under head_scale', async () => {
    const { numLayers: L, numHeads: H } = model.config;
    // The last query is beyond the mistral fixture's window (8), whose pattern is then 0 on old keys.
    const sel = { layers: [L - 1, 0], heads: [H - 1, 0], positions: [20, 0, 9, 20] };
    const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
    headScale[0]![H - 1] = 0;
    for (const [chunkSize, scale] of [[512, undefined], [4, undefined], [6, headScale]] as const) {
      const got = await teacherForce(model.session, ids, { pattern: sel, chunkSize, headScale: scale as number[][] | undefined });
      const ref = referenceForward(model.config, weight, ids, { headScale: scale as number[][] | undefined });
      expectPatternMatchesReference(got, ref, sel, H, TOL);
    }
    // Asked for nothing, nothing comes back.
    expect((await teacherForce(model.session, ids, { residLayers: [1] })).pattern.size).toBe(0);
  });

  it('a packed batch of transcripts of different lengths equals each forced alone', async () => {
    const { numLayers: L, numHeads: H } = model.config;
    const seqs = [seededIds(13, 3), seededIds(2, 5), seededIds(30, 9), seededIds(7, 1)];
    const taps = { residLayers: [0, L + 1], zLayers: [L - 1], logprobs: true, pattern: { layers: [L - 1], heads: [0, H - 1] } };
    const delivered: number[] = [];
    for (const chunkSize of [512, 5]) {
      const batch = await teacherForceBatch(
        model.session,
        seqs.map((s) => ({ ids: s, positions: [s.length - 1, 0], logitPositions: [s.length - 1], patternPositions: [s.length - 1] })),
        { ...taps, chunkSize, onResult: (i) => delivered.push(i) },
      );
      for (const [i, s] of seqs.entries()) {
        const alone = await teacherForce(model.session, s, {
          residLayers: taps.residLayers,
          zLayers: taps.zLayers,
          logprobs: true,
          positions: [s.length - 1, 0],
          logitPositions: [s.length - 1],
          pattern: { ...taps.pattern, positions: [s.length - 1] },
        });
        const got = batch[i]!;
        expect(maxAbsDiff(got.logits, alone.logits), `sequence ${i}`).toBeLessThanOrEqual(1e-5);
        for (const l of taps.residLayers) expect(maxAbsDiff(got.resid.get(l)!, alone.resid.get(l)!)).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(got.z.get(L - 1)!, alone.z.get(L - 1)!)).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(got.pattern.get(L - 1)!, alone.pattern.get(L - 1)!)).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(got.tokenLogprobs.subarray(1), alone.tokenLogprobs.subarray(1))).toBeLessThanOrEqual(1e-5);
        expect(Number.isNaN(got.tokenLogprobs[0])).toBe(true);
      }
    }
    // Each result is handed over once its last token is processed: in stream order, once per run.
    expect(delivered).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
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
    // hook_z is taken after the rescale too: exactly what o_proj reads.
    expectTapsMatchReference(got, ref, L, TOL);
    expect(maxAbsDiff(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
    await model.session.release();
  });
});
