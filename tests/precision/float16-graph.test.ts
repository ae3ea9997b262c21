/**
 * The float16-activation graph. It is meant for GPU providers, but it loads and runs on ONNX Runtime's CPU provider
 * too (which wraps the ops it has no float16 kernel for in float32 casts), so we can check it here:
 *  - the external interface is the float32 graph's (float32/int64 in, float32 out) except the KV cache, which stays
 *    the float16 the graph computes (half the memory, no casts);
 *  - the model really stores float16 weights (norm weights float32) and keeps RMSNorm and softmax in float32;
 *  - its outputs match the float32 reference within float16 rounding, for every tiny architecture;
 *  - chunked teacher forcing equals one pass (attention always reads the cache as stored);
 *  - float16 combined with int4 matches the reference on the dequantised weights.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { type CompiledModel, compileCheckpoint } from '../../src/main/engine/onnx/compile.js';
import { DataType } from '../../src/main/engine/onnx/proto.js';
import { DecoderSession } from '../../src/main/engine/runtime/decoder-session.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { TINY_VARIANTS, writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { referenceForward } from '../support/reference-forward.js';
import { compiledWeights, readModel } from './onnx-reader.js';
import { expectTapsMatchReference, maxAbsDiff, seededIds } from '../support/assertions.js';

// Measured: float16 rounding puts logits and taps (|x| ≲ 4 on these models) within ≈ 2.7e-3 of the float32 reference.
const TOL = 1e-2;

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-f16-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe.each(TINY_VARIANTS)('float16 activations: %s', (variant) => {
  let dir: string;
  let half: CompiledModel;
  let full: CompiledModel;
  let session: DecoderSession;
  const ids = seededIds(21, 7);

  beforeAll(async () => {
    dir = path.join(root, variant);
    writeTinyCheckpoint(dir, variant, { seed: 3 });
    const cacheRoot = path.join(root, 'cache');
    half = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false, activations: 'float16' }, { cacheRoot });
    full = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false }, { cacheRoot });
    session = await DecoderSession.create(half.modelPath, openCheckpoint(dir).config);
  });
  afterAll(async () => session?.release());

  it('keeps the float32 graph’s interface, with the KV cache stored as the float16 it computes', async () => {
    const other = await ort.InferenceSession.create(full.modelPath);
    const cache = /^(past|recent|present)_(key|value)\./;
    const sig = (s: ort.InferenceSession, which: 'inputMetadata' | 'outputMetadata', f16Cache: boolean) =>
      s[which].map((m) => [m.name, m.isTensor ? (f16Cache && cache.test(m.name) ? 'float16' : m.type) : '?']);
    expect(sig(session.session, 'inputMetadata', false)).toEqual(sig(other, 'inputMetadata', true));
    expect(sig(session.session, 'outputMetadata', false)).toEqual(sig(other, 'outputMetadata', true));
    expect(session.kvCacheType).toBe('float16');
    await other.release();
  });

  it('stores float16 weights, keeps norms, RMSNorm and softmax in float32', () => {
    const model = readModel(half.modelPath);
    for (const [name, t] of model.initializers) {
      if (!t.external.location) continue;
      expect(t.dataType, name).toBe(/norm\.weight$/.test(name) ? DataType.FLOAT : DataType.FLOAT16);
    }
    const producer = new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const castTo = (value: string) => {
      const p = producer.get(value);
      return p?.opType === 'Cast' ? p.intAttrs.to : undefined;
    };
    const norms = model.nodes.filter((n) => n.opType === 'SimplifiedLayerNormalization');
    expect(norms.length).toBeGreaterThan(0);
    for (const n of norms) {
      expect(castTo(n.inputs[0]!), n.name).toBe(DataType.FLOAT);
      const consumers = model.nodes.filter((m) => m.inputs.includes(n.outputs[0]!));
      expect(consumers.map((c) => [c.opType, c.intAttrs.to]), n.name).toEqual([['Cast', DataType.FLOAT16]]);
    }
    const softmaxes = model.nodes.filter((m) => m.opType === 'Softmax');
    expect(softmaxes.length).toBe(session.config.numLayers); // one way to attend in float16 (decoder-graph.ts, attend)
    for (const n of softmaxes) {
      const add = producer.get(n.inputs[0]!)!;
      expect(add.opType).toBe('Add');
      // scores cast up before the mask and softmax (through the reshape to the mask's 5-D view)
      const view = producer.get(add.inputs[0]!)!;
      expect(view.opType).toBe('Reshape');
      expect(castTo(view.inputs[0]!), n.name).toBe(DataType.FLOAT);
    }
    // The weights file is about half the float32 one.
    const size = (c: CompiledModel) => JSON.parse(fs.readFileSync(path.join(c.dir, 'manifest.json'), 'utf8')).tensorBytes as number;
    expect(size(half) / size(full)).toBeLessThan(0.55);
  });

  it('matches the float32 reference within float16 rounding, and chunking changes nothing', async () => {
    const cfg = session.config;
    const L = cfg.numLayers;
    const opts = {
      residLayers: Array.from({ length: L + 2 }, (_, i) => i),
      zLayers: Array.from({ length: L }, (_, i) => i),
      logitPositions: ids.map((_, t) => t),
      logprobs: true,
    };
    const got = await teacherForce(session, ids, opts);
    const ckpt = openCheckpoint(dir);
    const ref = referenceForward(cfg, (n) => readTensorAsFloat32(ckpt.tensors.get(n)!), ids);
    expectTapsMatchReference(got, ref, L, TOL);
    // Not accidentally the float32 graph: float16 rounding is visible.
    expect(maxAbsDiff(got.logits, ref.logits)).toBeGreaterThan(1e-5);

    const chunked = await teacherForce(session, ids, { ...opts, chunkSize: 4 });
    expect(maxAbsDiff(chunked.logits, got.logits)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(chunked.tokenLogprobs.subarray(1), got.tokenLogprobs.subarray(1))).toBeLessThanOrEqual(1e-5);
  });
});

describe('float16 activations with head_scale, norm preservation and int4 weights', () => {
  it('matches the reference on the dequantised (float16-scaled) weights', async () => {
    const dir = path.join(root, 'combo');
    writeTinyCheckpoint(dir, 'llama-gqa', { seed: 5 });
    const ckpt = openCheckpoint(dir);
    const compiled = await compileCheckpoint(
      ckpt,
      { normPreserve: true, activations: 'float16', weights: 'int4', int4AccuracyLevel: 0 }, // exact multiply: held to TOL
      { cacheRoot: path.join(root, 'cache') },
    );
    const model = readModel(compiled.modelPath);
    const mnb = model.nodes.filter((n) => n.opType === 'MatMulNBits');
    expect(mnb.length).toBe(5 * ckpt.config.numLayers + 1); // one LM-head product for logits and log-probs
    for (const n of mnb) expect(model.initializers.get(n.inputs[2]!)!.dataType).toBe(DataType.FLOAT16);

    const session = await DecoderSession.create(compiled.modelPath, ckpt.config);
    const { numLayers: L, numHeads: H } = ckpt.config;
    const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
    headScale[0]![0] = 0;
    headScale[1]![2] = 0.25;
    const ids = seededIds(13, 11);
    const got = await teacherForce(session, ids, { logitPositions: ids.map((_, t) => t), headScale, chunkSize: 5 });
    await session.release();
    const ref = referenceForward(ckpt.config, compiledWeights(compiled.modelPath, dir), ids, { headScale, normPreserve: true });
    expect(maxAbsDiff(got.logits, ref.logits)).toBeLessThanOrEqual(TOL);
  });
});
