/**
 * The Playground's session history: what one generation was asked (its setting), how it is named (after what
 * differs from the plain model: "ablated L1H5, L2H2 (γ = 0)", "sampled T = 0.6"), and its curve for the overlay plot.
 * Pure (unit-tested); the reactive list lives in the Playground.
 */
import { headLabel, type HeadRef } from '../../../shared/heads.js';
import type { Transcript } from '../../../shared/contract.js';

export interface GenerationSetting {
  prompt: string;
  /** Heads ablated (empty: none) and their γ. */
  heads: readonly HeadRef[];
  gamma: number;
  /** Sampling (null: greedy). */
  sampling: { temperature: number; topP: number; topK?: number; seed: number } | null;
  system: string;
  maxNewTokens: number;
  /** The live probe (null: none). */
  probe: { id: number; residIndex: number } | null;
}

/** What sets a generation apart from the plain model's greedy answer: its name in Jobs, the history and the legend. */
export function settingName(s: Pick<GenerationSetting, 'heads' | 'gamma' | 'sampling' | 'system'>): string {
  const parts: string[] = [];
  if (s.heads.length) parts.push(`ablated ${s.heads.map(headLabel).join(', ')}${s.gamma !== 0 ? ` (γ = ${s.gamma})` : ''}`);
  if (s.sampling) parts.push(`sampled T = ${s.sampling.temperature}, seed ${s.sampling.seed}`);
  if (s.system.trim()) parts.push('with a system prompt');
  return parts.length ? parts.join(', ') : 'baseline';
}

/** A prompt cut for a job's name. */
export function shortPrompt(prompt: string, n = 40): string {
  const p = prompt.replace(/\s+/g, ' ').trim();
  return p.length > n ? `${p.slice(0, n - 1)}…` : p;
}

export interface Generation {
  id: number;
  setting: GenerationSetting;
  /** settingName of the setting. */
  name: string;
  jobId: string | null;
  transcript: Transcript | null;
  provider: string | null;
  seconds: number | null;
}

/** A generation's curve for the overlay plot: its live probe scores with the spans the plot marks. */
export interface ScoreSeries {
  name: string;
  scores: readonly (number | null)[];
  tokens?: readonly string[];
  promptTokens: number;
  thinkingStart: number | null;
  thinkingEnd: number | null;
  answerBoundary: number | null;
}

/** The finished generation's series (null without a live probe). */
export function seriesOf(g: Generation): ScoreSeries | null {
  const t = g.transcript;
  if (!t?.scores) return null;
  const n = t.inputIds.length + t.outputIds.length;
  const thinkingStart = t.thinkOpen !== null ? t.thinkOpen + 1 : t.thinkClose !== null ? t.inputIds.length : null;
  return {
    name: `#${g.id} ${g.name}`,
    scores: t.scores,
    tokens: t.tokens,
    promptTokens: t.inputIds.length,
    thinkingStart,
    thinkingEnd: thinkingStart === null ? null : (t.thinkClose ?? n),
    answerBoundary: t.answerBoundary,
  };
}
