/**
 * Teacher forcing: run a given token sequence through the model in chunks with a KV cache and collect the requested
 * taps at the requested positions, plus the log-probability of every given token under the model. Chunking bounds
 * memory (attention scores are chunk × total) without changing the result.
 */
import { CliffscopeError } from '../errors.js';
import { validateHeadScale } from './head-scale.js';
import { buildAttentionBias } from './attention-bias.js';
import type { DecoderSession } from './decoder-session.js';

export interface TeacherForceOptions {
  /** Tokens per forward step. */
  chunkSize?: number;
  /** Residual-stack entries to tap (0 = embeddings, i+1 = blocks.i.hook_resid_post, L+1 = ln_final). */
  residLayers?: number[];
  /** Layers whose per-head outputs (hook_z) to tap. */
  zLayers?: number[];
  /** Token positions to tap; default every position. */
  positions?: number[];
  /** Full logits at these positions. */
  logitPositions?: number[];
  /** Compute the log-probability of each given token (position 0 has none: NaN). */
  logprobs?: boolean;
  /** γ per [layer][head]; default all ones. */
  headScale?: number[][];
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface TeacherForceResult {
  positions: number[];
  /** stack index → [positions, d] */
  resid: Map<number, Float32Array>;
  /** layer → [positions, H, D] */
  z: Map<number, Float32Array>;
  /** [logitPositions, V] */
  logits: Float32Array;
  /** [T]: log p(ids[t] | ids[<t]); NaN at t = 0 or when not requested. */
  tokenLogprobs: Float32Array;
}

export function flattenHeadScale(headScale: number[][] | undefined, layers: number, heads: number, batch = 1): Float32Array | undefined {
  if (!headScale) return undefined;
  const one = Float32Array.from(validateHeadScale(headScale, layers, heads).flat());
  const out = new Float32Array(batch * one.length);
  for (let b = 0; b < batch; b++) out.set(one, b * one.length);
  return out;
}

export async function teacherForce(session: DecoderSession, ids: number[], opts: TeacherForceOptions = {}): Promise<TeacherForceResult> {
  const cfg = session.config;
  const T = ids.length;
  if (T === 0) throw new CliffscopeError('bad-argument', 'teacher forcing needs at least one token');
  if (T > cfg.maxPositionEmbeddings) {
    throw new CliffscopeError('context-overflow', `the transcript has ${T} tokens, beyond the model's context of ${cfg.maxPositionEmbeddings}`, {
      hint: 'truncate the transcript or use a model with a longer context',
    });
  }
  const chunk = Math.max(1, opts.chunkSize ?? 512);
  const residLayers = opts.residLayers ?? [];
  const zLayers = opts.zLayers ?? [];
  const positions = opts.positions ?? Array.from({ length: T }, (_, t) => t);
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new CliffscopeError('bad-argument', `tap position ${p} is outside 0..${T - 1}`);
  }
  const logitPositions = opts.logitPositions ?? [];
  const headScale = flattenHeadScale(opts.headScale, cfg.numLayers, cfg.numHeads);
  const { hiddenSize: d, numHeads: H, headDim: D, vocabSize: V } = cfg;

  const resid = new Map(residLayers.map((l) => [l, new Float32Array(positions.length * d)] as const));
  const z = new Map(zLayers.map((l) => [l, new Float32Array(positions.length * H * D)] as const));
  const logits = new Float32Array(logitPositions.length * V);
  const tokenLogprobs = new Float32Array(T).fill(NaN);

  let cache = session.emptyCache(1);
  for (let start = 0; start < T; start += chunk) {
    if (opts.signal?.aborted) throw new CliffscopeError('cancelled', 'teacher forcing was cancelled');
    const end = Math.min(T, start + chunk);
    const S = end - start;
    const inChunk = (p: number) => p >= start && p < end;
    // Which output slots this chunk fills, and the chunk rows they come from.
    const tapSlots = positions.flatMap((p, k) => (inChunk(p) ? [k] : []));
    const tapRows = tapSlots.map((k) => positions[k]! - start);
    const logitSlots = logitPositions.flatMap((p, k) => (inChunk(p) ? [k] : []));
    // Row r predicts token start + r + 1.
    const lpRows: number[] = [];
    const lpTargets: number[] = [];
    if (opts.logprobs) {
      for (let r = 0; r < S && start + r + 1 < T; r++) {
        lpRows.push(r);
        lpTargets.push(ids[start + r + 1]!);
      }
    }

    const out = await session.step({
      batch: 1,
      seq: S,
      ids: ids.slice(start, end),
      positions: Array.from({ length: S }, (_, i) => start + i),
      bias: buildAttentionBias({ batch: 1, seq: S, past: start, slidingWindow: cfg.slidingWindow }),
      headScale,
      cache,
      taps: {
        residRows: tapRows,
        residLayers: tapRows.length ? residLayers : [],
        zRows: tapRows,
        zLayers: tapRows.length ? zLayers : [],
        logitRows: logitSlots.map((k) => logitPositions[k]! - start),
        logprobRows: lpRows,
        logprobTargets: lpTargets,
      },
    });
    cache = out.cache;

    residLayers.forEach((layer, li) => {
      const dst = resid.get(layer)!;
      tapSlots.forEach((slot, r) => dst.set(out.resid.subarray((li * tapRows.length + r) * d, (li * tapRows.length + r + 1) * d), slot * d));
    });
    zLayers.forEach((layer, li) => {
      const dst = z.get(layer)!;
      const w = H * D;
      tapSlots.forEach((slot, r) => dst.set(out.z.subarray((li * tapRows.length + r) * w, (li * tapRows.length + r + 1) * w), slot * w));
    });
    logitSlots.forEach((slot, r) => logits.set(out.logits.subarray(r * V, (r + 1) * V), slot * V));
    lpRows.forEach((r, k) => (tokenLogprobs[start + r + 1] = out.tokenLogprobs[k]!));
    opts.onProgress?.(end, T);
  }
  return { positions, resid, z, logits, tokenLogprobs };
}
