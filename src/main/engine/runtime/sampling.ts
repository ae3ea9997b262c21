/**
 * Next-token choice from a row of logits: greedy, or sampling with Hugging Face's processor order
 * (repetition penalty → temperature → top-k → top-p). Each sequence draws from its own seeded generator, so a
 * sampled transcript depends only on (seed, prompt index), never on which other prompts shared its batch.
 */

export interface SamplingOptions {
  /** false = greedy (argmax). */
  doSample: boolean;
  temperature: number;
  /** Keep the smallest set of tokens whose probability mass reaches top_p (1 = off). */
  topP: number;
  /** Keep the k most likely tokens (0 = off). */
  topK: number;
  /** > 1 discourages tokens already in the sequence, as in transformers' RepetitionPenaltyLogitsProcessor. */
  repetitionPenalty: number;
}

export const GREEDY: SamplingOptions = { doSample: false, temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1 };

/** A small, fast, seedable PRNG (splitmix32 → mulberry32 state); uniform floats in [0, 1). */
export class Rng {
  private state: number;

  constructor(seed: number, stream = 0) {
    // Mix seed and stream so neighbouring prompt indices get unrelated sequences.
    let s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((stream + 1) >>> 0, 0x85ebca6b)) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x7feb352d) >>> 0;
    s = Math.imul(s ^ (s >>> 15), 0x846ca68b) >>> 0;
    this.state = (s ^ (s >>> 16)) >>> 0;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
  return best;
}

/** Pick the next token. `logits` is copied, never modified; `seen` = tokens already in the sequence. */
export function chooseToken(logits: Float32Array, opts: SamplingOptions, seen: Iterable<number>, rng: Rng | null): number {
  const x = Float32Array.from(logits);
  if (opts.repetitionPenalty !== 1) {
    for (const t of new Set(seen)) {
      const v = x[t]!;
      x[t] = v > 0 ? v / opts.repetitionPenalty : v * opts.repetitionPenalty;
    }
  }
  if (!opts.doSample || opts.temperature <= 0) return argmax(x);
  if (!rng) throw new Error('sampling needs a random generator');

  // Candidates sorted by logit, cut by top-k, then softmax at the temperature, then cut by top-p.
  let order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b);
  if (opts.topK > 0 && opts.topK < order.length) order = order.slice(0, opts.topK);
  const maxLogit = x[order[0]!]!;
  const probs = order.map((t) => Math.exp((x[t]! - maxLogit) / opts.temperature));
  const sum = probs.reduce((a, b) => a + b, 0);
  let keep = order.length;
  if (opts.topP < 1) {
    let mass = 0;
    for (let i = 0; i < order.length; i++) {
      mass += probs[i]! / sum;
      if (mass >= opts.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = probs.slice(0, keep);
  const keptSum = kept.reduce((a, b) => a + b, 0);
  let u = rng.next() * keptSum;
  for (let i = 0; i < keep; i++) {
    u -= kept[i]!;
    if (u < 0) return order[i]!;
  }
  return order[keep - 1]!;
}
