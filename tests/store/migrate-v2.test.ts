/**
 * Project format 2 on a project made by format 1: runs of kind "generate" become "transcripts" with every row they
 * own kept (the runs table is rebuilt; nothing cascades), probes and traces name the residual-stack index they
 * read `resid_index`, and the JSON stored with runs takes the shapes the run kinds' specs read — so old runs still
 * report and resume. Reading an old project through the API upgrades it first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../src/main/api/dispatch.js';
import { runReport } from '../../src/main/api/runs.js';
import { storedConfig } from '../../src/main/pipelines/common.js';
import { openProject } from '../../src/main/store/open.js';
import { configure, migrate } from '../../src/main/store/project-file.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/main/store/schema.js';
import { summaryOf } from '../../src/shared/contract.js';
import { transcriptsRun } from '../../src/shared/runs/transcripts.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-migrate-v2-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const json = (v: unknown) => JSON.stringify(v);

/** A format-1 project as format 1's code wrote it: a generate run (API-style sampling, a flat γ row), a CLI one, a probe run, a trace. */
function formatOneProject(file: string): void {
  const db = new BetterSqlite3(file);
  configure(db);
  migrate(db, MIGRATIONS.slice(0, 1));
  const one = <T>(sql: string, ...p: unknown[]) => db.prepare(sql).get(...p) as T;
  db.prepare(`INSERT INTO models (path, content_hash, config) VALUES ('/m', 'h', ?)`).run(json({ numLayers: 2, numHeads: 3, hiddenSize: 4 }));
  db.prepare(`INSERT INTO datasets (name, content_hash, item_count) VALUES ('d', 'x', 1)`).run();
  db.prepare(`INSERT INTO dataset_items (dataset_id, idx, prompt) VALUES (1, 0, 'p')`).run();
  const run = (uid: string, kind: string, config: unknown, parent: number | null = null) =>
    Number(db.prepare(`INSERT INTO runs (uid, kind, model_id, dataset_id, parent_run_id, config, status) VALUES (?, ?, 1, 1, ?, ?, 'done')`).run(uid, kind, parent, json(config)).lastInsertRowid);
  const flat = [1, 0, 1, 1, 1, 0.5];
  const gen = run('g1', 'generate', {
    datasetId: 1, chat: true, maxNewTokens: 8, seed: 0, batchSize: 2,
    sampling: { doSample: true, temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1 },
    settings: [{ key: 'baseline' }, { key: 'heads:0:1', headScale: flat }],
  });
  const cli = run('g2', 'generate', { datasetId: 1, chat: true, maxNewTokens: 8, seed: 0, batchSize: 2, sampling: { doSample: false, temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1 }, settings: [{ key: 'baseline' }] });
  const probeRun = run('p1', 'probe', { name: 'refusal', positive: { kind: 'run', runId: gen }, negative: { kind: 'run', runId: cli }, positionRule: 'answer-boundary', layers: [3], labelRule: 'all', train: {} });
  const trace = run('t1', 'trace', { probeId: 1, extraProbeIds: [], source: { kind: 'run', runId: gen }, options: {} }, gen);
  db.prepare(`INSERT INTO probes (uid, model_id, run_id, name, version, layer, position_rule, dim, weights, bias) VALUES ('pr', 1, ?, 'refusal', 1, 3, 'answer-boundary', 1, x'0000803f', 0)`).run(probeRun);
  for (const r of [gen, gen, cli]) db.prepare(`INSERT INTO transcripts (uid, run_id, item_id, prompt, token_ids, prompt_tokens, text) VALUES (?, ?, 1, 'p', x'01000000', 1, '')`).run(`t${Math.random()}`, r);
  db.prepare(`INSERT INTO traces (run_id, transcript_id, probe_id, layer, scores) VALUES (?, 1, 1, 3, x'0000803f')`).run(trace);
  db.prepare(`INSERT INTO run_items (run_id, key, status, payload) VALUES (?, 'summary', 'done', ?)`).run(
    probeRun,
    json({ samples: 2, positives: 1, negatives: 1, skippedNoPosition: 0, skippedNotRefusal: 0, transcripts: 2, probes: [{ layer: 3, probeId: 1, valAccuracy: 1, valAuroc: null }], bestProbeId: 1, bestLayer: 3 }),
  );
  db.prepare(`INSERT INTO run_items (run_id, key, status) VALUES (?, 'i1:baseline', 'done')`).run(gen);
  expect(one<{ n: number }>(`SELECT COUNT(*) AS n FROM transcripts`).n).toBe(3);
  db.close();
}

describe('project format 2', () => {
  it('upgrades a format-1 project without losing a row, and its old runs read as their kinds', () => {
    const file = path.join(dir, 'old.cliffscope');
    formatOneProject(file);
    const store = openProject(file);
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(store.runs.list().map((r) => r.kind)).toEqual(['transcripts', 'transcripts', 'probe', 'trace']);
      // The rebuilt runs table kept everything that refers to it: nothing cascaded, every reference holds.
      expect(store.transcripts.list(1)).toHaveLength(2);
      expect(store.transcripts.list(2)).toHaveLength(1);
      expect(store.runs.items(1)).toHaveLength(1);
      expect(store.runs.get(4)!.parentRunId).toBe(1);
      expect(store.db.pragma('foreign_key_check')).toEqual([]);
      expect(store.checkIntegrity()).toEqual(['ok']);
      // The residual-stack index under its own name.
      expect(store.probes.get(1)!.residIndex).toBe(3);
      expect(store.traces.list({ runId: 4 })[0]!.residIndex).toBe(3);
      // Stored configs in the API's shapes: sampling without the sampler's doSample, γ as [layers][heads].
      const api = storedConfig(store, transcriptsRun, store.runs.get(1)!);
      expect(api.sampling).toEqual({ temperature: 0.7, topP: 0.9, topK: 0, repetitionPenalty: 1 });
      expect(api.settings[1]!.headScale).toEqual([
        [1, 0, 1],
        [1, 1, 0.5],
      ]);
      expect(storedConfig(store, transcriptsRun, store.runs.get(2)!).sampling).toBeUndefined(); // greedy
      // The probe run reports, typed: its config's and summary's residual-stack indices renamed.
      const report = runReport(store, 3);
      expect(report.kind === 'probe' && report.run.config.residIndices).toEqual([3]);
      expect(summaryOf(report, 'probe')).toMatchObject({ bestResidIndex: 3, probes: [{ residIndex: 3, probeId: 1 }] });
    } finally {
      store.close();
    }
  });

  it('leaves kinds to the application: the table takes a kind a later Cliffscope adds, with no migration', () => {
    const file = path.join(dir, 'kinds.cliffscope');
    const store = openProject(file, { create: true });
    try {
      expect(() => store.db.prepare(`INSERT INTO runs (uid, kind) VALUES ('u', 'causal-heads')`).run()).not.toThrow();
      // The store itself only creates kinds the application knows.
      expect(() => store.runs.create({ kind: 'causal-heads' as 'trace' })).toThrow(/unknown run kind "causal-heads"/);
    } finally {
      store.close();
    }
  });

  it('is upgraded on first read through the API, so an old project opens in the app and the CLI', async () => {
    const file = path.join(dir, 'read.cliffscope');
    formatOneProject(file);
    const res = await dispatch('project.open', { file });
    expect(res.ok, JSON.stringify(!res.ok && res.error)).toBe(true);
    const summary = (res as { result: { runs: { kind: string }[]; probes: { residIndex: number }[] } }).result;
    expect(summary.runs.map((r) => r.kind)).toEqual(['transcripts', 'transcripts', 'probe', 'trace']);
    expect(summary.probes[0]!.residIndex).toBe(3);
  });
});
