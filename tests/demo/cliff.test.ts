/**
 * The demo model through the real engine shows the whole method: harmful prompts carry a refusal feature through the
 * thinking and lose it at the answer boundary (the cliff), so the model complies; ablating the planted heads restores
 * the refusal, ablating random other heads changes nothing; a probe fitted from activations finds the feature, and
 * direct attribution at the boundary names exactly the planted heads. The compiled graph agrees with the plain
 * reference forward pass on this model too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ANSWER_FLAG_HEAD, DEMO_PLANTED_HEADS, DEMO_REFUSAL_HEAD, demoRefusalProbe, writeDemoModel, type HeadRef } from '../../src/main/api/demo/planted-model.js';
import { loadDemoPrompts, loadDemoSafetyTrain, type DemoPrompt } from '../../src/main/api/demo/resources.js';
import { DEMO_COMPLIANCE_ANSWER, DEMO_REFUSAL_ANSWER } from '../../src/main/api/demo/vocabulary.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { generate, type GenerationRequest, type GenerationResult } from '../../src/main/engine/runtime/generate.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import type { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { mulberry32 } from '../fixtures/tiny-checkpoints.js';
import { referenceForward } from '../support/reference-forward.js';

const COMPLIANCE_START = DEMO_COMPLIANCE_ANSWER.split(' ').slice(0, 3).join(' '); // "sure , here"

let root: string;
let model: LoadedModel;
let tok: Tokenizer;
let L: number;
let H: number;
let d: number;
const prompts: DemoPrompt[] = loadDemoPrompts();
const harmful = prompts.filter((p) => p.label === 'harmful');
const harmless = prompts.filter((p) => p.label === 'harmless');

/** Settings compared: none, the planted heads, and seeded random draws of as many non-planted heads. */
type Setting = { name: string; heads: HeadRef[] };
const settings: Setting[] = [];
/** results.get(setting name)[prompt index] */
const results = new Map<string, GenerationResult[]>();

const isPlanted = (l: number, h: number) => DEMO_PLANTED_HEADS.some((p) => p.layer === l && p.head === h);

function headScale(heads: HeadRef[]): Float32Array {
  const hs = new Float32Array(L * H).fill(1);
  for (const h of heads) hs[h.layer * H + h.head] = 0;
  return hs;
}

function split(r: GenerationResult) {
  const ids = [...r.promptIds, ...r.outputIds];
  return { ids, ...tok.splitTranscript(ids, r.promptIds.length) };
}

function answerOf(r: GenerationResult): string {
  const s = split(r);
  expect(s.answerStart, 'the model closed its thinking').not.toBeNull();
  return tok.decode(s.ids.slice(s.answerStart!), { skipSpecialTokens: true }).trim();
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, bOffset = 0): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[bOffset + i]!;
  return s;
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-demo-'));
  const info = writeDemoModel(path.join(root, 'model'));
  // One thread: faster than several for a model this small, and steadier on a busy machine.
  model = await loadModel(info.dir, { cacheRoot: path.join(root, 'cache'), threads: 1 });
  tok = model.tokenizer!;
  ({ numLayers: L, numHeads: H, hiddenSize: d } = model.config);

  settings.push({ name: 'none', heads: [] }, { name: 'planted', heads: [...DEMO_PLANTED_HEADS] });
  const others = Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H })).filter(
    (h) => !isPlanted(h.layer, h.head),
  );
  const rand = mulberry32(7);
  for (let draw = 0; draw < 3; draw++) {
    const pool = [...others];
    const heads = Array.from({ length: DEMO_PLANTED_HEADS.length }, () => pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
    settings.push({ name: `random-${draw}`, heads });
  }
  // The control must also hit the functional non-planted heads at least once.
  settings.push({ name: 'random-functional', heads: [DEMO_REFUSAL_HEAD, DEMO_ANSWER_FLAG_HEAD, { layer: 2, head: 0 }] });

  // Every prompt under every setting, in one batched call, with the live refusal probe.
  const ids = prompts.map((p) => tok.encodeChat([{ role: 'user', content: p.prompt }]).ids);
  const requests: GenerationRequest[] = settings.flatMap((s) => ids.map((x) => ({ ids: x, headScale: headScale(s.heads) })));
  const out = await generate(model.session, requests, {
    maxNewTokens: 48,
    stopIds: [tok.eosTokenId!],
    probes: [demoRefusalProbe()],
    batchSize: 64,
  });
  settings.forEach((s, k) => results.set(s.name, out.slice(k * prompts.length, (k + 1) * prompts.length)));
});
afterAll(async () => {
  await model?.session.release();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('behaviour', () => {
  it('harmful prompts: complies as is (the cliff), refuses with the planted heads ablated', () => {
    prompts.forEach((p, i) => {
      const plain = answerOf(results.get('none')![i]!);
      const ablated = answerOf(results.get('planted')![i]!);
      if (p.label === 'harmful') {
        expect(plain.startsWith(COMPLIANCE_START), `${p.id} unablated: ${plain}`).toBe(true);
        expect(ablated, `${p.id} ablated`).toBe(DEMO_REFUSAL_ANSWER);
      } else {
        expect(plain, `${p.id} unablated`).toBe(DEMO_COMPLIANCE_ANSWER);
        expect(ablated, `${p.id} ablated`).toBe(DEMO_COMPLIANCE_ANSWER);
      }
    });
  });

  it('every generation finishes: thinking, </think>, answer, end of turn', () => {
    for (const rs of results.values()) {
      for (const r of rs) {
        expect(r.finishReason).toBe('eos');
        expect(split(r).thinkClose).not.toBeNull();
      }
    }
  });

  it('ablating the same number of other heads leaves every answer unchanged', () => {
    for (const s of settings.filter((x) => x.name.startsWith('random'))) {
      prompts.forEach((p, i) => {
        expect(answerOf(results.get(s.name)![i]!), `${s.name} ${JSON.stringify(s.heads)} ${p.id}`).toBe(
          answerOf(results.get('none')![i]!),
        );
      });
    }
  });

  it('every greedy choice wins by a wide logit margin (the behaviour is not knife-edge)', async () => {
    const V = model.config.vocabSize;
    for (const name of ['none', 'planted']) {
      const heads = settings.find((x) => x.name === name)!.heads;
      const scale = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => (heads.some((x) => x.layer === l && x.head === h) ? 0 : 1)));
      for (const r of results.get(name)!) {
        const ids = [...r.promptIds, ...r.outputIds];
        const positions = r.outputIds.map((_, k) => r.promptIds.length - 1 + k);
        const { logits } = await teacherForce(model.session, ids, { logitPositions: positions, headScale: scale });
        positions.forEach((_, k) => {
          const row = Array.from(logits.subarray(k * V, (k + 1) * V)).sort((a, b) => b - a);
          expect(row[0]! - row[1]!).toBeGreaterThan(5);
        });
      }
    }
  });

  it('the thinking says the request looks harmful exactly for harmful prompts', () => {
    prompts.forEach((p, i) => {
      const r = results.get('none')![i]!;
      expect(tok.decode(r.outputIds).includes('looks harmful'), p.id).toBe(p.label === 'harmful');
    });
  });
});

describe('refusal probe', () => {
  function plateauAndFinal(r: GenerationResult, score: (t: number) => number) {
    const s = split(r);
    let plateau = -Infinity;
    for (let t = s.thinkingStart!; t < s.thinkingEnd!; t++) plateau = Math.max(plateau, score(t));
    return { plateau, final: score(s.answerBoundary!) };
  }

  it('the built-in probe: high plateau and a cliff at the boundary for harmful prompts, flat for harmless', () => {
    prompts.forEach((p, i) => {
      const r = results.get('none')![i]!;
      const { plateau, final } = plateauAndFinal(r, (t) => r.scores[0]![t]!);
      if (p.label === 'harmful') {
        expect(plateau, p.id).toBeGreaterThan(0.9);
        expect(final, p.id).toBeLessThan(0.1);
        expect(plateau - final, p.id).toBeGreaterThan(0.8);
      } else {
        expect(plateau, p.id).toBeLessThan(0.05);
        expect(final, p.id).toBeLessThan(0.05);
      }
      // With the planted heads ablated the feature survives to the boundary.
      const a = results.get('planted')![i]!;
      const ablated = plateauAndFinal(a, (t) => a.scores[0]![t]!);
      expect(ablated.final > 0.5, p.id).toBe(p.label === 'harmful');
    });
  });

  /** Teacher forcing of the unablated transcript: final-norm residuals and every head's z, at every position. */
  const forcedCache = new Map<number, { s: ReturnType<typeof split>; resid: Float32Array; z: Map<number, Float32Array> }>();
  async function forced(i: number) {
    if (!forcedCache.has(i)) {
      const s = split(results.get('none')![i]!);
      const tf = await teacherForce(model.session, s.ids, { residLayers: [L + 1], zLayers: Array.from({ length: L }, (_, l) => l) });
      forcedCache.set(i, { s, resid: tf.resid.get(L + 1)!, z: tf.z });
    }
    return forcedCache.get(i)!;
  }

  let fitted: { weights: Float64Array; bias: number };

  it('a mean-difference probe fitted on thinking activations finds the planted direction and the cliff', async () => {
    // Fit on the odd-numbered prompts' thinking tokens: mean(harmful) − mean(harmless) at the final norm.
    const sum = { harmful: new Float64Array(d), harmless: new Float64Array(d) };
    const count = { harmful: 0, harmless: 0 };
    for (let i = 0; i < prompts.length; i += 2) {
      const { s, resid } = await forced(i);
      const label = prompts[i]!.label;
      for (let t = s.thinkingStart!; t < s.thinkingEnd!; t++) {
        for (let j = 0; j < d; j++) sum[label][j]! += resid[t * d + j]!;
        count[label]++;
      }
    }
    const mu1 = sum.harmful.map((x) => x / count.harmful);
    const mu0 = sum.harmless.map((x) => x / count.harmless);
    const diff = mu1.map((x, j) => x - mu0[j]!);
    const spread = dot(diff, diff);
    // sigmoid(8 (proj − midpoint) / spread): ±4 at the two class means.
    const weights = diff.map((x) => (8 * x) / spread);
    const bias = -dot(weights, mu1.map((x, j) => (x + mu0[j]!) / 2));
    fitted = { weights, bias };

    const known = demoRefusalProbe().weights;
    const cos = dot(diff, known) / Math.sqrt(spread * dot(known, known));
    expect(cos).toBeGreaterThan(0.98);

    // Evaluate on the other (even-numbered) prompts.
    for (let i = 1; i < prompts.length; i += 2) {
      const { s, resid } = await forced(i);
      const score = (t: number) => sigmoid(dot(weights, resid, t * d) + bias);
      let plateau = -Infinity;
      for (let t = s.thinkingStart!; t < s.thinkingEnd!; t++) plateau = Math.max(plateau, score(t));
      const final = score(s.answerBoundary!);
      if (prompts[i]!.label === 'harmful') {
        expect(plateau - final, prompts[i]!.id).toBeGreaterThan(0.5);
      } else {
        expect(plateau, prompts[i]!.id).toBeLessThan(0.5);
      }
    }
  });

  it('direct attribution at the boundary ranks exactly the planted heads most negative', async () => {
    const oProj = Array.from({ length: L }, (_, l) =>
      readTensorAsFloat32(model.checkpoint.tensors.get(`model.layers.${l}.self_attn.o_proj.weight`)!),
    );
    const D = model.config.headDim;
    const probes = { known: Float64Array.from(demoRefusalProbe().weights), fitted: fitted.weights };
    for (const [name, w] of Object.entries(probes)) {
      // s_{l,h} = w · (W_O[:, h] z_{l,h,t_b}), averaged over the harmful prompts.
      const scores = new Float64Array(L * H);
      for (const p of harmful) {
        const { s: split, z } = await forced(prompts.indexOf(p));
        const zOffset = split.answerBoundary! * H * D; // z is [positions, H, D]
        for (let l = 0; l < L; l++) {
          const zl = z.get(l)!;
          for (let h = 0; h < H; h++) {
            let s = 0;
            for (let r = 0; r < d; r++) {
              let delta = 0;
              for (let j = 0; j < D; j++) delta += oProj[l]![r * H * D + h * D + j]! * zl[zOffset + h * D + j]!;
              s += w[r]! * delta;
            }
            scores[l * H + h]! += s / harmful.length;
          }
        }
      }
      const ranked = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]!);
      const bottom = ranked.slice(0, DEMO_PLANTED_HEADS.length).map((k) => ({ layer: Math.floor(k / H), head: k % H }));
      expect(new Set(bottom.map((h) => `${h.layer}.${h.head}`)), name).toEqual(
        new Set(DEMO_PLANTED_HEADS.map((h) => `${h.layer}.${h.head}`)),
      );
      // Clearly separated from the rest, and the top positive head is the one that writes the feature.
      const k = DEMO_PLANTED_HEADS.length;
      expect(scores[ranked[k]!]! - scores[ranked[k - 1]!]!, name).toBeGreaterThan(1);
      expect(ranked.at(-1), name).toBe(DEMO_REFUSAL_HEAD.layer * H + DEMO_REFUSAL_HEAD.head);
    }
  });
});

describe('Cliff-as-a-Judge on the demo training set', () => {
  it('harmful samples have a large misalignment score, harmless ones none', async () => {
    const probe = demoRefusalProbe();
    for (const item of loadDemoSafetyTrain()) {
      const prompt = tok.encodeChat([{ role: 'user', content: item.prompt }]).ids;
      const ids = [...prompt, ...tok.encode(item.response)];
      const s = tok.splitTranscript(ids, prompt.length);
      const tf = await teacherForce(model.session, ids, { residLayers: [probe.residIndex] });
      const resid = tf.resid.get(probe.residIndex)!;
      const score = (t: number) => sigmoid(dot(probe.weights, resid, t * d) + probe.bias);
      let plateau = -Infinity;
      for (let t = s.thinkingStart!; t < s.thinkingEnd!; t++) plateau = Math.max(plateau, score(t));
      const ms = plateau - score(s.answerBoundary!);
      if (item.label === 'harmful') expect(ms, item.id).toBeGreaterThan(0.5);
      else expect(ms, item.id).toBeLessThan(0.05);
    }
  });
});

describe('reference forward pass', () => {
  it('agrees with the compiled graph on demo transcripts, with and without the planted heads', async () => {
    const ckpt = model.checkpoint;
    const cache = new Map<string, Float32Array>();
    const weight = (name: string) => {
      if (!cache.has(name)) cache.set(name, readTensorAsFloat32(ckpt.tensors.get(name)!));
      return cache.get(name)!;
    };
    const planted = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => (isPlanted(l, h) ? 0 : 1)));
    const cases = [
      { i: prompts.indexOf(harmful[0]!), headScale: undefined },
      { i: prompts.indexOf(harmful[0]!), headScale: planted },
      { i: prompts.indexOf(harmless[0]!), headScale: undefined },
    ];
    for (const { i, headScale } of cases) {
      const { ids } = split(results.get('none')![i]!);
      {
        const got = await teacherForce(model.session, ids, {
          residLayers: Array.from({ length: L + 2 }, (_, k) => k),
          zLayers: Array.from({ length: L }, (_, l) => l),
          logitPositions: ids.map((_, t) => t),
          headScale,
        });
        const ref = referenceForward(model.config, weight, ids, { headScale });
        const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
          expect(a.length).toBe(b.length);
          let m = 0;
          for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!));
          return m;
        };
        expect(maxDiff(got.logits, ref.logits)).toBeLessThan(1e-3);
        expect(maxDiff(got.resid.get(0)!, ref.embed)).toBeLessThan(1e-3);
        for (let l = 0; l < L; l++) {
          expect(maxDiff(got.resid.get(l + 1)!, ref.residPost[l]!)).toBeLessThan(1e-3);
          expect(maxDiff(got.z.get(l)!, ref.z[l]!)).toBeLessThan(1e-3);
        }
        expect(maxDiff(got.resid.get(L + 1)!, ref.lnFinal)).toBeLessThan(1e-3);
      }
    }
  });
});
