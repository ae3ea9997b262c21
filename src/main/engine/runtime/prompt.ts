/**
 * The one prompt builder: how a prompt (or a prompt with a supplied response) becomes token ids, which token ids
 * end a generation, and how the API's sampling settings become the sampler's. Every caller that generates or
 * teacher-forces — one-off generation, the transcripts and ablation pipelines, supplied datasets, the guard judge,
 * `forward` — goes through here, so the same prompt is always the same ids.
 */
import type { Sampling } from '../../../shared/values.js';
import type { Checkpoint } from '../model/checkpoint.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { GREEDY, type SamplingOptions } from './sampling.js';

export interface PromptOptions {
  /** Wrap the prompt as a user message in the model's chat template, with the generation prompt. */
  chat: boolean;
  /** A system message before it (chat only). */
  system?: string;
}

/** The ids of a chat-templated prompt (with the generation prompt), or the raw text with the tokenizer's BOS. */
export function promptIds(tok: Tokenizer, prompt: string, opts: PromptOptions): number[] {
  if (!opts.chat) return tok.encode(prompt, { addSpecialTokens: true });
  return tok.encodeChat([...(opts.system ? [{ role: 'system' as const, content: opts.system }] : []), { role: 'user' as const, content: prompt }]).ids;
}

/**
 * A supplied transcript (prompt + a reasoning response from a dataset) as token ids. Responses saved from R1-style
 * models often start with "<think>" although the template already pre-fills it; the duplicate is dropped so the
 * transcript reads exactly as the model would have produced it.
 */
export function suppliedTranscriptIds(tok: Tokenizer, prompt: string, response: string, chat: boolean): { ids: number[]; promptLength: number } {
  const p = promptIds(tok, prompt, { chat });
  let text = response;
  const open = tok.thinkMarkers.open?.text;
  if (open && tok.promptPrefillsThink(p) && text.trimStart().startsWith(open)) text = text.trimStart().slice(open.length);
  return { ids: [...p, ...tok.encode(text, { addSpecialTokens: false })], promptLength: p.length };
}

/** Token ids that end a generation: generation_config.json's EOS ids, else the tokenizer's EOS token. */
export function stopIds(model: { checkpoint: Checkpoint; tokenizer: Tokenizer | null }): number[] {
  const fromConfig = model.checkpoint.generation.eosTokenIds;
  if (fromConfig.length) return fromConfig;
  const eos = model.tokenizer?.eosTokenId ?? null;
  return eos !== null ? [eos] : [];
}

/** The API's sampling settings as the sampler takes them: omitted or temperature 0 = greedy (with any penalty). */
export function samplingOptions(s: Sampling | undefined): SamplingOptions {
  const repetitionPenalty = s?.repetitionPenalty ?? 1;
  if (!s?.temperature) return { ...GREEDY, repetitionPenalty };
  return { doSample: true, temperature: s.temperature, topP: s.topP ?? 1, topK: s.topK ?? 0, repetitionPenalty };
}
