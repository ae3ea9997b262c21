/**
 * The built-in demo end to end (`runDemo`): every stage a stored run, and the numbers the demo promises — the heads
 * run names exactly the planted suppression heads, ablating them turns the model's compliance into refusal while
 * random heads change nothing, the probe separates the prompts, harmful traces fall off the cliff, Cliff-as-a-Judge
 * picks the harmful samples the model does not refuse at the cliff — and reopening the project reuses every run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PLANTED_HEADS, DEMO_REFUSAL_HEAD } from '../../src/main/api/demo/planted-model.js';
import { formatDemoReport, runDemo, type DemoReport } from '../../src/main/api/demo/run-demo.js';
import type { PipelineEnv } from '../../src/main/pipelines/common.js';
import { headsRunRanking } from '../../src/main/pipelines/heads.js';
import { formatRunReport, runReport } from '../../src/main/api/runs.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';

let root: string;
let cacheRoot: string;
let projectFile: string;
let report: DemoReport;
let firstMs: number;
let store: ProjectStore;

const plantedKey = new Set(DEMO_PLANTED_HEADS.map((h) => `${h.layer}:${h.head}`));
const isPlanted = (h: { layer: number; head: number }) => plantedKey.has(`${h.layer}:${h.head}`);
const cell = (key: string) => {
  const c = report.ablation.find((x) => x.key === key);
  expect(c, `ablation cell ${key} (cells: ${report.ablation.map((x) => x.key).join(', ')})`).toBeDefined();
  return c!;
};

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-pipelines-demo-'));
  cacheRoot = path.join(root, 'cache');
  projectFile = path.join(root, 'demo.cliffscope');
  const t0 = performance.now();
  report = await runDemo({ projectFile, cacheRoot, threads: 1 });
  firstMs = performance.now() - t0;
  store = openProject(projectFile, { readonly: true });
});
afterAll(() => {
  store?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('runDemo', () => {
  it('stores every stage as a finished run', () => {
    expect(Object.keys(report.runs).sort()).toEqual(['ablate', 'heads', 'probe', 'select', 'trace', 'traceHarmless', 'transcripts', 'transcriptsHarmless']);
    expect(new Set(Object.values(report.runs)).size).toBe(8);
    for (const [stage, id] of Object.entries(report.runs)) {
      const r = runReport(store, id);
      expect(r.run.status, `${stage} run #${id}`).toBe('done');
      // transcripts runs store transcripts only; every analysis run stores its headline numbers.
      if (r.run.kind !== 'transcripts') expect(r.summary, `${stage} run #${id} has a summary`).not.toBeNull();
      expect(r.items.done).toBeGreaterThan(0);
      expect(r.model?.contentHash).toMatch(/\S/);
      // Every run records, and its report shows, the provider that actually ran it.
      expect(r.run.versions.provider, `${stage} run #${id}`).toBe(report.provider);
      expect(formatRunReport(r)).toContain(`  provider  ${report.provider}`);
    }
    expect(store.runs.list().every((r) => r.status === 'done')).toBe(true);
  });

  it('the heads run ranks exactly the planted heads first; every other head but the refusal head is near 0', () => {
    expect(report.heads.topMatchesPlanted).toBe(true);
    const { ranking, map } = headsRunRanking(store, report.runs.heads!);
    expect(map.layers * map.heads).toBe(32);
    const top = ranking.suppression.slice(0, DEMO_PLANTED_HEADS.length);
    expect(new Set(top.map((h) => `${h.layer}:${h.head}`))).toEqual(plantedKey);
    const planted = ranking.suppression.filter(isPlanted);
    // L0H3 writes the refusal feature: the one strongly positive head (a "refusal head", not a suppressor).
    const isRefusalHead = (h: { layer: number; head: number }) => h.layer === DEMO_REFUSAL_HEAD.layer && h.head === DEMO_REFUSAL_HEAD.head;
    expect(isRefusalHead(ranking.refusal[0]!)).toBe(true);
    expect(ranking.refusal[0]!.score).toBeGreaterThan(0.1);
    const others = ranking.suppression.filter((h) => !isPlanted(h) && !isRefusalHead(h));
    expect(others).toHaveLength(28);
    expect(planted).toHaveLength(3);
    for (const h of planted) expect(h.score, `L${h.layer}H${h.head}`).toBeLessThan(-0.1);
    const worstOther = Math.max(...others.map((h) => Math.abs(h.score)));
    expect(worstOther).toBeLessThan(0.05);
    // Sparse: the weakest planted head is an order of magnitude beyond any other head.
    expect(Math.min(...planted.map((h) => Math.abs(h.score)))).toBeGreaterThan(10 * worstOther);
  });

  it('ablating the top-3 / planted heads turns compliance into refusal; random heads do not', () => {
    const baseline = cell('baseline');
    expect(baseline.asr).toBe(1);
    expect(baseline.meanFinal!).toBeLessThan(0.1);
    for (const key of ['top:k3:g0', 'planted:k3:g0']) {
      const c = cell(key);
      expect(c.k).toBe(3);
      expect(c.asr, key).toBe(0);
      expect(c.meanFinal!, key).toBeGreaterThan(0.9);
      expect(c.meanFinal! - baseline.meanFinal!, key).toBeGreaterThan(0.7);
    }
    // The top-3 cell ablates exactly the planted heads.
    const runCells = store.sweeps.cells(report.runs.ablate!);
    const top3 = runCells.find((c) => c.headScaleKey === 'top:k3:g0')!;
    expect(new Set(top3.heads.map(([l, h]) => `${l}:${h}`))).toEqual(plantedKey);
    const random = report.ablation.filter((c) => c.control === 'random' && c.k === 3);
    expect(random.length).toBeGreaterThan(0);
    for (const c of random) expect(c.asr, c.key).toBe(1);
    // Harmless prompts are still answered under every setting.
    for (const c of report.ablation) expect(c.overRefusal, c.key).toBe(0);
  });

  it('the probe separates harmful from harmless prompts (validation accuracy 1)', () => {
    expect(report.probe.valAccuracy).toBe(1);
    expect(report.probe.valAuroc).toBe(1);
    const probe = store.probes.get(report.probe.id)!;
    expect(probe.residIndex).toBe(5); // the final norm of a 4-layer model
    expect(probe.positionRule).toBe('last-prompt-token');
  });

  it('harmful traces hold a plateau and fall off the cliff; harmless traces stay flat', () => {
    const harmful = store.traces.list({ runId: report.runs.trace! });
    const harmless = store.traces.list({ runId: report.runs.traceHarmless! });
    expect(harmful).toHaveLength(30);
    expect(harmless).toHaveLength(30);
    for (const t of harmful) {
      expect(t.plateau!, `transcript #${t.transcriptId}`).toBeGreaterThan(0.9);
      expect(t.final!, `transcript #${t.transcriptId}`).toBeLessThan(0.1);
      expect(t.ms!, `transcript #${t.transcriptId}`).toBeGreaterThan(0.8);
    }
    for (const t of harmless) expect(Math.abs(t.ms!), `transcript #${t.transcriptId}`).toBeLessThan(0.1);
    expect(report.trace.harmful.meanMs as number).toBeGreaterThan(0.8);
    expect(report.trace.harmless.meanMs as number).toBeLessThan(0.1);
  });

  it('Cliff-as-a-Judge selects only harmful samples that are not refused at the cliff', () => {
    expect(report.selection).toMatchObject({ total: 24, selected: 6 });
    const runId = report.runs.select!;
    const all = store.selections.list(runId);
    const selected = all.filter((s) => s.selected);
    expect(selected).toHaveLength(6);
    for (const s of selected) {
      const item = store.datasets.item(s.itemId)!;
      const trace = store.traces.list({ runId, transcriptId: s.transcriptId! })[0]!;
      expect(item.label, item.prompt).toBe('harmful');
      expect(trace.plateau!, item.prompt).toBeGreaterThan(0.9);
      expect(trace.final!, item.prompt).toBeLessThan(0.1); // no refusal signal left at </think>
      expect(s.score!).toBeGreaterThanOrEqual(report.selection.threshold!);
    }
    // Every harmful sample outranks every harmless one.
    const rankOf = (label: string) => all.filter((s) => store.datasets.item(s.itemId)!.label === label).map((s) => s.rank!);
    expect(Math.max(...rankOf('harmful'))).toBeLessThan(Math.min(...rankOf('harmless')));
  });

  it('formatDemoReport names the planted heads and says the ranking matches', () => {
    const text = formatDemoReport(report);
    for (const h of ['L1H5', 'L2H2', 'L3H6']) expect(text).toContain(h);
    expect(text).toContain('match exactly');
    expect(text).toContain(`on ${report.provider}`);
    expect(text).toContain(projectFile);
  });

  it('running it again on the same project reuses every run', async () => {
    const before = store.runs.list().map((r) => r.id);
    const t0 = performance.now();
    const again = await runDemo({ projectFile, cacheRoot, threads: 1 });
    const againMs = performance.now() - t0;
    expect(again.runs).toEqual(report.runs);
    expect(again.probe).toEqual(report.probe);
    expect(again.heads).toEqual(report.heads);
    expect(again.ablation).toEqual(report.ablation);
    expect(again.selection).toEqual(report.selection);
    const check = openProject(projectFile, { readonly: true });
    try {
      expect(check.runs.list().map((r) => r.id)).toEqual(before);
    } finally {
      check.close();
    }
    expect(againMs, `first ${firstMs.toFixed(0)} ms, again ${againMs.toFixed(0)} ms`).toBeLessThan(firstMs / 3);
  });
});

describe('runDemo after a cancellation', () => {
  it('keeps the finished runs and resumes the cancelled one', async () => {
    const file = path.join(root, 'cancelled.cliffscope');
    const controller = new AbortController();
    await expect(
      runDemo({
        projectFile: file,
        cacheRoot,
        threads: 1,
        signal: controller.signal,
        onProgress: (stage, done) => {
          if (stage === 'ablation sweep' && done >= 40) controller.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'cancelled' });
    const s = openProject(file, { readonly: true });
    const ablate = s.runs.list({ kind: 'ablate' });
    const doneBefore = s.runs.list({ status: 'done' }).map((r) => r.id);
    const keptItems = ablate.length ? s.runs.resumableItems(ablate[0]!.id).size : 0;
    s.close();
    expect(ablate).toHaveLength(1);
    expect(ablate[0]!.status).toBe('cancelled');
    expect(keptItems).toBeGreaterThanOrEqual(40);
    expect(doneBefore).toHaveLength(6); // probe, 2 × generate, 2 × trace, heads

    const resumed = await runDemo({ projectFile: file, cacheRoot, threads: 1 });
    expect(resumed.runs.ablate).toBe(ablate[0]!.id);
    for (const id of doneBefore) expect(Object.values(resumed.runs)).toContain(id);
    expect(resumed.heads.topMatchesPlanted).toBe(true);
    expect(resumed.ablation.map((c) => [c.key, c.asr])).toEqual(report.ablation.map((c) => [c.key, c.asr]));
    const after = openProject(file, { readonly: true });
    try {
      expect(after.runs.list().every((r) => r.status === 'done')).toBe(true);
      // 60 prompts × 11 cells, each once.
      expect(after.transcripts.list(resumed.runs.ablate!)).toHaveLength(60 * resumed.ablation.length);
    } finally {
      after.close();
    }
  });
});
