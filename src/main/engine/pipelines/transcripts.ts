/**
 * Transcripts, the raw material of every other pipeline: the model's own generations for a dataset's prompts
 * (a `generate` run), under one or more head-scale settings side by side, with the thinking / answer split and,
 * when a probe is given, its live refusal score per token stored as a trace.
 */
import { traceMetrics } from '../analysis/trace.js';
import { CliffscopeError } from '../errors.js';
import { generate, type GenerationRequest } from '../runtime/generate.js';
import { GREEDY, type SamplingOptions } from '../runtime/sampling.js';
import { scoreRows } from '../analysis/probe.js';
import { teacherForce } from '../runtime/teacher-force.js';
import { describeTranscript, storedThinkingState, type ProbeReading } from '../runtime/transcript.js';
import type { ItemRow, JsonObject, ProbeRow } from '../store/types.js';
import { beginRun, checkCancelled, chunks, commitSummary, finishing, type PipelineEnv, promptIds, requireDatasetId, requireProbe, requireTokenizer } from './common.js';

/** One ablation setting: a key stored with each transcript, and γ per [layer * heads + head] (omitted = none). */
export interface HeadScaleSetting {
  key: string;
  headScale?: number[];
}

export interface GenerateRunConfig {
  datasetId: number;
  /** Only these items (ids); default the whole dataset. */
  itemIds?: number[];
  chat: boolean;
  system?: string;
  maxNewTokens: number;
  sampling?: SamplingOptions;
  seed: number;
  batchSize: number;
  settings: HeadScaleSetting[];
  /** Live probe: store its per-token scores and cliff metrics as a trace of each transcript. */
  probeId?: number;
}

export const BASELINE_SETTING: HeadScaleSetting = { key: 'baseline' };

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
export async function runGenerate(env: PipelineEnv, config: GenerateRunConfig, opts: { resume?: number; name?: string; parentRunId?: number } = {}): Promise<number> {
  const handle = beginRun(env, { kind: 'generate', name: opts.name ?? null, datasetId: config.datasetId, parentRunId: opts.parentRunId ?? null, config: config as unknown as JsonObject }, opts.resume, (c) => {
    const cfg = c as unknown as GenerateRunConfig;
    requireDatasetId(env, cfg.datasetId);
    if (cfg.probeId !== undefined) requireProbe(env, cfg.probeId);
  });
  const cfg = handle.config as unknown as GenerateRunConfig;
  await finishing(env, handle.run, async () => {
    await generateInto(env, handle.run.id, cfg, handle.done);
    if (!env.signal?.aborted) commitSummary(env, handle.run.id, summarizeTranscripts(env, handle.run.id));
  });
  return handle.run.id;
}

/** How many transcripts, how they ended, how long they are, how many reached an answer. */
export function summarizeTranscripts(env: PipelineEnv, runId: number): JsonObject {
  const ts = env.store.listTranscripts(runId);
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

/** The generation loop, usable by any pipeline that owns a running run (ablation sweeps write into their own run). */
export async function generateInto(
  env: PipelineEnv,
  runId: number,
  cfg: GenerateRunConfig,
  done: Set<string>,
  onItem?: (item: ItemRow, setting: HeadScaleSetting, transcriptId: number, final: number | null) => void,
): Promise<void> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const { numLayers: L, numHeads: H } = model.config;
  const items = cfg.itemIds ? cfg.itemIds.map((id) => store.getItem(id)).filter((x): x is ItemRow => x !== null) : store.datasetItems(cfg.datasetId);
  if (items.length === 0) throw new CliffscopeError('bad-argument', `dataset #${cfg.datasetId} has no items to generate from`);
  const probe: ProbeRow | null = cfg.probeId !== undefined ? store.getProbe(cfg.probeId) : null;
  if (cfg.probeId !== undefined && !probe) throw new CliffscopeError('bad-argument', `probe #${cfg.probeId} does not exist`);
  for (const s of cfg.settings) {
    if (s.headScale && s.headScale.length !== L * H) {
      throw new CliffscopeError('bad-argument', `setting "${s.key}": head_scale holds ${s.headScale.length} values, the model has ${L}×${H} heads`);
    }
  }
  const stopIds = model.checkpoint.generation.eosTokenIds.length ? model.checkpoint.generation.eosTokenIds : tok.eosTokenId !== null ? [tok.eosTokenId] : [];
  const work = items.flatMap((item) => cfg.settings.map((setting) => ({ item, setting, key: transcriptKey(item.id, setting.key) }))).filter((w) => !done.has(w.key));
  let finished = items.length * cfg.settings.length - work.length;
  const total = items.length * cfg.settings.length;
  env.onProgress?.(finished, total, 'transcripts');

  for (const batch of chunks(work, Math.max(1, cfg.batchSize))) {
    if (checkCancelled(env)) return;
    const requests: GenerationRequest[] = batch.map((w) => ({
      ids: promptIds(tok, w.item.prompt, cfg.chat, cfg.system),
      headScale: w.setting.headScale ? Float32Array.from(w.setting.headScale) : undefined,
      // Per item (not per batch position) so a resumed or re-batched run samples the same text.
      seed: cfg.seed * 1_000_003 + w.item.id,
    }));
    const results = await generate(model.session, requests, {
      maxNewTokens: cfg.maxNewTokens,
      sampling: cfg.sampling ?? GREEDY,
      stopIds,
      batchSize: batch.length,
      probes: probe ? [{ layer: probe.layer, weights: probe.weights, bias: probe.bias }] : [],
      signal: env.signal,
    });
    for (const [i, r] of results.entries()) {
      // A sequence cut off by cancellation is not a finished transcript: leave it for the resume.
      if (r.finishReason === 'cancelled') continue;
      const { item, setting, key } = batch[i]!;
      const t = describeTranscript(tok, r.promptIds, r.outputIds);
      // Thinking cut off before it closed: the probe also reads the closing marker appended (docs/METHOD.md §0).
      const scores = probe ? (t.thinkingNotClosed ? await withClosingMarkerScores(env, probe, t.probe, r.scores[0]!, setting.headScale) : r.scores[0]!) : null;
      let final: number | null = null;
      const transcriptId = store.commitItem(runId, key, (s) => {
        const id = s.addTranscript({
          runId,
          itemId: item.id,
          prompt: item.prompt,
          tokenIds: [...r.promptIds, ...r.outputIds],
          promptTokens: r.promptIds.length,
          text: t.text,
          thinkingStart: t.split.thinkingStart,
          thinkingEnd: t.split.thinkingEnd,
          answerBoundary: t.split.answerBoundary,
          finishReason: r.finishReason,
          headScaleKey: setting.key,
        });
        if (probe && scores) {
          const m = traceMetrics(scores, { ...t.split, answerBoundary: t.probe.answerBoundary, generatedStart: r.promptIds.length });
          final = m.final;
          s.addTrace({ runId, transcriptId: id, probeId: probe.id, layer: probe.layer, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
        }
        return id;
      });
      onItem?.(item, setting, transcriptId, final);
      env.onProgress?.(++finished, total, 'transcripts');
    }
  }
}

/** The live scores extended by the probe's scores on the appended closing marker (teacher-forced, same head scale). */
async function withClosingMarkerScores(env: PipelineEnv, probe: ProbeRow, reading: ProbeReading, live: Float32Array, headScale?: number[]): Promise<Float32Array> {
  const { numLayers: L, numHeads: H, hiddenSize: d } = env.model.config;
  const own = reading.ids.length - reading.appended;
  const positions = Array.from({ length: reading.appended }, (_, k) => own + k);
  const out = await teacherForce(env.model.session, reading.ids, {
    residLayers: [probe.layer],
    positions,
    headScale: headScale ? Array.from({ length: L }, (_, l) => headScale.slice(l * H, (l + 1) * H)) : undefined,
    signal: env.signal,
  });
  const scores = new Float32Array(reading.ids.length);
  scores.set(live.subarray(0, own));
  scores.set(scoreRows(probe, out.resid.get(probe.layer)!, d), own);
  return scores;
}
