/**
 * The KV cache a decoder session carries between steps. Per layer it holds the graph's cache streams (key and value;
 * with an int8 cache also their scales, see kvStreams in decoder-graph.ts), each [B, Hkv, positions, width] and each
 * in two parts:
 *
 *   past    the settled positions. The graph only reads them (inputs are not copied into ONNX Runtime), so a
 *           step's cost does not grow by a copy of the whole cache.
 *   recent  the last few positions. The graph appends each chunk to them and returns the result as present; that
 *           copy stays small because `settle` moves recent into past once it reaches SETTLE_AFTER positions.
 *
 * A single growing cache would be concatenated anew in the graph and copied out to JS at every step: measured on
 * the 1.5B bench shape, that round trip made an int4 step after a 2,048-token prompt 2.5× slower than after 16.
 * Settling copies the cache once every SETTLE_AFTER steps instead of several times per step.
 *
 * Rows of a batch hold sequences of different lengths right-aligned: row b's positions are the last n_b slots,
 * the slots before them padding that the attention bias masks out. `rebuildKvCache` is the one copy that settles,
 * drops finished rows, adds newly prefilled ones and trims slots that are padding in every row.
 */
import * as ort from 'onnxruntime-node';
import type { KvStream } from '../onnx/decoder-graph.js';

/** Recent positions that trigger moving them into the settled past. */
export const SETTLE_AFTER = 64;

export interface KvCache {
  batch: number;
  /** All positions: past + recent. */
  length: number;
  pastLength: number;
  kvHeads: number;
  headDim: number;
  streams: readonly KvStream[];
  /** [layer][stream], [B, Hkv, pastLength, width]. */
  past: ort.Tensor[][];
  /** [layer][stream], [B, Hkv, length - pastLength, width]. */
  recent: ort.Tensor[][];
}

type StreamArray = Float32Array | Uint16Array | Uint8Array | Int8Array;

function allocate(type: KvStream['type'], size: number): StreamArray {
  if (type === 'float32') return new Float32Array(size);
  if (type === 'float16') return new Uint16Array(size);
  if (type === 'uint8') return new Uint8Array(size);
  return new Int8Array(size);
}

const widthOf = (cache: Pick<KvCache, 'headDim'>, s: KvStream) => (s.width === 'head' ? cache.headDim : 1);

function tensor(s: KvStream, data: StreamArray, batch: number, kvHeads: number, positions: number, width: number): ort.Tensor {
  return new ort.Tensor(s.type, data, [batch, kvHeads, positions, width]);
}

export function emptyKvCache(batch: number, layers: number, kvHeads: number, headDim: number, streams: readonly KvStream[]): KvCache {
  const empties = () => Array.from({ length: layers }, () => streams.map((s) => tensor(s, allocate(s.type, 0), batch, kvHeads, 0, s.width === 'head' ? headDim : 1)));
  return { batch, length: 0, pastLength: 0, kvHeads, headDim, streams, past: empties(), recent: empties() };
}

/** The cache after a step: same past, `present` (recent + the step's chunk) as the new recent part; settled if due. */
export function withRecent(cache: KvCache, present: ort.Tensor[][]): KvCache {
  const recentLength = present[0]?.[0] ? (present[0][0].dims[2] as number) : 0;
  const next = { ...cache, length: cache.pastLength + recentLength, recent: present };
  return recentLength >= SETTLE_AFTER ? settle(next) : next;
}

/** Move every recent position into the past: one copy of the cache. */
export function settle(cache: KvCache): KvCache {
  return rebuildKvCache(Array.from({ length: cache.batch }, (_, row) => ({ cache, row, length: cache.length })));
}

/** Keep only rows `keep` (in that order), with every position. */
export function selectKvRows(cache: KvCache, keep: number[]): KvCache {
  return rebuildKvCache(keep.map((row) => ({ cache, row, length: cache.length })));
}

/** One row of a new cache: the last `length` positions of row `row` of `cache`. */
export interface KvRowSource {
  cache: KvCache;
  row: number;
  length: number;
}

/**
 * A settled cache (everything in past) whose row i holds `sources[i]`, right-aligned to the longest: the slots
 * before a shorter row's positions are zero padding. Sources may come from different caches of the same model.
 */
export function rebuildKvCache(sources: KvRowSource[]): KvCache {
  const first = sources[0]?.cache;
  if (!first) throw new Error('rebuildKvCache needs at least one row');
  const { kvHeads: Hkv, streams } = first;
  const B = sources.length;
  const T = Math.max(...sources.map((s) => s.length));
  const layers = first.past.length;
  const past = Array.from({ length: layers }, (_, layer) =>
    streams.map((stream, si) => {
      const w = widthOf(first, stream);
      const out = allocate(stream.type, B * Hkv * T * w);
      sources.forEach((src, b) => {
        const { cache, row, length } = src;
        if (length > cache.length) throw new Error(`row ${row} has ${cache.length} positions, ${length} asked for`);
        const Tp = cache.pastLength;
        const Tr = cache.length - Tp;
        const pastData = cache.past[layer]![si]!.data as StreamArray;
        const recentData = cache.recent[layer]![si]!.data as StreamArray;
        // Positions [from, cache.length) of the source go to slots [T - length, T) of the output.
        const from = cache.length - length;
        for (let h = 0; h < Hkv; h++) {
          const dst = ((b * Hkv + h) * T + (T - length)) * w;
          const pastCount = Math.max(0, Tp - from);
          if (pastCount > 0) {
            const at = ((row * Hkv + h) * Tp + from) * w;
            out.set(pastData.subarray(at, at + pastCount * w), dst);
          }
          const recentFrom = Math.max(0, from - Tp);
          const recentCount = length - pastCount;
          if (recentCount > 0) {
            const at = ((row * Hkv + h) * Tr + recentFrom) * w;
            out.set(recentData.subarray(at, at + recentCount * w), dst + pastCount * w);
          }
        }
      });
      return tensor(stream, out, B, Hkv, T, w);
    }),
  );
  const recent = Array.from({ length: layers }, () => streams.map((s) => tensor(s, allocate(s.type, 0), B, Hkv, 0, widthOf(first, s))));
  return { batch: B, length: T, pastLength: T, kvHeads: Hkv, headDim: first.headDim, streams, past, recent };
}

/** Bytes the cache holds (past and recent, every stream). */
export function kvCacheBytes(cache: KvCache): number {
  let n = 0;
  for (const part of [cache.past, cache.recent]) for (const layer of part) for (const t of layer) n += (t.data as StreamArray).byteLength;
  return n;
}
