/**
 * The additive attention bias [B, S, T] the decoder graph takes: 0 where a query may read a key, -inf elsewhere.
 * Computing it here instead of inside the graph keeps one graph for prefill, chunked and packed teacher forcing,
 * right-aligned batches of different lengths and sliding windows.
 */

export interface BiasSpec {
  batch: number;
  /** New tokens per row in this step. */
  seq: number;
  /** Slots already in the KV cache (same for every row: padding fills the gaps). */
  past: number;
  /**
   * firstKey[b][i]: the first slot query i of row b may read; omitted = 0. In a right-aligned batch every query of
   * a row starts where the row's sequence starts (the slots before are padding); in several sequences packed into
   * one row (teacher forcing) each query starts where its own sequence starts, so none reads another.
   */
  firstKey?: ArrayLike<number>[];
  /** Sliding window in tokens (Mistral); a key j is visible from query q iff q - window < j <= q. */
  slidingWindow?: number | null;
}

export function buildAttentionBias(spec: BiasSpec): Float32Array {
  const { batch, seq, past } = spec;
  const total = past + seq;
  const bias = new Float32Array(batch * seq * total).fill(-Infinity);
  const window = spec.slidingWindow ?? null;
  for (let b = 0; b < batch; b++) {
    const first = spec.firstKey?.[b];
    for (let i = 0; i < seq; i++) {
      const q = past + i;
      const row = (b * seq + i) * total;
      const lo = Math.max(first ? first[i]! : 0, window === null ? 0 : q - window + 1);
      // A padding query (before its sequence starts) sees nothing; let it attend to itself so softmax stays finite.
      // Its outputs are ignored.
      if (lo <= q) bias.fill(0, row + lo, row + q + 1);
      else bias[row + q] = 0;
    }
  }
  return bias;
}
