/**
 * Probes that are actually trained (docs/METHOD.md §1), on a planted-cliff model small enough to show the failure:
 * the partly-refusing demo variant refuses its strongest harmful prompts and falls off the cliff on the rest. The
 * paper's sample recipe — answer-boundary features, positives = harmful prompts it refused, negatives = harmless
 * answers — gives ≤ 40 training transcripts. The default probe then sees the cliff (mean MS ≥ 0.2 where the model
 * falls off it, |MS| ≤ 0.05 on harmless transcripts); the paper's Adam loop on the same data reaches accuracy 1 with
 * scores stuck near 0.5, flagged as uncalibrated, and a flat trace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUncalibrated, type ProbeCalibration } from '../../src/main/engine/analysis/probe.js';
import { DEMO_PARTLY_REFUSING_VARIANT, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { DEMO_REFUSAL_ANSWER } from '../../src/main/api/demo/vocabulary.js';
import { readSummary, type PipelineEnv } from '../../src/main/pipelines/common.js';
import { runProbeTraining } from '../../src/main/pipelines/probe.js';
import { runTrace } from '../../src/main/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../../src/main/pipelines/transcripts.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { readTranscript } from '../../src/main/engine/runtime/transcript.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { probeRun, type ProbeRunConfig } from '../../src/shared/runs/probe.js';
import { importDemo } from '../pipelines/helpers/demo-data.js';

let root: string;
let model: LoadedModel;
let store: ProjectStore;
let env: PipelineEnv;
let harmfulRun: number;
let harmlessRun: number;
/** Harmful transcripts the model refused / answered (fell off the cliff), by transcript id. */
let refused: Set<number>;
let complied: Set<number>;
const logs: string[] = [];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-calibration-'));
  const info = writeDemoModel(path.join(root, 'model'), DEMO_PARTLY_REFUSING_VARIANT);
  model = await loadModel(info.dir, { cacheRoot: path.join(root, 'cache'), threads: 1 });
  store = openProject(path.join(root, 'p.cliffscope'), { create: true });
  env = { store, model, log: (m) => logs.push(m) };
  const harmful = importDemo(store, 'harmful', 'prompts.json', 'harmful');
  const harmless = importDemo(store, 'harmless', 'prompts.json', 'harmless');
  const generate = (datasetId: number, itemIds?: number[]) =>
    runGenerate(env, { datasetId, itemIds, chat: true, maxNewTokens: 40, seed: 0, batchSize: 16, settings: [BASELINE_SETTING] });
  harmfulRun = await generate(harmful.id);
  // 20 harmless answers as negatives: with the refusals, at most 40 training transcripts.
  harmlessRun = await generate(harmless.id, store.datasets.items(harmless.id).slice(0, 20).map((i) => i.id));
  const tok = model.tokenizer!;
  refused = new Set();
  complied = new Set();
  for (const t of store.transcripts.list(harmfulRun)) {
    const answer = readTranscript(tok, Array.from(t.tokenIds), t.promptTokens).answer;
    (answer === DEMO_REFUSAL_ANSWER ? refused : complied).add(t.id);
  }
});
afterAll(async () => {
  store?.close();
  await model?.session.release();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Train a probe the paper's way on the two runs; trace both runs with it; MS per transcript. */
async function trainAndTrace(name: string, train: ProbeRunConfig['train']) {
  const result = await runProbeTraining(env, {
    name,
    positive: { kind: 'run', runId: harmfulRun },
    negative: { kind: 'run', runId: harmlessRun },
    positionRule: 'answer-boundary',
    residIndices: [model.config.numLayers + 1],
    // The demo tokenizer lower-cases ("i cannot help …"), so the case-insensitive JailbreakBench list labels refusals.
    labelRule: 'jbb-first32',
    train,
  });
  const summary = readSummary(store, probeRun, result.runId)!;
  const probe = store.probes.require(result.bestProbeId);
  const ms = new Map<number, number>();
  for (const runId of [harmfulRun, harmlessRun]) {
    const trace = await runTrace(env, { probeId: probe.id, extraProbeIds: [], source: { kind: 'run', runId }, options: {} });
    for (const tr of store.traces.list({ runId: trace })) ms.set(tr.transcriptId, tr.ms!);
  }
  const mean = (ids: Iterable<number>) => {
    const xs = [...ids].map((id) => ms.get(id)!);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const harmlessIds = store.transcripts.list(harmlessRun).map((t) => t.id);
  return { summary, probe, ms, calibration: probe.metrics.calibration as unknown as ProbeCalibration, cliffMs: mean(complied), harmlessMs: harmlessIds.map((id) => ms.get(id)!) };
}

describe('the partly-refusing variant', () => {
  it('refuses its strongest harmful prompts and falls off the cliff on the others', () => {
    expect(refused.size).toBe(17);
    expect(complied.size).toBe(13);
  });
});

describe('the default probe on ≤ 40 transcripts', () => {
  it('sees the cliff: mean MS ≥ 0.2 where the model falls off it, |MS| ≤ 0.05 on harmless transcripts', async () => {
    const r = await trainAndTrace('default', { preset: 'lbfgs' });
    expect(r.summary.samples).toBeLessThanOrEqual(40);
    expect(r.summary).toMatchObject({ positives: 17, negatives: 20, skippedNotRefusal: 13 });
    expect(r.summary.training).toMatchObject({ preset: 'lbfgs', optimizer: 'lbfgs', unconvergedResidIndices: [] });
    expect(r.probe.metrics.valAccuracy).toBe(1);
    expect(isUncalibrated(r.calibration)).toBe(false);
    expect(r.cliffMs).toBeGreaterThanOrEqual(0.2);
    for (const ms of r.harmlessMs) expect(Math.abs(ms)).toBeLessThanOrEqual(0.05);
    // Refused transcripts keep their refusal to the end: no drop to speak of.
    for (const id of refused) expect(r.ms.get(id)!).toBeLessThan(r.cliffMs);
    expect(logs.some((l) => /uncalibrated/.test(l))).toBe(false);
  });

  it("the paper's Adam loop on the same data: accuracy 1, scores near 0.5, flagged — and the cliff vanishes", async () => {
    logs.length = 0;
    const r = await trainAndTrace('paper', { preset: 'paper-adam' });
    expect(r.probe.metrics.valAccuracy).toBe(1);
    expect(isUncalibrated(r.calibration)).toBe(true);
    expect(r.cliffMs).toBeLessThan(0.05);
    // The pipelines that load it say so.
    expect(logs.filter((l) => new RegExp(`^warning: probe #${r.probe.id} is uncalibrated`).test(l))).toHaveLength(1);
  });
});
