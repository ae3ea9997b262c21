/**
 * The checks behind `npm run gpu-check`: the model compiled for the provider under test (float16 by default) against
 * the CPU float32 graph, on the demo model and stories260K.
 *
 *  - parity: logits and every tap (residual stack, hook_z) on the CPU's own greedy transcripts, relative to the
 *    reference's scale;
 *  - greedy agreement: teacher-forced argmax at every position, and free-running greedy decoding, agree with the CPU
 *    except where the CPU's top two logits are a near-tie;
 *  - head ablation: the logit change from zeroing heads matches the CPU's;
 *  - batched = single: each prompt decoded in a batch gives what it gives alone, on the provider;
 *  - the demo end to end: the ranked heads are the planted ones and the ablation changes ASR exactly as on the CPU.
 *
 * On the CPU (`--provider cpu --activations float16`) the same checks compare the float16 graph with the float32 one,
 * which is how they are tested without a GPU.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DEMO_PLANTED_HEADS, demoModelDir, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { loadDemoPrompts } from '../../src/main/api/demo/resources.js';
import { runDemo, type DemoReport } from '../../src/main/api/demo/run-demo.js';
import { nvidiaGpu } from '../../src/main/engine/runtime/cuda-provider.js';
import { generate } from '../../src/main/engine/runtime/generate.js';
import { ablationScale } from '../../src/main/engine/runtime/head-scale.js';
import { type LoadedModel, loadModel } from '../../src/main/engine/runtime/model.js';
import { promptIds } from '../../src/main/engine/runtime/prompt.js';
import type { ProviderChoice } from '../../src/main/engine/runtime/providers.js';
import { teacherForce, type TeacherForceResult } from '../../src/main/engine/runtime/teacher-force.js';
import { headLabel, type HeadRef } from '../../src/shared/heads.js';
import { argmaxAgreement, type Check, check, firstDivergence, maxAbs, maxAbsDiff, relativeDiff, rowTop } from './compare.js';

export interface GpuCheckOptions {
  /** The provider under test; the reference is always the CPU float32 graph. */
  provider: ProviderChoice;
  activations: 'float16' | 'float32';
  /** stories260K (Hugging Face layout); null skips it with a note. */
  storiesDir: string | null;
  cacheRoot: string;
  /** Scratch folder for the demo projects. */
  workDir: string;
  /** Run the demo pipeline on both (a few seconds each on the CPU). */
  demoPipeline: boolean;
  log?: (line: string) => void;
}

export interface GpuCheckReport {
  providerRequested: ProviderChoice;
  /** Where the tested model actually ran, and why auto skipped better providers. */
  provider: string;
  providerNotes: string[];
  activations: string;
  onnxruntime: string | null;
  /** nvidia-smi's name, memory and driver of the GPU, where there is one. */
  gpu: string | null;
  node: string;
  platform: string;
  /** Relative tolerance of logits and taps for this compute type (max |Δ| ÷ max |reference|). */
  tolerance: number;
  checks: Check[];
  notes: string[];
  pass: boolean;
  seconds: number;
}

/**
 * Logits and taps may differ from the CPU float32 graph by this fraction of the reference's largest value: float16
 * rounds each op to ~5e-4 and a model chains dozens, and CUDA's float32 GEMMs may run in TF32 (float16's mantissa).
 */
export const TOLERANCE = 2e-2;

interface ModelUnderCheck {
  name: string;
  dir: string;
  prompts: string[];
  chat: boolean;
  newTokens: number;
  ablate: readonly HeadRef[];
}

function encodeAll(model: LoadedModel, m: ModelUnderCheck): number[][] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`${m.dir} has no tokenizer.json`);
  return m.prompts.map((p) => promptIds(tok, p, { chat: m.chat }));
}

async function greedy(model: LoadedModel, prompts: number[][], newTokens: number, batchSize: number): Promise<number[][]> {
  const out = await generate(model.session, prompts.map((ids) => ({ ids })), { maxNewTokens: newTokens, batchSize });
  return out.map((r) => r.outputIds);
}

async function forced(model: LoadedModel, ids: number[], headScale?: number[][]): Promise<TeacherForceResult> {
  const L = model.config.numLayers;
  return teacherForce(model.session, ids, {
    residLayers: Array.from({ length: L + 2 }, (_, i) => i),
    zLayers: Array.from({ length: L }, (_, i) => i),
    logitPositions: ids.map((_, t) => t),
    headScale,
  });
}

async function checkModel(m: ModelUnderCheck, opts: GpuCheckOptions, tol: number, log: (l: string) => void): Promise<{ checks: Check[]; provider: string; notes: string[] }> {
  const test = await loadModel(m.dir, { provider: opts.provider, precision: { activations: opts.activations }, cacheRoot: opts.cacheRoot });
  const ref = await loadModel(m.dir, { provider: 'cpu', cacheRoot: opts.cacheRoot });
  try {
    log(`${m.name}: testing ${test.session.provider} ${test.compiled.options.activations} against cpu float32`);
    const V = ref.config.vocabSize;
    const prompts = encodeAll(ref, m);
    const refOut = await greedy(ref, prompts, m.newTokens, prompts.length);
    const sequences = prompts.map((p, i) => [...p, ...refOut[i]!]);

    // 1–2. Parity and greedy agreement under teacher forcing, on the CPU's own transcripts.
    let logitsRel = 0;
    let residRel = 0;
    let zRel = 0;
    let worstResid = '';
    let worstZ = '';
    let scale = 0;
    const agreement = { positions: 0, agree: 0, real: 0, worstMargin: 0 };
    const refLogits: Float32Array[] = [];
    const testLogits: Float32Array[] = [];
    for (const seq of sequences) {
      const a = await forced(test, seq);
      const b = await forced(ref, seq);
      refLogits.push(b.logits);
      testLogits.push(a.logits);
      scale = Math.max(scale, maxAbs(b.logits));
      logitsRel = Math.max(logitsRel, relativeDiff(a.logits, b.logits));
      for (const [k, v] of b.resid) {
        const r = relativeDiff(a.resid.get(k)!, v);
        if (!(r <= residRel)) [residRel, worstResid] = [r, `resid stack entry ${k}`];
      }
      for (const [k, v] of b.z) {
        const r = relativeDiff(a.z.get(k)!, v);
        if (!(r <= zRel)) [zRel, worstZ] = [r, `blocks.${k}.attn.hook_z`];
      }
    }
    const nearTie = 2 * tol * scale;
    for (let i = 0; i < sequences.length; i++) {
      const g = argmaxAgreement(testLogits[i]!, refLogits[i]!, V, nearTie);
      agreement.positions += g.positions;
      agreement.agree += g.agree;
      agreement.real += g.realDisagreements;
      for (const d of g.disagreements) agreement.worstMargin = Math.max(agreement.worstMargin, d.referenceMargin);
    }

    // Free-running greedy decoding on the provider, batched as the reference was.
    const testOut = await greedy(test, prompts, m.newTokens, prompts.length);
    let greedyReal = 0;
    let identical = 0;
    const divergences: string[] = [];
    testOut.forEach((out, i) => {
      const at = firstDivergence(out, refOut[i]!);
      if (at === null) {
        identical++;
        return;
      }
      // The reference's margin where the provider chose differently (logits at the position before the token).
      const margin = at < refOut[i]!.length ? rowTop(refLogits[i]!, V, prompts[i]!.length + at - 1).margin : Infinity;
      divergences.push(`prompt ${i} at token ${at} (CPU margin ${margin.toFixed(3)})`);
      if (margin > nearTie) greedyReal++;
    });

    // 3. Head ablation: the change in logits from zeroing heads, on the provider vs on the CPU.
    const hs = ablationScale(m.ablate, 0, ref.config.numLayers, ref.config.numHeads);
    let ablationErr = 0;
    let ablationEffect = 0;
    let ablatedReal = 0;
    for (let i = 0; i < sequences.length; i++) {
      const a = (await forced(test, sequences[i]!, hs)).logits;
      const b = (await forced(ref, sequences[i]!, hs)).logits;
      const deltaTest = a.map((v, j) => v - testLogits[i]![j]!);
      const deltaRef = b.map((v, j) => v - refLogits[i]![j]!);
      ablationErr = Math.max(ablationErr, maxAbsDiff(deltaTest, deltaRef));
      ablationEffect = Math.max(ablationEffect, maxAbs(deltaRef));
      ablatedReal += argmaxAgreement(a, b, V, nearTie).realDisagreements;
    }

    // 4. Batched = single on the provider.
    let batchReal = 0;
    let batchIdentical = 0;
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await greedy(test, [prompts[i]!], m.newTokens, 1);
      const at = firstDivergence(alone!, testOut[i]!);
      if (at === null) {
        batchIdentical++;
        continue;
      }
      const seq = [...prompts[i]!, ...alone!];
      const logits = (await teacherForce(test.session, seq, { logitPositions: [prompts[i]!.length + at - 1] })).logits;
      if (rowTop(logits, V, 0).margin > nearTie) batchReal++;
    }

    const scaleNote = `reference max |logit| ${scale.toFixed(2)}; near-tie = ${nearTie.toFixed(3)} logits`;
    const heads = m.ablate.map(headLabel).join(', ');
    const checks = [
      check('logits', m.name, 'teacher-forced logits within tolerance of the CPU float32 graph (max |Δ| ÷ max |ref|)', logitsRel, '<=', tol, scaleNote),
      check('resid-taps', m.name, 'every residual-stack tap within tolerance', residRel, '<=', tol, `worst: ${worstResid}`),
      check('z-taps', m.name, 'every hook_z tap within tolerance', zRel, '<=', tol, `worst: ${worstZ}`),
      check(
        'greedy-agreement',
        m.name,
        'teacher-forced argmax equals the CPU’s at every position but near-ties (count of real disagreements)',
        agreement.real,
        '==',
        0,
        `${agreement.agree}/${agreement.positions} positions agree; largest CPU margin where they differ ${agreement.worstMargin.toFixed(3)}`,
      ),
      check(
        'greedy-decoding',
        m.name,
        'free-running greedy decoding matches the CPU’s tokens, diverging only at near-ties (count of real divergences)',
        greedyReal,
        '==',
        0,
        `${identical}/${prompts.length} transcripts identical${divergences.length ? `; ${divergences.join('; ')}` : ''}`,
      ),
      check(
        'head-ablation',
        m.name,
        `the logit change from zeroing ${heads} matches the CPU’s within twice the logit tolerance`,
        ablationErr,
        '<=',
        2 * tol * scale,
        `largest change on the CPU ${ablationEffect.toFixed(3)}; ${ablatedReal} real argmax disagreements with the heads ablated`,
      ),
      check('head-ablation-argmax', m.name, 'argmax with the heads ablated equals the CPU’s but near-ties (real disagreements)', ablatedReal, '==', 0),
      check(
        'batched-equals-single',
        m.name,
        `each prompt decoded in a batch of ${prompts.length} gives what it gives alone on ${test.session.provider} (real divergences)`,
        batchReal,
        '==',
        0,
        `${batchIdentical}/${prompts.length} identical`,
      ),
    ];
    for (const c of checks) log(`  ${c.pass ? 'PASS' : 'FAIL'} ${m.name} ${c.name}: ${c.measured} ${c.comparison} ${c.threshold}${c.detail ? ` — ${c.detail}` : ''}`);
    return { checks, provider: test.session.provider, notes: test.session.providerNotes };
  } finally {
    await test.session.release();
    await ref.session.release();
  }
}

/** The planted heads recovered, and the ablation's ASR change, on the provider as on the CPU. */
function compareDemos(test: DemoReport, ref: DemoReport, harmfulPrompts: number): Check[] {
  const cell = (r: DemoReport, key: string) => r.ablation.find((c) => c.key === key)?.asr ?? null;
  const change = (r: DemoReport) => {
    const base = cell(r, 'baseline');
    const planted = cell(r, 'planted:k3:g0');
    return base !== null && planted !== null ? base - planted : null;
  };
  const cellDiffs = ref.ablation.map((c) => Math.abs((cell(test, c.key) ?? NaN) - (c.asr ?? NaN)));
  const ranked = (r: DemoReport) => r.heads.ranked.slice(0, 3).map(headLabel).join(', ');
  return [
    check('planted-heads', 'demo', 'the heads ranked first at the cliff are the planted ones, on both (1 = yes)', test.heads.topMatchesPlanted && ref.heads.topMatchesPlanted ? 1 : 0, '==', 1,
      `${test.provider}: ${ranked(test)}; cpu: ${ranked(ref)}`),
    check('asr-change', 'demo', 'ablating the planted heads changes ASR by exactly what it does on the CPU (|Δ change|)',
      change(test) !== null && change(ref) !== null ? Math.abs(change(test)! - change(ref)!) : null, '==', 0,
      `${test.provider}: ${cell(test, 'baseline')} → ${cell(test, 'planted:k3:g0')}; cpu: ${cell(ref, 'baseline')} → ${cell(ref, 'planted:k3:g0')}`),
    check('asr-cells', 'demo', 'every cell of the ablation sweep has the CPU’s ASR within one prompt (max |Δ ASR|)', Math.max(...cellDiffs), '<=', 1 / harmfulPrompts + 1e-9,
      `${ref.ablation.length} cells, ${harmfulPrompts} harmful prompts`),
  ];
}

export async function runGpuCheck(opts: GpuCheckOptions): Promise<GpuCheckReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const tol = TOLERANCE;
  const notes: string[] = [];
  const checks: Check[] = [];
  fs.mkdirSync(opts.workDir, { recursive: true });

  const demo = writeDemoModel(demoModelDir(opts.cacheRoot));
  const demoPrompts = loadDemoPrompts();
  const models: ModelUnderCheck[] = [
    {
      name: 'demo',
      dir: demo.dir,
      // Harmful prompts show the cliff (and the planted heads act on them); harmless ones the plain path.
      prompts: [...demoPrompts.filter((p) => p.label === 'harmful').slice(0, 4), ...demoPrompts.filter((p) => p.label === 'harmless').slice(0, 2)].map((p) => p.prompt),
      chat: true,
      newTokens: 40,
      ablate: DEMO_PLANTED_HEADS,
    },
  ];
  if (opts.storiesDir) {
    models.push({
      name: 'stories260K',
      dir: opts.storiesDir,
      prompts: ['Once upon a time', 'The little dog', 'One day, Lily went to the park', 'Tom had a big red ball'],
      chat: false,
      newTokens: 48,
      ablate: [{ layer: 0, head: 1 }, { layer: 2, head: 3 }, { layer: 4, head: 0 }],
    });
  } else {
    notes.push('stories260K not found: its checks were skipped (pass --stories DIR)');
  }

  let provider = 'unknown';
  let providerNotes: string[] = [];
  for (const m of models) {
    const r = await checkModel(m, opts, tol, log);
    provider = r.provider;
    providerNotes = r.notes;
    checks.push(...r.checks);
  }

  if (opts.demoPipeline) {
    log('demo pipeline: probe → transcripts → trace → heads → ablation on the provider, then on the CPU');
    const run = (name: string, provider: ProviderChoice, activations?: 'float16' | 'float32') => {
      const projectFile = path.join(opts.workDir, `${name}.cliffscope`);
      fs.rmSync(projectFile, { force: true });
      return runDemo({ projectFile, cacheRoot: opts.cacheRoot, provider, activations });
    };
    const test = await run('gpu-check-test', opts.provider, opts.activations);
    const ref = await run('gpu-check-cpu', 'cpu', 'float32');
    const demoChecks = compareDemos(test, ref, demoPrompts.filter((p) => p.label === 'harmful').length);
    for (const c of demoChecks) log(`  ${c.pass ? 'PASS' : 'FAIL'} demo ${c.name}: ${c.measured} ${c.comparison} ${c.threshold} — ${c.detail}`);
    checks.push(...demoChecks);
  }
  if (provider === 'cpu' && opts.provider !== 'cpu') notes.push(`${opts.provider} did not load; everything ran on the CPU (see providerNotes)`);

  return {
    providerRequested: opts.provider,
    provider,
    providerNotes,
    activations: opts.activations,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common ?? null,
    gpu: nvidiaGpu(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    tolerance: tol,
    checks,
    notes,
    pass: checks.every((c) => c.pass),
    seconds: (performance.now() - t0) / 1000,
  };
}
