/**
 * run.start as a job on a demo project: it streams progress, stores what the pipeline makes, can be cancelled
 * (the run ends 'cancelled' with its finished items kept) and resumed; malformed or dangling requests are refused
 * with the field named and leave the project as it was. Also run.report and run.delete.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCallContext } from '../../src/main/api/context.js';
import { dispatch } from '../../src/main/api/dispatch.js';
import { readSummary } from '../../src/main/pipelines/common.js';
import { openProject } from '../../src/main/store/open.js';
import { summaryOf, type JobEvent, type ParamsOf, type ResultOf, type RunReportOf } from '../../src/shared/contract.js';
import { headsRun } from '../../src/shared/runs/heads.js';
import { probeRun } from '../../src/shared/runs/probe.js';
import { call, callError, disposeFixture, makeDemoFixture, type Fixture } from './demo-fixture.js';

let fx: Fixture;
let modelDir: string;
let harmfulId: number;
let harmlessId: number;

beforeAll(async () => {
  fx = await makeDemoFixture('runs');
  modelDir = fx.demo.report.modelDir;
  const summary = await call('project.open', { file: fx.file });
  harmfulId = summary.datasets.find((d) => d.name === 'demo-harmful')!.id;
  harmlessId = summary.datasets.find((d) => d.name === 'demo-harmless')!.id;
});

afterAll(async () => {
  await disposeFixture(fx);
});

/** Read the project's state with a connection of our own (closed at once). */
function inStore<T>(fn: (s: ReturnType<typeof openProject>) => T): T {
  const s = openProject(fx.file, { readonly: true });
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

async function startJob(params: ParamsOf<'run.start'>, opts: { abortAfterProgress?: number } = {}) {
  const events: JobEvent[] = [];
  const controller = new AbortController();
  let progress = 0;
  const ctx = makeCallContext('job-1', controller.signal, (e) => {
    events.push(e);
    if (e.kind === 'progress' && e.done > 0 && ++progress === opts.abortAfterProgress) controller.abort();
  });
  const res = await dispatch('run.start', params, { context: ctx });
  return { res, events };
}

describe('run.start', () => {
  it('trains probes at two residual-stack entries as a job, streaming progress, and stores them', async () => {
    const before = inStore((s) => s.probes.list().length);
    const { res, events } = await startJob({
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'probe',
      config: {
        name: 'api-probe',
        positive: { kind: 'dataset', datasetId: harmfulId, chat: true },
        negative: { kind: 'dataset', datasetId: harmlessId, chat: true },
        positionRule: 'last-prompt-token',
        residIndices: [2, 5],
        labelRule: 'all',
        train: { lr: 0.2, epochs: 30, batchSize: 16, selectBy: 'val-loss' },
      },
    });
    expect(res.ok, JSON.stringify(!res.ok && res.error)).toBe(true);
    const r = (res as { result: ResultOf<'run.start'> }).result;
    expect(r.status).toBe('done');
    expect(r.report.run.kind).toBe('probe');
    expect(r.report.run.name).toBe('api-probe');
    const progress = events.filter((e) => e.kind === 'progress');
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((e) => e.jobId === 'job-1')).toBe(true);
    const last = progress.at(-1)!;
    expect(last.kind === 'progress' && last.done === last.total).toBe(true);
    const probes = summaryOf(r.report, 'probe')!.probes;
    expect(probes.map((p) => p.residIndex)).toEqual([2, 5]);
    expect(inStore((s) => s.probes.list().length)).toBe(before + 2);
    expect(inStore((s) => readSummary(s, probeRun, r.runId))).toEqual(r.report.summary);
  });

  it('traces with several probes, so trace.get returns the residual stream × tokens map', async () => {
    const probes = (await call('probe.list', { project: fx.file })).probes.filter((p) => p.name.startsWith('api-probe/'));
    expect(probes.map((p) => p.residIndex).sort()).toEqual([2, 5]);
    const deep = probes.find((p) => p.residIndex === 5)!;
    const shallow = probes.find((p) => p.residIndex === 2)!;
    const generate = fx.demo.report.runs.transcripts!;
    const r = await call('run.start', {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'trace',
      name: 'api-trace',
      config: { probeId: deep.id, extraProbeIds: [shallow.id], source: { kind: 'run', runId: generate } },
    });
    expect(r.status).toBe('done');
    const list = await call('trace.list', { project: fx.file, runId: r.runId });
    expect(list.probeId).toBe(deep.id);
    expect(list.probes).toEqual([
      { probeId: shallow.id, residIndex: 2 },
      { probeId: deep.id, residIndex: 5 },
    ]);
    const t = await call('trace.get', { project: fx.file, transcriptId: list.traces[0]!.transcriptId, runId: r.runId });
    expect(t.probeId).toBe(deep.id);
    expect(t.perResid!.map((p) => p.residIndex)).toEqual([2, 5]);
    for (const row of t.perResid!) expect(row.scores).toHaveLength(t.tokens.length);
  });

  it('can be cancelled: the run ends cancelled with finished items kept, and resumes to the end', async () => {
    const params: ParamsOf<'run.start'> = {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'transcripts',
      name: 'api-cancel',
      config: { datasetId: harmfulId, maxNewTokens: 40, batchSize: 1 },
    };
    const { res, events } = await startJob(params, { abortAfterProgress: 2 });
    expect(res.ok, JSON.stringify(!res.ok && res.error)).toBe(true);
    const r = (res as { result: ResultOf<'run.start'> }).result;
    expect(r.status).toBe('cancelled');
    expect(events.some((e) => e.kind === 'log' && /cancelled/.test(e.message))).toBe(true);
    const total = inStore((s) => s.datasets.get(harmfulId)!.itemCount);
    const kept = inStore((s) => s.transcripts.list(r.runId).length);
    expect(inStore((s) => s.runs.get(r.runId)!.status)).toBe('cancelled');
    expect(kept).toBeGreaterThanOrEqual(2);
    expect(kept).toBeLessThan(total);
    expect(r.report.items.done).toBe(kept);

    // Resume: the stored config is used; the kept transcripts are not made again.
    const resumed = await call('run.start', { project: fx.file, model: { dir: modelDir, threads: 1 }, kind: 'transcripts', resume: r.runId });
    expect(resumed.runId).toBe(r.runId);
    expect(resumed.status).toBe('done');
    const after = inStore((s) => s.transcripts.list(r.runId));
    expect(after).toHaveLength(total);
    expect(new Set(after.map((t) => t.itemId)).size).toBe(total);

    // A done run cannot be resumed.
    const e = await callError('run.start', { project: fx.file, model: { dir: modelDir }, kind: 'transcripts', resume: r.runId });
    expect(e.message).toMatch(/resume: run #\d+ is already done/);
  });

  it('rejects malformed payloads naming the field, with no side effect', async () => {
    const runsBefore = inStore((s) => s.runs.list().length);
    const cases: [unknown, string][] = [
      [{ model: { dir: modelDir }, kind: 'transcripts', config: { datasetId: harmfulId, maxNewTokens: 4 } }, 'project'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'finetune', config: {} }, 'kind'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'transcripts', config: { datasetId: 'one', maxNewTokens: 4 } }, 'config.datasetId'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'transcripts', config: { datasetId: harmfulId, maxNewTokens: 4, temperature: 1 } }, 'config.temperature'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'probe', config: { name: 'x', positive: { kind: 'dataset', datasetId: 1 }, negative: { kind: 'run', runId: 1 } } }, 'config.positive.chat'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'ablate', config: { headsRunId: 1, harmfulDatasetId: 1, maxNewTokens: 8, fractions: [2] } }, 'config.fractions[0]'],
      [{ project: fx.file, model: { dir: modelDir }, kind: 'transcripts' }, 'config'],
      [{ project: fx.file, kind: 'transcripts', config: { datasetId: harmfulId, maxNewTokens: 4 } }, 'model'],
    ];
    for (const [params, field] of cases) {
      const e = await callError('run.start', params);
      expect(e.code, JSON.stringify(params)).toBe('bad-params');
      expect(e.issues?.map((i) => i.path), JSON.stringify(e)).toContain(field);
      expect(e.message).toContain(field);
    }
    expect(inStore((s) => s.runs.list().length)).toBe(runsBefore);
  });

  it('refuses ids that do not exist, naming the field, before creating a run', async () => {
    const runsBefore = inStore((s) => s.runs.list().length);
    const model = { dir: modelDir };
    const cases: [ParamsOf<'run.start'>, RegExp][] = [
      [{ project: fx.file, model, kind: 'transcripts', config: { datasetId: 999, maxNewTokens: 4 } }, /config\.datasetId: dataset #999 does not exist in /],
      [{ project: fx.file, model, kind: 'trace', config: { probeId: 999, source: { kind: 'run', runId: 1 } } }, /config\.probeId: probe #999 does not exist in /],
      [{ project: fx.file, model, kind: 'trace', config: { probeId: fx.demo.report.probe.id, source: { kind: 'run', runId: 999 } } }, /config\.source\.runId: run #999 does not exist in /],
      [{ project: fx.file, model, kind: 'ablate', config: { headsRunId: fx.demo.report.runs.trace!, harmfulDatasetId: harmfulId, maxNewTokens: 4 } }, /config\.headsRunId: run #\d+ is a trace run, not a heads run/],
      [{ project: fx.file, model, kind: 'transcripts', resume: 999 }, /resume: run #999 does not exist in /],
      [{ project: fx.file, model, kind: 'heads', resume: fx.demo.report.runs.trace! }, /resume: run #\d+ is a trace run/],
    ];
    for (const [params, message] of cases) {
      const e = await callError('run.start', params);
      expect(e.code).toBe('bad-argument');
      expect(e.message).toMatch(message);
    }
    // A model folder that is not there.
    const e = await callError('run.start', { project: fx.file, model: { dir: `${fx.dir}/no-model` }, kind: 'transcripts', config: { datasetId: harmfulId, maxNewTokens: 4 } });
    expect(e.message).toMatch(/no-model/);
    // A project that is not there.
    const e2 = await callError('run.start', { project: `${fx.dir}/nothing.cliffscope`, model, kind: 'transcripts', config: { datasetId: 1, maxNewTokens: 4 } });
    expect(e2.code).toBe('missing-file');
    expect(e2.message).toContain('nothing.cliffscope');
    expect(fs.existsSync(`${fx.dir}/nothing.cliffscope`)).toBe(false);
    expect(inStore((s) => s.runs.list().length)).toBe(runsBefore);
  });
});

describe('run.start for the other kinds', () => {
  it('keeps per-token head scores when asked, and heads.map returns them with the token strings', async () => {
    const r = await call('run.start', {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'heads',
      name: 'api-heads',
      config: { probeId: fx.demo.report.probe.id, source: { kind: 'run', runId: fx.demo.report.runs.transcripts! }, perToken: true },
    });
    expect(r.status).toBe('done');
    const avg = await call('heads.map', { project: fx.file, runId: r.runId });
    expect(avg.suppression.slice(0, 3).map((h) => `L${h.layer}H${h.head}`).sort()).toEqual(['L1H5', 'L2H2', 'L3H6']);
    expect(avg.perToken).toBeUndefined();
    const one = await call('heads.map', { project: fx.file, runId: r.runId, transcriptId: avg.transcriptIds[0]! });
    const t = inStore((s) => s.transcripts.get(avg.transcriptIds[0]!)!);
    expect(one.perToken!.tokens).toBe(t.answerBoundary! + 1);
    expect(one.perToken!.tokenStrings).toHaveLength(one.perToken!.tokens);
    expect(one.perToken!.tokenStrings.at(-1)).toContain('</think>');
    expect(one.perToken!.data).toHaveLength(one.layers * one.heads * one.perToken!.tokens);
  });

  it('judges another run with a keyword list; the verdicts show in transcripts.list and compare.runs', async () => {
    const generate = fx.demo.report.runs.transcripts!;
    const r = await call('run.start', { project: fx.file, model: { dir: modelDir, threads: 1 }, kind: 'judge', config: { runId: generate, judge: { kind: 'keyword', list: 'jbb' } } });
    expect(r.status).toBe('done');
    expect(summaryOf(r.report, 'judge')!.asr).toBe(1);
    const list = await call('transcripts.list', { project: fx.file, runId: r.runId, limit: 5 });
    expect(list.fromRunId).toBe(generate);
    for (const t of list.transcripts) expect(t.verdicts).toContainEqual({ runId: r.runId, judge: expect.any(String), verdict: 'compliance', harmful: true });
    const cmp = await call('compare.runs', { project: fx.file, runIds: [r.runId, fx.demo.report.runs.ablate!] });
    expect(cmp.runs[0]!.headline.find((h) => h.key === 'asr')!.value).toBe(1);
  });

  it('runs a small ablation sweep from a partial config (defaults filled in)', async () => {
    const r = await call('run.start', {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'ablate',
      name: 'api-sweep',
      config: { headsRunId: fx.demo.report.runs.heads!, probeId: fx.demo.report.probe.id, harmfulDatasetId: harmfulId, fractions: [0.1], gammas: [0], randomControl: false, maxNewTokens: 40, batchSize: 32 },
    });
    expect(r.status).toBe('done');
    expect(r.report.run.config).toMatchObject({ judges: [{ kind: 'keyword', list: 'jbb' }], randomSeeds: 1, chat: true, harmlessDatasetId: null, headSets: [], seed: 0 });
    const cells = await call('sweep.cells', { project: fx.file, runId: r.runId });
    expect(cells.cells.map((c) => c.key)).toEqual(['baseline', 'top:k3:g0']);
    expect(cells.cells.map((c) => c.metrics!.asr)).toEqual([1, 0]);
  });

  it('selects with Cliff-as-a-Judge, and selection.list agrees with the run summary', async () => {
    const train = (await call('project.open', { file: fx.file })).datasets.find((d) => d.name === 'demo-safety-train')!;
    const r = await call('run.start', { project: fx.file, model: { dir: modelDir, threads: 1 }, kind: 'select', config: { datasetId: train.id, probeId: fx.demo.report.probe.id, fraction: 0.5 } });
    const sel = await call('selection.list', { project: fx.file, runId: r.runId });
    expect(sel.selected).toBe(summaryOf(r.report, 'select')!.selected);
    expect(sel.total).toBe(train.itemCount);
    expect(sel.variant).toBe('top-ms');
  });
});

describe('run.report and run.delete', () => {
  it('reports a run as data and as text', async () => {
    const id = fx.demo.report.runs.heads!;
    const r = await call('run.report', { project: fx.file, runId: id });
    expect(r.report.run.id).toBe(id);
    expect(r.report.run.kind).toBe('heads');
    expect(r.report.kind).toBe('heads');
    expect((r.report as RunReportOf<'heads'>).run.config.variant).toBe('code');
    expect(r.report.summary).toEqual(inStore((s) => readSummary(s, headsRun, id)));
    expect(r.text).toMatch(new RegExp(`^run #${id} heads`));
    expect(r.text).toContain('L1H5');
    expect((await callError('run.report', { project: fx.file, runId: 999 })).message).toMatch(/run #999 does not exist/);
  });

  it('deletes a run with what it made, and refuses unknown ones', async () => {
    const r = await call('run.start', {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'transcripts',
      name: 'to-delete',
      config: { datasetId: harmlessId, itemIds: inStore((s) => s.datasets.items(harmlessId, { limit: 2 }).map((i) => i.id)), maxNewTokens: 8 },
    });
    expect(inStore((s) => s.transcripts.list(r.runId).length)).toBe(2);
    expect(await call('run.delete', { project: fx.file, runId: r.runId })).toEqual({ deleted: r.runId });
    expect(inStore((s) => [s.runs.get(r.runId), s.transcripts.list(r.runId).length])).toEqual([null, 0]);
    expect((await callError('run.delete', { project: fx.file, runId: r.runId })).message).toMatch(new RegExp(`runId: run #${r.runId} does not exist in `));
  });

  it('refuses to delete what other runs stand on, naming them, and deletes nothing', async () => {
    const demo = fx.demo.report.runs;
    const counts = () => inStore((s) => ({ runs: s.runs.list().length, transcripts: s.transcripts.list(demo.transcripts!).length, traces: s.traces.list({ runId: demo.trace! }).length }));
    const before = counts();
    // The transcripts run: the trace and heads runs read its transcripts (and their configs name it).
    const e = await callError('run.delete', { project: fx.file, runId: demo.transcripts! });
    expect(e.code).toBe('bad-argument');
    expect(e.message).toMatch(new RegExp(`run #${demo.transcripts} \\(transcripts\\) is what runs .*#${demo.trace} trace.*#${demo.heads} heads.* stand on; it was not deleted`));
    expect(e.hint).toMatch(/delete those runs first/);
    // The heads run: the ablate run names it in its config. The probe run: every later run reads its probe.
    expect((await callError('run.delete', { project: fx.file, runId: demo.heads! })).message).toMatch(new RegExp(`#${demo.ablate} ablate`));
    expect((await callError('run.delete', { project: fx.file, runId: demo.probe! })).message).toMatch(new RegExp(`#${demo.trace} trace.*#${demo.select} select`));
    expect(counts()).toEqual(before);
  });

  it('names and tags a run when it starts and afterwards (run.update), as every face lists it', async () => {
    const r = await call('run.start', {
      project: fx.file,
      model: { dir: modelDir, threads: 1 },
      kind: 'transcripts',
      name: 'tagged',
      tags: ['baseline', 'tiny'],
      config: { datasetId: harmlessId, itemIds: inStore((s) => s.datasets.items(harmlessId, { limit: 1 }).map((i) => i.id)), maxNewTokens: 4 },
    });
    expect(r.report.run).toMatchObject({ name: 'tagged', tags: ['baseline', 'tiny'] });
    const listed = () => call('project.open', { file: fx.file }).then((p) => p.runs.find((x) => x.id === r.runId)!);
    expect((await listed()).tags).toEqual(['baseline', 'tiny']);
    const renamed = await call('run.update', { project: fx.file, runId: r.runId, name: 'renamed', tags: ['7b'] });
    expect(renamed.run).toMatchObject({ id: r.runId, name: 'renamed', tags: ['7b'] });
    expect(await listed()).toMatchObject({ name: 'renamed', tags: ['7b'] });
    // Tags only: the name stays; null clears the name.
    await call('run.update', { project: fx.file, runId: r.runId, tags: [] });
    expect(await listed()).toMatchObject({ name: 'renamed', tags: [] });
    await call('run.update', { project: fx.file, runId: r.runId, name: null });
    expect((await listed()).name).toBeNull();
    // Bad tags and unknown runs are refused, naming the field; nothing changes.
    expect((await callError('run.update', { project: fx.file, runId: r.runId, tags: ['a,b'] })).issues?.[0]?.path).toBe('tags[0]');
    expect((await callError('run.update', { project: fx.file, runId: r.runId, tags: ['x', 'x'] })).issues?.[0]?.path).toBe('tags');
    expect((await callError('run.update', { project: fx.file, runId: r.runId })).message).toMatch(/give a new name or new tags/);
    expect((await callError('run.update', { project: fx.file, runId: 999, name: 'x' })).message).toMatch(/runId: run #999 does not exist/);
    expect((await callError('run.start', { project: fx.file, model: { dir: modelDir }, kind: 'trace', tags: [''], config: { probeId: 1, source: { kind: 'run', runId: 1 } } })).issues?.[0]?.path).toBe('tags[0]');
    expect((await listed()).tags).toEqual([]);
  });

  it('refuses item ids from another dataset', async () => {
    const other = inStore((s) => s.datasets.items(harmfulId, { limit: 1 })[0]!.id);
    const e = await callError('run.start', { project: fx.file, model: { dir: modelDir }, kind: 'transcripts', config: { datasetId: harmlessId, itemIds: [other], maxNewTokens: 4 } });
    expect(e.message).toMatch(/config\.itemIds\[0\]/);
  });
});
