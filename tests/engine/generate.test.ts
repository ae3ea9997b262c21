/**
 * Generation: batched greedy equals one-by-one, also when finished rows are refilled mid-run (continuous batching),
 * seeded sampling is reproducible and independent of batching, per-row head_scale, live probe scores equal
 * teacher-forced ones, stops, cancellation, context limits and prompts that do not fit the context.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, type GenerateOptions, type GenerationRequest, type GenerationResult } from '../../src/main/engine/runtime/generate.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { writeTinyCheckpoint, type TinyVariant } from '../fixtures/tiny-checkpoints.js';
import { sharedPath } from '../support/shared-data.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-gen-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function tiny(variant: TinyVariant, seed = 9): Promise<LoadedModel> {
  const dir = path.join(root, `${variant}-${seed}`);
  if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, variant, { seed });
  return loadModel(dir, { cacheRoot: path.join(root, 'cache') });
}

const prompts: number[][] = [
  [1, 12, 13, 14],
  [1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
  [1, 30],
  [1, 40, 41, 42, 43, 44, 45],
];

async function oneByOne(model: LoadedModel, reqs: GenerationRequest[], opts: GenerateOptions) {
  const out = [];
  for (const r of reqs) out.push((await generate(model.session, [r], { ...opts, batchSize: 1 }))[0]!);
  return out;
}

describe.each<TinyVariant>(['llama-gqa', 'qwen3', 'mistral'])('batched generation on %s', (variant) => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await tiny(variant);
  });
  afterAll(async () => model?.session.release());

  it('greedy batched equals one-by-one, token for token', async () => {
    const reqs = prompts.map((ids) => ({ ids }));
    const opts = { maxNewTokens: 16 };
    const batched = await generate(model.session, reqs, { ...opts, batchSize: 4 });
    const single = await oneByOne(model, reqs, opts);
    expect(batched.map((r) => r.outputIds)).toEqual(single.map((r) => r.outputIds));
    expect(batched.every((r) => r.outputIds.length === 16 && r.finishReason === 'length')).toBe(true);
  });

  it('finished rows leave the batch and the others go on unchanged', async () => {
    const reqs = prompts.map((ids) => ({ ids }));
    const free = await oneByOne(model, reqs, { maxNewTokens: 12 });
    // Stop the second prompt early on a token it is known to produce at step 3.
    const stopAt = free[1]!.outputIds[2]!;
    const batched = await generate(model.session, reqs, { maxNewTokens: 12, batchSize: 4, stopIds: [stopAt] });
    const single = await oneByOne(model, reqs, { maxNewTokens: 12, stopIds: [stopAt] });
    expect(batched.map((r) => r.outputIds)).toEqual(single.map((r) => r.outputIds));
    const second = batched[1]!;
    expect(second.finishReason).toBe('eos');
    expect(second.outputIds.at(-1)).toBe(stopAt);
    expect(second.outputIds.length).toBeLessThanOrEqual(3);
  });

  it('seeded sampling is reproducible and does not depend on batch composition', async () => {
    const sampling = { doSample: true, temperature: 1.3, topP: 0.95, topK: 20, repetitionPenalty: 1.1 };
    const reqs = prompts.map((ids) => ({ ids }));
    const a = await generate(model.session, reqs, { maxNewTokens: 12, sampling, seed: 42, batchSize: 4 });
    const b = await generate(model.session, reqs, { maxNewTokens: 12, sampling, seed: 42, batchSize: 2 });
    const c = await generate(model.session, reqs, { maxNewTokens: 12, sampling, seed: 43, batchSize: 4 });
    expect(b.map((r) => r.outputIds)).toEqual(a.map((r) => r.outputIds));
    expect(c.map((r) => r.outputIds)).not.toEqual(a.map((r) => r.outputIds));
  });

  it('applies head_scale per row, so several ablation settings share a batch', async () => {
    const { numLayers: L, numHeads: H } = model.config;
    const ablated = new Float32Array(L * H).fill(1);
    ablated[1] = 0;
    ablated[L * H - 1] = 0;
    const ids = prompts[1]!;
    const mixed = await generate(model.session, [{ ids }, { ids, headScale: ablated }], { maxNewTokens: 10, batchSize: 2 });
    const [plain] = await generate(model.session, [{ ids }], { maxNewTokens: 10 });
    const [alone] = await generate(model.session, [{ ids, headScale: ablated }], { maxNewTokens: 10 });
    expect(mixed[0]!.outputIds).toEqual(plain!.outputIds);
    expect(mixed[1]!.outputIds).toEqual(alone!.outputIds);
  });
});

describe('continuous batching', () => {
  let model: LoadedModel;
  const many: number[][] = [...prompts, [1, 50, 51, 52, 53], [1, 55, 56, 57, 58, 59, 60, 61, 62], [1, 33, 34]];
  let free: GenerationResult[];
  beforeAll(async () => {
    model = await tiny('llama-gqa');
    free = await oneByOne(model, many.map((ids) => ({ ids })), { maxNewTokens: 14 });
  });
  afterAll(async () => model?.session.release());

  /** The session with every step's batch, chunk length and cache length recorded. */
  function recorded() {
    const steps: { batch: number; seq: number; cache: number }[] = [];
    const spy = Object.create(model.session) as typeof model.session;
    spy.step = (input) => {
      steps.push({ batch: input.batch, seq: input.seq, cache: input.cache.length });
      return model.session.step(input);
    };
    return { spy, steps };
  }

  /** Stop tokens that end some sequences early and leave others running: answers of mixed lengths. */
  const mixedStops = () => [free[1]!.outputIds[2]!, free[4]!.outputIds[6]!];

  it('refilled rows give exactly the one-by-one results, at every batch size, static or continuous', async () => {
    const reqs = many.map((ids) => ({ ids }));
    const opts = { maxNewTokens: 14, stopIds: mixedStops() };
    const single = await oneByOne(model, reqs, opts);
    const lengths = new Set(single.map((r) => r.outputIds.length));
    expect(lengths.size).toBeGreaterThan(2); // the stops really make a mix of lengths
    for (const batchSize of [2, 3, 5, 7]) {
      for (const batching of ['continuous', 'static'] as const) {
        const got = await generate(model.session, reqs, { ...opts, batchSize, batching });
        expect(got.map((r) => r.outputIds), `batch ${batchSize} ${batching}`).toEqual(single.map((r) => r.outputIds));
        expect(got.map((r) => r.finishReason)).toEqual(single.map((r) => r.finishReason));
      }
    }
  });

  it('a freed row takes the next request at once, its prefill between the others’ decode steps', async () => {
    const { spy, steps } = recorded();
    const order: string[] = [];
    const reqs = many.map((ids) => ({ ids }));
    await generate(spy, reqs, {
      maxNewTokens: 14,
      stopIds: mixedStops(),
      batchSize: 3,
      onToken: (prompt) => order.push(`t${prompt}`),
      onFinished: (r) => void order.push(`f${r.prompt}`),
    });
    // Never more rows than the batch, and never an idle row while requests wait: until the queue runs dry every
    // decode step is full.
    expect(Math.max(...steps.map((s) => s.batch))).toBe(3);
    const decode = steps.filter((s) => s.seq === 1);
    const firstShort = decode.findIndex((s) => s.batch < 3);
    const lastPrefill = steps.map((s, i) => (s.seq > 1 || s.cache === 0 ? i : -1)).filter((i) => i >= 0).at(-1)!;
    expect(firstShort === -1 || steps.indexOf(decode[firstShort]!) > lastPrefill).toBe(true);
    // A joiner's prefill (its own empty cache) runs between decode steps of rows that are mid-answer.
    const prefills = steps.map((s, i) => (s.cache === 0 ? i : -1)).filter((i) => i > 0);
    expect(prefills.some((i) => steps[i - 1]!.seq === 1 && steps[i + 1]?.seq === 1 && steps[i + 1]!.batch > 1)).toBe(true);
    // The request that starts last starts before the run's last answer ends.
    const firstTokens = order.filter((e, i) => e.startsWith('t') && order.indexOf(e) === i);
    const finishes = order.filter((e) => e.startsWith('f'));
    expect(order.indexOf(firstTokens.at(-1)!)).toBeLessThan(order.indexOf(finishes.at(-1)!));
    expect(finishes).toHaveLength(many.length);
  });

  it('drops cache slots no row needs once a long row leaves', async () => {
    const { spy, steps } = recorded();
    const long = Array.from({ length: 40 }, (_, i) => 1 + ((i * 7) % 60));
    const [alone] = await generate(model.session, [{ ids: long }], { maxNewTokens: 3 });
    const short = many[2]!;
    // The long prompt stops after its 3rd token; the short one runs on to 14.
    const stop = alone!.outputIds[2]!;
    const [shortAlone] = await generate(model.session, [{ ids: short }], { maxNewTokens: 14, stopIds: [stop] });
    expect(shortAlone!.outputIds.length).toBe(14);
    const results = await generate(spy, [{ ids: long }, { ids: short }], { maxNewTokens: 14, stopIds: [stop], batchSize: 2 });
    expect(results[0]!.outputIds.length).toBe(3);
    expect(results[1]!.outputIds).toEqual(shortAlone!.outputIds);
    // The last step's cache holds the short row alone: its prompt and all but its last token.
    expect(steps.at(-1)!).toEqual({ batch: 1, seq: 1, cache: short.length + 12 });
  });

  it('per-row head_scale holds for rows that join mid-run', async () => {
    const { numLayers: L, numHeads: H } = model.config;
    const ablated = new Float32Array(L * H).fill(1);
    ablated[2] = 0;
    ablated[L * H - 2] = 0.3;
    const reqs = many.slice(0, 6).map((ids, i) => ({ ids, headScale: i % 2 ? ablated : undefined }));
    const opts = { maxNewTokens: 10, stopIds: mixedStops() };
    const batched = await generate(model.session, reqs, { ...opts, batchSize: 2 });
    const single = await oneByOne(model, reqs, opts);
    expect(batched.map((r) => r.outputIds)).toEqual(single.map((r) => r.outputIds));
  });

  it('gives each request its own budget of new tokens', async () => {
    const budgets = [3, 14, 1, 9, 0, 5, 2];
    const got = await generate(model.session, many.map((ids, i) => ({ ids, maxNewTokens: budgets[i] })), { maxNewTokens: 50, batchSize: 3 });
    expect(got.map((r) => r.outputIds)).toEqual(free.map((r, i) => r.outputIds.slice(0, budgets[i])));
    expect(got.every((r) => r.finishReason === 'length')).toBe(true);
  });

  it('a resumed run (only the unfinished requests, each with its own seed) samples the same text', async () => {
    const sampling = { doSample: true, temperature: 1.2, topP: 0.9, topK: 0, repetitionPenalty: 1.05 };
    const reqs = many.map((ids, i) => ({ ids, seed: 1000 + i }));
    const opts = { maxNewTokens: 12, sampling, stopIds: mixedStops() };
    const whole = await generate(model.session, reqs, { ...opts, batchSize: 3 });
    const rest = [2, 5, 6];
    const resumed = await generate(model.session, rest.map((i) => reqs[i]!), { ...opts, batchSize: 2 });
    expect(resumed.map((r) => r.outputIds)).toEqual(rest.map((i) => whole[i]!.outputIds));
    const statics = await generate(model.session, reqs, { ...opts, batchSize: 4, batching: 'static' });
    expect(statics.map((r) => r.outputIds)).toEqual(whole.map((r) => r.outputIds));
  });
});

describe('live probe taps', () => {
  it('score every token as it is generated, equal to teacher forcing the finished transcript', async () => {
    const model = await tiny('qwen3');
    const { hiddenSize: d, numLayers: L } = model.config;
    const weights = Float32Array.from({ length: d }, (_, j) => Math.sin(j + 1) / 4);
    const probe = { residIndex: L, weights, bias: 0.1 };
    const seen: number[] = [];
    const live = new Map<string, number>();
    const results = await generate(model.session, prompts.slice(0, 3).map((ids) => ({ ids })), {
      maxNewTokens: 8,
      batchSize: 3,
      probes: [probe],
      onTap: (prompt, position) => prompt === 0 && seen.push(position),
      onScore: (prompt, position, scores) => live.set(`${prompt}:${position}`, scores[0]!),
    });
    // Streamed scores are the stored ones, delivered as each token's residual is computed.
    for (const r of results) {
      r.scores[0]!.forEach((v, t) => {
        if (!Number.isNaN(v)) expect(live.get(`${r.prompt}:${t}`)).toBe(v);
      });
    }
    for (const r of results) {
      const ids = [...r.promptIds, ...r.outputIds];
      const tf = await teacherForce(model.session, ids, { residLayers: [L] });
      const h = tf.resid.get(L)!;
      const scores = r.scores[0]!;
      expect(scores.length).toBe(ids.length);
      // Every position except the last sampled token (never fed back) has a live score.
      for (let t = 0; t < ids.length - 1; t++) {
        let dot = probe.bias;
        for (let j = 0; j < d; j++) dot += weights[j]! * h[t * d + j]!;
        expect(scores[t]!).toBeCloseTo(1 / (1 + Math.exp(-dot)), 5);
      }
      expect(Number.isNaN(scores[ids.length - 1])).toBe(true);
    }
    expect(seen).toEqual(Array.from({ length: prompts[0]!.length + 7 }, (_, t) => t));
    await model.session.release();
  });

  it('rejects a probe whose width does not match the model', async () => {
    const model = await tiny('llama');
    await expect(
      generate(model.session, [{ ids: [1, 2] }], { maxNewTokens: 2, probes: [{ residIndex: 1, weights: new Float32Array(3), bias: 0 }] }),
    ).rejects.toThrow(/width 3/);
    await model.session.release();
  });
});

describe('stops, cancellation and context', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await tiny('llama-gqa');
  });
  afterAll(async () => model?.session.release());

  it('stops on a stop string', async () => {
    const tok = model.tokenizer!;
    const [free] = await generate(model.session, [{ ids: prompts[0]! }], { maxNewTokens: 10 });
    const word = tok.decode([free!.outputIds[3]!]).trim();
    const [stopped] = await generate(model.session, [{ ids: prompts[0]! }], {
      maxNewTokens: 10,
      stopStrings: [word],
      decode: (ids) => tok.decode(ids),
    });
    expect(stopped!.finishReason).toBe('stop-string');
    expect(tok.decode(stopped!.outputIds)).toContain(word);
    expect(stopped!.outputIds.length).toBeLessThanOrEqual(4);
  });

  it('cancels within one decode step and returns what was generated', async () => {
    const controller = new AbortController();
    let tokens = 0;
    let atAbort = -1;
    const results = await generate(model.session, prompts.map((ids) => ({ ids })), {
      maxNewTokens: 50,
      batchSize: 4,
      signal: controller.signal,
      onToken: () => {
        tokens++;
        if (tokens === 10) {
          atAbort = tokens;
          controller.abort();
        }
      },
    });
    // The step in flight finishes (at most one token per row), then nothing more.
    expect(tokens - atAbort).toBeLessThanOrEqual(4);
    expect(results.every((r) => r.finishReason === 'cancelled')).toBe(true);
    expect(results.reduce((n, r) => n + r.outputIds.length, 0)).toBe(tokens);
  });

  it('finishes a prompt that does not fit the context at once, with its reason, and goes on with the others', async () => {
    const ctx = model.config.maxPositionEmbeddings;
    const long = Array.from({ length: ctx + 5 }, (_, i) => 10 + (i % 50));
    const full = Array.from({ length: ctx }, (_, i) => 10 + (i % 50)); // no room for one new token either
    const finished: number[] = [];
    const probe = { residIndex: 1, weights: new Float32Array(model.config.hiddenSize).fill(0.01), bias: 0 };
    const results = await generate(model.session, [{ ids: prompts[0]! }, { ids: long }, { ids: full }, { ids: prompts[1]! }], {
      maxNewTokens: 6,
      batchSize: 2,
      probes: [probe],
      onFinished: (r) => void finished.push(r.prompt),
    });
    for (const i of [1, 2]) {
      expect(results[i]!).toMatchObject({ finishReason: 'context', outputIds: [] });
      // No score was computed, at any prompt position.
      expect(results[i]!.scores[0]!.length).toBe(results[i]!.promptIds.length);
      expect(results[i]!.scores[0]!.every(Number.isNaN)).toBe(true);
      expect(results[i]!.skipped).toMatch(new RegExp(`${results[i]!.promptIds.length} tokens.*context is ${ctx}`));
    }
    const [alone0] = await generate(model.session, [{ ids: prompts[0]! }], { maxNewTokens: 6 });
    const [alone3] = await generate(model.session, [{ ids: prompts[1]! }], { maxNewTokens: 6 });
    expect(results[0]!.outputIds).toEqual(alone0!.outputIds);
    expect(results[3]!.outputIds).toEqual(alone3!.outputIds);
    expect(results[0]!.skipped).toBeNull();
    expect(finished.sort()).toEqual([0, 1, 2, 3]);
  });

  it('ends a sequence that reaches the context limit', async () => {
    const ctx = model.config.maxPositionEmbeddings;
    const ids = Array.from({ length: ctx - 3 }, (_, i) => 10 + (i % 50));
    const [r] = await generate(model.session, [{ ids }], { maxNewTokens: 10, prefillChunk: 128 });
    expect(r!.finishReason).toBe('context');
    expect(r!.outputIds.length).toBe(3);
  });
});

const storiesDir = sharedPath('models/stories260K-hf', 'stories260K generation tests');
describe.skipIf(!storiesDir)('stories260K generation', () => {
  let model: LoadedModel;
  let reqs: GenerationRequest[];
  beforeAll(async () => {
    model = await loadModel(storiesDir!, { cacheRoot: path.join(root, 'cache') });
    const tok = model.tokenizer!;
    const texts = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park. They saw', 'One day'];
    reqs = texts.map((t) => ({ ids: tok.encode(t, { addSpecialTokens: true }) }));
  });
  afterAll(async () => model?.session.release());

  it('greedy batched equals one-by-one on the real model, past a KV-cache settle', async () => {
    // 80 new tokens: every row's cache settles its recent positions into the past at least once (SETTLE_AFTER 64).
    const batched = await generate(model.session, reqs, { maxNewTokens: 80, batchSize: 4 });
    const single = await oneByOne(model, reqs, { maxNewTokens: 80 });
    expect(batched.map((r) => r.outputIds)).toEqual(single.map((r) => r.outputIds));
    expect(batched.every((r) => r.outputIds.length > 0)).toBe(true);
  });

  it('seeded sampling is reproducible on the real model, alone or in any batch', async () => {
    const sampling = { doSample: true, temperature: 0.8, topP: 0.9, topK: 0, repetitionPenalty: 1 };
    // Each sequence carries its own seed, so it samples the same text alone or in any batch.
    const seeded = reqs.map((r, i) => ({ ...r, seed: 100 + i }));
    const s1 = await generate(model.session, seeded, { maxNewTokens: 24, sampling, batchSize: 4 });
    const s2 = await oneByOne(model, seeded, { maxNewTokens: 24, sampling });
    expect(s1.map((r) => r.outputIds)).toEqual(s2.map((r) => r.outputIds));
  });

  it('cancels within one decode step on the real model', async () => {
    const controller = new AbortController();
    let tokens = 0;
    const results = await generate(model.session, reqs, {
      maxNewTokens: 100,
      batchSize: 4,
      signal: controller.signal,
      onToken: () => {
        if (++tokens === 12) controller.abort();
      },
    });
    expect(tokens - 12).toBeLessThanOrEqual(reqs.length);
    expect(results.every((r) => r.finishReason === 'cancelled')).toBe(true);
    expect(results.reduce((n, r) => n + r.outputIds.length, 0)).toBe(tokens);
  });

  it('skips a prompt longer than its 512-token context and generates the others', async () => {
    const ctx = model.config.maxPositionEmbeddings;
    const long = Array.from({ length: ctx + 1 }, (_, i) => 10 + (i % 400));
    const results = await generate(model.session, [reqs[0]!, { ids: long }], { maxNewTokens: 4 });
    expect(results[1]).toMatchObject({ finishReason: 'context', outputIds: [] });
    expect(results[1]!.skipped).toContain(String(ctx));
    expect(results[0]!.outputIds.length).toBeGreaterThan(0);
  });
});
