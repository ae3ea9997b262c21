/**
 * Reasoning ("think") markers: finding them in a vocabulary and splitting a prompt + generation into prompt,
 * thinking and answer by token index.
 */
import { CliffscopeError } from '../errors.js';

/**
 * Marker pairs we recognise, tried in order; the first pair the vocabulary has wins. Add a row for a model family
 * whose reasoning markers differ. A marker counts only when it is a single token.
 */
export const THINK_MARKER_PAIRS: readonly { open: string; close: string }[] = [{ open: '<think>', close: '</think>' }];

export interface ThinkMarker {
  text: string;
  id: number;
}

export interface ThinkMarkers {
  open: ThinkMarker | null;
  close: ThinkMarker | null;
}

/**
 * @param singleTokenId the id of `text` when it encodes to exactly that one token, else undefined
 */
export function detectThinkMarkers(singleTokenId: (text: string) => number | undefined): ThinkMarkers {
  for (const pair of THINK_MARKER_PAIRS) {
    const openId = singleTokenId(pair.open);
    const closeId = singleTokenId(pair.close);
    if (openId === undefined && closeId === undefined) continue;
    return {
      open: openId === undefined ? null : { text: pair.open, id: openId },
      close: closeId === undefined ? null : { text: pair.close, id: closeId },
    };
  }
  return { open: null, close: null };
}

/**
 * Whether a transcript's thinking closed (docs/METHOD.md §0):
 *  - 'closed': a closing marker follows the thinking; the answer comes after it.
 *  - 'not-closed': thinking opened but never closed (cut off by the token budget, or the model never closed it).
 *  - 'none': no think marker at all (a model without them, or one that did not think this time).
 */
export type ThinkingState = 'closed' | 'not-closed' | 'none';

/**
 * Token indices into `ids` (prompt followed by generation). Spans are half-open: thinking is
 * ids[thinkingStart .. thinkingEnd), the answer is ids[answerStart ..].
 */
export interface TranscriptSplit {
  state: ThinkingState;
  /** Index of the opening marker (may lie inside the prompt when the template pre-fills it); null if none. */
  thinkOpen: number | null;
  /** Index of the closing marker; null if there is none (no reasoning, or reasoning cut off). */
  thinkClose: number | null;
  /** First thinking token: thinkOpen + 1, or the prompt's end when only a closing marker was found. */
  thinkingStart: number | null;
  /** One past the last thinking token: thinkClose, or ids.length while reasoning is still open. */
  thinkingEnd: number | null;
  /**
   * First token of what is judged as the answer: after the closing marker and any whitespace-only tokens that follow
   * it (may equal ids.length); the prompt's end — the whole output — when thinking did not close or there is none.
   */
  answerStart: number;
  /**
   * t_b, the answer boundary: the last token before the answer (answerStart − 1: "</think>", the "\n\n" after it,
   * or for 'none' the last prompt token; null for an empty prompt). Null for 'not-closed': t_b is then not among
   * these ids but at the end of the closing marker the probe reads appended (runtime/transcript.ts).
   */
  answerBoundary: number | null;
}

/**
 * The rule:
 * 1. Opening marker. If the prompt's last `open` is not followed by a `close` inside the prompt, the template
 *    pre-filled it (DeepSeek-R1 distills end the prompt with "<think>\n"): that is thinkOpen. If it is followed by a
 *    `close` and nothing but whitespace tokens after that (Qwen3 with enable_thinking=false ends the prompt with
 *    "<think>\n\n</think>\n\n"), the prompt carries the whole (empty) think block: both markers are the prompt's.
 *    Otherwise thinkOpen is the first `open` in the generation, or null.
 * 2. Closing marker: the first `close` after thinkOpen (and not before the generation starts), or null. A close
 *    with no open (a model that omits "<think>") means thinking began where the prompt ends.
 * 3. Answer. Closed: skip the whitespace-only tokens right after thinkClose ("\n\n"); answerStart is the next index
 *    and answerBoundary = answerStart − 1. No marker at all: the whole output is the answer and t_b is the last
 *    prompt token. Opened but not closed: the whole output is judged (as the paper's code does) and t_b is left to
 *    the probe's reading with the closing marker appended.
 * Markers missing from the vocabulary (openId/closeId null) are simply never found, so such a model is 'none'.
 */
export function splitTranscriptIds(
  ids: readonly number[],
  promptLength: number,
  openId: number | null,
  closeId: number | null,
  isWhitespace: (id: number) => boolean,
): TranscriptSplit {
  if (!Number.isInteger(promptLength) || promptLength < 0 || promptLength > ids.length) {
    throw new CliffscopeError('bad-argument', `promptLength ${promptLength} is outside 0..${ids.length} (the number of tokens)`);
  }
  const indexOf = (id: number | null, from: number, to: number): number | null => {
    if (id === null) return null;
    for (let i = from; i < to; i++) if (ids[i] === id) return i;
    return null;
  };
  const lastIndexOf = (id: number | null, from: number, to: number): number | null => {
    if (id === null) return null;
    for (let i = to - 1; i >= from; i--) if (ids[i] === id) return i;
    return null;
  };
  const allWhitespace = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (!isWhitespace(ids[i]!)) return false;
    return true;
  };

  let thinkOpen: number | null = null;
  let thinkClose: number | null = null;
  const promptOpen = lastIndexOf(openId, 0, promptLength);
  if (promptOpen !== null) {
    const promptClose = indexOf(closeId, promptOpen + 1, promptLength);
    if (promptClose === null) {
      thinkOpen = promptOpen;
    } else if (allWhitespace(promptClose + 1, promptLength)) {
      thinkOpen = promptOpen;
      thinkClose = promptClose;
    }
  }
  if (thinkOpen === null) thinkOpen = indexOf(openId, promptLength, ids.length);
  if (thinkClose === null) {
    thinkClose = indexOf(closeId, Math.max(promptLength, thinkOpen === null ? 0 : thinkOpen + 1), ids.length);
  }

  const thinkingStart = thinkOpen !== null ? thinkOpen + 1 : thinkClose !== null ? promptLength : null;
  const thinkingEnd = thinkClose !== null ? thinkClose : thinkOpen !== null ? ids.length : null;
  if (thinkClose !== null) {
    let answerStart = thinkClose + 1;
    while (answerStart < ids.length && isWhitespace(ids[answerStart]!)) answerStart++;
    return { state: 'closed', thinkOpen, thinkClose, thinkingStart, thinkingEnd, answerStart, answerBoundary: answerStart - 1 };
  }
  if (thinkOpen !== null) {
    return { state: 'not-closed', thinkOpen, thinkClose, thinkingStart, thinkingEnd, answerStart: promptLength, answerBoundary: null };
  }
  return {
    state: 'none',
    thinkOpen,
    thinkClose,
    thinkingStart,
    thinkingEnd,
    answerStart: promptLength,
    answerBoundary: promptLength > 0 ? promptLength - 1 : null,
  };
}

/**
 * What the paper's code appends to a reasoning transcript before reading the probe at its last token: "\n", the
 * closing marker, "\n\n". For a transcript whose thinking did not close, the probe reads prompt + output + these
 * tokens, and t_b is the last of them (docs/METHOD.md §0).
 */
export function closingSuffixText(closeMarker: string | null): string {
  return `\n${closeMarker ?? THINK_MARKER_PAIRS[0]!.close}\n\n`;
}

/** Whether `ids` ends with the opening marker, ignoring trailing whitespace-only tokens ("<think>\n"). */
export function endsWithOpenMarker(
  ids: readonly number[],
  openId: number | null,
  isWhitespace: (id: number) => boolean,
): boolean {
  if (openId === null) return false;
  let i = ids.length - 1;
  while (i >= 0 && isWhitespace(ids[i]!)) i--;
  return i >= 0 && ids[i] === openId;
}
