/** Shared bits for the store tests: temp folders, error assertions, a small populated project. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { parseDataset } from '../../../src/main/engine/datasets/import.js';
import { CliffscopeError, type ErrorCode } from '../../../src/main/engine/errors.js';
import type { ProjectStore } from '../../../src/main/store/project-store.js';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cliffscope-${tag}-`));
}

/** Run fn, expect a CliffscopeError with this code whose message matches; return it. */
export function expectCliffscopeError(fn: () => unknown, code: ErrorCode, pattern: RegExp): CliffscopeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a CliffscopeError').toBeInstanceOf(CliffscopeError);
  const e = caught as CliffscopeError;
  expect(e.code).toBe(code);
  expect(e.message).toMatch(pattern);
  return e;
}

/** n synthetic prompts as a read dataset. */
export function syntheticDataset(n: number, prefix = 'prompt') {
  const lines = ['prompt,label'];
  for (let i = 0; i < n; i++) lines.push(`"${prefix} ${i}, please",${i % 2 ? 'harmful' : 'harmless'}`);
  return parseDataset(lines.join('\n'), 'csv');
}

/** Everything the refusal-cliff pipelines write, in miniature: generate → probe → trace → heads → ablate → judge → select. */
export function populate(store: ProjectStore) {
  const model = store.models.add({ path: '/models/tiny-qwen', contentHash: 'sha256:model-a', config: { layers: 2, heads: 3 }, compileOptions: { dtype: 'fp32' } });
  const dataset = store.datasets.add('prompts', syntheticDataset(6), '/data/prompts.csv');
  const items = store.datasets.items(dataset.id);

  const generate = store.runs.start({ kind: 'transcripts', modelId: model.id, datasetId: dataset.id, config: { seed: 1, maxNewTokens: 8 }, versions: { engine: '0.1.0' } });
  const transcripts: number[] = [];
  for (const it of items) {
    store.runs.commitItem(generate.id, `item-${it.idx}`, (s) => {
      const id = s.transcripts.add({
        runId: generate.id,
        itemId: it.id,
        prompt: it.prompt,
        tokenIds: [100 + it.idx, 7, 8, 9, 10, 11],
        promptTokens: 2,
        text: `<think>hmm ${it.idx}</think>\n\nanswer`,
        thinkingStart: 3,
        thinkingEnd: 4,
        answerBoundary: 5,
        finishReason: 'eos',
      });
      transcripts.push(id);
      return { transcript: id };
    });
  }
  store.runs.finish(generate.id);

  const probeRun = store.runs.start({ kind: 'probe', modelId: model.id, parentRunId: generate.id, config: { seed: 2, lr: 1e-3 } });
  const probe = store.probes.add({
    modelId: model.id,
    runId: probeRun.id,
    name: 'refusal',
    residIndex: 2,
    positionRule: 'answer-boundary',
    weights: [0.5, -0.25, 1, 2],
    bias: -0.1,
    metrics: { valAccuracy: 0.98 },
    provenance: { positives: 3, negatives: 3 },
  });
  store.runs.finish(probeRun.id);

  const trace = store.runs.start({ kind: 'trace', modelId: model.id, parentRunId: generate.id, config: { probe: probe.uid } });
  for (const t of transcripts) {
    store.runs.commitItem(trace.id, `t-${t}`, (s) => {
      s.traces.add({ runId: trace.id, transcriptId: t, probeId: probe.id, residIndex: 2, scores: [0.1, 0.9, 0.95, 0.2], plateau: 0.95, final: 0.2, ms: 0.75, steepestDropPos: 3, cliffWidth: 1 });
    });
  }
  store.runs.finish(trace.id);

  const heads = store.runs.start({ kind: 'heads', modelId: model.id, parentRunId: generate.id });
  store.headMaps.add({ runId: heads.id, transcriptId: transcripts[0]!, probeId: probe.id, positionRule: 'answer-boundary', layers: 2, heads: 3, scores: [1, -2, 3, -4, 5, -6], tokens: 2, perToken: new Float32Array(12).map((_, i) => i) });
  store.headMaps.add({ runId: heads.id, probeId: probe.id, positionRule: 'answer-boundary', layers: 2, heads: 3, scores: [0, -1, 0, -3, 0, 0] });
  store.runs.finish(heads.id);

  const judge = store.runs.start({ kind: 'judge', parentRunId: generate.id, config: { judge: 'keyword:gcg' } });
  transcripts.forEach((t, i) => store.verdicts.add({ runId: judge.id, transcriptId: t, judge: 'keyword:gcg', verdict: i % 3 ? 'refused' : 'complied', harmful: i % 3 === 0, detail: { prefix: 'I cannot' } }));
  store.runs.finish(judge.id);

  const select = store.runs.start({ kind: 'select', modelId: model.id, datasetId: dataset.id, config: { rule: 'ms', top: 0.34 } });
  // Ranked by score, highest first; the top 3 selected (as analysis/select.ts would rank them).
  const scores = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2];
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  items.forEach((it, i) => {
    const rank = order.indexOf(i) + 1;
    store.selections.add({ runId: select.id, itemId: it.id, transcriptId: transcripts[i]!, score: scores[i]!, rank, selected: rank <= 3 });
  });
  store.runs.finish(select.id);

  return { model, dataset, items, transcripts, probe, runs: { generate, probeRun, trace, heads, judge, select } };
}

/** Row counts of every table (for before/after comparisons). */
const TABLES = ['models', 'datasets', 'dataset_items', 'runs', 'run_items', 'probes', 'transcripts', 'traces', 'head_maps', 'sweep_cells', 'verdicts', 'selections'] as const;

export function tableCounts(store: ProjectStore): Record<(typeof TABLES)[number], number> {
  return Object.fromEntries(TABLES.map((t) => [t, Number(store.query(`SELECT COUNT(*) AS n FROM ${t}`)[0]!.n)])) as Record<(typeof TABLES)[number], number>;
}
