/**
 * The additive attention bias [B, S, T] the decoder graph takes: 0 where a query may read a key, -inf elsewhere.
 * Computing it here instead of inside the graph keeps one graph for prefill, chunked teacher forcing, left-padded
 * batches and sliding windows.
 */

export interface BiasSpec {
  batch: number;
  /** New tokens per row in this step. */
  seq: number;
  /** Tokens already in the KV cache (same for every row: padding fills the gaps). */
  past: number;
  /** keyValid[b][j] = false for padding slots in the cache+chunk of row b; omitted = all valid. */
  keyValid?: ArrayLike<boolean | number>[];
  /** Sliding window in tokens (Mistral); a key j is visible from query q iff q - window < j <= q. */
  slidingWindow?: number | null;
}

export function buildAttentionBias(spec: BiasSpec): Float32Array {
  const { batch, seq, past } = spec;
  const total = past + seq;
  const bias = new Float32Array(batch * seq * total).fill(-Infinity);
  const window = spec.slidingWindow ?? null;
  for (let b = 0; b < batch; b++) {
    const valid = spec.keyValid?.[b];
    for (let i = 0; i < seq; i++) {
      const q = past + i;
      const row = (b * seq + i) * total;
      const lo = window === null ? 0 : Math.max(0, q - window + 1);
      let any = false;
      for (let j = lo; j <= q; j++) {
        if (valid && !valid[j]) continue;
        bias[row + j] = 0;
        any = true;
      }
      // A padding query sees nothing; let it attend to itself so softmax stays finite. Its outputs are ignored.
      if (!any) bias[row + q] = 0;
    }
  }
  return bias;
}
