/**
 * Transcripts, the raw material of every other pipeline: the model's own generations for a dataset's prompts
 * (a `transcripts` run), under one or more head-scale settings side by side, with the thinking / answer split and,
 * when a probe is given, its live refusal score per token stored as a trace.
 */
import { transcriptsRun, type GenerateRunConfig, type GenerateRunSummary, type HeadScaleSetting } from '../../shared/runs/transcripts.js';
import { scoreRows } from '../engine/analysis/probe.js';
import { traceMetrics } from '../engine/analysis/trace.js';
import { CliffscopeError } from '../engine/errors.js';
import { generate, type GenerationRequest, type GenerationResult } from '../engine/runtime/generate.js';
import { flatHeadScale } from '../engine/runtime/head-scale.js';
import { promptIds, samplingOptions, stopIds } from '../engine/runtime/prompt.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import { describeTranscript, storedThinkingState, type ProbeReading } from '../engine/runtime/transcript.js';
import type { ProjectStore } from '../store/project-store.js';
import type { ItemRow, ProbeRow } from '../store/types.js';
import { beginRun, checkCancelled, chunks, commitSummary, finishing, type PipelineEnv, requireProbe, type RunHandle, type RunOptions, requireTokenizer, type WorkUnit } from './common.js';

export { BASELINE_SETTING, type GenerateRunConfig, type HeadScaleSetting } from '../../shared/runs/transcripts.js';

export interface GeneratedItem {
  key: string;
  itemId: number;
  setting: string;
  transcriptId: number;
}

/** What the unit of work for one (item, setting) pair is called in run_items. */
export const transcriptKey = (itemId: number, setting: string) => `${itemId}:${setting}`;

/**
 * Generate transcripts for dataset items × settings in a `generate` run (or continue `resume`), committing each
 * transcript as it completes. Returns the run id.
 */
export async function runGenerate(env: PipelineEnv, config: GenerateRunConfig, opts: RunOptions = {}): Promise<number> {
  const handle = beginRun(env, transcriptsRun, config, opts, (cfg) => {
    env.store.datasets.require(cfg.datasetId);
    if (cfg.probeId !== undefined) requireProbe(env, cfg.probeId);
  });
  await finishing(env, handle.run, async () => {
    await generateInto(env, handle.run.id, handle.config, handle);
    if (!env.signal?.aborted && !handle.shard) aggregateTranscripts(env.store, handle.run.id);
  });
  return handle.run.id;
}

/** The items of a transcripts run: every (item, setting) pair, costing its prompt and the tokens it may generate. */
export function transcriptsUnits(store: ProjectStore, cfg: Pick<GenerateRunConfig, 'datasetId' | 'itemIds' | 'maxNewTokens' | 'settings'>): WorkUnit[] {
  return runItems(store, cfg).flatMap((item) => cfg.settings.map((setting) => ({ key: transcriptKey(item.id, setting.key), cost: promptCost(item.prompt) + cfg.maxNewTokens })));
}

/** Roughly the tokens of a text (4 characters a token): the cost used to balance shards, never a result. */
export const promptCost = (text: string) => Math.ceil(text.length / 4);

function runItems(store: ProjectStore, cfg: Pick<GenerateRunConfig, 'datasetId' | 'itemIds'>): ItemRow[] {
  const items = cfg.itemIds ? cfg.itemIds.map((id) => store.datasets.item(id)).filter((x): x is ItemRow => x !== null) : store.datasets.items(cfg.datasetId);
  if (items.length === 0) throw new CliffscopeError('bad-argument', `dataset #${cfg.datasetId} has no items to generate from`);
  return items;
}

/** The run's summary, from its stored transcripts. */
export function aggregateTranscripts(store: ProjectStore, runId: number): void {
  commitSummary(store, transcriptsRun, runId, summarizeTranscripts(store, runId));
}

/** How many transcripts, how they ended, how long they are, how many reached an answer. */
export function summarizeTranscripts(store: ProjectStore, runId: number): GenerateRunSummary {
  const ts = store.transcripts.list(runId);
  const finish: Record<string, number> = {};
  for (const t of ts) finish[t.finishReason ?? 'unknown'] = (finish[t.finishReason ?? 'unknown'] ?? 0) + 1;
  const outputTokens = ts.map((t) => t.tokenIds.length - t.promptTokens);
  return {
    transcripts: ts.length,
    withAnswerBoundary: ts.filter((t) => t.answerBoundary !== null).length,
    thinkingNotClosed: ts.filter((t) => storedThinkingState(t) === 'not-closed').length,
    finishReasons: finish,
    meanOutputTokens: outputTokens.length ? outputTokens.reduce((a, b) => a + b, 0) / outputTokens.length : null,
  };
}

/** One unit of work: an item's prompt under one setting. */
interface Work {
  item: ItemRow;
  setting: HeadScaleSetting;
  key: string;
  request: GenerationRequest;
}

/** A generated transcript as a pipeline's extra rows see it: the answer by the one rule (§0) and I' under the live probe. */
export interface GeneratedTranscript {
  item: ItemRow;
  answer: string;
  thinkingNotClosed: boolean;
  /** I' from the live trace (null without a probe, or without a finite score at t_b). */
  final: number | null;
}

/**
 * Rows a pipeline adds to a generated transcript's item (an ablation sweep's verdicts): whatever must be awaited (a
 * guard model's reply) is awaited first, then the returned writer runs in the item's transaction, so the item is
 * whole or absent.
 */
export type ItemExtras = (t: GeneratedTranscript) => Promise<(store: ProjectStore, transcriptId: number) => void>;

/**
 * The generation loop, usable by any pipeline that owns a running run (ablation sweeps write into their own run).
 * `share` says which (item, setting) keys this process generates (a shard's, or all).
 */
export async function generateInto(env: PipelineEnv, runId: number, cfg: GenerateRunConfig, share: Pick<RunHandle<unknown>, 'todo' | 'owns'>, extras?: ItemExtras): Promise<void> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const { numLayers: L, numHeads: H } = model.config;
  const items = runItems(store, cfg);
  const probe: ProbeRow | null = cfg.probeId !== undefined ? store.probes.require(cfg.probeId) : null;
  // Each setting's γ matrix, checked against the model once, as the graph's flat row.
  const scales = new Map(cfg.settings.map((s) => [s.key, s.headScale ? flatHeadScale(s.headScale, L, H, `setting "${s.key}"`) : undefined]));
  const units = items.flatMap((item) => cfg.settings.map((setting) => ({ item, setting, key: transcriptKey(item.id, setting.key) }))).filter((w) => share.owns(w.key));
  const work: Work[] = units
    .filter((w) => share.todo(w.key))
    .map((w) => ({
      ...w,
      request: {
        ids: promptIds(tok, w.item.prompt, { chat: cfg.chat, system: cfg.system }),
        headScale: scales.get(w.setting.key),
        // Per item (not per batch position) so a resumed or re-batched run samples the same text.
        seed: cfg.seed * 1_000_003 + w.item.id,
      },
    }));
  const total = units.length;
  let finished = total - work.length;
  env.onProgress?.(finished, total, 'transcripts');

  await generateAll(env, cfg, probe, work, async (w, r) => {
    // A sequence cut off by cancellation is not a finished transcript: leave it for the resume.
    if (r.finishReason === 'cancelled') return;
    await commitTranscript(env, runId, w, r, probe, extras);
    env.onProgress?.(++finished, total, 'transcripts');
  });
}

/**
 * The sampler over every unit of work: the one place the pipelines call the model's generate() (transcripts, sweeps,
 * truncation). Each result is handed to
 * `onFinished` with its unit; batches of cfg.batchSize, stopping between them when the run is cancelled.
 */
export async function generateAll<W extends { request: GenerationRequest }>(
  env: PipelineEnv,
  cfg: Pick<GenerateRunConfig, 'maxNewTokens' | 'sampling' | 'batchSize'>,
  probe: ProbeRow | null,
  work: W[],
  onFinished: (w: W, r: GenerationResult) => Promise<void>,
): Promise<void> {
  const { model } = env;
  const options = {
    maxNewTokens: cfg.maxNewTokens,
    sampling: samplingOptions(cfg.sampling),
    stopIds: stopIds(model),
    // The sampler's live probe reads residual-stack entry `layer`.
    probes: probe ? [{ layer: probe.residIndex, weights: probe.weights, bias: probe.bias }] : [],
    signal: env.signal,
  };
  for (const batch of chunks(work, Math.max(1, cfg.batchSize))) {
    if (checkCancelled(env)) return;
    const results = await generate(model.session, batch.map((w) => w.request), { ...options, batchSize: batch.length });
    for (const [i, r] of results.entries()) await onFinished(batch[i]!, r);
  }
}

/**
 * Store one finished transcript (and, with a live probe, its trace; and the pipeline's extra rows) as the unit's
 * committed item, whose payload names the transcript.
 */
async function commitTranscript(env: PipelineEnv, runId: number, w: Work, r: GenerationResult, probe: ProbeRow | null, extras?: ItemExtras): Promise<void> {
  const tok = requireTokenizer(env.model);
  const t = describeTranscript(tok, r.promptIds, r.outputIds);
  // Thinking cut off before it closed: the probe also reads the closing marker appended (docs/METHOD.md §0).
  const scores = probe ? (t.thinkingNotClosed ? await withClosingMarkerScores(env, probe, t.probe, r.scores[0]!, w.setting.headScale) : r.scores[0]!) : null;
  const m = scores ? traceMetrics(scores, { ...t.split, answerBoundary: t.probe.answerBoundary, generatedStart: r.promptIds.length }) : null;
  const final = m !== null && Number.isFinite(m.final) ? m.final : null;
  const extraRows = extras ? await extras({ item: w.item, answer: t.answer, thinkingNotClosed: t.thinkingNotClosed, final }) : undefined;
  env.store.runs.commitItem(runId, w.key, (s) => {
    const id = s.transcripts.add({
      runId,
      itemId: w.item.id,
      prompt: w.item.prompt,
      tokenIds: [...r.promptIds, ...r.outputIds],
      promptTokens: r.promptIds.length,
      text: t.text,
      thinkingStart: t.split.thinkingStart,
      thinkingEnd: t.split.thinkingEnd,
      answerBoundary: t.split.answerBoundary,
      finishReason: r.finishReason,
      headScaleKey: w.setting.key,
    });
    if (probe && scores && m) {
      s.traces.add({ runId, transcriptId: id, probeId: probe.id, residIndex: probe.residIndex, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
    }
    extraRows?.(s, id);
    return { transcriptId: id };
  });
}

/** The live scores extended by the probe's scores on the appended closing marker (teacher-forced, same head scale). */
async function withClosingMarkerScores(env: PipelineEnv, probe: ProbeRow, reading: ProbeReading, live: Float32Array, headScale?: number[][]): Promise<Float32Array> {
  const d = env.model.config.hiddenSize;
  const own = reading.ids.length - reading.appended;
  const positions = Array.from({ length: reading.appended }, (_, k) => own + k);
  const out = await teacherForce(env.model.session, reading.ids, { residLayers: [probe.residIndex], positions, headScale, signal: env.signal });
  const scores = new Float32Array(reading.ids.length);
  scores.set(live.subarray(0, own));
  scores.set(scoreRows(probe, out.resid.get(probe.residIndex)!, d), own);
  return scores;
}
