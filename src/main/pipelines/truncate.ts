/**
 * `truncate` runs (docs/METHOD.md §8): the paper's thinking-truncation experiment. For each transcript of a
 * transcripts run and each fraction f, the first ⌊f·n⌋ of its n own thinking tokens are kept, "\n</think>\n\n" closes
 * the thinking, and the model answers (under the source setting's head scale, if any). Each answer is one item: its
 * transcript (stored under the setting `keep:f`, with the source's dataset item), its keyword verdict and, with a
 * probe, its trace (I' = the score at t_b).
 */
import { BASELINE_SETTING, type HeadScaleSetting, transcriptsRun } from '../../shared/runs/transcripts.js';
import { type TruncateRunConfig, truncateRun, type TruncationPoint, truncationKey } from '../../shared/runs/truncate.js';
import { judgeAnswer } from '../engine/analysis/judges.js';
import { traceMetrics } from '../engine/analysis/trace.js';
import { CliffscopeError } from '../engine/errors.js';
import type { GenerationRequest } from '../engine/runtime/generate.js';
import { flatHeadScale } from '../engine/runtime/head-scale.js';
import { describeTranscript } from '../engine/runtime/transcript.js';
import { closingSuffixText } from '../engine/tokenizer/think.js';
import type { Tokenizer } from '../engine/tokenizer/tokenizer.js';
import type { ProjectStore } from '../store/project-store.js';
import type { TranscriptRow } from '../store/types.js';
import { judgeFor } from './answer-judges.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireTokenizer, type RunOptions, storedConfig, type WorkUnit } from './common.js';
import { generateAll } from './transcripts.js';

export type { TruncateRunConfig } from '../../shared/runs/truncate.js';

/** Thinking tokens kept of n at fraction f: ⌊f·n⌋ (the epsilon keeps 0.6·5 = 3, not 2, under float rounding). */
export const keptThinkingTokens = (fraction: number, n: number) => Math.min(n, Math.floor(fraction * n + 1e-9));

/** The model's own thinking in a source transcript: [start, end) token indices, or null when it has none. */
export function ownThinking(tok: Tokenizer, t: Pick<TranscriptRow, 'tokenIds' | 'promptTokens'>): { start: number; end: number } | null {
  const split = tok.splitTranscript(Array.from(t.tokenIds), t.promptTokens);
  if (split.state === 'none' || split.thinkingStart === null || split.thinkingEnd === null) return null;
  // A template that pre-fills "<think>\n" puts the thinking's first tokens in the prompt; only generated ones are the model's.
  return { start: Math.max(split.thinkingStart, t.promptTokens), end: split.thinkingEnd };
}

/** The source run's setting a truncation reads (and answers under, with its head scale). */
function sourceSetting(store: ProjectStore, cfg: TruncateRunConfig): HeadScaleSetting {
  const { settings } = storedConfig(store, transcriptsRun, store.runs.require(cfg.runId, 'transcripts'));
  const keys = settings.map((s) => s.key).join(', ');
  if (cfg.setting === null) {
    if (settings.length === 1) return settings[0]!;
    throw new CliffscopeError('bad-argument', `transcripts run #${cfg.runId} has ${settings.length} settings (${keys}); name the one to truncate`, { hint: 'pass --setting KEY' });
  }
  const setting = settings.find((s) => s.key === cfg.setting);
  if (!setting) throw new CliffscopeError('bad-argument', `transcripts run #${cfg.runId} has no setting "${cfg.setting}"`, { hint: `its settings: ${keys}` });
  return setting;
}

/** The source transcripts a run truncates: the source run's transcripts under its setting, in stored order. */
function sourceTranscripts(store: ProjectStore, cfg: TruncateRunConfig): TranscriptRow[] {
  const { key } = sourceSetting(store, cfg);
  // Unablated rows stored before settings were keyed have no key.
  return store.transcripts.list(cfg.runId).filter((t) => (t.headScaleKey ?? BASELINE_SETTING.key) === key);
}

/** What one item is: a source transcript truncated at one fraction. */
const itemKey = (sourceId: number, fraction: number) => `${sourceId}:${truncationKey(fraction)}`;

/**
 * The items of a truncation run: every source transcript with thinking × every fraction, costing the tokens kept and
 * the answer's budget. Without the tokenizer the thinking's length is the stored split's (the cost is only a balance).
 */
export function truncateUnits(store: ProjectStore, cfg: TruncateRunConfig): WorkUnit[] {
  return sourceTranscripts(store, cfg)
    .filter((t) => t.thinkingStart !== null)
    .flatMap((t) => cfg.fractions.map((f) => ({ key: itemKey(t.id, f), cost: t.promptTokens + keptThinkingTokens(f, (t.thinkingEnd ?? t.tokenIds.length) - t.thinkingStart!) + cfg.maxNewTokens })));
}

interface Work {
  key: string;
  source: TranscriptRow;
  fraction: number;
  kept: number;
  request: GenerationRequest;
}

export async function runTruncate(env: PipelineEnv, config: TruncateRunConfig, opts: RunOptions = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const handle = beginRun(env, truncateRun, config, opts, (cfg) => {
    const setting = sourceSetting(store, cfg);
    if (setting.headScale) flatHeadScale(setting.headScale, model.config.numLayers, model.config.numHeads, `setting "${setting.key}"`);
    if (cfg.probeId !== null) requireProbe(env, cfg.probeId);
    if (!tok.thinkMarkers.close) {
      throw new CliffscopeError('bad-argument', `${model.checkpoint.dir}'s tokenizer has no closing think marker (</think>): its thinking cannot be closed`, {
        hint: 'truncation needs a reasoning model whose vocabulary has <think> and </think>',
      });
    }
  });
  const cfg = handle.config;
  const runId = handle.run.id;
  const judge = judgeFor(cfg.judge);
  const probe = cfg.probeId === null ? null : requireProbe(env, cfg.probeId);
  const setting = sourceSetting(store, cfg);
  const headScale = setting.headScale ? flatHeadScale(setting.headScale, model.config.numLayers, model.config.numHeads, `setting "${setting.key}"`) : undefined;
  const suffix = tok.encode(closingSuffixText(tok.thinkMarkers.close!.text), { addSpecialTokens: false });

  await finishing(env, handle.run, async () => {
    const all: Work[] = [];
    for (const source of sourceTranscripts(store, cfg)) {
      const thinking = ownThinking(tok, source);
      if (!thinking) continue;
      for (const fraction of cfg.fractions) {
        const key = itemKey(source.id, fraction);
        if (!handle.owns(key)) continue;
        const kept = keptThinkingTokens(fraction, thinking.end - thinking.start);
        // Per source item (not batch position), as in every sampled run: a resumed or re-batched run samples the same text.
        const seed = cfg.seed * 1_000_003 + (source.itemId ?? source.id);
        all.push({ key, source, fraction, kept, request: { ids: [...Array.from(source.tokenIds.subarray(0, thinking.start + kept)), ...suffix], headScale, seed } });
      }
    }
    const work = all.filter((w) => handle.todo(w.key));
    let finished = all.length - work.length;
    env.onProgress?.(finished, all.length, 'answers');
    await generateAll(env, cfg, probe, work, async (w, r) => {
      if (r.finishReason === 'cancelled') return;
      const promptIds = Array.from(w.source.tokenIds.subarray(0, w.source.promptTokens));
      const t = describeTranscript(tok, promptIds, [...r.promptIds.slice(promptIds.length), ...r.outputIds]);
      const v = judgeAnswer(t.answer, judge);
      store.runs.commitItem(runId, w.key, (s) => {
        const id = s.transcripts.add({
          runId,
          itemId: w.source.itemId,
          prompt: w.source.prompt,
          tokenIds: [...r.promptIds, ...r.outputIds],
          promptTokens: promptIds.length,
          text: t.text,
          thinkingStart: t.split.thinkingStart,
          thinkingEnd: t.split.thinkingEnd,
          answerBoundary: t.split.answerBoundary,
          finishReason: r.finishReason,
          headScaleKey: truncationKey(w.fraction),
        });
        if (probe) {
          const scores = r.scores[0]!;
          const m = traceMetrics(scores, { ...t.split, generatedStart: promptIds.length });
          s.traces.add({ runId, transcriptId: id, probeId: probe.id, residIndex: probe.residIndex, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
        }
        s.verdicts.add({ runId, transcriptId: id, judge: judge.id, verdict: v.verdict, harmful: v.verdict === 'compliance', detail: { matched: v.matched ?? null, fraction: w.fraction, keptTokens: w.kept, sourceTranscriptId: w.source.id } });
        return { transcriptId: id, sourceTranscriptId: w.source.id, fraction: w.fraction, keptTokens: w.kept };
      });
      env.onProgress?.(++finished, all.length, 'answers');
    });
    if (!env.signal?.aborted && !handle.shard) aggregateTruncate(store, runId, cfg);
  });
  return runId;
}

/** ASR, mean I' and mean tokens kept per fraction, from the stored items, verdicts and traces. */
export function aggregateTruncate(store: ProjectStore, runId: number, cfg: TruncateRunConfig): void {
  const judge = judgeFor(cfg.judge);
  const verdicts = new Map(store.verdicts.list({ runId, judge: judge.id }).map((v) => [v.transcriptId, v.verdict]));
  const finals = new Map(cfg.probeId === null ? [] : store.traces.list({ runId, probeId: cfg.probeId }).map((tr) => [tr.transcriptId, tr.final]));
  const kept = new Map<number, number>();
  for (const item of store.runs.items(runId)) {
    const p = item.payload as { transcriptId?: unknown; keptTokens?: unknown } | null;
    if (item.status === 'done' && typeof p?.transcriptId === 'number' && typeof p.keptTokens === 'number') kept.set(p.transcriptId, p.keptTokens);
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const points: TruncationPoint[] = cfg.fractions.map((fraction) => {
    const ts = store.transcripts.list(runId, { headScaleKey: truncationKey(fraction) });
    const judged = ts.flatMap((t) => (verdicts.has(t.id) ? [verdicts.get(t.id)!] : []));
    return {
      fraction,
      answers: ts.length,
      asr: judged.length ? judged.filter((v) => v === 'compliance').length / judged.length : null,
      meanFinal: mean(ts.flatMap((t) => (typeof finals.get(t.id) === 'number' ? [finals.get(t.id)!] : []))),
      meanKeptTokens: mean(ts.flatMap((t) => (kept.has(t.id) ? [kept.get(t.id)!] : []))),
    };
  });
  const sources = sourceTranscripts(store, cfg);
  const withThinking = sources.filter((t) => t.thinkingStart !== null).length;
  commitSummary(store, truncateRun, runId, { judge: judge.id, transcripts: withThinking, withoutThinking: sources.length - withThinking, points });
}
