/**
 * Where a pipeline's transcripts come from: the model's own generations (a `transcripts` run), or a dataset's
 * supplied (prompt, response) pairs teacher-forced through the model. Either way a pipeline sees the same thing:
 * token ids, the prompt length, the thinking / answer split, and t_b — all read by runtime/transcript.ts, the one
 * definition of the answer and the answer boundary (docs/METHOD.md §0).
 */
import type { PositionRule, TranscriptSource } from '../../shared/values.js';
import { readTranscript } from '../engine/runtime/transcript.js';
import type { ProjectStore } from '../store/project-store.js';
import type { ItemRow } from '../store/types.js';
import type { WorkUnit } from './common.js';
import type { Tokenizer } from '../engine/tokenizer/tokenizer.js';
import { suppliedTranscriptIds } from '../engine/runtime/prompt.js';

export type { PositionRule, TranscriptSource };

export interface SourceTranscript {
  /** Stable key of the unit of work (`t<transcript id>` or `i<item id>`). */
  key: string;
  /** The stored transcript, when it came from a run. */
  transcriptId: number | null;
  item: ItemRow | null;
  prompt: string;
  /**
   * The tokens the method reads and pipelines teacher-force: the transcript's own, plus the closing marker the
   * probe reads appended when its thinking did not close (docs/METHOD.md §0).
   */
  ids: number[];
  /** How many of `ids` are the transcript's own tokens. */
  length: number;
  promptLength: number;
  thinkingStart: number | null;
  thinkingEnd: number | null;
  /** t_b, an index into `ids`; null for a prompt-only item. */
  answerBoundary: number | null;
  /** Thinking opened and never closed (count these separately in ASR tables). */
  thinkingNotClosed: boolean;
  /** What judges read: the text after the closing marker, or the whole output without one; '' for a prompt only. */
  answer: string;
  /** Decoded thinking text. */
  thinking: string;
  label: string | null;
}

/** A transcript of `ids` read by the one rule, as a pipeline sees it. */
function sourceTranscript(tok: Tokenizer, ids: number[], promptLength: number, rest: Pick<SourceTranscript, 'key' | 'transcriptId' | 'item' | 'prompt' | 'label'>): SourceTranscript {
  const read = readTranscript(tok, ids, promptLength);
  return {
    ...rest,
    ids: read.probe.ids,
    length: ids.length,
    promptLength,
    thinkingStart: read.split.thinkingStart,
    thinkingEnd: read.split.thinkingEnd,
    answerBoundary: read.probe.answerBoundary,
    thinkingNotClosed: read.thinkingNotClosed,
    answer: read.answer,
    thinking: read.thinking,
  };
}

/** Every transcript of a source, in a stable order. */
export function readSource(store: ProjectStore, tok: Tokenizer, source: TranscriptSource): SourceTranscript[] {
  if (source.kind === 'run') {
    store.runs.require(source.runId);
    return store.transcripts.list(source.runId, source.headScaleKey !== undefined ? { headScaleKey: source.headScaleKey } : {}).map((t) => {
      const item = t.itemId !== null ? store.datasets.item(t.itemId) : null;
      return sourceTranscript(tok, Array.from(t.tokenIds), t.promptTokens, { key: `t${t.id}`, transcriptId: t.id, item, prompt: t.prompt, label: item?.label ?? null });
    });
  }
  store.datasets.require(source.datasetId);
  return store.datasets.items(source.datasetId).map((item) => {
    const rest = { key: `i${item.id}`, transcriptId: null, item, prompt: item.prompt, label: item.label };
    const { ids, promptLength } = suppliedTranscriptIds(tok, item.prompt, item.response ?? '', source.chat);
    if (item.response === null) {
      // Prompt only: the prompt itself is the transcript (for last-prompt-token probes); no output, no answer.
      return { ...rest, ids, length: ids.length, promptLength, thinkingStart: null, thinkingEnd: null, answerBoundary: null, thinkingNotClosed: false, answer: '', thinking: '' };
    }
    return sourceTranscript(tok, ids, promptLength, rest);
  });
}

/**
 * The keys `readSource` gives a source's transcripts, with their cost in tokens (a dataset's pairs estimated at 4
 * characters a token), read without a tokenizer: what a shard plan splits.
 */
export function sourceUnits(store: ProjectStore, source: TranscriptSource): (WorkUnit & { label: string | null })[] {
  if (source.kind === 'run') {
    store.runs.require(source.runId);
    return store.views.transcriptSizes(source.runId, source.headScaleKey).map((t) => ({ key: `t${t.id}`, cost: t.tokens, label: t.label }));
  }
  store.datasets.require(source.datasetId);
  return store.datasets.items(source.datasetId).map((item) => ({ key: `i${item.id}`, cost: Math.ceil((item.prompt.length + (item.response?.length ?? 0)) / 4), label: item.label }));
}

/** The stored transcript for a source transcript (creating it in `runId` when it came from a dataset). */
export function ensureTranscriptRow(store: ProjectStore, runId: number, t: SourceTranscript, tok: Tokenizer): number {
  if (t.transcriptId !== null) return t.transcriptId;
  const own = t.ids.slice(0, t.length);
  return store.transcripts.add({
    runId,
    itemId: t.item?.id ?? null,
    prompt: t.prompt,
    tokenIds: own,
    promptTokens: t.promptLength,
    text: tok.decode(own.slice(t.promptLength), { skipSpecialTokens: true }).trim(),
    thinkingStart: t.thinkingStart,
    thinkingEnd: t.thinkingEnd,
    // A row keeps t_b only when it is one of its own tokens (not the appended closing marker).
    answerBoundary: t.answerBoundary !== null && t.answerBoundary < t.length ? t.answerBoundary : null,
    finishReason: 'supplied',
  });
}

/** The token of `t.ids` a position rule reads, or null when the transcript has none (a prompt-only item's t_b). */
export function positionOf(t: SourceTranscript, rule: PositionRule): number | null {
  return rule === 'last-prompt-token' ? t.promptLength - 1 : t.answerBoundary;
}
