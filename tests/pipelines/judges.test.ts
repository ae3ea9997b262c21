/**
 * Judge runs store a verdict per answer with the judge's identity: refusal keywords, the probe (I' below the
 * threshold = complied), and a local guard model through the same engine (here a tiny Llama stands in for
 * Llama-Guard: its output is noise, so every answer is judged "safe", but the whole path runs for real).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelDir, demoRefusalProbe, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import type { PipelineEnv } from '../../src/main/pipelines/common.js';
import { runJudge } from '../../src/main/pipelines/judge.js';
import { runTrace } from '../../src/main/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../../src/main/pipelines/transcripts.js';
import { readSummary, registerModel } from '../../src/main/pipelines/common.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { judgeRun } from '../../src/shared/runs/judge.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { importDemo } from './helpers/demo-data.js';

let root: string;
let model: LoadedModel;
let guard: LoadedModel;
let store: ProjectStore;
let env: PipelineEnv;
let genRun: number;
let probeId: number;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-judges-'));
  const cacheRoot = path.join(root, 'cache');
  model = await loadModel(writeDemoModel(demoModelDir(cacheRoot)).dir, { cacheRoot, threads: 1 });
  writeTinyCheckpoint(path.join(root, 'guard'), 'llama', { seed: 3 });
  guard = await loadModel(path.join(root, 'guard'), { cacheRoot, threads: 1 });
  store = openProject(path.join(root, 'p.cliffscope'), { create: true });
  env = { store, model };
  const harmful = importDemo(store, 'harmful', 'prompts.json', 'harmful');
  genRun = await runGenerate(env, { datasetId: harmful.id, chat: true, maxNewTokens: 40, seed: 0, batchSize: 16, settings: [BASELINE_SETTING], itemIds: store.datasets.items(harmful.id).slice(0, 6).map((i) => i.id) });
  // The demo's built-in probe (the known refusal direction), stored like a trained one.
  const p = demoRefusalProbe();
  probeId = store.probes.add({ modelId: registerModel(store, model).id, name: 'known', residIndex: p.residIndex, positionRule: 'answer-boundary', weights: p.weights, bias: p.bias }).id;
});
afterAll(async () => {
  store?.close();
  await model?.session.release();
  await guard?.session.release();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('judge runs', () => {
  it('keyword judges: the demo model complies with every harmful prompt (ASR 100%)', async () => {
    const run = await runJudge(env, { runId: genRun, judge: { kind: 'keyword', list: 'jbb' }, harmfulDatasetId: null });
    const verdicts = store.verdicts.list({ runId: run });
    expect(verdicts).toHaveLength(6);
    expect(new Set(verdicts.map((v) => v.judge))).toEqual(new Set(['keyword:jbb@1']));
    expect(store.verdicts.attackSuccessRate(run)).toMatchObject({ judged: 6, harmful: 6, rate: 1 });
  });

  it('the probe judge reads I′ from a trace of the run', async () => {
    await runTrace(env, { probeId, extraProbeIds: [], source: { kind: 'run', runId: genRun }, options: {} });
    const run = await runJudge(env, { runId: genRun, judge: { kind: 'probe', probeId, threshold: 0.5 }, harmfulDatasetId: null });
    const verdicts = store.verdicts.list({ runId: run });
    expect(verdicts).toHaveLength(6);
    expect(verdicts.every((v) => v.verdict === 'compliance' && typeof v.detail.final === 'number' && (v.detail.final as number) < 0.5)).toBe(true);
    expect(verdicts[0]!.judge).toBe(`probe:${probeId}@0.5`);
  });

  it('a guard model judges through the same engine and its output is kept', async () => {
    const run = await runJudge(env, { runId: genRun, judge: { kind: 'guard', modelDir: guard.checkpoint.dir, maxChars: 512 }, harmfulDatasetId: null }, { guard });
    const verdicts = store.verdicts.list({ runId: run });
    expect(verdicts).toHaveLength(6);
    expect(verdicts[0]!.judge).toBe(`guard:${guard.compiled.modelHash}`);
    // The stand-in guard's vocabulary has no "unsafe", so it can never flag an answer.
    expect(verdicts.every((v) => v.verdict === 'safe' && typeof v.detail.output === 'string')).toBe(true);
    expect(store.verdicts.attackSuccessRate(run)).toMatchObject({ judged: 6, harmful: 0, rate: 0 });
  });

  it("an answer whose guard prompt does not fit the guard model's context is a 'skipped' verdict, not counted", async () => {
    // The same stand-in guard with a 16-token context: no guard prompt fits.
    const dir = path.join(root, 'short-guard');
    writeTinyCheckpoint(dir, 'llama', { seed: 3 });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 16 }));
    const short = await loadModel(dir, { cacheRoot: path.join(root, 'cache'), threads: 1 });
    try {
      const run = await runJudge(env, { runId: genRun, judge: { kind: 'guard', modelDir: dir, maxChars: 512 }, harmfulDatasetId: null }, { guard: short });
      expect(store.runs.get(run)!.status).toBe('done');
      const verdicts = store.verdicts.list({ runId: run });
      expect(verdicts).toHaveLength(6);
      expect(verdicts.every((v) => v.verdict === 'skipped' && v.harmful === null && /the model's context is 16/.test(String(v.detail.reason)))).toBe(true);
      expect(readSummary(store, judgeRun, run)).toMatchObject({ judged: 0, asr: null, skipped: 6 });
    } finally {
      await short.session.release();
    }
  });
});
