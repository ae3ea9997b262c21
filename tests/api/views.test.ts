/**
 * The workbench's plot and table methods on a demo project, checked against the project store and the run reports:
 * traces, tail-aligned averages, head maps (the demo's planted heads come out on top), sweep cells, transcripts,
 * selections, probes, comparisons and CSV tables; unknown ids give clear errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCliff, tailAlignedAverage, traceMetrics } from '../../src/main/engine/analysis/trace.js';
import { DEMO_PLANTED_HEADS } from '../../src/main/api/demo/planted-model.js';
import { readSummary } from '../../src/main/pipelines/common.js';
import { summaryOf } from '../../src/shared/contract.js';
import { traceRun } from '../../src/shared/runs/trace.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { parseCsv } from '../../src/main/engine/datasets/csv.js';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { readTranscript } from '../../src/main/engine/runtime/transcript.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { referenceForward } from '../support/reference-forward.js';
import { call, callError, disposeFixture, makeDemoFixture, type Fixture } from './demo-fixture.js';

let fx: Fixture;
let store: ProjectStore;
let runs: Record<string, number>;

beforeAll(async () => {
  fx = await makeDemoFixture('views');
  store = openProject(fx.file, { readonly: true });
  runs = fx.demo.report.runs;
});

afterAll(async () => {
  store?.close();
  await disposeFixture(fx);
});

const close = (a: number | null, b: number | null) => (a === null || b === null ? expect(a).toBe(b) : expect(a).toBeCloseTo(b, 5));

describe('trace.list', () => {
  it('lists every traced transcript of a trace run with the stored metrics', async () => {
    const r = await call('trace.list', { project: fx.file, runId: runs.trace! });
    const probeId = fx.demo.report.probe.id;
    expect(r.probeId).toBe(probeId);
    expect(r.probes).toEqual([{ probeId, residIndex: fx.demo.report.probe.residIndex }]);
    const stored = store.traces.list({ runId: runs.trace!, probeId });
    expect(r.traces).toHaveLength(stored.length);
    expect(stored.length).toBeGreaterThan(0);
    r.traces.forEach((row, i) => {
      const tr = stored[i]!;
      const t = store.transcripts.get(tr.transcriptId)!;
      expect(row.transcriptId).toBe(tr.transcriptId);
      expect(row.itemId).toBe(t.itemId);
      expect(row.label).toBe(store.datasets.item(t.itemId!)!.label);
      expect(row.tokens).toBe(t.tokenIds.length);
      expect(row.prompt.length).toBeLessThanOrEqual(300);
      close(row.plateau, tr.plateau);
      close(row.final, tr.final);
      close(row.ms, tr.ms);
      expect(row.steepestDropPos).toBe(tr.steepestDropPos);
    });
  });

  it('refuses an unknown run and a probe that did not trace the run', async () => {
    const e = await callError('trace.list', { project: fx.file, runId: 999 });
    expect(e.code).toBe('bad-argument');
    expect(e.message).toMatch(/run #999 does not exist in /);
    const e2 = await callError('trace.list', { project: fx.file, runId: runs.trace!, probeId: 999 });
    expect(e2.message).toMatch(/probe #999 does not exist in /);
  });

  it('gives an empty list for a run without traces', async () => {
    const r = await call('trace.list', { project: fx.file, runId: runs.transcripts! });
    expect(r).toMatchObject({ probeId: null, probes: [], traces: [], cliffs: { traces: 0, withCliff: 0, meanWidth: null } });
  });

  it('says which traces have a cliff by the engine’s one rule: the harmful prompts’ do, the harmless ones’ do not', async () => {
    const harmful = await call('trace.list', { project: fx.file, runId: runs.trace! });
    for (const t of harmful.traces) expect(t.hasCliff, `transcript #${t.transcriptId}`).toBe(hasCliff(t));
    expect(harmful.cliffs.withCliff).toBe(harmful.traces.filter((t) => t.hasCliff).length);
    expect(harmful.cliffs.withCliff).toBeGreaterThan(harmful.traces.length / 2);
    const widths = harmful.traces.filter((t) => t.hasCliff).map((t) => t.width!);
    expect(harmful.cliffs.meanWidth).toBeCloseTo(widths.reduce((a, b) => a + b, 0) / widths.length, 9);
    const harmless = await call('trace.list', { project: fx.file, runId: runs.traceHarmless! });
    expect(harmless.cliffs).toMatchObject({ traces: harmless.traces.length, withCliff: 0, meanWidth: null });
    const one = await call('trace.get', { project: fx.file, transcriptId: harmful.traces[0]!.transcriptId, runId: runs.trace! });
    expect(one.metrics!.hasCliff).toBe(harmful.traces[0]!.hasCliff);
    // The averaged curves: a cliff region for the harmful set, none for the harmless one.
    expect((await call('trace.average', { project: fx.file, runId: runs.trace! })).hasCliff).toBe(true);
    expect((await call('trace.average', { project: fx.file, runId: runs.traceHarmless! })).hasCliff).toBe(false);
  });
});

describe('trace.get', () => {
  it('returns one score and one display token per transcript position', async () => {
    const list = await call('trace.list', { project: fx.file, runId: runs.trace! });
    const first = list.traces[0]!;
    const r = await call('trace.get', { project: fx.file, transcriptId: first.transcriptId });
    const t = store.transcripts.get(first.transcriptId)!;
    expect(r.tokensFrom).toBe('tokenizer');
    expect(r.tokens).toHaveLength(r.scores.length);
    expect(r.tokenIds).toEqual(Array.from(t.tokenIds));
    expect(r.scores).toHaveLength(t.tokenIds.length);
    expect(r.runId).toBe(runs.trace);
    expect(r.transcriptRunId).toBe(runs.transcripts);
    expect(r.promptTokens).toBe(t.promptTokens);
    expect(r.answerBoundary).toBe(t.answerBoundary);
    expect(r.tokens[t.answerBoundary!]).toContain('</think>');
    const stored = store.traces.list({ runId: runs.trace!, transcriptId: first.transcriptId })[0]!;
    r.scores.forEach((s, i) => (Number.isNaN(stored.scores[i]!) ? expect(s).toBeNull() : expect(s).toBeCloseTo(stored.scores[i]!, 6)));
    close(r.metrics!.final, stored.final);
    // The cliff: high through the thinking, low at the answer boundary.
    expect(r.metrics!.plateau!).toBeGreaterThan(0.8);
    expect(r.metrics!.final!).toBeLessThan(0.2);
    expect(r.perResid).toBeUndefined();
    const all = await call('trace.get', { project: fx.file, transcriptId: first.transcriptId, perResid: true });
    expect(all.perResid).toEqual([{ probeId: r.probeId, residIndex: r.residIndex, scores: r.scores }]);
  });

  it('refuses an unknown transcript, and a probe or run that never traced it', async () => {
    expect((await callError('trace.get', { project: fx.file, transcriptId: 99999 })).message).toMatch(/transcript #99999 does not exist in /);
    const list = await call('trace.list', { project: fx.file, runId: runs.trace! });
    const id = list.traces[0]!.transcriptId;
    expect((await callError('trace.get', { project: fx.file, transcriptId: id, runId: runs.heads! })).message).toMatch(/has no trace in run/);
    expect((await callError('trace.get', { project: fx.file, transcriptId: id, probeId: 4242 })).message).toMatch(/probe #4242 does not exist in /);
  });
});

describe('trace.average', () => {
  it('equals the tail-aligned average stored in the trace run summary', async () => {
    const r = await call('trace.average', { project: fx.file, runId: runs.trace! });
    const summary = readSummary(store, traceRun, runs.trace!)!;
    const ta = summary.tailAligned!;
    expect(r.positions).toHaveLength(100);
    expect(r.positions).toEqual(ta.positions);
    expect(r.count).toEqual(ta.count);
    r.mean.forEach((m, i) => close(m, ta.mean[i] ?? null));
    expect(r.cliffFrom).toBeCloseTo(0.95, 10);
    expect(r.traces).toBe(summary.transcripts);
    // The cliff is in the average too.
    expect(r.mean[50]!).toBeGreaterThan(0.8);
    expect(r.mean[99]!).toBeLessThan(0.2);
  });

  it('filters by label and resamples to the points asked for', async () => {
    const harmful = await call('trace.average', { project: fx.file, runId: runs.trace!, label: 'harmful', points: 10 });
    expect(harmful.positions).toHaveLength(10);
    expect(harmful.label).toBe('harmful');
    const none = await call('trace.average', { project: fx.file, runId: runs.trace!, label: 'no-such-label' });
    expect(none.traces).toBe(0);
    expect(none.mean.every((m) => m === null)).toBe(true);
    // Same computation by hand for the harmless run.
    const probeId = fx.demo.report.probe.id;
    const cut = store.traces.list({ runId: runs.traceHarmless!, probeId }).map((tr) => {
      const t = store.transcripts.get(tr.transcriptId)!;
      return tr.scores.slice(t.promptTokens, t.answerBoundary! + 1);
    });
    const expected = tailAlignedAverage(cut);
    const got = await call('trace.average', { project: fx.file, runId: runs.traceHarmless! });
    got.mean.forEach((m, i) => close(m, Number.isNaN(expected.mean[i]!) ? null : expected.mean[i]!));
  });

  it("averages one ablation cell's harmful transcripts (the engine's maths, not the renderer's)", async () => {
    const ablate = store.runs.get(runs.ablate!)!;
    const probeId = fx.demo.report.probe.id;
    const harmfulDataset = ablate.datasetId!;
    for (const key of ['baseline', 'planted:k3:g0']) {
      const got = await call('trace.average', { project: fx.file, runId: ablate.id, headScaleKey: key, datasetId: harmfulDataset });
      // By hand: the cell's traces of transcripts of harmful items, cut at t_b.
      const cut = store.traces.list({ runId: ablate.id, probeId }).flatMap((tr) => {
        const t = store.transcripts.get(tr.transcriptId)!;
        const item = t.itemId !== null ? store.datasets.item(t.itemId) : null;
        if (t.headScaleKey !== key || item?.datasetId !== harmfulDataset || t.answerBoundary === null) return [];
        return [tr.scores.slice(t.promptTokens, t.answerBoundary + 1)];
      });
      expect(cut.length, key).toBeGreaterThan(0);
      expect(got.traces).toBe(cut.filter((c) => c.length >= 2).length);
      const expected = tailAlignedAverage(cut.filter((c) => c.length >= 2));
      got.mean.forEach((m, i) => close(m, Number.isNaN(expected.mean[i]!) ? null : expected.mean[i]!));
    }
    // Ablating the planted heads removes the cliff: the harmful transcripts end refusing.
    const baseline = await call('trace.average', { project: fx.file, runId: ablate.id, headScaleKey: 'baseline', datasetId: harmfulDataset });
    const planted = await call('trace.average', { project: fx.file, runId: ablate.id, headScaleKey: 'planted:k3:g0', datasetId: harmfulDataset });
    expect(planted.mean[99]!).toBeGreaterThan(baseline.mean[99]!);
  });
});

describe('generate.run with a live probe', () => {
  it("gives the probe's plateau, final and MS as a trace run computes them (the Playground shows these)", async () => {
    const probe = await call('probe.get', { project: fx.file, probeId: fx.demo.report.probe.id, weights: true });
    const prompt = store.datasets.items(store.runs.get(runs.transcripts!)!.datasetId!, { limit: 1 })[0]!.prompt;
    const r = await call('generate.run', {
      model: { dir: fx.demo.report.modelDir, threads: 1 },
      prompts: [prompt],
      chat: true,
      maxNewTokens: 40,
      probe: { residIndex: probe.probe.residIndex, weights: probe.weights!, bias: probe.bias },
    });
    const t = r.transcripts[0]!;
    const m = traceMetrics(Float32Array.from(t.scores!, (v) => v ?? Number.NaN), {
      thinkingStart: t.thinkOpen === null ? null : t.thinkOpen + 1,
      thinkingEnd: t.thinkClose,
      answerBoundary: t.answerBoundary,
      generatedStart: t.inputIds.length,
    });
    expect(t.metrics).toEqual({ plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, width: m.dropWidth, hasCliff: true });
    // One score and one hover text per token, the prompt's included: the plot ends where the transcript does.
    expect(t.scores).toHaveLength(t.inputIds.length + t.outputIds.length);
    expect(t.tokens).toHaveLength(t.scores!.length);
    expect(t.tokens!.slice(t.inputIds.length).join('')).toContain('</think>');
    expect(t.tokens!.slice(0, t.inputIds.length).join('').replace(/▁/g, ' ')).toContain(prompt.split(' ')[1]!);
    // The demo's cliff, live: refusing through the thinking, complying at </think>.
    expect(t.metrics!.plateau!).toBeGreaterThan(0.9);
    expect(t.metrics!.final!).toBeLessThan(0.2);
  });

  it('says why a prompt too long for the context produced nothing, and generates the others', async () => {
    const prompt = store.datasets.items(store.runs.get(runs.transcripts!)!.datasetId!, { limit: 1 })[0]!.prompt;
    const r = await call('generate.run', { model: { dir: fx.demo.report.modelDir, threads: 1 }, prompts: ['how to '.repeat(400), prompt], chat: true, maxNewTokens: 4 });
    expect(r.transcripts[0]).toMatchObject({ finishReason: 'context', outputIds: [] });
    expect(r.transcripts[0]!.skipped).toMatch(/the prompt has \d+ tokens and the model's context is 512/);
    expect(r.transcripts[1]!.outputIds).toHaveLength(4);
    expect(r.transcripts[1]!.skipped).toBeUndefined();
  });
});

describe('a head’s page', () => {
  it('heads.head: the planted L1H5 ranks first, with its score in every transcript, most suppressing first', async () => {
    const r = await call('heads.head', { project: fx.file, runId: runs.heads!, layer: 1, head: 5 });
    const avg = store.headMaps.list(runs.heads!, { transcriptId: null })[0]!;
    expect(r.rank).toBe(1);
    expect(r.of).toBe(avg.layers * avg.heads);
    close(r.mean, avg.scores[1 * avg.heads + 5]!);
    const maps = store.headMaps.list(runs.heads!).filter((m) => m.transcriptId !== null);
    expect(r.transcripts).toHaveLength(maps.length);
    for (const t of r.transcripts) close(t.score, maps.find((m) => m.transcriptId === t.transcriptId)!.scores[1 * avg.heads + 5]!);
    const values = r.transcripts.map((t) => t.score!);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(r.std).not.toBeNull();
    expect((await callError('heads.head', { project: fx.file, runId: runs.heads!, layer: 9, head: 0 })).message).toMatch(/L9H0 is outside/);
    expect((await callError('heads.head', { project: fx.file, runId: runs.trace!, layer: 1, head: 5 })).message).toMatch(/not a heads run/);
  });

  it('heads.inspect: the head’s write along the probe at every token, equal at t_b to the run’s own score for the transcript', async () => {
    const head = await call('heads.head', { project: fx.file, runId: runs.heads!, layer: 1, head: 5 });
    const most = head.transcripts[0]!;
    const r = await call('heads.inspect', { project: fx.file, model: { dir: fx.demo.report.modelDir, threads: 1 }, runId: runs.heads!, transcriptId: most.transcriptId, layer: 1, head: 5 });
    expect(r.tokens).toHaveLength(r.answerBoundary + 1);
    expect(r.scores).toHaveLength(r.tokens.length);
    expect(r.scores[r.answerBoundary]!).toBeCloseTo(most.score!, 4);
    // The planted head writes against refusal at the boundary, not while the model thinks.
    expect(r.scores[r.answerBoundary]!).toBeLessThan(-0.1);
    expect(Math.abs(r.scores[r.thinkingStart! + 1]!)).toBeLessThan(Math.abs(r.scores[r.answerBoundary]!));
    const other = (await call('heads.head', { project: fx.file, runId: runs.heads!, layer: 0, head: 0 })).transcripts.find((t) => t.transcriptId === most.transcriptId)!;
    const r00 = await call('heads.inspect', { project: fx.file, model: { dir: fx.demo.report.modelDir, threads: 1 }, runId: runs.heads!, transcriptId: most.transcriptId, layer: 0, head: 0 });
    expect(r00.scores[r00.answerBoundary]!).toBeCloseTo(other.score!, 4);
    const notInRun = store.transcripts.list(runs.transcriptsHarmless!)[0]!.id;
    expect((await callError('heads.inspect', { project: fx.file, model: { dir: fx.demo.report.modelDir }, runId: runs.heads!, transcriptId: notInRun, layer: 1, head: 5 })).message).toMatch(/did not attribute transcript/);
  });

  it('heads.inspect: the head’s attention at t_b over keys 0..t_b sums to 1 and equals the reference forward’s softmax', async () => {
    const most = (await call('heads.head', { project: fx.file, runId: runs.heads!, layer: 2, head: 2 })).transcripts[0]!;
    const r = await call('heads.inspect', { project: fx.file, model: { dir: fx.demo.report.modelDir, threads: 1 }, runId: runs.heads!, transcriptId: most.transcriptId, layer: 2, head: 2 });
    const tb = r.answerBoundary;
    expect(r.attention).toHaveLength(tb + 1);
    expect(r.attention).toHaveLength(r.tokens.length);
    const attention = r.attention!.map((a) => a!);
    expect(attention.every((a) => a >= 0)).toBe(true);
    expect(attention.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // The same ids the handler reads (the transcript as the probe reads it, up to t_b), through the plain-TS forward.
    const t = store.transcripts.require(most.transcriptId);
    const tok = await Tokenizer.fromDir(fx.demo.report.modelDir);
    const ids = readTranscript(tok, Array.from(t.tokenIds), t.promptTokens).probe.ids.slice(0, tb + 1);
    const ckpt = openCheckpoint(fx.demo.report.modelDir);
    const ref = referenceForward(ckpt.config, (name) => readTensorAsFloat32(ckpt.tensors.get(name)!), ids);
    const T = ids.length;
    const want = ref.pattern[2]!.subarray((2 * T + tb) * T, (2 * T + tb + 1) * T);
    attention.forEach((a, s) => expect(a).toBeCloseTo(want[s]!, 4));
  });
});

describe('heads.map', () => {
  it("puts the demo's planted heads L1H5, L2H2, L3H6 at the top of the suppression ranking", async () => {
    const r = await call('heads.map', { project: fx.file, runId: runs.heads! });
    const avg = store.headMaps.list(runs.heads!, { transcriptId: null })[0]!;
    expect(r.layers).toBe(avg.layers);
    expect(r.heads).toBe(avg.heads);
    expect(r.scores).toHaveLength(r.layers * r.heads);
    r.scores.forEach((s, i) => expect(s).toBeCloseTo(avg.scores[i]!, 6));
    expect(r.suppression).toHaveLength(20);
    expect(r.refusal).toHaveLength(20);
    const top = r.suppression.slice(0, 3).map((h) => `L${h.layer}H${h.head}`).sort();
    expect(top).toEqual(['L1H5', 'L2H2', 'L3H6']);
    expect(top).toEqual(DEMO_PLANTED_HEADS.map((h) => `L${h.layer}H${h.head}`).sort());
    expect(r.transcriptId).toBeNull();
    expect(r.std).toHaveLength(r.layers * r.heads);
    expect(r.transcriptIds.length).toBeGreaterThan(0);
    expect(r.perToken).toBeUndefined();
  });

  it('gives one transcript’s map, and refuses transcripts without one and runs of another kind', async () => {
    const all = await call('heads.map', { project: fx.file, runId: runs.heads! });
    const one = await call('heads.map', { project: fx.file, runId: runs.heads!, transcriptId: all.transcriptIds[0]! });
    expect(one.transcriptId).toBe(all.transcriptIds[0]);
    expect(one.std).toBeUndefined();
    const stored = store.headMaps.list(runs.heads!, { transcriptId: all.transcriptIds[0]! })[0]!;
    one.scores.forEach((s, i) => expect(s).toBeCloseTo(stored.scores[i]!, 6));
    expect((await callError('heads.map', { project: fx.file, runId: runs.heads!, transcriptId: 99999 })).message).toMatch(/no map for transcript #99999/);
    expect((await callError('heads.map', { project: fx.file, runId: runs.trace! })).message).toMatch(/is a trace run, not a heads run/);
  });
});

describe('sweep.cells', () => {
  it("equals the ablate run's stored cells and its report's ASR numbers", async () => {
    const r = await call('sweep.cells', { project: fx.file, runId: runs.ablate! });
    const stored = store.sweeps.cells(runs.ablate!);
    expect(r.cells.map((c) => c.key)).toEqual(stored.map((c) => c.headScaleKey));
    expect(r.totalHeads).toBe(32);
    const report = await call('run.report', { project: fx.file, runId: runs.ablate! });
    const reported = new Map(summaryOf(report.report, 'ablate')!.cells.map((c) => [c.key, c]));
    for (const c of r.cells) {
      expect(c.metrics).not.toBeNull();
      close(c.metrics!.asr, reported.get(c.key)!.asr);
      close(c.metrics!.overRefusal, reported.get(c.key)!.overRefusal);
    }
    // And the demo report's: ablating the planted heads takes ASR to 0; the baseline is 100 %.
    for (const a of fx.demo.report.ablation) close(r.cells.find((c) => c.key === a.key)!.metrics!.asr, a.asr);
    const baseline = r.cells.find((c) => c.key === 'baseline')!;
    expect(baseline.metrics!.asr).toBe(1);
    const planted = r.cells.find((c) => c.control === 'planted' && c.gamma === 0)!;
    expect(planted.metrics!.asr).toBe(0);
    expect(planted.heads.map(([l, h]) => `L${l}H${h}`).sort()).toEqual(['L1H5', 'L2H2', 'L3H6']);
  });

  it('refuses a run that is not an ablation', async () => {
    expect((await callError('sweep.cells', { project: fx.file, runId: runs.heads! })).message).toMatch(/is a heads run, not an ablate run/);
  });
});

describe('transcripts.list', () => {
  it('pages through a run’s transcripts with verdicts and final scores', async () => {
    const key = 'baseline';
    const stored = store.transcripts.list(runs.ablate!, { headScaleKey: key });
    const page = await call('transcripts.list', { project: fx.file, runId: runs.ablate!, headScaleKey: key, offset: 2, limit: 5 });
    expect(page.total).toBe(stored.length);
    expect(page.fromRunId).toBe(runs.ablate);
    expect(page.transcripts.map((t) => t.id)).toEqual(stored.slice(2, 7).map((t) => t.id));
    for (const t of page.transcripts) {
      expect(t.headScaleKey).toBe(key);
      expect(t.verdicts.length).toBeGreaterThan(0);
      expect(t.verdicts[0]!.runId).toBe(runs.ablate);
      const tr = store.traces.list({ runId: runs.ablate!, transcriptId: t.id })[0]!;
      close(t.final ?? null, tr.final);
      expect(typeof t.thinking).toBe('string');
      expect(t.answer).toBeTruthy();
      expect(t.text).toContain(t.answer!.split(' ')[0]!);
    }
    const all = await call('transcripts.list', { project: fx.file, runId: runs.ablate! });
    expect(all.total).toBe(store.transcripts.list(runs.ablate!).length);
  });

  it('lists the source run’s transcripts for a trace run', async () => {
    const r = await call('transcripts.list', { project: fx.file, runId: runs.trace!, limit: 3 });
    expect(r.fromRunId).toBe(runs.transcripts);
    expect(r.total).toBe(store.transcripts.list(runs.transcripts!).length);
    // Final from the trace run's probe.
    for (const t of r.transcripts) close(t.final ?? null, store.traces.list({ runId: runs.trace!, transcriptId: t.id })[0]!.final);
  });

  it('rejects a page larger than 500, naming the field', async () => {
    const e = await callError('transcripts.list', { project: fx.file, runId: runs.ablate!, limit: 501 });
    expect(e.code).toBe('bad-params');
    expect(e.issues?.[0]?.path).toBe('limit');
  });
});

describe('selection.list', () => {
  it('returns the ranked selection with MS and final scores', async () => {
    const r = await call('selection.list', { project: fx.file, runId: runs.select! });
    const stored = store.selections.list(runs.select!);
    expect(r.total).toBe(stored.length);
    expect(r.selected).toBe(fx.demo.report.selection.selected);
    close(r.threshold, fx.demo.report.selection.threshold);
    expect(r.variant).toBe('top-ms');
    r.rows.forEach((row, i) => {
      expect(row.itemId).toBe(stored[i]!.itemId);
      expect(row.rank).toBe(stored[i]!.rank);
      expect(row.selected).toBe(stored[i]!.selected);
      expect(row.prompt).toBe(store.datasets.item(row.itemId)!.prompt);
      // top-ms ranks by MS: the score is the MS.
      close(row.score, row.ms);
    });
    // Ties at the threshold, counted from the rows: the last selected sample is always one of them.
    const tied = r.rows.filter((row) => row.score === r.threshold);
    expect(r.ties).toEqual({ atThreshold: tied.length, selected: tied.filter((row) => row.selected).length });
    expect(r.ties.selected).toBeGreaterThanOrEqual(1);
    const only = await call('selection.list', { project: fx.file, runId: runs.select!, selectedOnly: true });
    expect(only.rows.every((row) => row.selected)).toBe(true);
    expect(only.rows).toHaveLength(r.selected);
  });
});

describe('selection.export', () => {
  it('writes the selected samples as alpaca JSON and messages JSONL with provenance', async () => {
    const outDir = `${fx.dir}/selection-out`;
    const r = await call('selection.export', { project: fx.file, runId: runs.select!, outDir });
    expect(r.files.map((f) => f.slice(outDir.length + 1)).sort()).toEqual([
      'cliffscope_selection.json',
      'cliffscope_selection.provenance.json',
      'cliffscope_selection_messages.jsonl',
      'cliffscope_selection_messages.provenance.json',
      'dataset_info.json',
    ]);
    const fs = await import('node:fs');
    const alpaca = JSON.parse(fs.readFileSync(`${outDir}/cliffscope_selection.json`, 'utf8')) as { instruction: string; output: string }[];
    const selected = store.selections.list(runs.select!, { selectedOnly: true });
    expect(alpaca).toHaveLength(selected.length);
    expect(alpaca[0]!.instruction).toBe(store.datasets.item(selected[0]!.itemId)!.prompt);
    expect(alpaca[0]!.output).toContain('</think>');
    const prov = JSON.parse(fs.readFileSync(`${outDir}/cliffscope_selection.provenance.json`, 'utf8'));
    expect(prov.modelHash).toBe(store.models.get(store.runs.get(runs.select!)!.modelId!)!.contentHash);
    expect(await callError('selection.export', { project: fx.file, runId: runs.trace!, outDir })).toMatchObject({ code: 'bad-argument' });
  });
});

describe('probes', () => {
  it('lists probes and gives one with per-epoch losses, weights only when asked', async () => {
    const list = await call('probe.list', { project: fx.file });
    expect(list.probes.map((p) => p.id)).toEqual(store.probes.list().map((p) => p.id));
    const id = fx.demo.report.probe.id;
    const p = list.probes.find((x) => x.id === id)!;
    expect(p.metrics.valAccuracy).toBeCloseTo(fx.demo.report.probe.valAccuracy!, 10);
    expect(p.metrics.trainLoss).toBeUndefined();
    const got = await call('probe.get', { project: fx.file, probeId: id });
    expect(got.weights).toBeUndefined();
    // The demo's probe is the default L-BFGS fit: one entry (the solution), its calibration and what was fitted.
    expect(got.probe.metrics.trainLoss).toHaveLength(1);
    expect(got.probe.metrics.valLoss).toHaveLength(1);
    expect(got.probe.metrics.training).toMatchObject({ preset: 'lbfgs', optimizer: 'lbfgs', converged: true });
    expect(got.probe.metrics.calibration).toMatchObject({ set: 'validation', uncalibrated: false, eceBins: 10 });
    expect(got.probe.metrics.calibration!.scoreGap!).toBeGreaterThan(0.9);
    expect(p.metrics.calibration?.uncalibrated).toBe(false);
    expect(got.provenance.run).toBe(runs.probe);
    const withWeights = await call('probe.get', { project: fx.file, probeId: id, weights: true });
    expect(withWeights.weights).toHaveLength(got.probe.dim);
    const row = store.probes.get(id)!;
    expect(withWeights.weights![3]).toBeCloseTo(row.weights[3]!, 6);
    expect((await callError('probe.get', { project: fx.file, probeId: 77 })).message).toMatch(/probe #77 does not exist in /);
  });
});

describe('compare.runs', () => {
  it('gives headline numbers with deltas and each kind’s plot data', async () => {
    const r = await call('compare.runs', { project: fx.file, runIds: [runs.trace!, runs.traceHarmless!, runs.heads!, runs.ablate!] });
    expect(r.runs.map((x) => x.run.id)).toEqual([runs.trace, runs.traceHarmless, runs.heads, runs.ablate]);
    const [harm, safe, heads, ablate] = r.runs;
    const h = (x: typeof harm, key: string) => x!.headline.find((e) => e.key === key)!;
    expect(h(harm, 'meanMs').delta).toBeNull();
    close(h(safe, 'meanMs').delta, h(safe, 'meanMs').value! - h(harm, 'meanMs').value!);
    // Harmful transcripts have the cliff (large MS); harmless ones do not.
    expect(h(safe, 'meanMs').delta!).toBeLessThan(-0.5);
    expect(harm!.average!.mean).toHaveLength(100);
    expect(heads!.headsMap!.scores).toHaveLength(32);
    expect(ablate!.cells!.length).toBe(store.sweeps.cells(runs.ablate!).length);
    expect(h(ablate, 'baselineAsr').value).toBe(1);
    // Units: a fraction is a percentage, a count a count, a width in tokens, a score a number.
    expect([h(ablate, 'baselineAsr').unit, h(harm, 'transcripts').unit, h(harm, 'meanWidth').unit, h(harm, 'meanMs').unit]).toEqual(['percent', 'count', 'tokens', 'number']);
    expect(ablate!.totalHeads).toBe(32);
    expect(harm!.modelPath).toBe(fx.demo.report.modelDir);
    // The settings that differ: the two trace runs read different transcripts runs; a heads run has a variant they lack.
    const diff = new Map(r.configDiff.map((d) => [d.key, d.values]));
    expect(diff.get('source.runId')!.slice(0, 2)).toEqual([store.runs.get(runs.trace!)!.config.source && (store.runs.get(runs.trace!)!.config.source as { runId: number }).runId, (store.runs.get(runs.traceHarmless!)!.config.source as { runId: number }).runId]);
    expect(diff.get('variant')).toEqual([null, null, 'code', null]);
    expect(diff.has('probeId')).toBe(r.runs.some((x) => (store.runs.get(x.run.id)!.config.probeId ?? null) !== (store.runs.get(runs.trace!)!.config.probeId ?? null)));
  });

  it('compares any number of runs up to 50, and rejects 1, 51, duplicates and unknown ids', async () => {
    const all = store.runs.list().map((x) => x.id);
    expect((await call('compare.runs', { project: fx.file, runIds: all })).runs).toHaveLength(all.length);
    expect((await callError('compare.runs', { project: fx.file, runIds: [1] })).issues?.[0]?.path).toBe('runIds');
    expect((await callError('compare.runs', { project: fx.file, runIds: Array.from({ length: 51 }, (_, i) => i + 1) })).issues?.[0]?.path).toBe('runIds');
    expect((await callError('compare.runs', { project: fx.file, runIds: [1, 1] })).issues?.[0]?.path).toBe('runIds[1]');
    expect((await callError('compare.runs', { project: fx.file, runIds: [1, 999] })).message).toMatch(/run #999 does not exist in /);
  });
});

describe('table.csv', () => {
  it('exports the named tables', async () => {
    const runsCsv = await call('table.csv', { project: fx.file, query: 'runs' });
    expect(runsCsv.rows).toBe(store.runs.list().length);
    const parsed = parseCsv(runsCsv.csv);
    expect(parsed.records.length).toBe(runsCsv.rows + 1);
    const cells = await call('table.csv', { project: fx.file, query: 'cells', runId: runs.ablate! });
    expect(cells.rows).toBe(store.sweeps.cells(runs.ablate!).length);
    expect(cells.csv.split('\r\n')[0]).toContain('asr');
    expect(cells.filename).toMatch(/-cells-run\d+\.csv$/);
    const heads = await call('table.csv', { project: fx.file, query: 'heads', runId: runs.heads! });
    expect(heads.rows).toBe(store.headMaps.list(runs.heads!).length * 32);
    for (const query of ['traces', 'transcripts', 'selection'] as const) {
      const runId = query === 'selection' ? runs.select! : runs.trace!;
      const t = await call('table.csv', { project: fx.file, query, runId });
      expect(t.rows).toBeGreaterThan(0);
    }
  });

  it('gives the header of an empty table', async () => {
    const t = await call('table.csv', { project: fx.file, query: 'traces', runId: runs.transcripts! });
    expect(t.rows).toBe(0);
    expect(t.csv).toBe('traceId,transcriptId,probeId,residIndex,itemId,label,headScaleKey,tokens,answerBoundary,plateau,final,ms,steepestDropPos,cliffWidth\r\n');
  });

  it('needs a run id for run tables, a known table name, and no SQL', async () => {
    expect((await callError('table.csv', { project: fx.file, query: 'cells' })).issues?.[0]?.path).toBe('runId');
    const e = await callError('table.csv', { project: fx.file, query: 'SELECT * FROM runs' });
    expect(e.code).toBe('bad-params');
    expect(e.issues?.[0]?.path).toBe('query');
    expect((await callError('table.csv', { project: fx.file, query: 'cells', runId: runs.trace! })).message).toMatch(/is a trace run, not an ablate run/);
  });
});
