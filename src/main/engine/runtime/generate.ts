/**
 * Batched KV-cache generation. Prompts of different lengths share a batch by left padding (padding slots are masked
 * out of attention and get no position), each row may carry its own head_scale (several ablation settings side by
 * side), finished rows leave the batch, and every new token's residual stream can be read by linear probes in the
 * same step that produces it, so refusal scores stream with the text.
 */
import { CliffscopeError } from '../errors.js';
import { buildAttentionBias } from './attention-bias.js';
import type { DecoderSession } from './decoder-session.js';
import { selectKvRows } from './kv-cache.js';
import { chooseToken, GREEDY, Rng, type SamplingOptions } from './sampling.js';

export type FinishReason = 'eos' | 'stop-string' | 'length' | 'context' | 'cancelled';

/** A linear probe applied live: score = sigmoid(w · h + b) on residual-stack entry `layer`. */
export interface LiveProbe {
  layer: number;
  weights: Float32Array;
  bias: number;
}

export interface GenerationRequest {
  ids: number[];
  /** γ per [layer][head] for this row, flattened [L * H]; omitted = no ablation. */
  headScale?: Float32Array;
  /** Sampling seed of this sequence; omitted = derived from the run's seed and the request's index. */
  seed?: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  seed?: number;
  /** Token ids that end a sequence (kept as its last token). */
  stopIds?: number[];
  /** Strings that end a sequence once the decoded output contains them; needs `decode`. */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  /** Rows decoded together. */
  batchSize?: number;
  /** Prompt tokens per prefill step. */
  prefillChunk?: number;
  probes?: LiveProbe[];
  /** Raw residual vectors of every processed token at these stack entries: [layers.length * d]. */
  tapLayers?: number[];
  onTap?: (prompt: number, position: number, residual: Float32Array) => void;
  /** Each probe's score for a token, as soon as that token's residual is computed. */
  onScore?: (prompt: number, position: number, scores: number[]) => void;
  onToken?: (prompt: number, token: number, position: number) => void;
  /** Called after each decode step with (tokens generated so far, upper bound on tokens). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface GenerationResult {
  prompt: number;
  promptIds: number[];
  outputIds: number[];
  finishReason: FinishReason;
  /** Per probe, a score per transcript position (prompt + output); NaN where no residual was computed. */
  scores: Float32Array[];
}

interface Row {
  prompt: number;
  ids: number[];
  out: number[];
  pad: number;
  rng: Rng | null;
  scores: Float32Array[];
  headScale: Float32Array;
  finish: FinishReason | null;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export async function generate(session: DecoderSession, requests: GenerationRequest[], opts: GenerateOptions): Promise<GenerationResult[]> {
  const cfg = session.config;
  const { numLayers: L, numHeads: H, hiddenSize: d } = cfg;
  const sampling = opts.sampling ?? GREEDY;
  const stopIds = new Set(opts.stopIds ?? []);
  const stopStrings = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  if (stopStrings.length && !opts.decode) throw new CliffscopeError('bad-argument', 'stop strings need a tokenizer to decode the output');
  const probes = opts.probes ?? [];
  for (const p of probes) {
    if (p.weights.length !== d) {
      throw new CliffscopeError('bad-argument', `probe has width ${p.weights.length}, the model's residual stream has ${d}`);
    }
  }
  const tapLayers = [...new Set([...probes.map((p) => p.layer), ...(opts.tapLayers ?? [])])];
  for (const l of tapLayers) {
    if (!Number.isInteger(l) || l < 0 || l > L + 1) throw new CliffscopeError('bad-argument', `tap layer ${l} is outside 0..${L + 1}`);
  }
  requests.forEach((r, i) => {
    if (r.ids.length === 0) throw new CliffscopeError('bad-argument', `prompt ${i} is empty`);
    if (r.ids.length >= cfg.maxPositionEmbeddings) {
      throw new CliffscopeError('context-overflow', `prompt ${i} has ${r.ids.length} tokens; the model's context is ${cfg.maxPositionEmbeddings}`, {
        hint: 'shorten the prompt or use a model with a longer context',
      });
    }
    if (r.headScale && r.headScale.length !== L * H) {
      throw new CliffscopeError('bad-argument', `prompt ${i}: head_scale must hold layers*heads = ${L * H} values`);
    }
  });

  const results: GenerationResult[] = requests.map((r, i) => ({
    prompt: i,
    promptIds: r.ids,
    outputIds: [],
    finishReason: 'cancelled',
    scores: [],
  }));
  const batchSize = Math.max(1, opts.batchSize ?? 8);
  const chunk = Math.max(1, opts.prefillChunk ?? 512);
  const ones = new Float32Array(L * H).fill(1);
  const total = requests.length * opts.maxNewTokens;
  let produced = 0;

  // Similar lengths share a batch (less padding); results stay in request order.
  const order = requests.map((_, i) => i).sort((a, b) => requests[a]!.ids.length - requests[b]!.ids.length || a - b);

  for (let start = 0; start < order.length && !opts.signal?.aborted; start += batchSize) {
    const members = order.slice(start, start + batchSize);
    const maxLen = Math.max(...members.map((i) => requests[i]!.ids.length));
    let rows: Row[] = members.map((i) => {
      const ids = requests[i]!.ids;
      const span = ids.length + opts.maxNewTokens;
      return {
        prompt: i,
        ids,
        out: [],
        pad: maxLen - ids.length,
        rng: !sampling.doSample ? null : requests[i]!.seed !== undefined ? new Rng(requests[i]!.seed!, 0) : new Rng(opts.seed ?? 0, i),
        scores: probes.map(() => new Float32Array(span).fill(NaN)),
        headScale: requests[i]!.headScale ?? ones,
        finish: null,
      };
    });
    let cache = session.emptyCache(rows.length);

    // Slot j of row r holds transcript position j - pad (negative = padding).
    const keyValid = (r: Row, slots: number) => Uint8Array.from({ length: slots }, (_, j) => (j >= r.pad ? 1 : 0));
    const headScale = () => {
      const hs = new Float32Array(rows.length * L * H);
      rows.forEach((r, b) => hs.set(r.headScale, b * L * H));
      return hs;
    };
    /** Run one step over all rows; `tokenAt(r, j)` gives the token in slot j; returns last-row logits. */
    const runStep = async (fromSlot: number, S: number, tokenAt: (r: Row, slot: number) => number, wantLogits: boolean) => {
      const B = rows.length;
      const ids: number[] = [];
      const positions: number[] = [];
      const tapRows: number[] = [];
      const tapWhere: [Row, number][] = [];
      rows.forEach((r, b) => {
        for (let s = 0; s < S; s++) {
          const slot = fromSlot + s;
          ids.push(slot >= r.pad ? tokenAt(r, slot) : 0);
          positions.push(Math.max(0, slot - r.pad));
          if (tapLayers.length && slot >= r.pad) {
            tapRows.push(b * S + s);
            tapWhere.push([r, slot - r.pad]);
          }
        }
      });
      const out = await session.step({
        batch: B,
        seq: S,
        ids,
        positions,
        bias: buildAttentionBias({
          batch: B,
          seq: S,
          past: cache.length,
          keyValid: rows.map((r) => keyValid(r, cache.length + S)),
          slidingWindow: cfg.slidingWindow,
        }),
        headScale: headScale(),
        cache,
        taps: {
          residRows: tapRows,
          residLayers: tapRows.length ? tapLayers : [],
          logitRows: wantLogits ? rows.map((_, b) => b * S + S - 1) : [],
        },
      });
      cache = out.cache;
      // Resid taps come as [layers, rows, d]; hand each token its [layers * d] vector.
      tapWhere.forEach(([r, position], k) => {
        const vec = new Float32Array(tapLayers.length * d);
        tapLayers.forEach((_, li) => vec.set(out.resid.subarray((li * tapRows.length + k) * d, (li * tapRows.length + k + 1) * d), li * d));
        probes.forEach((p, pi) => {
          const li = tapLayers.indexOf(p.layer);
          let dot = p.bias;
          for (let j = 0; j < d; j++) dot += p.weights[j]! * vec[li * d + j]!;
          r.scores[pi]![position] = sigmoid(dot);
        });
        if (probes.length) opts.onScore?.(r.prompt, position, probes.map((_, pi) => r.scores[pi]![position]!));
        opts.onTap?.(r.prompt, position, vec);
      });
      return out.logits;
    };

    const finishRow = (r: Row, reason: FinishReason) => {
      r.finish = reason;
      results[r.prompt] = { prompt: r.prompt, promptIds: r.ids, outputIds: r.out, finishReason: reason, scores: r.scores };
    };

    /** Choose each row's next token from its logits and retire rows that are done. */
    const advance = (logits: Float32Array) => {
      const V = cfg.vocabSize;
      rows.forEach((r, b) => {
        const tok = chooseToken(logits.subarray(b * V, (b + 1) * V), sampling, [...r.ids, ...r.out], r.rng);
        r.out.push(tok);
        produced++;
        opts.onToken?.(r.prompt, tok, r.ids.length + r.out.length - 1);
        if (stopIds.has(tok)) finishRow(r, 'eos');
        else if (stopStrings.length && stopStrings.some((s) => opts.decode!(r.out.slice(-64)).includes(s))) finishRow(r, 'stop-string');
        else if (r.out.length >= opts.maxNewTokens) finishRow(r, 'length');
        else if (r.ids.length + r.out.length >= cfg.maxPositionEmbeddings) finishRow(r, 'context');
      });
      const keep = rows.flatMap((r, b) => (r.finish ? [] : [b]));
      if (keep.length < rows.length) {
        rows = keep.map((b) => rows[b]!);
        cache = selectKvRows(cache, keep);
      }
    };

    // Prefill the padded prompts in chunks; only the last chunk's final position needs logits.
    let logits: Float32Array = new Float32Array(0);
    for (let from = 0; from < maxLen; from += chunk) {
      if (opts.signal?.aborted) break;
      const S = Math.min(chunk, maxLen - from);
      logits = await runStep(from, S, (r, slot) => r.ids[slot - r.pad]!, from + S === maxLen);
      await yieldToEventLoop();
    }
    if (!opts.signal?.aborted && opts.maxNewTokens > 0) advance(logits);
    // Decode one token per row per step.
    while (rows.length && !opts.signal?.aborted) {
      const slot = cache.length;
      logits = await runStep(slot, 1, (r) => r.out[r.out.length - 1]!, true);
      advance(logits);
      opts.onProgress?.(produced, total);
      await yieldToEventLoop();
    }
    for (const r of rows) finishRow(r, opts.maxNewTokens === 0 ? 'length' : 'cancelled');
  }
  return results;
}
