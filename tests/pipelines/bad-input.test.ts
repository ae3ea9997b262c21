/**
 * Bad input to the pipelines fails fast with a clear error and leaves no half-started run behind: a probe trained
 * on another model (wrong width), ids that do not exist, a run of the wrong kind, a selection dataset without
 * responses. A new run that fails these checks is never created; nothing is ever left 'running'.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelDir, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { CliffscopeError, type ErrorCode } from '../../src/main/engine/errors.js';
import { runAblation, type AblateRunConfig } from '../../src/main/pipelines/ablate.js';
import type { PipelineEnv } from '../../src/main/pipelines/common.js';
import { runHeads } from '../../src/main/pipelines/heads.js';
import { runJudge } from '../../src/main/pipelines/judge.js';
import { runProbeTraining, type ProbeRunConfig } from '../../src/main/pipelines/probe.js';
import { runSelect } from '../../src/main/pipelines/select.js';
import { runTrace } from '../../src/main/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../../src/main/pipelines/transcripts.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import type { DatasetRow } from '../../src/main/store/types.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { importDemo } from './helpers/demo-data.js';

let root: string;
let demo: LoadedModel;
let tiny: LoadedModel;
let store: ProjectStore;
let harmful: DatasetRow;
let harmless: DatasetRow;
let train: DatasetRow;
let probeId: number;
let genRun: number;
let headsRun: number;

const demoEnv = (): PipelineEnv => ({ store, model: demo });
const tinyEnv = (): PipelineEnv => ({ store, model: tiny });

/** `fn` fails with `code` and a message matching every pattern, without adding a run or leaving one running. */
async function expectRefused(fn: () => Promise<unknown>, code: ErrorCode, ...patterns: RegExp[]): Promise<CliffscopeError> {
  const before = store.runs.list().map((r) => `${r.id}:${r.status}`);
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'it should have thrown').toBeInstanceOf(CliffscopeError);
  const e = error as CliffscopeError;
  expect(e.code, e.message).toBe(code);
  for (const p of patterns) expect(e.describe()).toMatch(p);
  expect(store.runs.list().map((r) => `${r.id}:${r.status}`)).toEqual(before);
  expect(store.runs.list({ status: 'running' })).toEqual([]);
  return e;
}

const probeConfig = (over: Partial<ProbeRunConfig> = {}): ProbeRunConfig => ({
  name: 'refusal',
  positive: { kind: 'dataset', datasetId: harmful.id, chat: true },
  negative: { kind: 'dataset', datasetId: harmless.id, chat: true },
  positionRule: 'last-prompt-token',
  residIndices: [],
  labelRule: 'all',
  train: { preset: 'paper-adam', lr: 0.2, epochs: 30, batchSize: 16, selectBy: 'val-loss' },
  ...over,
});

const ablateConfig = (over: Partial<AblateRunConfig> = {}): AblateRunConfig => ({
  headsRunId: headsRun,
  probeId,
  harmfulDatasetId: harmful.id,
  harmlessDatasetId: harmless.id,
  fractions: [0.1],
  gammas: [0],
  randomControl: false,
  randomSeed: 0,
  headSets: [],
  judges: [{ kind: 'keyword', list: 'jbb' }],
  randomSeeds: 1,
  chat: true,
  maxNewTokens: 40,
  batchSize: 8,
  seed: 0,
  ...over,
});

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-pipelines-bad-'));
  const cacheRoot = path.join(root, 'cache');
  demo = await loadModel(writeDemoModel(demoModelDir(cacheRoot)).dir, { cacheRoot, threads: 1 });
  tiny = await loadModel(writeTinyCheckpoint(path.join(root, 'tiny'), 'llama').dir, { cacheRoot, threads: 1 });
  store = openProject(path.join(root, 'bad.cliffscope'), { create: true });
  harmful = importDemo(store, 'harmful', 'prompts.json', 'harmful');
  harmless = importDemo(store, 'harmless', 'prompts.json', 'harmless');
  train = importDemo(store, 'train', 'safety-train.json');
  probeId = (await runProbeTraining(demoEnv(), probeConfig())).bestProbeId;
  genRun = await runGenerate(demoEnv(), { datasetId: harmful.id, chat: true, maxNewTokens: 40, seed: 0, batchSize: 16, settings: [BASELINE_SETTING] });
  headsRun = await runHeads(demoEnv(), { probeId, source: { kind: 'run', runId: genRun }, variant: 'code', perToken: false });
});
afterAll(async () => {
  store?.close();
  await demo?.session.release();
  await tiny?.session.release();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('a probe trained on another model', () => {
  it('the setup is sane: the probe has the demo model’s width, the tiny model another', () => {
    expect(store.probes.get(probeId)!.weights.length).toBe(256);
    expect(tiny.config.hiddenSize).toBe(32);
    expect(store.runs.list().every((r) => r.status === 'done')).toBe(true);
  });

  const widths = [/width 256/, /has 32/];

  it('runTrace refuses it, naming both widths', async () => {
    const e = await expectRefused(() => runTrace(tinyEnv(), { probeId, extraProbeIds: [], source: { kind: 'run', runId: genRun }, options: {} }), 'bad-argument', ...widths, /trained on this model/);
    expect(e.message).toContain(`probe #${probeId}`);
  });

  it('runTrace refuses it as an extra (layer-map) probe too', async () => {
    const tinyProbe = store.probes.add({ modelId: store.models.add({ path: tiny.checkpoint.dir, contentHash: tiny.compiled.modelHash }).id, name: 'tiny', residIndex: 3, positionRule: 'answer-boundary', weights: new Float32Array(32), bias: 0 });
    await expectRefused(() => runTrace(tinyEnv(), { probeId: tinyProbe.id, extraProbeIds: [probeId], source: { kind: 'run', runId: genRun }, options: {} }), 'bad-argument', ...widths);
  });

  it('runHeads refuses it', async () => {
    await expectRefused(() => runHeads(tinyEnv(), { probeId, source: { kind: 'run', runId: genRun }, variant: 'code', perToken: false }), 'bad-argument', ...widths);
  });

  it('runSelect refuses it', async () => {
    await expectRefused(() => runSelect(tinyEnv(), { datasetId: train.id, probeId, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 }), 'bad-argument', ...widths);
  });

  it('runGenerate (live probe) and runAblation refuse it', async () => {
    await expectRefused(() => runGenerate(tinyEnv(), { datasetId: harmful.id, chat: true, maxNewTokens: 4, seed: 0, batchSize: 4, settings: [BASELINE_SETTING], probeId }), 'bad-argument', ...widths);
    await expectRefused(() => runAblation(tinyEnv(), ablateConfig()), 'bad-argument', ...widths);
  });
});

describe('ids that do not exist', () => {
  it('an unknown dataset, with the datasets that exist', async () => {
    await expectRefused(() => runGenerate(demoEnv(), { datasetId: 999, chat: true, maxNewTokens: 4, seed: 0, batchSize: 1, settings: [BASELINE_SETTING] }), 'bad-argument', /dataset #999 does not exist/, /harmful \(#\d+\)/);
    await expectRefused(() => runProbeTraining(demoEnv(), probeConfig({ negative: { kind: 'dataset', datasetId: 999, chat: true } })), 'bad-argument', /dataset #999/);
    await expectRefused(() => runSelect(demoEnv(), { datasetId: 999, probeId, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 }), 'bad-argument', /dataset #999/);
    await expectRefused(() => runAblation(demoEnv(), ablateConfig({ harmlessDatasetId: 999 })), 'bad-argument', /dataset #999/);
    await expectRefused(() => runTrace(demoEnv(), { probeId, extraProbeIds: [], source: { kind: 'dataset', datasetId: 999, chat: true }, options: {} }), 'bad-argument', /dataset #999/);
  });

  it('an unknown probe, with the probes that exist', async () => {
    const probes = new RegExp(`probes here: #${probeId} refusal`);
    await expectRefused(() => runTrace(demoEnv(), { probeId: 999, extraProbeIds: [], source: { kind: 'run', runId: genRun }, options: {} }), 'bad-argument', /probe #999 does not exist/, probes);
    await expectRefused(() => runHeads(demoEnv(), { probeId: 999, source: { kind: 'run', runId: genRun }, variant: 'code', perToken: false }), 'bad-argument', /probe #999/);
    await expectRefused(() => runSelect(demoEnv(), { datasetId: train.id, probeId: 999, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 }), 'bad-argument', /probe #999/);
    await expectRefused(() => runAblation(demoEnv(), ablateConfig({ probeId: 999 })), 'bad-argument', /probe #999/);
    await expectRefused(() => runJudge(demoEnv(), { runId: genRun, judge: { kind: 'probe', probeId: 999, threshold: 0.5 }, harmfulDatasetId: null }), 'bad-argument', /probe #999/);
  });

  it('an unknown run, or a run of the wrong kind', async () => {
    await expectRefused(() => runTrace(demoEnv(), { probeId, extraProbeIds: [], source: { kind: 'run', runId: 999 }, options: {} }), 'bad-argument', /run #999 does not exist/);
    await expectRefused(() => runHeads(demoEnv(), { probeId, source: { kind: 'run', runId: 999 }, variant: 'code', perToken: false }), 'bad-argument', /run #999/);
    await expectRefused(() => runProbeTraining(demoEnv(), probeConfig({ positive: { kind: 'run', runId: 999 } })), 'bad-argument', /run #999/);
    await expectRefused(() => runJudge(demoEnv(), { runId: 999, judge: { kind: 'keyword', list: 'jbb' }, harmfulDatasetId: null }), 'bad-argument', /run #999/);
    await expectRefused(() => runAblation(demoEnv(), ablateConfig({ headsRunId: 999 })), 'bad-argument', /run #999 does not exist/);
    await expectRefused(() => runAblation(demoEnv(), ablateConfig({ headsRunId: genRun })), 'bad-argument', new RegExp(`run #${genRun} is a transcripts run, not a heads run`));
  });

  it('resuming a run that does not exist, or one of another kind', async () => {
    await expectRefused(() => runTrace(demoEnv(), { probeId, extraProbeIds: [], source: { kind: 'run', runId: genRun }, options: {} }, { resume: 999 }), 'bad-argument', /run #999 does not exist/);
    await expectRefused(() => runTrace(demoEnv(), { probeId, extraProbeIds: [], source: { kind: 'run', runId: genRun }, options: {} }, { resume: genRun }), 'bad-argument', /is a transcripts run, not a trace run/);
  });
});

describe('other bad configurations', () => {
  it('select on a dataset without responses: bad-dataset with a hint', async () => {
    const e = await expectRefused(() => runSelect(demoEnv(), { datasetId: harmful.id, probeId, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 }), 'bad-dataset', /no responses to score/);
    expect(e.hint).toMatch(/response/);
  });

  it('a residual-stack index outside the model', async () => {
    await expectRefused(() => runProbeTraining(demoEnv(), probeConfig({ residIndices: [9] })), 'bad-argument', /residual-stack index 9 is outside 0\.\.5/);
  });

  it('heads with a probe on the embeddings, or final-norm-aware off the final norm', async () => {
    const modelId = store.models.findByHash(demo.compiled.modelHash)[0]!.id;
    const w = store.probes.get(probeId)!.weights;
    const emb = store.probes.add({ modelId, name: 'embeddings', residIndex: 0, positionRule: 'answer-boundary', weights: w, bias: 0 });
    const mid = store.probes.add({ modelId, name: 'mid', residIndex: 2, positionRule: 'answer-boundary', weights: w, bias: 0 });
    await expectRefused(() => runHeads(demoEnv(), { probeId: emb.id, source: { kind: 'run', runId: genRun }, variant: 'code', perToken: false }), 'bad-argument', /reads the embeddings/);
    await expectRefused(() => runHeads(demoEnv(), { probeId: mid.id, source: { kind: 'run', runId: genRun }, variant: 'final-norm-aware', perToken: false }), 'bad-argument', /final norm/);
  });

  it('an ablation head set outside the model', async () => {
    await expectRefused(() => runAblation(demoEnv(), ablateConfig({ headSets: [{ name: 'bogus', heads: [{ layer: 7, head: 0 }] }] })), 'bad-argument', /L7H0 is outside/);
  });

  it('after all of it, the project holds only the runs that succeeded', () => {
    expect(store.runs.list().map((r) => [r.kind, r.status])).toEqual([
      ['probe', 'done'],
      ['transcripts', 'done'],
      ['heads', 'done'],
    ]);
  });

  it('resuming a run whose inputs have gone since marks it failed (not running) and keeps its items', async () => {
    const heads2 = await runHeads(demoEnv(), { probeId, source: { kind: 'run', runId: genRun }, variant: 'code', perToken: false });
    const controller = new AbortController();
    await expect(
      runAblation({ store, model: demo, signal: controller.signal, onProgress: (done) => done >= 8 && controller.abort() }, ablateConfig({ headsRunId: heads2 })),
    ).rejects.toMatchObject({ code: 'cancelled' });
    const ablate = store.runs.list({ kind: 'ablate' }).at(-1)!;
    expect(ablate.status).toBe('cancelled');
    const kept = store.runs.resumableItems(ablate.id).size;
    expect(kept).toBeGreaterThanOrEqual(8);
    store.runs.delete(heads2);

    let error: unknown;
    try {
      await runAblation(demoEnv(), ablateConfig(), { resume: ablate.id });
    } catch (e) {
      error = e;
    }
    expect((error as CliffscopeError).code).toBe('bad-argument');
    expect((error as CliffscopeError).message).toContain(`run #${heads2} does not exist`);
    const after = store.runs.get(ablate.id)!;
    expect(after.status).toBe('failed');
    expect(after.error).toContain(`run #${heads2} does not exist`);
    expect(store.runs.resumableItems(ablate.id).size).toBe(kept);
    expect(store.runs.list({ status: 'running' })).toEqual([]);
  });
});
