/**
 * The KV cache a decoder session carries between steps, per layer in two parts, each [B, Hkv, ·, D]:
 *
 *   past    the settled positions. The graph only reads them (inputs are not copied into ONNX Runtime), so a
 *           step's cost does not grow by a copy of the whole cache.
 *   recent  the last few positions. The graph appends each chunk to them and returns the result as present; that
 *           copy stays small because `settle` moves recent into past once it reaches SETTLE_AFTER positions.
 *
 * A single growing cache would be concatenated anew in the graph and copied out to JS at every step: measured on
 * the 1.5B bench shape, that round trip made an int4 step after a 2,048-token prompt 2.5× slower than after 16.
 * Settling copies the cache once every SETTLE_AFTER steps instead of several times per step.
 */
import * as ort from 'onnxruntime-node';

/** Recent positions that trigger moving them into the settled past. */
export const SETTLE_AFTER = 64;

export interface KvCache {
  batch: number;
  /** All positions: past + recent. */
  length: number;
  pastLength: number;
  /** Per layer. */
  pastKeys: ort.Tensor[];
  pastValues: ort.Tensor[];
  recentKeys: ort.Tensor[];
  recentValues: ort.Tensor[];
}

const emptyPart = (batch: number, kvHeads: number, headDim: number) => new ort.Tensor('float32', new Float32Array(0), [batch, kvHeads, 0, headDim]);

export function emptyKvCache(batch: number, layers: number, kvHeads: number, headDim: number): KvCache {
  const empties = () => Array.from({ length: layers }, () => emptyPart(batch, kvHeads, headDim));
  return { batch, length: 0, pastLength: 0, pastKeys: empties(), pastValues: empties(), recentKeys: empties(), recentValues: empties() };
}

/** The cache after a step: same past, `present` (recent + the step's chunk) as the new recent part; settled if due. */
export function withRecent(cache: KvCache, presentKeys: ort.Tensor[], presentValues: ort.Tensor[]): KvCache {
  const recentLength = presentKeys[0] ? (presentKeys[0].dims[2] as number) : 0;
  const next = { ...cache, length: cache.pastLength + recentLength, recentKeys: presentKeys, recentValues: presentValues };
  return recentLength >= SETTLE_AFTER ? settle(next) : next;
}

/** Move every recent position into the past: one copy of the cache, per (row, kv head) block. */
export function settle(cache: KvCache): KvCache {
  const join = (past: ort.Tensor, recent: ort.Tensor) => {
    const [B, Hkv, Tp, D] = past.dims as [number, number, number, number];
    const Tr = recent.dims[2] as number;
    if (Tr === 0) return past;
    const a = past.data as Float32Array;
    const r = recent.data as Float32Array;
    const out = new Float32Array(B * Hkv * (Tp + Tr) * D);
    for (let block = 0; block < B * Hkv; block++) {
      out.set(a.subarray(block * Tp * D, (block + 1) * Tp * D), block * (Tp + Tr) * D);
      out.set(r.subarray(block * Tr * D, (block + 1) * Tr * D), block * (Tp + Tr) * D + Tp * D);
    }
    return new ort.Tensor('float32', out, [B, Hkv, Tp + Tr, D]);
  };
  const [B, Hkv, , D] = cache.recentKeys[0]!.dims as number[];
  return {
    batch: cache.batch,
    length: cache.length,
    pastLength: cache.length,
    pastKeys: cache.pastKeys.map((p, i) => join(p, cache.recentKeys[i]!)),
    pastValues: cache.pastValues.map((p, i) => join(p, cache.recentValues[i]!)),
    recentKeys: cache.recentKeys.map(() => emptyPart(B!, Hkv!, D!)),
    recentValues: cache.recentValues.map(() => emptyPart(B!, Hkv!, D!)),
  };
}

/** Keep only rows `keep` (in that order) of every cache tensor: each row is one contiguous block. */
export function selectKvRows(cache: KvCache, keep: number[]): KvCache {
  const pick = (t: ort.Tensor) => {
    const [, h, len, dd] = t.dims as number[];
    const block = h! * len! * dd!;
    const src = t.data as Float32Array;
    const dst = new Float32Array(keep.length * block);
    keep.forEach((b, i) => dst.set(src.subarray(b * block, (b + 1) * block), i * block));
    return new ort.Tensor('float32', dst, [keep.length, h!, len!, dd!]);
  };
  return {
    batch: keep.length,
    length: cache.length,
    pastLength: cache.pastLength,
    pastKeys: cache.pastKeys.map(pick),
    pastValues: cache.pastValues.map(pick),
    recentKeys: cache.recentKeys.map(pick),
    recentValues: cache.recentValues.map(pick),
  };
}
