/**
 * Resuming pipelines: a run killed with SIGKILL mid-way is found 'interrupted' on reopening with every finished
 * transcript intact, and resuming it finishes the rest without redoing any; resuming with another model is refused;
 * a run cancelled through its AbortSignal is 'cancelled', keeps its finished items, and resumes to completion.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PLANTED_HEADS, demoModelDir, demoRefusalProbe, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { demoResourcesDir } from '../../src/main/api/demo/resources.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { type PipelineEnv, readSummary } from '../../src/main/pipelines/common.js';
import { runProbeTraining } from '../../src/main/pipelines/probe.js';
import { planRun, runReport } from '../../src/main/api/runs.js';
import { probeRun } from '../../src/shared/runs/probe.js';
import { runTrace } from '../../src/main/pipelines/trace.js';
import { runGenerate, type GenerateRunConfig } from '../../src/main/pipelines/transcripts.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import type { TranscriptRow } from '../../src/main/store/types.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { headScaleMatrix } from '../../src/shared/heads.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const child = path.join(repoRoot, 'tests/pipelines/helpers/generate-child.ts');

let root: string;
let cacheRoot: string;
let modelDir: string;
let model: LoadedModel;
let tiny: LoadedModel;

/** 60 demo prompts × 2 settings (as is, planted heads ablated), one transcript per batch. */
function generateConfig(datasetId: number, batchSize = 1): GenerateRunConfig {
  const L = model.config.numLayers;
  const H = model.config.numHeads;
  const scale = headScaleMatrix(DEMO_PLANTED_HEADS, 0, L, H);
  return {
    datasetId,
    chat: true,
    maxNewTokens: 400, // far more than the demo model needs: it stops at its end-of-turn token
    seed: 0,
    batchSize,
    settings: [{ key: 'baseline' }, { key: 'planted', headScale: scale }],
  };
}

/** A new project holding the demo prompts (harmful and harmless) as one dataset. */
function newProject(name: string): { file: string; datasetId: number; items: number } {
  const file = path.join(root, `${name}.cliffscope`);
  const store = openProject(file, { create: true });
  const { dataset } = store.datasets.importFile('demo-prompts', path.join(demoResourcesDir(), 'prompts.json'));
  store.close();
  return { file, datasetId: dataset.id, items: dataset.itemCount };
}

const snapshot = (ts: TranscriptRow[]) => new Map(ts.map((t) => [t.id, { itemId: t.itemId, key: t.headScaleKey, text: t.text, ids: Array.from(t.tokenIds) }]));

/** Every transcript is complete, and each (item, setting) pair appears exactly once. */
function expectComplete(store: ProjectStore, runId: number, items: number) {
  const ts = store.transcripts.list(runId);
  expect(ts).toHaveLength(items * 2);
  expect(new Set(ts.map((t) => `${t.itemId}:${t.headScaleKey}`)).size).toBe(items * 2);
  const keys = store.runs.items(runId).map((i) => i.key);
  expect(new Set(keys).size).toBe(keys.length);
  for (const t of ts) {
    expect(t.finishReason, `transcript #${t.id}`).toBe('eos');
    expect(t.answerBoundary, `transcript #${t.id}`).not.toBeNull();
  }
  // The demo's behaviour, as a check that resumed items are real generations: harmful prompts comply as is and are
  // refused with the planted heads ablated; harmless prompts are answered either way.
  for (const t of ts) {
    const label = store.datasets.item(t.itemId!)!.label;
    const refused = t.text.includes('i cannot help with that');
    expect(refused, `${label} ${t.headScaleKey}: ${t.text}`).toBe(label === 'harmful' && t.headScaleKey === 'planted');
  }
}

/** Run the child until it reports `atLeast` committed transcripts, then SIGKILL it. */
function runAndKill(file: string, config: GenerateRunConfig, atLeast: number): Promise<{ runId: number; reported: number; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, file, modelDir, cacheRoot, JSON.stringify(config)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killed = false;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`child made no progress in time; stdout:\n${out}\nstderr:\n${err}`));
    }, 90_000);
    proc.stderr.on('data', (d) => (err += d));
    proc.stdout.on('data', (d) => {
      out += d;
      const count = (out.match(/^committed /gm) ?? []).length;
      if (!killed && count >= atLeast) {
        killed = true;
        proc.kill('SIGKILL');
      }
    });
    proc.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (!killed) return reject(new Error(`child exited on its own; stdout:\n${out}\nstderr:\n${err}`));
      resolve({ runId: Number(/^run (\d+)$/m.exec(out)?.[1]), reported: (out.match(/^committed /gm) ?? []).length, signal });
    });
  });
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-pipelines-resume-'));
  cacheRoot = path.join(root, 'cache');
  modelDir = writeDemoModel(demoModelDir(cacheRoot)).dir;
  // Compiles into the cache, so the child only loads.
  model = await loadModel(modelDir, { cacheRoot, threads: 1 });
  tiny = await loadModel(writeTinyCheckpoint(path.join(root, 'tiny'), 'llama').dir, { cacheRoot, threads: 1 });
});
afterAll(async () => {
  await model?.session.release();
  await tiny?.session.release();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('a generate run killed with SIGKILL', () => {
  let file: string;
  let datasetId: number;
  let items: number;
  let runId: number;
  let kept: ReturnType<typeof snapshot>;

  it('is interrupted on reopening, with every finished transcript intact', async () => {
    ({ file, datasetId, items } = newProject('killed'));
    expect(items).toBe(60);
    const killed = await runAndKill(file, generateConfig(datasetId), 8);
    expect(killed.signal).toBe('SIGKILL');
    runId = killed.runId;
    expect(runId).toBeGreaterThan(0);

    const store = openProject(file); // recovers runs whose process is gone
    try {
      const run = store.runs.get(runId)!;
      expect(run.status).toBe('interrupted');
      expect(run.error).toMatch(/stopped while running it/);
      const done = store.runs.resumableItems(runId);
      expect(done.size).toBeGreaterThanOrEqual(killed.reported);
      expect(done.size).toBeLessThan(items * 2);
      // Nothing half-written: one complete transcript per committed item and none without one.
      const ts = store.transcripts.list(runId);
      expect(ts).toHaveLength(done.size);
      for (const t of ts) {
        expect(done.has(`${t.itemId}:${t.headScaleKey}`)).toBe(true);
        expect(t.finishReason).toBe('eos');
        expect(t.answerBoundary).not.toBeNull();
        expect(t.tokenIds.length).toBeGreaterThan(t.promptTokens);
        expect(t.text.length).toBeGreaterThan(0);
      }
      expect(store.checkIntegrity()).toEqual(['ok']);
      kept = snapshot(ts);
    } finally {
      store.close();
    }
  });

  it('refuses to resume with a different model, naming both hashes, and leaves the run as it was', async () => {
    const store = openProject(file);
    try {
      const env: PipelineEnv = { store, model: tiny };
      let error: unknown;
      try {
        await runGenerate(env, generateConfig(datasetId), { resume: runId });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CliffscopeError);
      expect((error as CliffscopeError).code).toBe('model-mismatch');
      expect((error as CliffscopeError).message).toContain(model.compiled.modelHash);
      expect((error as CliffscopeError).message).toContain(tiny.compiled.modelHash);
      expect(model.compiled.modelHash).not.toBe(tiny.compiled.modelHash);
      expect(store.runs.get(runId)!.status).toBe('interrupted');
      expect(store.transcripts.list(runId)).toHaveLength(kept.size);
    } finally {
      store.close();
    }
  });

  it('resumes to completion without redoing finished transcripts', async () => {
    const store = openProject(file);
    try {
      const progress: [number, number][] = [];
      // The stored config is used: the one passed here (batch 8) only matters for a new run.
      const id = await runGenerate({ store, model, onProgress: (d, t) => progress.push([d, t]) }, generateConfig(datasetId, 8), { resume: runId });
      expect(id).toBe(runId);
      expect(store.runs.get(runId)!.status).toBe('done');
      expect(progress[0]).toEqual([kept.size, items * 2]);
      expect(progress.at(-1)).toEqual([items * 2, items * 2]);
      expect(progress).toHaveLength(items * 2 - kept.size + 1);
      expectComplete(store, runId, items);
      const now = snapshot(store.transcripts.list(runId));
      for (const [tid, before] of kept) expect(now.get(tid), `transcript #${tid}`).toEqual(before);
      expect(store.runs.list()).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe('cancelling through the AbortSignal', () => {
  it('marks a generate run cancelled, keeps finished transcripts, and a resume finishes it', async () => {
    const { file, datasetId, items } = newProject('cancelled');
    const store = openProject(file);
    try {
      const controller = new AbortController();
      let error: unknown;
      try {
        await runGenerate(
          { store, model, signal: controller.signal, onProgress: (done) => done >= 10 && controller.abort() },
          generateConfig(datasetId, 4),
        );
      } catch (e) {
        error = e;
      }
      expect((error as CliffscopeError).code).toBe('cancelled');
      expect((error as CliffscopeError).hint).toMatch(/--resume \d+/);
      const run = store.runs.list({ kind: 'transcripts' })[0]!;
      expect(run.status).toBe('cancelled');
      const done = store.runs.resumableItems(run.id);
      expect(done.size).toBeGreaterThanOrEqual(10);
      expect(done.size).toBeLessThan(items * 2);
      const kept = snapshot(store.transcripts.list(run.id));
      expect(kept.size).toBe(done.size);

      await runGenerate({ store, model }, generateConfig(datasetId, 4), { resume: run.id });
      expect(store.runs.get(run.id)!.status).toBe('done');
      expectComplete(store, run.id, items);
      const now = snapshot(store.transcripts.list(run.id));
      for (const [tid, before] of kept) expect(now.get(tid)).toEqual(before);
    } finally {
      store.close();
    }
  });

  it('marks a trace run cancelled and a resume scores only what is left', async () => {
    const { file, datasetId, items } = newProject('trace-cancelled');
    const store = openProject(file);
    try {
      const gen = await runGenerate({ store, model }, { ...generateConfig(datasetId, 16), settings: [{ key: 'baseline' }] });
      const modelRow = store.models.findByHash(model.compiled.modelHash)[0]!;
      const known = demoRefusalProbe();
      const probe = store.probes.add({ modelId: modelRow.id, name: 'planted', residIndex: known.layer, positionRule: 'answer-boundary', weights: known.weights, bias: known.bias });
      const config = { probeId: probe.id, extraProbeIds: [], source: { kind: 'run' as const, runId: gen }, options: {} };

      const controller = new AbortController();
      await expect(runTrace({ store, model, signal: controller.signal, onProgress: (done) => done >= 20 && controller.abort() }, config)).rejects.toMatchObject({ code: 'cancelled' });
      const run = store.runs.list({ kind: 'trace' })[0]!;
      expect(run.status).toBe('cancelled');
      const keptTraces = store.traces.list({ runId: run.id });
      expect(keptTraces).toHaveLength(20);

      const progress: number[] = [];
      await runTrace({ store, model, onProgress: (done) => progress.push(done) }, config, { resume: run.id });
      expect(store.runs.get(run.id)!.status).toBe('done');
      const traces = store.traces.list({ runId: run.id });
      expect(traces).toHaveLength(items);
      expect(new Set(traces.map((t) => t.transcriptId)).size).toBe(items);
      const ids = new Set(traces.map((t) => t.id));
      for (const t of keptTraces) expect(ids.has(t.id)).toBe(true);
      // Harmful transcripts fall off the cliff under the known probe; harmless ones stay low.
      for (const t of traces) {
        const label = store.datasets.item(store.transcripts.get(t.transcriptId)!.itemId!)!.label;
        if (label === 'harmful') expect(t.ms!).toBeGreaterThan(0.5);
        else expect(t.plateau!).toBeLessThan(0.5);
      }
      const summary = store.runs.items(run.id).find((i) => i.key === 'summary');
      expect(summary?.payload).toMatchObject({ transcripts: items });
    } finally {
      store.close();
    }
  });
});

describe('a probe run stored before its config named the preset', () => {
  it('resumes with the paper’s Adam loop it was started with, not today’s default', async () => {
    const { file, datasetId } = newProject('probe-old-config');
    const store = openProject(file);
    try {
      const modelRow = store.models.add({ path: model.checkpoint.dir, contentHash: model.compiled.modelHash, config: { ...model.config }, compileOptions: { ...model.compiled.options } });
      const source = { kind: 'dataset' as const, datasetId, chat: true };
      // As a version before the preset was named stored it: `train` partial, no preset (meaning the Adam loop then).
      const oldConfig = { name: 'old', positive: source, negative: source, positionRule: 'last-prompt-token', residIndices: [], labelRule: 'all', train: {} };
      const old = store.runs.create({ kind: 'probe', name: 'old', modelId: modelRow.id, config: oldConfig });
      expect(runReport(store, old.id).run.config).toMatchObject({ train: { preset: 'paper-adam' } });
      const config = planRun(store, { kind: 'probe', resume: old.id });
      expect(config.train).toEqual({ preset: 'paper-adam' });
      const result = await runProbeTraining({ store, model }, config, { resume: old.id });
      expect(readSummary(store, probeRun, result.runId)!.training).toMatchObject({ preset: 'paper-adam', optimizer: 'adam' });
      // The stored row is left as it was written (read, not migrated).
      expect(store.runs.get(old.id)!.config.train).toEqual({});

      // A run configured now states the preset it resolved to, so it resumes alike whatever the default becomes.
      expect(planRun(store, { kind: 'probe', config: { positive: source, negative: source } }).train).toEqual({ preset: 'lbfgs' });
      expect(planRun(store, { kind: 'probe', config: { positive: source, negative: source, train: { lr: 0.1 } } }).train).toEqual({ lr: 0.1, preset: 'paper-adam' });
    } finally {
      store.close();
    }
  });
});
