/**
 * The real trained model in ../shared/models/stories260K-hf (llama2.c's 260K TinyStories Llama): it compiles, the
 * graph's logits match the reference forward pass, and its greedy continuation of "Once upon a time" through the
 * generation engine is the fluent English the model was trained on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { generate } from '../../src/main/engine/runtime/generate.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { referenceForward } from '../support/reference-forward.js';
import { sharedPath } from '../support/shared-data.js';

const dir = sharedPath('models/stories260K-hf', 'stories260K engine tests');

describe.skipIf(!dir)('stories260K through the compiled graph', () => {
  let model: LoadedModel;
  let cache: string;
  beforeAll(async () => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-stories-'));
    model = await loadModel(dir!, { cacheRoot: cache });
  });
  afterAll(async () => {
    await model?.session.release();
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('loads with its tokenizer', () => {
    expect(model.config.architecture).toBe('LlamaForCausalLM');
    expect(model.tokenizer).not.toBeNull();
    expect(model.tokenizer!.encode('Once upon a time', { addSpecialTokens: true })[0]).toBe(1);
  });

  it('logits match the reference forward pass', async () => {
    const ids = model.tokenizer!.encode('Once upon a time, there was a little dog named Max. He liked to run and jump.', { addSpecialTokens: true });
    const got = await teacherForce(model.session, ids, { logitPositions: ids.map((_, t) => t), chunkSize: 7 });
    const weights = new Map<string, Float32Array>();
    const weight = (n: string) => weights.get(n) ?? weights.set(n, readTensorAsFloat32(model.checkpoint.tensors.get(n)!)).get(n)!;
    const ref = referenceForward(model.config, weight, ids);
    let max = 0;
    for (let i = 0; i < ref.logits.length; i++) max = Math.max(max, Math.abs(ref.logits[i]! - got.logits[i]!));
    expect(max).toBeLessThanOrEqual(1e-4);
  });

  it('greedily continues "Once upon a time" in fluent English', async () => {
    const tok = model.tokenizer!;
    const prompt = tok.encode('Once upon a time', { addSpecialTokens: true });
    const [res] = await generate(model.session, [{ ids: prompt }], { maxNewTokens: 40 });
    const text = tok.decode(res!.outputIds, { skipSpecialTokens: true });
    // The published temperature-0 sample continues: ", there was a little girl named Lily. She loved to play…"
    expect(text.startsWith(', there was a little girl named Lily.')).toBe(true);
    const words = text.split(/[^A-Za-z']+/).filter(Boolean);
    expect(words.length).toBeGreaterThan(20);
    expect(words).toEqual(expect.arrayContaining(['there', 'was', 'a', 'little']));
  });
});
