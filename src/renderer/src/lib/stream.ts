/**
 * The Playground's live view of a streaming generation: the tokens as they arrive (generate.run's token events),
 * split into thinking and answer on the think markers, with approximate spans for the live plot. When the call
 * returns, the transcript's exact indices replace the approximation (`transcriptSpans`). Pure, unit-tested.
 */

export interface LiveToken {
  position: number;
  tokenId: number;
  text: string;
}

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';

export interface LiveSplit {
  thinking: string;
  answer: string;
  /** The closing marker has been seen. */
  closed: boolean;
}

/**
 * Split the output text so far. `prefilled`: the chat template already opened the thinking (R1 style), so text
 * before any marker is thinking; otherwise it is answer until an opening marker shows up.
 */
export function splitLive(text: string, prefilled: boolean): LiveSplit {
  let rest = text;
  let inThinking = prefilled;
  const open = rest.indexOf(THINK_OPEN);
  const closeAt = rest.indexOf(THINK_CLOSE);
  if (open !== -1 && (closeAt === -1 || open < closeAt)) {
    rest = rest.slice(open + THINK_OPEN.length);
    inThinking = true;
  }
  const close = rest.indexOf(THINK_CLOSE);
  if (close !== -1) return { thinking: rest.slice(0, close).trim(), answer: rest.slice(close + THINK_CLOSE.length).replace(/^\s+/, ''), closed: true };
  return inThinking ? { thinking: rest.trim(), answer: '', closed: false } : { thinking: '', answer: rest, closed: false };
}

export interface Spans {
  promptTokens: number;
  thinkingStart: number | null;
  thinkingEnd: number | null;
  answerBoundary: number | null;
}

/**
 * Approximate spans from the tokens so far (positions are transcript indices): thinking starts after the token that
 * completes an opening marker (or at the first output token when `prefilled`), ends at the token that completes the
 * closing marker (a closing marker alone means the thinking started with the output, as the engine reads it); the
 * answer boundary is put on that token (the exact t_b also skips the whitespace after it).
 */
export function liveSpans(tokens: readonly LiveToken[], prefilled: boolean): Spans {
  if (tokens.length === 0) return { promptTokens: 0, thinkingStart: null, thinkingEnd: null, answerBoundary: null };
  const first = tokens[0]!.position;
  let text = '';
  let thinkingStart: number | null = prefilled ? first : null;
  let thinkingEnd: number | null = null;
  for (const t of tokens) {
    text += t.text;
    if (thinkingStart === null && text.includes(THINK_OPEN)) thinkingStart = t.position + 1;
    if (text.includes(THINK_CLOSE)) {
      thinkingEnd = t.position;
      break;
    }
  }
  if (thinkingStart === null && thinkingEnd === null) return { promptTokens: first, thinkingStart: null, thinkingEnd: null, answerBoundary: null };
  return { promptTokens: first, thinkingStart: thinkingStart ?? first, thinkingEnd, answerBoundary: thinkingEnd };
}

/** Exact spans of a finished transcript (generate.run's result): thinking = strictly between the markers. */
export function transcriptSpans(t: { inputIds: readonly number[]; outputIds: readonly number[]; thinkOpen: number | null; thinkClose: number | null; answerBoundary: number | null }): Spans {
  const n = t.inputIds.length + t.outputIds.length;
  const thinkingStart = t.thinkOpen !== null ? t.thinkOpen + 1 : t.thinkClose !== null ? t.inputIds.length : null;
  const thinkingEnd = thinkingStart === null ? null : (t.thinkClose ?? n);
  return { promptTokens: t.inputIds.length, thinkingStart, thinkingEnd, answerBoundary: t.answerBoundary };
}

/** Token texts for hover: prompt tokens as `#id` (their text is not streamed), output tokens as streamed. */
export function tokenTexts(inputIds: readonly number[], streamed: readonly LiveToken[], total: number): string[] {
  const out = Array.from({ length: total }, (_, i) => (i < inputIds.length ? `#${inputIds[i]}` : ''));
  for (const t of streamed) if (t.position < total) out[t.position] = t.text;
  return out;
}
