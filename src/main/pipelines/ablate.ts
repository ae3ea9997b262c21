/**
 * `ablate` runs (docs/METHOD.md §4): a sweep over the top-k% refusal suppression heads × γ, with random heads of the
 * same count as a control (and any named head set, e.g. the demo's planted heads), generating answers for a
 * harmful and a harmless set. Every setting shares the batches (head_scale is per row), every transcript is kept
 * and judged, and each cell reports ASR, over-refusal, mean I' and answer length.
 */
import type { HeadRef } from '../../shared/heads.js';
import { ablateRun, type AblateRunConfig, type AblateRunSummary, type RandomSpread, type SweepCellMetrics } from '../../shared/runs/ablate.js';
import { answerJudgeName, type AnswerJudge } from '../../shared/runs/judge.js';
import type { HeadScaleSetting } from '../../shared/runs/transcripts.js';
import { headCountForFraction, headsByFraction, randomHeads } from '../engine/analysis/heads.js';
import { probeJudge } from '../engine/analysis/judges.js';
import { type CellAnswer, judgeAgreement, judgeRates, type JudgedVerdict, spreadOf } from '../engine/analysis/sweep.js';
import { CliffscopeError } from '../engine/errors.js';
import { ablationScale } from '../engine/runtime/head-scale.js';
import { storedThinkingState } from '../engine/runtime/transcript.js';
import type { SweepControl } from '../store/types.js';
import type { ProjectStore } from '../store/project-store.js';
import { judgeFor, judgeOne, readyJudges } from './answer-judges.js';
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
      // Replicate r is keyed by its seed S + r and draws its heads with S + r + k (r = 0 is the one-seed sweep's cell).
      if (cfg.randomControl) {
        for (let r = 0; r < cfg.randomSeeds; r++) {
          const s = cfg.randomSeed + r;
          add('random', `random:k${k}:g${gamma}:s${s}`, randomHeads(k, L, H, s + k), gamma, fraction, s + k);
        }
      }
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
  const judges = await readyJudges(env, cfg.judges, cfg.probeId);

  await finishing(env, handle.run, async () => {
    // Cells are recorded once; a resumed run finds them.
    if (store.sweeps.cells(runId).length === 0) {
      store.transaction(() => {
        for (const c of cells) {
          store.sweeps.addCell({ runId, headScaleKey: c.setting.key, control: c.control, k: c.k, fraction: c.fraction, gamma: c.gamma, seed: c.seed, heads: c.heads.map((h) => [h.layer, h.head] as [number, number]) });
        }
      });
    }
    // Every judge's verdict on an answer is stored in the item that generated it (the answer by the one rule,
    // docs/METHOD.md §0); a guard's reply is awaited before the item's transaction.
    const verdictsOf = async (t: { item: { datasetId: number } | null; answer: string; thinkingNotClosed: boolean; final: number | null }) => {
      const attack = t.item?.datasetId === cfg.harmfulDatasetId;
      const pending = await judgeOne(judges, { answer: t.answer, final: t.final, attack, thinkingNotClosed: t.thinkingNotClosed }, env.signal);
      return (s: ProjectStore, transcriptId: number) => {
        for (const v of pending) s.verdicts.add({ runId, transcriptId, judge: v.judge, verdict: v.verdict, harmful: v.harmful, detail: { ...v.detail, set: attack ? 'harmful' : 'harmless' } });
      };
    };
    const settings = cells.map((c) => c.setting);
    const common = { chat: cfg.chat, maxNewTokens: cfg.maxNewTokens, sampling: cfg.sampling, seed: cfg.seed, batchSize: cfg.batchSize, settings, probeId: cfg.probeId ?? undefined };
    for (const datasetId of [cfg.harmfulDatasetId, cfg.harmlessDatasetId]) {
      if (datasetId === null || env.signal?.aborted) continue;
      await generateInto(env, runId, { datasetId, ...common }, handle, verdictsOf);
    }
    if (env.signal?.aborted) return;

    // A run made before answers were judged in their own item may hold transcripts without a verdict: judge those.
    const judgedBy = new Map<number, Set<string>>();
    for (const v of store.verdicts.list({ runId })) judgedBy.set(v.transcriptId, (judgedBy.get(v.transcriptId) ?? new Set()).add(v.judge));
    const finals = new Map(cfg.probeId === null ? [] : store.traces.list({ runId, probeId: cfg.probeId }).map((tr) => [tr.transcriptId, tr.final]));
    for (const t of readSource(store, tok, { kind: 'run', runId })) {
      if (judges.every((j) => judgedBy.get(t.transcriptId!)?.has(j.id))) continue;
      if (!handle.todo(`verdict:${t.transcriptId}`) || env.signal?.aborted) continue;
      const final = finals.get(t.transcriptId!);
      const write = await verdictsOf({ item: t.item, answer: t.answer, thinkingNotClosed: t.thinkingNotClosed, final: typeof final === 'number' && Number.isFinite(final) ? final : null });
      store.runs.commitItem(runId, `verdict:${t.transcriptId}`, (s) => write(s, t.transcriptId!));
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

/** A judge run's verdicts as one judge of a sweep: `run #7 guard:ab12…`. */
export const judgeRunKey = (runId: number, judge: string) => `run #${runId} ${judge}`;

/**
 * The verdict ids of the run's judges, in the config's order. A keyword or probe judge's id follows from its spec; a
 * guard's holds its model's hash, so it is read from the stored verdicts (a merged run has no model loaded).
 */
export function sweepJudgeIds(store: Pick<ProjectStore, 'verdicts'>, runId: number, cfg: AblateRunConfig): string[] {
  const known = (j: AnswerJudge) => (j.kind === 'keyword' ? judgeFor(j.list).id : j.kind === 'probe' ? probeJudge(String(cfg.probeId), j.threshold).id : null);
  const fixed = new Set(cfg.judges.map(known).filter((id): id is string => id !== null));
  const guards = [...new Set(store.verdicts.list({ runId }).map((v) => v.judge))].filter((id) => id.startsWith('guard:') && !fixed.has(id));
  let g = 0;
  return cfg.judges.map((j) => known(j) ?? guards[g++] ?? answerJudgeName(j));
}

/** Every cell's metrics and the run's summary, from the stored transcripts, verdicts and traces. */
export function aggregateAblation(store: ProjectStore, runId: number, cfg: AblateRunConfig): void {
  const { cells, summary } = sweepMetrics(store, runId, cfg);
  for (const c of cells) store.sweeps.setMetrics(c.cellId, c.metrics);
  commitSummary(store, ablateRun, runId, summary);
}

/**
 * Every cell's metrics and the run's summary, computed from what is stored and written nowhere: the aggregate of a
 * finished run, and the numbers of an interrupted or cancelled sweep's finished answers so far (the Ablations tab).
 */
export function sweepMetrics(
  store: Pick<ProjectStore, 'verdicts' | 'traces' | 'sweeps' | 'transcripts' | 'datasets'>,
  runId: number,
  cfg: AblateRunConfig,
  opts: { judgeRuns?: readonly { runId: number; judge: string }[] } = {},
): { cells: { cellId: number; key: string; metrics: SweepCellMetrics }[]; summary: AblateRunSummary } {
  const own = sweepJudgeIds(store, runId, cfg);
  // Judge runs over the sweep (judge --run) join as judges of their own, named after their run.
  const judgeIds = [...own, ...(opts.judgeRuns ?? []).map((r) => judgeRunKey(r.runId, r.judge))];
  const headline = own[0]!;
  const verdicts = new Map<number, Map<string, JudgedVerdict>>();
  const note = (transcriptId: number, judge: string, v: JudgedVerdict) => {
    if (!verdicts.has(transcriptId)) verdicts.set(transcriptId, new Map());
    verdicts.get(transcriptId)!.set(judge, { verdict: v.verdict, harmful: v.harmful });
  };
  for (const v of store.verdicts.list({ runId })) note(v.transcriptId, v.judge, v);
  for (const r of opts.judgeRuns ?? []) for (const v of store.verdicts.list({ runId: r.runId, judge: r.judge })) note(v.transcriptId, judgeRunKey(r.runId, r.judge), v);
  const finals = new Map(cfg.probeId === null ? [] : store.traces.list({ runId, probeId: cfg.probeId }).map((tr) => [tr.transcriptId, tr.final]));
  const stored = store.sweeps.cells(runId);
  const metricsByKey = new Map<string, SweepCellMetrics>();
  for (const cell of stored) {
    // In item order (one transcript per item in a cell), however the items were split over processes.
    const transcripts = store.transcripts.list(runId, { headScaleKey: cell.headScaleKey }).sort((a, b) => (a.itemId ?? 0) - (b.itemId ?? 0));
    const harmful = transcripts.filter((t) => t.itemId !== null && store.datasets.item(t.itemId)?.datasetId === cfg.harmfulDatasetId);
    const harmless = transcripts.filter((t) => !harmful.includes(t));
    const answers: CellAnswer[] = transcripts.map((t) => ({ set: harmful.includes(t) ? 'harmful' : 'harmless', verdicts: verdicts.get(t.id) ?? new Map() }));
    const rates = Object.fromEntries(judgeIds.map((id) => [id, judgeRates(answers, id)]));
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
      asr: rates[headline]!.asr,
      overRefusal: harmless.length ? rates[headline]!.overRefusal : null,
      meanFinal: finalScores.length ? finalScores.reduce((a, b) => a + b, 0) / finalScores.length : null,
      meanAnswerTokens: answerTokens.length ? answerTokens.reduce((a, b) => a + b, 0) / answerTokens.length : null,
      judge: headline,
      ...(judgeIds.length > 1
        ? {
            byJudge: rates,
            agreement: judgeIds.flatMap((a, i) => judgeIds.slice(i + 1).map((b) => ({ a, b, ...judgeAgreement(answers, a, b) }))),
          }
        : {}),
    };
    metricsByKey.set(cell.headScaleKey, metrics);
  }
  const summaryCells = stored.map((c) => ({ key: c.headScaleKey, control: c.control, k: c.k, fraction: c.fraction, gamma: c.gamma, seed: c.seed, ...metricsByKey.get(c.headScaleKey)! }));
  return {
    cells: stored.map((c) => ({ cellId: c.id, key: c.headScaleKey, metrics: metricsByKey.get(c.headScaleKey)! })),
    summary: {
      judge: headline,
      ...(judgeIds.length > 1 ? { judges: judgeIds } : {}),
      cells: summaryCells.map(({ seed: _seed, ...c }) => c),
      ...(cfg.randomSeeds > 1 ? { randomSpread: randomSpread(summaryCells, judgeIds) } : {}),
    },
  };
}

/** The random-head controls of each k and γ over their seeds: every judge's ASR and mean I' as mean ± spread. */
function randomSpread(cells: readonly (SweepCellMetrics & { key: string; control: string; k: number; gamma: number; seed: number | null })[], judgeIds: readonly string[]): RandomSpread[] {
  const groups = new Map<string, typeof cells>();
  for (const c of cells) {
    if (c.control !== 'random') continue;
    const g = `${c.k}:${c.gamma}`;
    groups.set(g, [...(groups.get(g) ?? []), c]);
  }
  return [...groups.values()].map((group) => ({
    k: group[0]!.k,
    gamma: group[0]!.gamma,
    seeds: group.map((c) => c.seed ?? 0),
    keys: group.map((c) => c.key),
    asr: spreadOf(group.map((c) => c.asr)),
    meanFinal: spreadOf(group.map((c) => c.meanFinal)),
    byJudge: Object.fromEntries(judgeIds.map((id) => [id, spreadOf(group.map((c) => (c.byJudge ? (c.byJudge[id]?.asr ?? null) : id === c.judge ? c.asr : null)))])),
  }));
}
