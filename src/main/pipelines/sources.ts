/**
 * Where a pipeline's transcripts come from: the model's own generations (a `generate` run), or a dataset's
 * supplied (prompt, response) pairs teacher-forced through the model. Either way a pipeline sees the same thing:
 * token ids, the prompt length, and the thinking / answer split.
 */
import type { PositionRule, TranscriptSource } from '../../shared/values.js';
import type { ProjectStore } from '../store/project-store.js';
import type { ItemRow } from '../store/types.js';
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
  ids: number[];
  promptLength: number;
  thinkingStart: number | null;
  thinkingEnd: number | null;
  answerBoundary: number | null;
  /** Decoded answer text (after the closing marker); '' when there is none. */
  answer: string;
  /** Decoded thinking text. */
  thinking: string;
  label: string | null;
}

function decodeSpan(tok: Tokenizer, ids: number[], from: number | null, to: number): string {
  if (from === null || from >= to) return '';
  return tok.decode(ids.slice(from, to), { skipSpecialTokens: true }).trim();
}

/** A transcript's thinking and answer as text: its spans decoded, special tokens skipped. */
export function spanTexts(
  tok: Tokenizer,
  ids: number[],
  span: { promptLength: number; thinkingStart: number | null; thinkingEnd: number | null; answerBoundary: number | null },
): { thinking: string; answer: string } {
  return {
    thinking: span.thinkingStart !== null && span.thinkingEnd !== null ? decodeSpan(tok, ids, Math.max(span.thinkingStart, span.promptLength), span.thinkingEnd) : '',
    answer: span.answerBoundary !== null ? decodeSpan(tok, ids, span.answerBoundary + 1, ids.length) : '',
  };
}

/** Every transcript of a source, in a stable order. */
export function readSource(store: ProjectStore, tok: Tokenizer, source: TranscriptSource): SourceTranscript[] {
  if (source.kind === 'run') {
    store.runs.require(source.runId);
    return store.transcripts.list(source.runId, source.headScaleKey !== undefined ? { headScaleKey: source.headScaleKey } : {}).map((t) => {
      const ids = Array.from(t.tokenIds);
      const item = t.itemId !== null ? store.datasets.item(t.itemId) : null;
      const span = { promptLength: t.promptTokens, thinkingStart: t.thinkingStart, thinkingEnd: t.thinkingEnd, answerBoundary: t.answerBoundary };
      return { key: `t${t.id}`, transcriptId: t.id, item, prompt: t.prompt, ids, ...span, ...spanTexts(tok, ids, span), label: item?.label ?? null };
    });
  }
  store.datasets.require(source.datasetId);
  return store.datasets.items(source.datasetId).map((item) => {
    if (item.response === null) {
      // Prompt only: the prompt itself is the transcript (for last-prompt-token probes).
      const { ids, promptLength } = suppliedTranscriptIds(tok, item.prompt, '', source.chat);
      return { key: `i${item.id}`, transcriptId: null, item, prompt: item.prompt, ids, promptLength, thinkingStart: null, thinkingEnd: null, answerBoundary: null, answer: '', thinking: '', label: item.label };
    }
    const { ids, promptLength } = suppliedTranscriptIds(tok, item.prompt, item.response, source.chat);
    const split = tok.splitTranscript(ids, promptLength);
    const answerStart = split.answerStart;
    return {
      key: `i${item.id}`,
      transcriptId: null,
      item,
      prompt: item.prompt,
      ids,
      promptLength,
      thinkingStart: split.thinkingStart,
      thinkingEnd: split.thinkingEnd,
      answerBoundary: split.answerBoundary,
      answer: decodeSpan(tok, ids, answerStart, ids.length),
      thinking: split.thinkingStart !== null && split.thinkingEnd !== null ? decodeSpan(tok, ids, Math.max(split.thinkingStart, promptLength), split.thinkingEnd) : '',
      label: item.label,
    };
  });
}

/** The stored transcript for a source transcript (creating it in `runId` when it came from a dataset). */
export function ensureTranscriptRow(store: ProjectStore, runId: number, t: SourceTranscript, tok: Tokenizer): number {
  if (t.transcriptId !== null) return t.transcriptId;
  return store.transcripts.add({
    runId,
    itemId: t.item?.id ?? null,
    prompt: t.prompt,
    tokenIds: t.ids,
    promptTokens: t.promptLength,
    text: tok.decode(t.ids.slice(t.promptLength), { skipSpecialTokens: true }).trim(),
    thinkingStart: t.thinkingStart,
    thinkingEnd: t.thinkingEnd,
    answerBoundary: t.answerBoundary,
    finishReason: 'supplied',
  });
}

/** The token a position rule reads, or null when the transcript has none (no closing think marker). */
export function positionOf(t: SourceTranscript, rule: PositionRule): number | null {
  return rule === 'last-prompt-token' ? t.promptLength - 1 : t.answerBoundary;
}
