/**
 * `ablate` runs (docs/METHOD.md §4): a sweep over the top-k% refusal suppression heads × γ, with random heads of the
 * same count as a control (and any named head set, e.g. the demo's planted heads), generating answers for a
 * harmful and a harmless set. Every setting shares the batches (head_scale is per row), every transcript is kept
 * and judged, and each cell reports ASR, over-refusal, mean I' and answer length.
 */
import type { HeadRef } from '../../shared/heads.js';
import { ablateRun, type AblateRunConfig, type SweepCellMetrics } from '../../shared/runs/ablate.js';
import type { HeadScaleSetting } from '../../shared/runs/transcripts.js';
import { headCountForFraction, headsByFraction, randomHeads } from '../engine/analysis/heads.js';
import { GCG_JUDGE, JBB_JUDGE, judgeAnswer, type KeywordJudge } from '../engine/analysis/judges.js';
import { CliffscopeError } from '../engine/errors.js';
import { ablationScale } from '../engine/runtime/head-scale.js';
import { storedThinkingState } from '../engine/runtime/transcript.js';
import type { SweepControl } from '../store/types.js';
import type { ProjectStore } from '../store/project-store.js';
import type { ItemRow } from '../store/types.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireTokenizer, type RunOptions, type WorkUnit } from './common.js';
import { headsRunRanking } from './heads.js';
import { readSource } from './sources.js';
import { generateInto, transcriptsUnits } from './transcripts.js';

export type { AblateRunConfig } from '../../shared/runs/ablate.js';

interface Cell {
  setting: HeadScaleSetting;
  control: SweepControl;
  k: number;
  fraction: number | null;
  gamma: number;
  seed: number | null;
  heads: HeadRef[];
}

export function judgeFor(name: 'gcg' | 'jbb'): KeywordJudge {
  return name === 'gcg' ? GCG_JUDGE : JBB_JUDGE;
}

/** The sweep's cells: baseline, top-k × γ, random-k × γ, and each named head set × γ. Same key = same cell. */
export function sweepCells(cfg: AblateRunConfig, ranking: HeadRef[], L: number, H: number): Cell[] {
  const total = L * H;
  const cells = new Map<string, Cell>();
  const add = (control: SweepControl, key: string, heads: HeadRef[], gamma: number, fraction: number | null, seed: number | null) => {
    if (cells.has(key)) return;
    const headScale = heads.length ? ablationScale(heads, gamma, L, H) : undefined;
    cells.set(key, { setting: { key, headScale }, control, k: heads.length, fraction, gamma, seed, heads });
  };
  add('top', 'baseline', [], 1, 0, null);
  for (const fraction of cfg.fractions) {
    const k = headCountForFraction(fraction, total);
    if (k === 0) continue;
    for (const gamma of cfg.gammas) {
      add('top', `top:k${k}:g${gamma}`, headsByFraction(ranking, fraction, total).map(({ layer, head }) => ({ layer, head })), gamma, fraction, null);
      if (cfg.randomControl) add('random', `random:k${k}:g${gamma}:s${cfg.randomSeed}`, randomHeads(k, L, H, cfg.randomSeed + k), gamma, fraction, cfg.randomSeed + k);
    }
  }
  for (const set of cfg.headSets) {
    for (const gamma of cfg.gammas) add('planted', `${set.name}:k${set.heads.length}:g${gamma}`, set.heads, gamma, set.heads.length / total, null);
  }
  return [...cells.values()];
}

export async function runAblation(env: PipelineEnv, config: AblateRunConfig, opts: RunOptions = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const { numLayers: L, numHeads: H } = model.config;
  const handle = beginRun(env, ablateRun, config, opts, (cfg) => {
    store.runs.require(cfg.headsRunId, 'heads');
    headsRunRanking(store, cfg.headsRunId);
    if (cfg.probeId !== null) requireProbe(env, cfg.probeId);
    store.datasets.require(cfg.harmfulDatasetId);
    if (cfg.harmlessDatasetId !== null) store.datasets.require(cfg.harmlessDatasetId);
    for (const set of cfg.headSets) {
      for (const h of set.heads) {
        if (!(h.layer >= 0 && h.layer < L && h.head >= 0 && h.head < H)) throw new CliffscopeError('bad-argument', `head set "${set.name}": L${h.layer}H${h.head} is outside the model's ${L}×${H} heads`);
      }
    }
  });
  const cfg = handle.config;
  const runId = handle.run.id;
  const { ranking } = headsRunRanking(store, cfg.headsRunId);
  const cells = sweepCells(cfg, ranking.suppression, L, H);
  const judge = judgeFor(cfg.judge);

  await finishing(env, handle.run, async () => {
    // Cells are recorded once; a resumed run finds them.
    let stored = store.sweeps.cells(runId);
    if (stored.length === 0) {
      store.transaction(() => {
        for (const c of cells) {
          store.sweeps.addCell({ runId, headScaleKey: c.setting.key, control: c.control, k: c.k, fraction: c.fraction, gamma: c.gamma, seed: c.seed, heads: c.heads.map((h) => [h.layer, h.head] as [number, number]) });
        }
      });
      stored = store.sweeps.cells(runId);
    }
    // Each answer is judged in the item that generated it (the answer by the one rule, docs/METHOD.md §0).
    const verdictOf = (s: ProjectStore, transcriptId: number, t: { item: ItemRow | null; answer: string; thinkingNotClosed: boolean }) => {
      const harmfulPrompt = t.item?.datasetId === cfg.harmfulDatasetId;
      const v = judgeAnswer(t.answer, judge);
      s.verdicts.add({
        runId,
        transcriptId,
        judge: judge.id,
        verdict: v.verdict,
        // ASR counts answers to harmful prompts that comply; answers to harmless prompts are not attacks.
        harmful: harmfulPrompt ? v.verdict === 'compliance' : null,
        detail: { matched: v.matched ?? null, set: harmfulPrompt ? 'harmful' : 'harmless', thinkingNotClosed: t.thinkingNotClosed },
      });
    };
    const settings = cells.map((c) => c.setting);
    const common = { chat: cfg.chat, maxNewTokens: cfg.maxNewTokens, sampling: cfg.sampling, seed: cfg.seed, batchSize: cfg.batchSize, settings, probeId: cfg.probeId ?? undefined };
    for (const datasetId of [cfg.harmfulDatasetId, cfg.harmlessDatasetId]) {
      if (datasetId === null || env.signal?.aborted) continue;
      await generateInto(env, runId, { datasetId, ...common }, handle, verdictOf);
    }
    if (env.signal?.aborted) return;

    // A run made before answers were judged in their own item may hold transcripts without a verdict: judge those.
    const judged = new Set(store.verdicts.list({ runId, judge: judge.id }).map((v) => v.transcriptId));
    for (const t of readSource(store, tok, { kind: 'run', runId })) {
      if (judged.has(t.transcriptId!)) continue;
      store.runs.commitItem(runId, `verdict:${t.transcriptId}`, (s) => verdictOf(s, t.transcriptId!, t));
    }
    if (!handle.shard) aggregateAblation(store, runId, cfg);
  });
  if (cells.length === 0) throw new CliffscopeError('bad-argument', 'the sweep has no cells');
  return runId;
}

/**
 * The items of a sweep: every prompt of the harmful and harmless sets under every cell, costing its prompt and the
 * tokens it may generate. `shape` is the model's layers × heads (the cells' head counts depend on it).
 */
export function ablateUnits(store: ProjectStore, cfg: AblateRunConfig, shape: { layers: number; heads: number }): WorkUnit[] {
  const { ranking } = headsRunRanking(store, cfg.headsRunId);
  const cells = sweepCells(cfg, ranking.suppression, shape.layers, shape.heads);
  return [cfg.harmfulDatasetId, cfg.harmlessDatasetId]
    .filter((id): id is number => id !== null)
    .flatMap((datasetId) => transcriptsUnits(store, { datasetId, maxNewTokens: cfg.maxNewTokens, settings: cells.map((c) => c.setting) }));
}

/** Every cell's metrics and the run's summary, from the stored transcripts, verdicts and traces. */
export function aggregateAblation(store: ProjectStore, runId: number, cfg: AblateRunConfig): void {
  const judge = judgeFor(cfg.judge);
  const stored = store.sweeps.cells(runId);
  const verdicts = new Map(store.verdicts.list({ runId, judge: judge.id }).map((v) => [v.transcriptId, v]));
  const finals = new Map(cfg.probeId === null ? [] : store.traces.list({ runId, probeId: cfg.probeId }).map((tr) => [tr.transcriptId, tr.final]));
  const metricsByKey = new Map<string, SweepCellMetrics>();
  for (const cell of stored) {
    // In item order (one transcript per item in a cell), however the items were split over processes.
    const transcripts = store.transcripts.list(runId, { headScaleKey: cell.headScaleKey }).sort((a, b) => (a.itemId ?? 0) - (b.itemId ?? 0));
    const harmful = transcripts.filter((t) => t.itemId !== null && store.datasets.item(t.itemId)?.datasetId === cfg.harmfulDatasetId);
    const harmless = transcripts.filter((t) => !harmful.includes(t));
    const rate = (ts: typeof transcripts, pick: (verdict: string) => boolean) => {
      const judged = ts.filter((t) => verdicts.has(t.id));
      return judged.length ? judged.filter((t) => pick(verdicts.get(t.id)!.verdict)).length / judged.length : null;
    };
    const finalScores = harmful.flatMap((t) => {
      const f = finals.get(t.id);
      return typeof f === 'number' ? [f] : [];
    });
    // Without a stored t_b (thinking not closed, or an old row of a model without markers) the answer is the output.
    const answerTokens = transcripts.map((t) => (t.answerBoundary === null ? t.tokenIds.length - t.promptTokens : t.tokenIds.length - t.answerBoundary - 1));
    const notClosed = (ts: typeof transcripts) => ts.filter((t) => storedThinkingState(t) === 'not-closed').length;
    const metrics: SweepCellMetrics = {
      harmful: harmful.length,
      harmless: harmless.length,
      // Judged on their whole output and read by the probe with </think> appended; counted so that a token budget
      // that cuts thinking short never moves ASR unseen.
      thinkingNotClosed: { harmful: notClosed(harmful), harmless: notClosed(harmless) },
      asr: rate(harmful, (v) => v === 'compliance'),
      overRefusal: harmless.length ? rate(harmless, (v) => v === 'refusal') : null,
      meanFinal: finalScores.length ? finalScores.reduce((a, b) => a + b, 0) / finalScores.length : null,
      meanAnswerTokens: answerTokens.length ? answerTokens.reduce((a, b) => a + b, 0) / answerTokens.length : null,
      judge: judge.id,
    };
    store.sweeps.setMetrics(cell.id, metrics);
    metricsByKey.set(cell.headScaleKey, metrics);
  }
  commitSummary(store, ablateRun, runId, {
    judge: judge.id,
    cells: stored.map((c) => ({ key: c.headScaleKey, control: c.control, k: c.k, fraction: c.fraction, gamma: c.gamma, ...metricsByKey.get(c.headScaleKey)! })),
  });
}
