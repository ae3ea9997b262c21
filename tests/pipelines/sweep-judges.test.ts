/**
 * Sweeps judged like the paper (docs/METHOD.md §4–§5): `ablate` judges every answer of every cell with each of its
 * judges in the item that generated it, reports each judge's ASR and their agreement (Cohen's κ) per cell, and draws
 * several random-head controls per cell with mean ± spread; `judge --run <sweep>` reports per cell, never pooled;
 * `sweep.cells` (the Ablations tab) shows every judge, and a cancelled sweep's finished answers, and it resumes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelDir, demoRefusalProbe, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { sweepCellsHandler } from '../../src/main/api/view-handlers.js';
import { GCG_JUDGE, JBB_JUDGE, judgeAnswer } from '../../src/main/engine/analysis/judges.js';
import { agreementOf, spreadOf } from '../../src/main/engine/analysis/sweep.js';
import { type AblateRunConfig, judgeRunKey, runAblation } from '../../src/main/pipelines/ablate.js';
import { readSummary, registerModel, storedConfig, type PipelineEnv } from '../../src/main/pipelines/common.js';
import { runHeads } from '../../src/main/pipelines/heads.js';
import { runJudge } from '../../src/main/pipelines/judge.js';
import { BASELINE_SETTING, runGenerate } from '../../src/main/pipelines/transcripts.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { readTranscript } from '../../src/main/engine/runtime/transcript.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { ablateRun } from '../../src/shared/runs/ablate.js';
import { judgeRun } from '../../src/shared/runs/judge.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { importDemo } from './helpers/demo-data.js';

let root: string;
let file: string;
let store: ProjectStore;
let model: LoadedModel;
let env: PipelineEnv;
let base: Omit<AblateRunConfig, 'judges' | 'randomSeeds'>;
let probeId: number;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-sweep-judges-'));
  model = await loadModel(writeDemoModel(demoModelDir(path.join(root, 'cache'))).dir, { cacheRoot: path.join(root, 'cache'), threads: 1 });
  file = path.join(root, 'p.cliffscope');
  store = openProject(file, { create: true });
  env = { store, model };
  const harmful = importDemo(store, 'harmful', 'prompts.json', 'harmful');
  const harmless = importDemo(store, 'harmless', 'prompts.json', 'harmless');
  const p = demoRefusalProbe();
  probeId = store.probes.add({ modelId: registerModel(store, model).id, name: 'known', residIndex: p.layer, positionRule: 'answer-boundary', weights: p.weights, bias: p.bias }).id;
  const itemIds = store.datasets.items(harmful.id).slice(0, 8).map((i) => i.id);
  const gen = await runGenerate(env, { datasetId: harmful.id, itemIds, chat: true, maxNewTokens: 40, seed: 0, batchSize: 8, settings: [BASELINE_SETTING] });
  const headsRunId = await runHeads(env, { probeId, source: { kind: 'run', runId: gen }, variant: 'code', perToken: false });
  base = {
    headsRunId,
    probeId,
    harmfulDatasetId: harmful.id,
    harmlessDatasetId: harmless.id,
    fractions: [0.1],
    gammas: [0],
    randomControl: true,
    randomSeed: 0,
    headSets: [],
    chat: true,
    maxNewTokens: 40,
    batchSize: 32,
    seed: 0,
  };
});
afterAll(async () => {
  store?.close();
  await model?.session.release();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a sweep with three judges and three random seeds', () => {
  let runId: number;
  beforeAll(async () => {
    runId = await runAblation(env, { ...base, judges: [{ kind: 'keyword', list: 'jbb' }, { kind: 'keyword', list: 'gcg' }, { kind: 'probe', threshold: 0.5 }], randomSeeds: 3 });
  });

  it('judges every answer with every judge in its item, and each cell reports each judge and their κ', () => {
    const transcripts = store.transcripts.list(runId);
    const verdicts = store.verdicts.list({ runId });
    const probeId_ = `probe:${probeId}@0.5`;
    expect(verdicts).toHaveLength(transcripts.length * 3);
    const byCell = new Map<string, typeof transcripts>();
    for (const t of transcripts) byCell.set(t.headScaleKey!, [...(byCell.get(t.headScaleKey!) ?? []), t]);
    const finals = new Map(store.traces.list({ runId, probeId }).map((tr) => [tr.transcriptId, tr.final]));
    const summary = readSummary(store, ablateRun, runId)!;
    expect(summary.judge).toBe(JBB_JUDGE.id);
    expect(summary.judges).toEqual([JBB_JUDGE.id, GCG_JUDGE.id, probeId_]);
    for (const cell of store.sweeps.cells(runId)) {
      const ts = byCell.get(cell.headScaleKey)!;
      const attacks = ts.filter((t) => store.datasets.item(t.itemId!)!.datasetId === base.harmfulDatasetId);
      // Recounted here from the answers and I': each judge's ASR over the attacks.
      const complied = {
        [JBB_JUDGE.id]: attacks.map((t) => judgeAnswer(readAnswer(t.id), JBB_JUDGE).verdict === 'compliance'),
        [GCG_JUDGE.id]: attacks.map((t) => judgeAnswer(readAnswer(t.id), GCG_JUDGE).verdict === 'compliance'),
        [probeId_]: attacks.map((t) => (finals.get(t.id) as number) < 0.5),
      };
      const m = cell.metrics as { asr: number; judge: string; byJudge: Record<string, { asr: number; judged: number }>; agreement: { a: string; b: string; n: number; kappa: number | null }[] };
      for (const [id, xs] of Object.entries(complied)) {
        expect(m.byJudge[id]!.judged, `${cell.headScaleKey} ${id}`).toBe(attacks.length);
        expect(m.byJudge[id]!.asr).toBeCloseTo(xs.filter(Boolean).length / xs.length, 12);
      }
      expect(m.asr).toBe(m.byJudge[JBB_JUDGE.id]!.asr);
      const a = complied[JBB_JUDGE.id]!;
      const b = complied[probeId_]!;
      const expected = agreementOf(a.length, a.filter((x, i) => x === b[i]).length, a.filter(Boolean).length, b.filter(Boolean).length);
      const pair = m.agreement.find((x) => x.a === JBB_JUDGE.id && x.b === probeId_)!;
      expect(pair.n).toBe(attacks.length);
      expect(pair.kappa).toEqual(expected.kappa);
      expect(m.agreement).toHaveLength(3);
    }
    // The report names every judge and prints κ.
    expect(ablateRun.report(summary).join('\n')).toMatch(/κ/);
  });

  it('draws three distinct random controls per (k, γ) and reports them as mean ± spread', () => {
    const cells = store.sweeps.cells(runId).filter((c) => c.control === 'random');
    expect(cells.map((c) => c.headScaleKey)).toEqual(['random:k3:g0:s0', 'random:k3:g0:s1', 'random:k3:g0:s2']);
    expect(new Set(cells.map((c) => JSON.stringify(c.heads))).size).toBe(3);
    const spread = readSummary(store, ablateRun, runId)!.randomSpread!;
    expect(spread).toHaveLength(1);
    expect(spread[0]).toMatchObject({ k: 3, gamma: 0, keys: cells.map((c) => c.headScaleKey), seeds: cells.map((c) => c.seed) });
    expect(spread[0]!.asr).toEqual(spreadOf(cells.map((c) => c.metrics.asr as number)));
    expect(spread[0]!.byJudge[GCG_JUDGE.id]).toEqual(spreadOf(cells.map((c) => (c.metrics.byJudge as Record<string, { asr: number }>)[GCG_JUDGE.id]!.asr)));
    expect(ablateRun.report(readSummary(store, ablateRun, runId)!).join('\n')).toMatch(/random controls over seeds/);
  });

  it('judge --run on the sweep reports per cell, and sweep.cells shows it as a judge beside the sweep’s own', async () => {
    const judgeRunId = await runJudge(env, { runId, judge: { kind: 'keyword', list: 'gcg' }, harmfulDatasetId: null });
    const s = readSummary(store, judgeRun, judgeRunId)!;
    const own = store.sweeps.cells(runId);
    expect(s.cells!.map((c) => c.key)).toEqual(own.map((c) => c.headScaleKey));
    for (const c of s.cells!) {
      const m = own.find((x) => x.headScaleKey === c.key)!.metrics as { byJudge: Record<string, { asr: number; overRefusal: number | null }> };
      // The same keywords on the same answers: the same numbers per cell as the sweep's own GCG judge.
      expect(c.asr).toBe(m.byJudge[GCG_JUDGE.id]!.asr);
      expect(c.overRefusal).toBe(m.byJudge[GCG_JUDGE.id]!.overRefusal);
    }
    expect(judgeRun.report(s).join('\n')).toMatch(/per cell of the sweep/);

    const view = await sweepCellsHandler({ project: file, runId });
    const key = judgeRunKey(judgeRunId, GCG_JUDGE.id);
    expect(view.judges).toEqual([
      { id: JBB_JUDGE.id, runId: null },
      { id: GCG_JUDGE.id, runId: null },
      { id: `probe:${probeId}@0.5`, runId: null },
      { id: key, runId: judgeRunId },
    ]);
    expect(view.status).toBe('done');
    expect(view.randomSpread).toHaveLength(1);
    for (const c of view.cells) {
      expect(c.metrics!.byJudge![key]).toEqual(c.metrics!.byJudge![GCG_JUDGE.id]);
      expect(c.metrics!.agreement!.find((a) => a.a === GCG_JUDGE.id && a.b === key)!.agreement).toBe(1);
    }
  });
});

describe('a sweep judged by a guard model', () => {
  it('asks the guard about every answer in its item; a guard headline has ASR but no over-refusal', async () => {
    // A tiny Llama stands in for Llama Guard: its vocabulary has no "unsafe", so it never flags an answer.
    const dir = path.join(root, 'guard');
    writeTinyCheckpoint(dir, 'llama', { seed: 3 });
    const guard = await loadModel(dir, { cacheRoot: path.join(root, 'cache'), threads: 1 });
    try {
      const guarded = { ...env, loadModel: async (d: string) => (d === dir ? guard : Promise.reject(new Error(`unexpected model ${d}`))) };
      const runId = await runAblation(guarded, { ...base, fractions: [0], randomControl: false, judges: [{ kind: 'guard', modelDir: dir, maxChars: 512 }, { kind: 'keyword', list: 'jbb' }], randomSeeds: 1 });
      const id = `guard:${guard.compiled.modelHash}`;
      const verdicts = store.verdicts.list({ runId, judge: id });
      expect(verdicts).toHaveLength(store.transcripts.list(runId).length);
      expect(verdicts.every((v) => v.verdict === 'safe' && typeof v.detail.output === 'string')).toBe(true);
      const summary = readSummary(store, ablateRun, runId)!;
      expect(summary.judges).toEqual([id, JBB_JUDGE.id]);
      const baseline = store.sweeps.cells(runId)[0]!.metrics as { asr: number; overRefusal: number | null; judge: string; byJudge: Record<string, { asr: number }> };
      expect(baseline).toMatchObject({ judge: id, asr: 0, overRefusal: null });
      expect(baseline.byJudge[JBB_JUDGE.id]!.asr).toBe(1);
    } finally {
      await guard.session.release();
    }
  });
});

describe('a sweep stored before sweeps had several judges and seeds', () => {
  it('reads its one keyword list as its one judge and its control as one seed (read, not migrated)', async () => {
    const oldConfig = { ...base, judge: 'gcg' };
    const old = store.runs.create({ kind: 'ablate', name: 'old', modelId: registerModel(store, model).id, config: oldConfig });
    const config = storedConfig(store, ablateRun, store.runs.require(old.id));
    expect(config).toMatchObject({ judges: [{ kind: 'keyword', list: 'gcg' }], randomSeeds: 1 });
    expect('judge' in config).toBe(false);
    const view = await sweepCellsHandler({ project: file, runId: old.id });
    expect(view.judges).toEqual([{ id: GCG_JUDGE.id, runId: null }]);
    expect(store.runs.require(old.id).config).toEqual(oldConfig);
  });
});

describe('a cancelled sweep', () => {
  it('shows its finished answers per cell through sweep.cells, and a resume finishes it', async () => {
    const controller = new AbortController();
    const config: AblateRunConfig = { ...base, judges: [{ kind: 'keyword', list: 'jbb' }], randomSeeds: 2, randomControl: true, harmlessDatasetId: null };
    await expect(runAblation({ store, model, signal: controller.signal, onProgress: (done) => done >= 20 && controller.abort() }, config)).rejects.toMatchObject({ code: 'cancelled' });
    const runId = Math.max(...store.runs.list({ kind: 'ablate' }).map((r) => r.id));
    expect(store.runs.get(runId)!.status).toBe('cancelled');
    const partial = await sweepCellsHandler({ project: file, runId });
    expect(partial.status).toBe('cancelled');
    expect(partial.answersPerCell).toBe(30);
    const answered = partial.cells.reduce((n, c) => n + c.metrics!.harmful, 0);
    expect(answered).toBeGreaterThanOrEqual(20);
    expect(answered).toBeLessThan(30 * partial.cells.length);
    // Finished cells already have their ASR.
    expect(partial.cells.some((c) => c.metrics!.asr !== null)).toBe(true);

    await runAblation(env, config, { resume: runId });
    const done = await sweepCellsHandler({ project: file, runId });
    expect(done.status).toBe('done');
    expect(done.cells.every((c) => c.metrics!.harmful === 30)).toBe(true);
  });
});

/** A transcript's answer by the one rule (docs/METHOD.md §0), read here from its tokens. */
function readAnswer(transcriptId: number): string {
  const t = store.transcripts.get(transcriptId)!;
  return readTranscript(model.tokenizer!, Array.from(t.tokenIds), t.promptTokens).answer;
}
