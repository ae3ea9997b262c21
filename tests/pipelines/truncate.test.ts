/**
 * Thinking truncation (`truncate`, docs/METHOD.md §8) on the demo's planted model: each answer keeps ⌊f·n⌋ of the
 * model's own thinking tokens followed by the closing marker, is judged and read by the probe at t_b, and the summary
 * sets ASR and I' against the fraction kept; a setting's head scale is applied to the answers as to its transcripts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReport } from '../../src/main/api/runs.js';
import { summaryOf } from '../../src/shared/contract.js';
import { keptThinkingTokens } from '../../src/main/pipelines/truncate.js';
import { openProject } from '../../src/main/store/open.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { cli } from '../support/cli.js';
import { demoProject, type DemoProject } from '../support/demo-project.js';

let demo: DemoProject;
let project: string;
let model: string;
let runs: DemoProject['runs'];

beforeAll(async () => {
  demo = await demoProject('truncate');
  ({ project, model, runs } = demo);
}, 300_000);
afterAll(() => demo?.dispose());

const truncate = async (...args: string[]) => {
  const r = await cli('truncate', project, '--model', model, '--threads', '1', '--json', ...args);
  return { ...r, runId: r.code === 0 ? (JSON.parse(r.stdout) as { run: { id: number } }).run.id : null };
};

describe('keptThinkingTokens', () => {
  it('keeps ⌊f·n⌋ tokens, exact at the paper fractions despite float rounding', () => {
    expect([1, 0.8, 0.6, 0.4, 0.2, 0].map((f) => keptThinkingTokens(f, 5))).toEqual([5, 4, 3, 2, 1, 0]);
    expect(keptThinkingTokens(0.5, 17)).toBe(8);
    expect(keptThinkingTokens(0.7, 10)).toBe(7);
  });
});

describe('truncate', () => {
  it("keeps a prefix of the model's own thinking, closes it, answers; ASR and I' per fraction from the stored rows", async () => {
    const r = await truncate('--run', String(runs.transcripts), '--probe', String(runs.probe), '--fractions', '0,1,0.5', '--max-new-tokens', '30');
    expect(r.code, r.stderr).toBe(0);
    const store = openProject(project, { readonly: true });
    try {
      const report = runReport(store, r.runId!);
      const summary = summaryOf(report, 'truncate')!;
      // Sorted high to low: the figure's x axis.
      expect(summary.points.map((p) => p.fraction)).toEqual([1, 0.5, 0]);
      const sources = store.transcripts.list(runs.transcripts!);
      expect(summary.transcripts).toBe(sources.length);
      const tok = await Tokenizer.fromDir(model);
      const closeId = tok.thinkMarkers.close!.id;
      const verdicts = new Map(store.verdicts.list({ runId: r.runId! }).map((v) => [v.transcriptId, v]));
      const traces = new Map(store.traces.list({ runId: r.runId! }).map((t) => [t.transcriptId, t]));
      for (const point of summary.points) {
        const ts = store.transcripts.list(r.runId!, { headScaleKey: `keep:${point.fraction}` });
        expect(ts).toHaveLength(sources.length);
        expect(point.answers).toBe(sources.length);
        for (const t of ts) {
          const src = sources.find((s) => s.itemId === t.itemId)!;
          const n = src.thinkingEnd! - src.thinkingStart!;
          const kept = keptThinkingTokens(point.fraction, n);
          const cut = src.thinkingStart! + kept;
          // The kept prefix is the source's own tokens, followed by the closing marker; then the new answer.
          expect(Array.from(t.tokenIds.subarray(0, cut))).toEqual(Array.from(src.tokenIds.subarray(0, cut)));
          expect(t.tokenIds[cut]).toBe(closeId);
          expect(t.thinkingEnd).toBe(cut);
          expect(verdicts.get(t.id)?.detail).toMatchObject({ fraction: point.fraction, keptTokens: kept, sourceTranscriptId: src.id });
          // I' is the probe's score at t_b of the truncated transcript.
          const trace = traces.get(t.id)!;
          expect(trace.final).toBeCloseTo(trace.scores[t.answerBoundary!]!, 6);
        }
        const compliant = ts.filter((t) => verdicts.get(t.id)!.verdict === 'compliance').length;
        expect(point.asr).toBeCloseTo(compliant / ts.length, 12);
        const finals = ts.map((t) => traces.get(t.id)!.final!);
        expect(point.meanFinal).toBeCloseTo(finals.reduce((a, b) => a + b, 0) / finals.length, 6);
      }
      // Kept in full, the planted model answers as in its own transcripts: the harmful prompts' answers comply.
      expect(summary.points[0]!.asr).toBe(1);
      expect(summary.points[0]!.meanFinal!).toBeLessThan(0.35);
    } finally {
      store.close();
    }
  }, 120_000);

  it("answers under the source setting's head scale: with the planted heads removed the model refuses at every fraction", async () => {
    const gen = await cli('transcripts', project, '--model', model, '--dataset', 'demo-harmful', '--heads', 'L1H5,L2H2,L3H6', '--max-new-tokens', '40', '--threads', '1', '--json');
    expect(gen.code, gen.stderr).toBe(0);
    const source = (JSON.parse(gen.stdout) as { run: { id: number } }).run.id;
    const r = await truncate('--run', String(source), '--fractions', '1,0', '--max-new-tokens', '30');
    expect(r.code, r.stderr).toBe(0);
    const store = openProject(project, { readonly: true });
    try {
      const summary = summaryOf(runReport(store, r.runId!), 'truncate')!;
      expect(summary.points.map((p) => p.asr)).toEqual([0, 0]);
      expect(summary.points.every((p) => p.meanFinal === null)).toBe(true);
    } finally {
      store.close();
    }
  }, 120_000);

  it('refuses a source that is not a finished transcripts run or a setting it does not have, naming the fix', async () => {
    const notTranscripts = await truncate('--run', String(runs.trace));
    expect(notTranscripts.code).toBe(2);
    expect(notTranscripts.stderr).toMatch(/transcripts/);
    const badSetting = await truncate('--run', String(runs.transcripts), '--setting', 'nope');
    expect(badSetting.code).toBe(2);
    expect(badSetting.stderr).toMatch(/no setting "nope"[\s\S]*baseline/);
    const badFraction = await truncate('--run', String(runs.transcripts), '--fractions', '1.5');
    expect(badFraction.code).toBe(2);
    expect(badFraction.stderr).toMatch(/fractions/);
  });
});
