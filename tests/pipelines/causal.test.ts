/**
 * Causal head ranking (`causal`, docs/METHOD.md §9) on the demo's planted model: scaling each head alone by 0.001 and
 * reading I' at t_b puts the three planted suppression heads on top, agrees in rank with direct attribution, and its
 * unscaled I' is the trace run's final score of the same transcripts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PLANTED_HEADS } from '../../src/main/api/demo/planted-model.js';
import { runReport } from '../../src/main/api/runs.js';
import { summaryOf } from '../../src/shared/contract.js';
import { headKey } from '../../src/shared/heads.js';
import { openProject } from '../../src/main/store/open.js';
import { cli } from '../support/cli.js';
import { demoProject, type DemoProject } from '../support/demo-project.js';

let demo: DemoProject;
let project: string;
let model: string;
let runs: DemoProject['runs'];

beforeAll(async () => {
  demo = await demoProject('causal');
  ({ project, model, runs } = demo);
}, 300_000);
afterAll(() => demo?.dispose());

const causal = async (...args: string[]) => {
  const r = await cli('causal', project, '--model', model, '--threads', '1', '--json', ...args);
  return { ...r, runId: r.code === 0 ? (JSON.parse(r.stdout) as { run: { id: number } }).run.id : null };
};
const planted = new Set(DEMO_PLANTED_HEADS.map(headKey));

describe('causal', () => {
  it('ranks the planted heads on top, agrees with direct attribution, and its unscaled I′ is the trace run’s', async () => {
    const r = await causal('--heads-run', String(runs.heads));
    expect(r.code, r.stderr).toBe(0);
    const store = openProject(project, { readonly: true });
    try {
      const s = summaryOf(runReport(store, r.runId!), 'causal')!;
      const trace = summaryOf(runReport(store, runs.trace!), 'trace')!;
      const heads = summaryOf(runReport(store, runs.heads!), 'heads')!;
      expect(s.scale).toBe(0.001);
      expect(s.heads).toHaveLength(heads.layers * heads.heads);
      expect(new Set(s.heads.slice(0, 3).map(headKey))).toEqual(planted);
      // Scaling a planted head down lifts I′ at the cliff by far more than any other head moves it.
      expect(s.heads[2]!.causal).toBeLessThan(-0.1);
      expect(Math.abs(s.heads[3]!.causal)).toBeLessThan(0.05);
      expect(s.spearman!).toBeGreaterThan(0.5);
      expect(s.topOverlap).toBeGreaterThanOrEqual(3);
      // The direct scores are the heads run's, head for head.
      for (const h of heads.suppression) expect(s.heads.find((x) => headKey(x) === headKey(h))!.direct).toBeCloseTo(h.score, 6);
      expect(s.transcripts).toBe(trace.transcripts);
      expect(s.baseFinal!).toBeCloseTo(trace.meanFinal!, 5);
    } finally {
      store.close();
    }
  }, 120_000);

  it('--top N scores only the N heads with the largest direct writes, and --scale is stored', async () => {
    const r = await causal('--heads-run', String(runs.heads), '--top', '4', '--scale', '0');
    expect(r.code, r.stderr).toBe(0);
    const store = openProject(project, { readonly: true });
    try {
      const report = runReport(store, r.runId!);
      expect(report.run.config).toMatchObject({ headsRunId: runs.heads, scale: 0, top: 4 });
      const s = summaryOf(report, 'causal')!;
      expect(s.heads).toHaveLength(4);
      expect(new Set(s.heads.slice(0, 3).map(headKey))).toEqual(planted);
    } finally {
      store.close();
    }
  }, 120_000);

  it('refuses a run that is not a heads run, and a bad --top, naming the field', async () => {
    const wrong = await causal('--heads-run', String(runs.trace));
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/headsRunId|heads/);
    const badTop = await causal('--heads-run', String(runs.heads), '--top', '0');
    expect(badTop.code).toBe(2);
    expect(badTop.stderr).toMatch(/top/);
  });
});
