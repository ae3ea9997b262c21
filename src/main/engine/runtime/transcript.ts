/**
 * A generated transcript split the way the method reads it: prompt / thinking / answer, with the token indices of
 * the think markers and the answer boundary t_b (METHOD.md §0).
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TranscriptSplit } from '../tokenizer/think.js';

export interface Transcript {
  promptIds: number[];
  outputIds: number[];
  /** Decoded output (generation only), special tokens skipped. */
  text: string;
  /** Decoded thinking span; empty when there is none. */
  thinking: string;
  /** Decoded answer (after the closing marker); the whole output when the model has no think markers. */
  answer: string;
  /** Indices into promptIds ++ outputIds. */
  split: TranscriptSplit;
}

export function describeTranscript(tokenizer: Tokenizer, promptIds: number[], outputIds: number[]): Transcript {
  const ids = [...promptIds, ...outputIds];
  const split = tokenizer.splitTranscript(ids, promptIds.length);
  const decode = (from: number, to: number) => tokenizer.decode(ids.slice(from, to), { skipSpecialTokens: true }).trim();
  const thinking = split.thinkingStart !== null && split.thinkingEnd !== null ? decode(Math.max(split.thinkingStart, promptIds.length), split.thinkingEnd) : '';
  // Thinking opened but never closed: no answer yet. No markers at all: the whole output is the answer.
  const stillThinking = split.thinkOpen !== null || split.thinkingStart !== null;
  const answer = split.answerStart !== null ? decode(split.answerStart, ids.length) : stillThinking ? '' : decode(promptIds.length, ids.length);
  return { promptIds, outputIds, text: decode(promptIds.length, ids.length), thinking, answer, split };
}
