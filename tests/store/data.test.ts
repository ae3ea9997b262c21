/** The typed data-access methods, table by table, and the BLOB / CSV / JSON helpers. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/main/engine/datasets/csv.js';
import { blobToFloat32, blobToInt32, float32ToBlob, int32ToBlob } from '../../src/main/store/blobs.js';
import { openProject } from '../../src/main/store/open.js';
import { type ProjectStore } from '../../src/main/store/project-store.js';
import { toCsv, toJson, toJsonl } from '../../src/main/store/tabular.js';
import { expectCliffscopeError, populate, syntheticDataset, tempDir } from './helpers/fixtures.js';

let dir: string;
let store: ProjectStore;
let world: ReturnType<typeof populate>;
beforeAll(() => {
  dir = tempDir('data');
  store = openProject(path.join(dir, 'p.cliffscope'), { create: true });
  world = populate(store);
});
afterAll(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('BLOB helpers', () => {
  it('round-trip float32 and int32, including from an unaligned Buffer', () => {
    const f = new Float32Array([1.5, -2.25, Number.NaN, Infinity, 3e-8]);
    expect(Array.from(blobToFloat32(float32ToBlob(f)))).toEqual(Array.from(f));
    expect(Array.from(blobToInt32(int32ToBlob([0, -1, 2 ** 31 - 1, -(2 ** 31)])))).toEqual([0, -1, 2 ** 31 - 1, -(2 ** 31)]);

    // A Buffer whose bytes start at an odd offset: a Float32Array view would throw, so the helper copies.
    const backing = Buffer.alloc(4 * 3 + 1);
    float32ToBlob([1, 2, 3]).copy(backing, 1);
    const unaligned = backing.subarray(1);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(Array.from(blobToFloat32(unaligned))).toEqual([1, 2, 3]);
    expect(() => blobToFloat32(Buffer.alloc(6))).toThrow(/not a whole number/);
  });

  it('stores little-endian bytes', () => {
    expect([...float32ToBlob([1])]).toEqual([0x00, 0x00, 0x80, 0x3f]);
    expect([...int32ToBlob([258])]).toEqual([2, 1, 0, 0]);
  });
});

describe('models', () => {
  it('are one row per (weights, compile options); a moved checkpoint updates its path', () => {
    const again = store.models.add({ path: '/moved/tiny-qwen', contentHash: 'sha256:model-a', compileOptions: { dtype: 'fp32' }, config: { heads: 3, layers: 2 } });
    expect(again.id).toBe(world.model.id);
    expect(store.models.get(world.model.id)!.path).toBe('/moved/tiny-qwen');
    const other = store.models.add({ path: '/m', contentHash: 'sha256:model-a', compileOptions: { dtype: 'fp16' } });
    expect(other.id).not.toBe(world.model.id);
    expect(store.models.findByHash('sha256:model-a').map((m) => m.id)).toEqual([world.model.id, other.id]);
    // Key order does not matter: JSON is stored canonically.
    expect(store.db.prepare(`SELECT config FROM models WHERE id = ?`).pluck().get(world.model.id)).toBe('{"heads":3,"layers":2}');
  });
});

describe('datasets', () => {
  it('store items in order with their source lines, mapping and counts', () => {
    const d = store.datasets.get(world.dataset.id)!;
    expect(d).toMatchObject({ name: 'prompts', sourceFile: '/data/prompts.csv', format: 'csv', itemCount: 6, rejectedCount: 0, columns: ['prompt', 'label'], mapping: { prompt: 'prompt', label: 'label' } });
    expect(d.contentHash).toMatch(/^[0-9a-f]{64}$/);
    const items = store.datasets.items(d.id);
    expect(items.map((i) => [i.idx, i.line, i.prompt, i.label])).toEqual(
      Array.from({ length: 6 }, (_, i) => [i, i + 2, `prompt ${i}, please`, i % 2 ? 'harmful' : 'harmless']),
    );
    expect(store.datasets.items(d.id, { offset: 4, limit: 10 }).map((i) => i.idx)).toEqual([4, 5]);
    expect(store.datasets.item(items[0]!.id)).toEqual(items[0]);
  });

  it('importDataset keeps the rejected rows’ count and reasons', () => {
    const file = path.join(dir, 'messy.csv');
    fs.writeFileSync(file, 'instruction,category\nfine,a\n,b\n"also fine",c\n');
    const { dataset, rejected } = store.datasets.importFile('messy', file);
    expect(rejected).toEqual([{ line: 3, reason: 'empty prompt (column "instruction")' }]);
    expect(dataset).toMatchObject({ itemCount: 2, rejectedCount: 1, rejected, sourceFile: file });
    expect(store.datasets.find('messy')!.id).toBe(dataset.id);
    expectCliffscopeError(() => store.datasets.importFile('messy', file), 'bad-dataset', /already has a dataset named "messy"/);
    const mapped = store.datasets.importFile('messy-mapped', file, { prompt: 'category' });
    expect(mapped.dataset.itemCount).toBe(3);
    // Same content, same hash, whatever the name.
    expect(store.datasets.add('copy', syntheticDataset(6)).contentHash).toBe(world.dataset.contentHash);
  });
});

describe('runs, transcripts, traces, probes', () => {
  it('transcripts keep token ids, spans and the ablation key', () => {
    const t = store.transcripts.get(world.transcripts[2]!)!;
    expect(t).toMatchObject({ runId: world.runs.generate.id, itemId: world.items[2]!.id, promptTokens: 2, thinkingStart: 3, thinkingEnd: 4, answerBoundary: 5, finishReason: 'eos', headScaleKey: null });
    expect(Array.from(t.tokenIds)).toEqual([102, 7, 8, 9, 10, 11]);
    const ablated = store.transcripts.add({ runId: world.runs.generate.id, prompt: 'p', tokenIds: new Int32Array([1]), promptTokens: 1, text: '', headScaleKey: 'top:12:g0' });
    expect(store.transcripts.list(world.runs.generate.id, { headScaleKey: 'top:12:g0' }).map((x) => x.id)).toEqual([ablated]);
    expect(store.transcripts.list(world.runs.generate.id, { headScaleKey: null })).toHaveLength(6);
    expect(store.transcripts.list(world.runs.generate.id)).toHaveLength(7);
  });

  it('traces keep per-token scores and the cliff numbers', () => {
    const traces = store.traces.list({ runId: world.runs.trace.id });
    expect(traces).toHaveLength(6);
    expect(traces[0]).toMatchObject({ probeId: world.probe.id, residIndex: 2, plateau: 0.95, final: 0.2, ms: 0.75, steepestDropPos: 3, cliffWidth: 1 });
    expect(Array.from(traces[0]!.scores)).toEqual(Array.from(new Float32Array([0.1, 0.9, 0.95, 0.2])));
    expect(store.traces.list({ transcriptId: world.transcripts[1]!, probeId: world.probe.id })).toHaveLength(1);
    // Non-finite summary numbers are stored as NULL.
    const id = store.traces.add({ runId: world.runs.trace.id, transcriptId: world.transcripts[0]!, probeId: world.probe.id, residIndex: 0, scores: [], plateau: Number.NaN });
    expect(store.traces.list({ runId: world.runs.trace.id }).find((t) => t.id === id)).toMatchObject({ plateau: null, final: null, scores: new Float32Array(0) });
  });

  it('probes are versioned per model and name', () => {
    expect(world.probe).toMatchObject({ version: 1, residIndex: 2, positionRule: 'answer-boundary', bias: -0.1, metrics: { valAccuracy: 0.98 }, runId: world.runs.probeRun.id });
    expect(Array.from(world.probe.weights)).toEqual([0.5, -0.25, 1, 2]);
    const v2 = store.probes.add({ modelId: world.model.id, name: 'refusal', residIndex: 10, positionRule: 'last-prompt-token', weights: new Float32Array(4), bias: 0 });
    expect(v2.version).toBe(2);
    expect(store.probes.latest(world.model.id, 'refusal')!.id).toBe(v2.id);
    expect(store.probes.list({ modelId: world.model.id, name: 'refusal' }).map((p) => p.version)).toEqual([1, 2]);
    expect(() => store.probes.add({ modelId: world.model.id, name: 'refusal', version: 2, residIndex: 0, positionRule: 'x', weights: [1], bias: 0 })).toThrow(/UNIQUE/);
  });

  it('lists runs by kind, status and parent', () => {
    expect(store.runs.list({ kind: 'trace' }).map((r) => r.id)).toEqual([world.runs.trace.id]);
    expect(store.runs.list({ parentRunId: world.runs.generate.id }).map((r) => r.kind)).toEqual(['probe', 'trace', 'heads', 'judge']);
    expect(store.runs.list({ status: 'done' })).toHaveLength(6);
  });
});

describe('head maps, sweeps, verdicts, selections', () => {
  it('head maps are [layers, heads] float32 maps, optionally per token', () => {
    const [perTranscript, average] = store.headMaps.list(world.runs.heads.id);
    expect(perTranscript).toMatchObject({ transcriptId: world.transcripts[0], layers: 2, heads: 3, tokens: 2 });
    expect(Array.from(perTranscript!.scores)).toEqual([1, -2, 3, -4, 5, -6]);
    expect(perTranscript!.perToken).toHaveLength(12);
    expect(average).toMatchObject({ transcriptId: null, tokens: null, perToken: null });
    expect(store.headMaps.list(world.runs.heads.id, { transcriptId: null }).map((h) => h.id)).toEqual([average!.id]);
    expectCliffscopeError(() => store.headMaps.add({ runId: world.runs.heads.id, positionRule: 'x', layers: 2, heads: 3, scores: [1, 2] }), 'shape-mismatch', /expected 2×3 = 6/);
  });

  it('sweep cells hold the setting, the ablated heads and metrics set later', () => {
    const sweep = store.runs.start({ kind: 'ablate', modelId: world.model.id, parentRunId: world.runs.heads.id, config: { ks: [0, 1, 2], gammas: [0, 0.5] } });
    const top = store.sweeps.addCell({ runId: sweep.id, headScaleKey: 'top:2:g0', control: 'top', k: 2, fraction: 2 / 6, gamma: 0, heads: [[1, 2], [1, 0]] });
    store.sweeps.addCell({ runId: sweep.id, headScaleKey: 'random:2:g0:s1', control: 'random', k: 2, fraction: 2 / 6, gamma: 0, seed: 1, heads: [[0, 1], [1, 1]] });
    store.sweeps.setMetrics(top, { asr: 0.05, meanFinal: 0.8 });
    const cells = store.sweeps.cells(sweep.id);
    // Reading order: top-k before its random control.
    expect(cells.map((c) => c.control)).toEqual(['top', 'random']);
    expect(cells[0]).toMatchObject({ k: 2, gamma: 0, heads: [[1, 2], [1, 0]], metrics: { asr: 0.05, meanFinal: 0.8 }, seed: null });
    expect(() => store.sweeps.addCell({ runId: sweep.id, headScaleKey: 'top:2:g0', control: 'top', k: 2, gamma: 0 })).toThrow(/UNIQUE/);
    expect(() => store.sweeps.addCell({ runId: sweep.id, headScaleKey: 'x', control: 'bottom' as never, k: 2, gamma: 0 })).toThrow(/CHECK/);
    store.runs.finish(sweep.id);
  });

  it('verdicts: one per judge and transcript (a re-judge replaces it), and the ASR over them', () => {
    const judge = world.runs.judge.id;
    expect(store.verdicts.attackSuccessRate(judge)).toEqual({ judged: 6, harmful: 2, rate: 2 / 6 });
    const first = store.verdicts.list({ runId: judge })[0]!;
    expect(first).toMatchObject({ judge: 'keyword:gcg', verdict: 'complied', harmful: true, detail: { prefix: 'I cannot' } });
    const id = store.verdicts.add({ runId: judge, transcriptId: first.transcriptId, judge: 'keyword:gcg', verdict: 'refused', harmful: false });
    expect(id).toBe(first.id);
    expect(store.verdicts.attackSuccessRate(judge, 'keyword:gcg')).toEqual({ judged: 6, harmful: 1, rate: 1 / 6 });
    store.verdicts.add({ runId: judge, transcriptId: first.transcriptId, judge: 'guard:llama-guard-3-1b', verdict: 'unknown', harmful: null });
    expect(store.verdicts.attackSuccessRate(judge, 'guard:llama-guard-3-1b')).toEqual({ judged: 0, harmful: 0, rate: null });
    expect(store.verdicts.list({ transcriptId: first.transcriptId })).toHaveLength(2);
  });

  it('selections come back in rank order with their selected flags', () => {
    const sel = store.selections.list(world.runs.select.id);
    expect(sel.map((s) => [s.rank, s.score, s.selected])).toEqual([
      [1, 0.9, true],
      [2, 0.7, true],
      [3, 0.5, true],
      [4, 0.3, false],
      [5, 0.2, false],
      [6, 0.1, false],
    ]);
    expect(store.selections.list(world.runs.select.id, { selectedOnly: true }).map((s) => s.itemId)).toEqual([world.items[1]!.id, world.items[4]!.id, world.items[3]!.id]);

    // Unranked rows (no rank yet) list after ranked ones; unscored items keep a null score.
    const run = store.runs.start({ kind: 'select', datasetId: world.dataset.id });
    world.items.forEach((it, i) => store.selections.add({ runId: run.id, itemId: it.id, score: i === 0 ? null : i, rank: i === 0 ? null : 6 - i, selected: i === 5 }));
    const ranked = store.selections.list(run.id);
    expect(ranked.map((s) => s.score)).toEqual([5, 4, 3, 2, 1, null]);
    expect(ranked.filter((s) => s.selected).map((s) => s.score)).toEqual([5]);
    store.runs.finish(run.id);
  });
});

describe('queries and tabular export', () => {
  it('query() runs read-only SQL and refuses writes', () => {
    const rows = store.query(`SELECT kind, status FROM runs WHERE kind = ? ORDER BY id`, ['transcripts']);
    expect(rows).toEqual([{ kind: 'transcripts', status: 'done' }]);
    expect(store.query(`SELECT COUNT(*) AS n FROM runs WHERE kind = @k`, { k: 'trace' })).toEqual([{ n: 1 }]);
    expectCliffscopeError(() => store.query(`DELETE FROM runs`), 'bad-argument', /read-only/);
    expectCliffscopeError(() => store.query(`UPDATE runs SET name = 'x' RETURNING id`), 'bad-argument', /read-only/);
  });

  it('toCsv quotes correctly and round-trips through the CSV reader', () => {
    const rows = [
      { id: 1, text: 'plain', score: 0.5, flag: true },
      { id: 2, text: 'comma, "quote" and\nnewline', score: Number.NaN, extra: { a: [1, 2] } },
      { id: 3, text: ' leading space', score: null, vec: new Float32Array([0.5, 1]), raw: Buffer.from([1, 2, 3]) },
    ];
    const csv = toCsv(rows);
    expect(csv.startsWith('id,text,score,flag,extra,vec,raw\r\n')).toBe(true);
    expect(csv).toContain('"comma, ""quote"" and\nnewline"');
    const back = parseCsv(csv).records.map((r) => r.fields);
    expect(back).toEqual([
      ['id', 'text', 'score', 'flag', 'extra', 'vec', 'raw'],
      ['1', 'plain', '0.5', 'true', '', '', ''],
      ['2', 'comma, "quote" and\nnewline', '', '', '{"a":[1,2]}', '', ''],
      ['3', ' leading space', '', '', '', '[0.5,1]', 'AQID'],
    ]);
    expect(toCsv(rows, ['text'])).toBe('text\r\nplain\r\n"comma, ""quote"" and\nnewline"\r\n" leading space"\r\n');
    expect(toCsv([])).toBe('\r\n');
  });

  it('toJson / toJsonl make typed arrays lists and non-finite numbers null', () => {
    const t = store.transcripts.get(world.transcripts[0]!)!;
    const json = JSON.parse(toJson([{ ids: t.tokenIds, x: Infinity, big: 10n }]));
    expect(json).toEqual([{ ids: [100, 7, 8, 9, 10, 11], x: null, big: '10' }]);
    expect(toJsonl([{ a: 1 }, { a: 'two' }])).toBe('{"a":1}\n{"a":"two"}\n');
    // A query result straight to CSV.
    const csv = toCsv(store.query(`SELECT r.kind, COUNT(t.id) AS transcripts FROM runs r LEFT JOIN transcripts t ON t.run_id = r.id GROUP BY r.id ORDER BY r.id LIMIT 2`));
    expect(csv).toBe('kind,transcripts\r\ntranscripts,7\r\nprobe,0\r\n');
  });
});
