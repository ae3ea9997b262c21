/**
 * A transcript read the way the method reads it (docs/METHOD.md §0): prompt / thinking / answer, whether the thinking
 * closed, the answer every judge sees, and the tokens the probe reads with the answer boundary t_b among them.
 *
 * This is the one definition of "the answer" and of t_b that every verb uses (generation, the pipelines' transcript
 * sources, the judges):
 *  - thinking closed: the answer is the text after the closing marker; t_b = the last token before it.
 *  - no think marker (a model without them): the answer is the whole output; t_b = the last prompt token.
 *  - thinking opened but not closed (cut off by the token budget): the whole output is judged, as the paper's code
 *    does; for the probe, "\n</think>\n\n" (the model's own closing marker) is tokenized on its own and appended to
 *    the transcript's tokens, as the paper's code appends it, and t_b is the last appended token. Such transcripts
 *    carry `thinkingNotClosed`, so every ASR table can count them separately.
 */
import { closingSuffixText, type ThinkingState, type TranscriptSplit } from '../tokenizer/think.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** The token sequence a probe reads for a transcript, and t_b in it. */
export interface ProbeReading {
  /** prompt ++ output, plus the closing suffix when thinking did not close. */
  ids: number[];
  /** t_b as an index into `ids`; null only for an empty prompt with no thinking. */
  answerBoundary: number | null;
  /** How many tokens were appended after the transcript's own (0 unless thinking did not close). */
  appended: number;
}

export interface TranscriptReading {
  /** Marker positions and the answer span, as indices into the transcript's own ids. */
  split: TranscriptSplit;
  /** Thinking opened and never closed: the whole output was judged and the probe read an appended closing marker. */
  thinkingNotClosed: boolean;
  /** Decoded output (generation only), special tokens skipped. */
  text: string;
  /** Decoded thinking span; empty when there is none. */
  thinking: string;
  /** What every judge reads: the text after the closing marker, or the whole output when there is none. */
  answer: string;
  probe: ProbeReading;
}

export interface Transcript extends TranscriptReading {
  promptIds: number[];
  outputIds: number[];
}

/** Read a transcript of `ids` (prompt then output) whose first `promptLength` tokens are the prompt. */
export function readTranscript(tokenizer: Tokenizer, ids: readonly number[], promptLength: number): TranscriptReading {
  const split = tokenizer.splitTranscript(ids, promptLength);
  const decode = (from: number, to: number) => (from >= to ? '' : tokenizer.decode(ids.slice(from, to), { skipSpecialTokens: true }).trim());
  const text = decode(promptLength, ids.length);
  const thinking = split.thinkingStart !== null && split.thinkingEnd !== null ? decode(Math.max(split.thinkingStart, promptLength), split.thinkingEnd) : '';
  const answer = split.state === 'closed' ? decode(split.answerStart, ids.length) : text;
  let probe: ProbeReading;
  if (split.state === 'not-closed') {
    const suffix = tokenizer.encode(closingSuffixText(tokenizer.thinkMarkers.close?.text ?? null), { addSpecialTokens: false });
    const all = [...ids, ...suffix];
    probe = { ids: all, answerBoundary: all.length - 1, appended: suffix.length };
  } else {
    probe = { ids: [...ids], answerBoundary: split.answerBoundary, appended: 0 };
  }
  return { split, thinkingNotClosed: split.state === 'not-closed', text, thinking, answer, probe };
}

export function describeTranscript(tokenizer: Tokenizer, promptIds: number[], outputIds: number[]): Transcript {
  return { promptIds, outputIds, ...readTranscript(tokenizer, [...promptIds, ...outputIds], promptIds.length) };
}

/**
 * The thinking state of a stored transcript row (its stored split). Rows keep t_b only when it is among their own
 * tokens, so a row with thinking but no t_b did not close; rows of models without markers stored before t_b was
 * defined for them (null t_b, no thinking) read as 'none'.
 */
export function storedThinkingState(row: { thinkingStart: number | null; answerBoundary: number | null }): ThinkingState {
  if (row.thinkingStart === null) return 'none';
  return row.answerBoundary === null ? 'not-closed' : 'closed';
}

/**
 * t_b of a stored transcript as one of its traces reads it (docs/METHOD.md §0): the stored t_b, or, for thinking that
 * did not close, the trace's last score, which the probe read at the appended closing marker. Null when there is
 * none (a prompt-only row, or a row of a model without markers stored before t_b was defined for it).
 */
export function traceAnswerBoundary(row: { thinkingStart: number | null; answerBoundary: number | null }, traceLength: number): number | null {
  if (row.answerBoundary !== null) return row.answerBoundary;
  return storedThinkingState(row) === 'not-closed' ? traceLength - 1 : null;
}
