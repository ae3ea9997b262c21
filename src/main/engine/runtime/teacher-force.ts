/**
 * Teacher forcing: run given token sequences through the model in chunks with a KV cache and collect the requested
 * taps at the requested positions, plus the log-probability of every given token under the model. Chunking bounds
 * memory (attention scores are chunk × cache) without changing the result.
 *
 * Several sequences of any lengths are forced as one stream: each step takes the next `chunkSize` tokens whatever
 * sequences they belong to, and the attention bias keeps every sequence to its own keys (and its own positions).
 * So a batch of short transcripts runs at the speed of full-size chunks, with no padding, and a long transcript is
 * chunked as it would be alone. Keys of sequences that are finished leave the cache before the next step.
 */
import { CliffscopeError } from '../errors.js';
import { validateHeadScale } from './head-scale.js';
import { buildAttentionBias } from './attention-bias.js';
import type { DecoderSession } from './decoder-session.js';
import { rebuildKvCache } from './kv-cache.js';

/** Attention-pattern taps (`blocks.{i}.attn.hook_pattern`): these heads of these layers at chosen query positions. */
export interface PatternTaps {
  layers: number[];
  heads: number[];
}

/** Taps and options shared by every sequence of a batch. */
export interface TeacherForceBatchOptions {
  /** Tokens per forward step (default 512). */
  chunkSize?: number;
  /** Residual-stack entries to tap (0 = embeddings, i+1 = blocks.i.hook_resid_post, L+1 = ln_final). */
  residLayers?: number[];
  /** Layers whose per-head outputs (hook_z, as o_proj reads them) to tap. */
  zLayers?: number[];
  /** Attention patterns of these heads and layers, at each sequence's `patternPositions`. */
  pattern?: PatternTaps;
  /** Compute the log-probability of each given token (position 0 has none: NaN). */
  logprobs?: boolean;
  /** γ per [layer][head]; default all ones. */
  headScale?: number[][];
  signal?: AbortSignal;
  /** Tokens processed so far, of all sequences. */
  onProgress?: (done: number, total: number) => void;
  /** Each sequence's result as soon as its last token has been processed. */
  onResult?: (index: number, result: TeacherForceResult) => void;
}

/** One sequence of a batch and where to tap it. */
export interface ForcedSequence {
  ids: number[];
  /** Positions for the residual and hook_z taps; default every position. */
  positions?: number[];
  /** Full logits at these positions. */
  logitPositions?: number[];
  /** Query positions of the pattern taps. */
  patternPositions?: number[];
}

export interface TeacherForceOptions extends Omit<TeacherForceBatchOptions, 'pattern' | 'onResult'> {
  positions?: number[];
  logitPositions?: number[];
  /** Attention patterns of these heads and layers at these query positions. */
  pattern?: PatternTaps & { positions: number[] };
}

export interface TeacherForceResult {
  positions: number[];
  /** stack index → [positions, d] */
  resid: Map<number, Float32Array>;
  /** layer → [positions, H, D] */
  z: Map<number, Float32Array>;
  /**
   * layer → [heads, patternPositions, T]: as TransformerLens's hook_pattern [head, query_pos, key_pos] for the
   * chosen heads and queries. Keys after the query (and outside a sliding window) hold 0.
   */
  pattern: Map<number, Float32Array>;
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

/** Teacher-force one sequence. */
export async function teacherForce(session: DecoderSession, ids: number[], opts: TeacherForceOptions = {}): Promise<TeacherForceResult> {
  const { positions, logitPositions, pattern, ...shared } = opts;
  const sequence: ForcedSequence = { ids, positions, logitPositions, patternPositions: pattern?.positions };
  const [result] = await teacherForceBatch(session, [sequence], { ...shared, pattern: pattern && { layers: pattern.layers, heads: pattern.heads } });
  return result!;
}

/** Where a sequence lies in the stream, what it asked for, and its result as it fills. */
interface Forced {
  index: number;
  ids: number[];
  /** Stream index of its first token. */
  start: number;
  /** Tap position → result slots (positions may repeat). */
  tapSlots: Map<number, number[]>;
  logitSlots: Map<number, number[]>;
  patternSlots: Map<number, number[]>;
  /** How many pattern query positions it asked for. */
  patternQueries: number;
  result: TeacherForceResult;
}

function slotsByPosition(positions: number[], length: number, what: string, sequence: number): Map<number, number[]> {
  const map = new Map<number, number[]>();
  positions.forEach((p, k) => {
    if (!Number.isInteger(p) || p < 0 || p >= length) {
      throw new CliffscopeError('bad-argument', `sequence ${sequence}: ${what} position ${p} is outside 0..${length - 1}`);
    }
    map.set(p, [...(map.get(p) ?? []), k]);
  });
  return map;
}

/** Teacher-force several sequences as one stream (see the top of this file); results in input order. */
export async function teacherForceBatch(session: DecoderSession, sequences: ForcedSequence[], opts: TeacherForceBatchOptions = {}): Promise<TeacherForceResult[]> {
  const cfg = session.config;
  const { hiddenSize: d, numHeads: H, headDim: D, vocabSize: V, numLayers: L } = cfg;
  const chunk = Math.max(1, opts.chunkSize ?? 512);
  const residLayers = opts.residLayers ?? [];
  const zLayers = opts.zLayers ?? [];
  const patternLayers = opts.pattern?.layers ?? [];
  const patternHeads = opts.pattern?.heads ?? [];
  const checkLayers = (layers: number[], max: number, what: string) => {
    for (const l of layers) if (!Number.isInteger(l) || l < 0 || l > max) throw new CliffscopeError('bad-argument', `${what} layer ${l} is outside 0..${max}`);
  };
  checkLayers(residLayers, L + 1, 'residual tap');
  checkLayers(zLayers, L - 1, 'hook_z');
  checkLayers(patternLayers, L - 1, 'hook_pattern');
  for (const h of patternHeads) if (!Number.isInteger(h) || h < 0 || h >= H) throw new CliffscopeError('bad-argument', `hook_pattern head ${h} is outside 0..${H - 1}`);
  const headScale = flattenHeadScale(opts.headScale, L, H);

  let streamLength = 0;
  const forced: Forced[] = sequences.map((s, index) => {
    const T = s.ids.length;
    if (T === 0) throw new CliffscopeError('bad-argument', `sequence ${index}: teacher forcing needs at least one token`);
    if (T > cfg.maxPositionEmbeddings) {
      throw new CliffscopeError('context-overflow', `sequence ${index} has ${T} tokens, beyond the model's context of ${cfg.maxPositionEmbeddings}`, {
        hint: 'truncate the transcript or use a model with a longer context',
      });
    }
    const positions = s.positions ?? Array.from({ length: T }, (_, t) => t);
    const logitPositions = s.logitPositions ?? [];
    const patternPositions = s.patternPositions ?? [];
    const f: Forced = {
      index,
      ids: s.ids,
      start: streamLength,
      tapSlots: slotsByPosition(positions, T, 'tap', index),
      logitSlots: slotsByPosition(logitPositions, T, 'logit', index),
      patternSlots: slotsByPosition(patternPositions, T, 'pattern', index),
      patternQueries: patternPositions.length,
      result: {
        positions,
        resid: new Map(residLayers.map((l) => [l, new Float32Array(positions.length * d)] as const)),
        z: new Map(zLayers.map((l) => [l, new Float32Array(positions.length * H * D)] as const)),
        pattern: new Map(patternLayers.map((l) => [l, new Float32Array(patternHeads.length * patternPositions.length * T)] as const)),
        logits: new Float32Array(logitPositions.length * V),
        tokenLogprobs: new Float32Array(T).fill(NaN),
      },
    };
    streamLength += T;
    return f;
  });

  let cache = session.emptyCache(1);
  /** Stream index of cache slot 0. */
  let base = 0;
  let current = 0; // the sequence holding the chunk's first token
  for (let from = 0; from < streamLength; ) {
    if (opts.signal?.aborted) throw new CliffscopeError('cancelled', 'teacher forcing was cancelled');
    while (forced[current]!.start + forced[current]!.ids.length <= from) current++;
    // Keys of finished sequences are never read again: drop them (one copy of the rest).
    const live = forced[current]!.start;
    if (live > base) {
      const keep = cache.length - (live - base);
      cache = keep > 0 ? rebuildKvCache([{ cache, row: 0, length: keep }]) : session.emptyCache(1);
      base = live;
    }
    const end = Math.min(streamLength, from + chunk);
    const S = end - from;
    const ids = new Array<number>(S);
    const positions = new Array<number>(S);
    const firstKey = new Array<number>(S);
    const tapRows: number[] = [];
    const tapWhere: [Forced, number][] = [];
    const logitRows: number[] = [];
    const logitWhere: [Forced, number][] = [];
    const lpRows: number[] = [];
    const lpTargets: number[] = [];
    const lpWhere: [Forced, number][] = [];
    const patternRows: number[] = [];
    const patternWhere: [Forced, number, number][] = [];
    let j = current;
    for (let r = 0; r < S; r++) {
      while (forced[j]!.start + forced[j]!.ids.length <= from + r) j++;
      const f = forced[j]!;
      const o = from + r - f.start;
      ids[r] = f.ids[o]!;
      positions[r] = o;
      firstKey[r] = f.start - base;
      for (const k of f.tapSlots.get(o) ?? []) {
        tapRows.push(r);
        tapWhere.push([f, k]);
      }
      for (const k of f.logitSlots.get(o) ?? []) {
        logitRows.push(r);
        logitWhere.push([f, k]);
      }
      for (const k of f.patternSlots.get(o) ?? []) {
        patternRows.push(r);
        patternWhere.push([f, k, o]);
      }
      // Row r predicts the sequence's next token.
      if (opts.logprobs && o + 1 < f.ids.length) {
        lpRows.push(r);
        lpTargets.push(f.ids[o + 1]!);
        lpWhere.push([f, o + 1]);
      }
    }

    const out = await session.step({
      batch: 1,
      seq: S,
      ids,
      positions,
      bias: buildAttentionBias({ batch: 1, seq: S, past: cache.length, firstKey: [firstKey], slidingWindow: cfg.slidingWindow }),
      headScale,
      cache,
      taps: {
        residRows: tapRows,
        residLayers: tapRows.length ? residLayers : [],
        zRows: tapRows,
        zLayers: tapRows.length ? zLayers : [],
        patternRows,
        patternHeads,
        patternLayers: patternRows.length ? patternLayers : [],
        logitRows,
        logprobRows: lpRows,
        logprobTargets: lpTargets,
      },
    });
    const keySlots = cache.length + S;
    cache = out.cache;

    residLayers.forEach((layer, li) => {
      tapWhere.forEach(([f, slot], r) => f.result.resid.get(layer)!.set(out.resid.subarray((li * tapRows.length + r) * d, (li * tapRows.length + r + 1) * d), slot * d));
    });
    const w = H * D;
    zLayers.forEach((layer, li) => {
      tapWhere.forEach(([f, slot], r) => f.result.z.get(layer)!.set(out.z.subarray((li * tapRows.length + r) * w, (li * tapRows.length + r + 1) * w), slot * w));
    });
    // Pattern rows come as [layers, rows, heads, slots]; a query's keys are slots from its sequence's first token.
    patternLayers.forEach((layer, li) => {
      patternWhere.forEach(([f, q, o], r) => {
        const T = f.ids.length;
        const first = f.start - base;
        patternHeads.forEach((_, hi) => {
          const at = ((li * patternRows.length + r) * patternHeads.length + hi) * keySlots;
          f.result.pattern.get(layer)!.set(out.pattern.subarray(at + first, at + first + o + 1), (hi * f.patternQueries + q) * T);
        });
      });
    });
    logitWhere.forEach(([f, slot], r) => f.result.logits.set(out.logits.subarray(r * V, (r + 1) * V), slot * V));
    lpWhere.forEach(([f, t], k) => (f.result.tokenLogprobs[t] = out.tokenLogprobs[k]!));

    for (let k = current; k < forced.length && forced[k]!.start + forced[k]!.ids.length <= end; k++) {
      if (forced[k]!.start + forced[k]!.ids.length > from) opts.onResult?.(k, forced[k]!.result);
    }
    from = end;
    opts.onProgress?.(end, streamLength);
  }
  return forced.map((f) => f.result);
}
