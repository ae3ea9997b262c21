/**
 * Real prompt sets through the whole method on a small checkpoint: the first rows of AdvBench (harmful), of the
 * refusal-direction harmless split, and STAR-1 (prompt + reasoning response) are imported from ../shared, then
 * probe → generate → trace → heads → ablate → select, with the selection exported for fine-tuning. The model is the
 * demo model (it reads any text; words outside its vocabulary become <unk>), so this checks the plumbing on real
 * data — CSV/JSON import, long real responses, exports — not the numbers. Copies of the rows are written to a temp
 * folder at test time; no data is committed. Skips with a note when ../shared is absent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelDir, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { runAblation } from '../../src/main/pipelines/ablate.js';
import type { PipelineEnv } from '../../src/main/pipelines/common.js';
import { suppliedTranscriptIds } from '../../src/main/engine/runtime/prompt.js';
import { runHeads } from '../../src/main/pipelines/heads.js';
import { runProbeTraining } from '../../src/main/pipelines/probe.js';
import { formatRunReport, runReport } from '../../src/main/api/runs.js';
import { exportSelection, runSelect } from '../../src/main/pipelines/select.js';
import { runTrace } from '../../src/main/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../../src/main/pipelines/transcripts.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { sharedPath } from '../support/shared-data.js';

const ROWS = 12;
const advbench = sharedPath('datasets/advbench/harmful_behaviors.csv', 'real-data pipeline test (AdvBench)');
const harmlessVal = sharedPath('datasets/refusal_direction_splits/harmless_val.json', 'real-data pipeline test (harmless split)');
const star1 = sharedPath('datasets/star1/STAR-1.json', 'real-data pipeline test (STAR-1)');
const available = advbench !== null && harmlessVal !== null && star1 !== null;

let root: string;
let model: LoadedModel;
let store: ProjectStore;
let env: PipelineEnv;

describe.skipIf(!available)('real datasets through every pipeline (demo model)', () => {
  const runs: Record<string, number> = {};
  const datasets: Record<string, number> = {};
  let probeId: number;
  let outDir: string;
  let star1Picked: { question: string; response: string }[];

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-pipelines-real-'));
    const cacheRoot = path.join(root, 'cache');
    model = await loadModel(writeDemoModel(demoModelDir(cacheRoot)).dir, { cacheRoot, threads: 1 });
    store = openProject(path.join(root, 'real.cliffscope'), { create: true });
    env = { store, model };
    outDir = path.join(root, 'selection');

    // Temp copies of the first rows (AdvBench rows are one line each).
    const csv = fs.readFileSync(advbench!, 'utf8').split(/\r?\n/).slice(0, ROWS + 1).join('\n') + '\n';
    fs.writeFileSync(path.join(root, 'advbench.csv'), csv);
    const harmless = (JSON.parse(fs.readFileSync(harmlessVal!, 'utf8')) as unknown[]).slice(0, ROWS);
    fs.writeFileSync(path.join(root, 'harmless.json'), JSON.stringify(harmless));
    // STAR-1 responses run to thousands of tokens; keep the first items that fit the demo model's 512 positions.
    const tok = model.tokenizer!;
    const all = JSON.parse(fs.readFileSync(star1!, 'utf8')) as { question: string; response: string }[];
    star1Picked = all.filter((x) => suppliedTranscriptIds(tok, x.question, x.response, true).ids.length <= 480).slice(0, ROWS);
    fs.writeFileSync(path.join(root, 'star1.json'), JSON.stringify(star1Picked));
  });
  afterAll(async () => {
    store?.close();
    await model?.session.release();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('imports the three files', () => {
    const adv = store.datasets.importFile('advbench', path.join(root, 'advbench.csv'));
    expect(adv.dataset.itemCount).toBe(ROWS);
    expect(adv.dataset.mapping).toMatchObject({ prompt: 'goal', response: 'target' });
    const harmless = store.datasets.importFile('harmless', path.join(root, 'harmless.json'));
    expect(harmless.dataset.itemCount).toBe(ROWS);
    expect(harmless.dataset.mapping).toMatchObject({ prompt: 'instruction' });
    const star = store.datasets.importFile('star1', path.join(root, 'star1.json'), { prompt: 'question', response: 'response' });
    expect(star1Picked).toHaveLength(ROWS);
    expect(star.dataset.itemCount).toBe(ROWS);
    expect(star.rejected).toEqual([]);
    datasets.advbench = adv.dataset.id;
    datasets.harmless = harmless.dataset.id;
    datasets.star1 = star.dataset.id;
  });

  it('trains a prompt-only probe', async () => {
    const result = await runProbeTraining(env, {
      name: 'advbench-prompt',
      positive: { kind: 'dataset', datasetId: datasets.advbench!, chat: true },
      negative: { kind: 'dataset', datasetId: datasets.harmless!, chat: true },
      positionRule: 'last-prompt-token',
      residIndices: [model.config.numLayers + 1],
      labelRule: 'all',
      train: { preset: 'paper-adam', lr: 0.2, epochs: 60, batchSize: 16, selectBy: 'val-loss' },
    });
    runs.probe = result.runId;
    probeId = result.bestProbeId;
    expect(result.probes).toHaveLength(1);
    const summary = runReport(store, result.runId).summary!;
    expect(summary).toMatchObject({ samples: 2 * ROWS, positives: ROWS, negatives: ROWS });
  });

  it('generates transcripts for the AdvBench prompts with the live probe', async () => {
    runs.transcripts = await runGenerate(env, { datasetId: datasets.advbench!, chat: true, maxNewTokens: 64, seed: 0, batchSize: 12, settings: [BASELINE_SETTING], probeId }, { name: 'advbench' });
    const ts = store.transcripts.list(runs.transcripts);
    expect(ts).toHaveLength(ROWS);
    expect(ts.every((t) => t.answerBoundary !== null)).toBe(true);
    expect(store.traces.list({ runId: runs.transcripts })).toHaveLength(ROWS);
  });

  it('traces, attributes heads and sweeps ablations', async () => {
    runs.trace = await runTrace(env, { probeId, extraProbeIds: [], source: { kind: 'run', runId: runs.transcripts! }, options: {} });
    expect(store.traces.list({ runId: runs.trace })).toHaveLength(ROWS);
    runs.heads = await runHeads(env, { probeId, source: { kind: 'run', runId: runs.transcripts! }, variant: 'code', perToken: false });
    expect(store.headMaps.list(runs.heads, { transcriptId: null })).toHaveLength(1);
    runs.ablate = await runAblation(env, {
      headsRunId: runs.heads,
      probeId,
      harmfulDatasetId: datasets.advbench!,
      harmlessDatasetId: datasets.harmless!,
      fractions: [0, 0.1],
      gammas: [0],
      randomControl: true,
      randomSeed: 0,
      headSets: [],
      judges: [{ kind: 'keyword', list: 'jbb' }],
      randomSeeds: 1,
      chat: true,
      maxNewTokens: 64,
      batchSize: 24,
      seed: 0,
    });
    const cells = store.sweeps.cells(runs.ablate);
    expect(cells.map((c) => c.control).sort()).toEqual(['random', 'top', 'top']);
    expect(store.transcripts.list(runs.ablate)).toHaveLength(cells.length * 2 * ROWS);
    for (const c of cells) {
      expect(c.metrics).toMatchObject({ harmful: ROWS, harmless: ROWS });
      expect(typeof c.metrics.asr).toBe('number');
    }
  });

  it('selects from STAR-1 and exports it for fine-tuning with provenance', async () => {
    const result = await runSelect(env, { datasetId: datasets.star1!, probeId, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 });
    runs.select = result.runId;
    expect(result.total).toBe(ROWS);
    expect(result.selected).toBe(3);
    const written = exportSelection(env.store, result.runId, outDir, env.model.tokenizer!);
    const names = written.map((f) => path.basename(f)).sort();
    expect(names).toEqual([
      'cliffscope_selection.json',
      'cliffscope_selection.provenance.json',
      'cliffscope_selection_messages.jsonl',
      'cliffscope_selection_messages.provenance.json',
      'dataset_info.json',
    ]);
    for (const f of written) expect(fs.existsSync(f)).toBe(true);

    const chosen = store.selections.list(result.runId, { selectedOnly: true }).map((s) => store.datasets.item(s.itemId)!);
    const alpaca = JSON.parse(fs.readFileSync(path.join(outDir, 'cliffscope_selection.json'), 'utf8')) as { instruction: string; input: string; output: string }[];
    expect(alpaca).toHaveLength(3);
    alpaca.forEach((r, i) => {
      expect(Object.keys(r).sort()).toEqual(['input', 'instruction', 'output']);
      expect(r.instruction).toBe(chosen[i]!.prompt);
      expect(r.input).toBe('');
      expect(r.output).toContain('</think>\n\n');
      // The training text is the dataset's own response (not a lossy round trip through the model's tokenizer).
      const [thinking, answer] = r.output.split('</think>\n\n');
      const original = chosen[i]!.response!;
      expect(original).toContain(thinking!.trim());
      expect(original.trimEnd().endsWith(answer!.trim())).toBe(true);
      expect(answer!.trim().length).toBeGreaterThan(0);
    });
    const lines = fs.readFileSync(path.join(outDir, 'cliffscope_selection_messages.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    lines.forEach((line, i) => {
      const { messages } = JSON.parse(line) as { messages: { role: string; content: string }[] };
      expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(messages[0]!.content).toBe(chosen[i]!.prompt);
      expect(messages[1]!.content).toBe(alpaca[i]!.output);
    });
    for (const [file, dataFormat] of [
      ['cliffscope_selection.provenance.json', 'alpaca'],
      ['cliffscope_selection_messages.provenance.json', 'messages'],
    ] as const) {
      const prov = JSON.parse(fs.readFileSync(path.join(outDir, file), 'utf8'));
      expect(prov).toMatchObject({ format: 'cliffscope-selection-provenance', dataFormat, modelHash: model.compiled.modelHash, probeId: String(probeId), variant: 'top-ms' });
      expect(prov.records).toHaveLength(3);
      expect(prov.extra).toMatchObject({ runId: result.runId, dataset: datasets.star1 });
    }
    const info = JSON.parse(fs.readFileSync(path.join(outDir, 'dataset_info.json'), 'utf8'));
    expect(info.cliffscope_selection.file_name).toBe('cliffscope_selection.json');
    expect(info.cliffscope_selection_messages.file_name).toBe('cliffscope_selection_messages.jsonl');
  });

  it('every run is done and reports', () => {
    expect(Object.keys(runs).sort()).toEqual(['ablate', 'heads', 'probe', 'select', 'trace', 'transcripts']);
    expect(store.runs.list().map((r) => r.status)).toEqual(Object.keys(runs).map(() => 'done'));
    for (const [kind, id] of Object.entries(runs)) {
      const r = runReport(store, id);
      expect(r.run.kind).toBe(kind);
      expect(r.run.status).toBe('done');
      expect(r.model?.contentHash).toBe(model.compiled.modelHash);
      const text = formatRunReport(r);
      expect(text).toContain(`run #${id} ${kind}`);
      expect(text).toContain('— done');
    }
  });
});
