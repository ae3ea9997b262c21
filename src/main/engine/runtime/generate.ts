/**
 * Batched KV-cache generation with continuous batching: up to `batchSize` sequences decode side by side, and the
 * moment one finishes, the next waiting request takes its row — its prompt prefilled between the others' decode
 * steps — so a long answer never holds a batch of short ones hostage. Each row may carry its own head_scale
 * (several ablation settings side by side), and every new token's residual stream can be read by linear probes in
 * the same step that produces it, so refusal scores stream with the text.
 *
 * Rows of different lengths share the KV cache right-aligned (kv-cache.ts): row b's positions are the cache's last
 * n_b slots and the attention bias hides the slots before them. A row's tokens, positions and attention are the
 * same as when it runs alone, and each sequence samples from its own seeded generator, so results do not depend on
 * which requests shared a batch or when a row joined it.
 */
import { CliffscopeError } from '../errors.js';
import { buildAttentionBias } from './attention-bias.js';
import type { DecoderSession } from './decoder-session.js';
import { type KvCache, rebuildKvCache } from './kv-cache.js';
import { chooseToken, GREEDY, Rng, type SamplingOptions } from './sampling.js';

export type FinishReason = 'eos' | 'stop-string' | 'length' | 'context' | 'cancelled';

/** A linear probe applied live: score = sigmoid(w · h + b) on residual-stack entry `residIndex` (0..L+1). */
export interface LiveProbe {
  residIndex: number;
  weights: Float32Array;
  bias: number;
}

export interface GenerationRequest {
  ids: number[];
  /** γ per [layer][head] for this row, flattened [L * H]; omitted = no ablation. */
  headScale?: Float32Array;
  /** Sampling seed of this sequence; omitted = derived from the run's seed and the request's index. */
  seed?: number;
  /** This request's budget of new tokens; omitted = the options' maxNewTokens. */
  maxNewTokens?: number;
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
  /**
   * 'continuous' (default): a finished row takes the next waiting request at once. 'static': requests run in
   * fixed groups of batchSize, each group to its end before the next starts (the bench compares the two).
   */
  batching?: 'continuous' | 'static';
  /** Prompt tokens per prefill step. */
  prefillChunk?: number;
  probes?: LiveProbe[];
  /** Raw residual vectors of every processed token at these stack entries: [layers.length * d]. */
  tapResidIndices?: number[];
  onTap?: (prompt: number, position: number, residual: Float32Array) => void;
  /** Each probe's score for a token, as soon as that token's residual is computed. */
  onScore?: (prompt: number, position: number, scores: number[]) => void;
  onToken?: (prompt: number, token: number, position: number) => void;
  /**
   * Each request's result as soon as it is finished (never for 'cancelled'), e.g. to commit it. Awaited before the
   * next step, so a handler may run the same session (e.g. teacher-force a few more tokens).
   */
  onFinished?: (result: GenerationResult) => void | Promise<void>;
  /** Called after each decode step with (tokens generated so far, upper bound on tokens). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface GenerationResult {
  prompt: number;
  promptIds: number[];
  outputIds: number[];
  finishReason: FinishReason;
  /**
   * Why the request produced nothing: its prompt leaves no room in the model's context (finishReason 'context').
   * Such a request is finished at once instead of failing the batch; null for every other result.
   */
  skipped: string | null;
  /** Per probe, a score per transcript position (prompt + output); NaN where no residual was computed. */
  scores: Float32Array[];
}

interface Row {
  prompt: number;
  ids: number[];
  out: number[];
  maxNewTokens: number;
  /** Positions of this sequence in the cache: its cache slots are the last `filled`. */
  filled: number;
  rng: Rng | null;
  scores: Float32Array[];
  headScale: Float32Array;
  finished: boolean;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export async function generate(session: DecoderSession, requests: GenerationRequest[], opts: GenerateOptions): Promise<GenerationResult[]> {
  const cfg = session.config;
  const { numLayers: L, numHeads: H, hiddenSize: d, vocabSize: V } = cfg;
  const sampling = opts.sampling ?? GREEDY;
  const stopIds = new Set(opts.stopIds ?? []);
  const stopStrings = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  if (stopStrings.length && !opts.decode) throw new CliffscopeError('bad-argument', 'stop strings need a tokenizer to decode the output');
  const budget = (r: GenerationRequest) => r.maxNewTokens ?? opts.maxNewTokens;
  const checkBudget = (n: number, what: string) => {
    if (!(Number.isInteger(n) && n >= 0)) throw new CliffscopeError('bad-argument', `${what} must be a whole number ≥ 0, got ${n}`);
  };
  checkBudget(opts.maxNewTokens, 'maxNewTokens');
  const probes = opts.probes ?? [];
  for (const p of probes) {
    if (p.weights.length !== d) {
      throw new CliffscopeError('bad-argument', `probe has width ${p.weights.length}, the model's residual stream has ${d}`);
    }
  }
  const tapResidIndices = [...new Set([...probes.map((p) => p.residIndex), ...(opts.tapResidIndices ?? [])])];
  for (const l of tapResidIndices) {
    if (!Number.isInteger(l) || l < 0 || l > L + 1) throw new CliffscopeError('bad-argument', `residual-stack index ${l} is outside 0..${L + 1}`);
  }
  requests.forEach((r, i) => {
    if (r.ids.length === 0) throw new CliffscopeError('bad-argument', `prompt ${i} is empty`);
    if (r.headScale && r.headScale.length !== L * H) {
      throw new CliffscopeError('bad-argument', `prompt ${i}: head_scale must hold layers*heads = ${L * H} values`);
    }
    checkBudget(budget(r), `prompt ${i}: maxNewTokens`);
  });

  // Until a request runs: nothing generated, and no score computed at any position of its prompt.
  const results: GenerationResult[] = requests.map((r, i) => ({
    prompt: i,
    promptIds: r.ids,
    outputIds: [],
    finishReason: 'cancelled',
    skipped: null,
    scores: probes.map(() => new Float32Array(r.ids.length).fill(NaN)),
  }));
  const batchSize = Math.max(1, opts.batchSize ?? 8);
  const continuous = (opts.batching ?? 'continuous') === 'continuous';
  const chunk = Math.max(1, opts.prefillChunk ?? 512);
  const ones = new Float32Array(L * H).fill(1);
  const total = requests.reduce((n, r) => n + budget(r), 0);
  let produced = 0;

  // Waiting requests, shortest prompt first: rows that join together are padded to the longest of them.
  const waiting = requests.map((_, i) => i).sort((a, b) => requests[a]!.ids.length - requests[b]!.ids.length || a - b);
  let rows: Row[] = [];
  let cache: KvCache | null = null;

  // Results finished since the last hand-over, in the order they finished; handed to onFinished between steps.
  const ready: GenerationResult[] = [];
  const handOver = async () => {
    for (let next = ready.shift(); next; next = ready.shift()) await opts.onFinished?.(next);
  };
  const finish = (r: Row, reason: FinishReason) => {
    r.finished = true;
    results[r.prompt] = { prompt: r.prompt, promptIds: r.ids, outputIds: r.out, finishReason: reason, skipped: null, scores: r.scores };
    ready.push(results[r.prompt]!);
  };

  /**
   * Run one step over `batch`, rows of `stepCache`: S slots per row from slot `fromSlot`, where row r's sequence
   * starts at slot `first(r)` (the slots before it are padding) and `tokenAt(r, position)` gives its tokens. Taps
   * every real token; returns the logits of each row's last slot when asked, and the cache after the step.
   */
  const runStep = async (
    batch: Row[],
    stepCache: KvCache,
    fromSlot: number,
    S: number,
    first: (r: Row) => number,
    tokenAt: (r: Row, position: number) => number,
    wantLogits: boolean,
  ) => {
    const B = batch.length;
    const ids: number[] = [];
    const positions: number[] = [];
    const firstKey: number[][] = [];
    const tapRows: number[] = [];
    const tapWhere: [Row, number][] = [];
    const headScale = new Float32Array(B * L * H);
    batch.forEach((r, b) => {
      const pad = first(r);
      firstKey.push(new Array<number>(S).fill(pad));
      headScale.set(r.headScale, b * L * H);
      for (let s = 0; s < S; s++) {
        const slot = fromSlot + s;
        ids.push(slot >= pad ? tokenAt(r, slot - pad) : 0);
        positions.push(Math.max(0, slot - pad));
        if (tapResidIndices.length && slot >= pad) {
          tapRows.push(b * S + s);
          tapWhere.push([r, slot - pad]);
        }
      }
    });
    const out = await session.step({
      batch: B,
      seq: S,
      ids,
      positions,
      bias: buildAttentionBias({ batch: B, seq: S, past: fromSlot, firstKey, slidingWindow: cfg.slidingWindow }),
      headScale,
      cache: stepCache,
      taps: {
        residRows: tapRows,
        residLayers: tapRows.length ? tapResidIndices : [],
        logitRows: wantLogits ? batch.map((_, b) => b * S + S - 1) : [],
      },
    });
    // Resid taps come as [layers, rows, d]; hand each token its [layers * d] vector.
    tapWhere.forEach(([r, position], k) => {
      const vec = new Float32Array(tapResidIndices.length * d);
      tapResidIndices.forEach((_, li) => vec.set(out.resid.subarray((li * tapRows.length + k) * d, (li * tapRows.length + k + 1) * d), li * d));
      probes.forEach((p, pi) => {
        const li = tapResidIndices.indexOf(p.residIndex);
        let dot = p.bias;
        for (let j = 0; j < d; j++) dot += p.weights[j]! * vec[li * d + j]!;
        r.scores[pi]![position] = sigmoid(dot);
      });
      if (probes.length) opts.onScore?.(r.prompt, position, probes.map((_, pi) => r.scores[pi]![position]!));
      opts.onTap?.(r.prompt, position, vec);
    });
    return { logits: out.logits, cache: out.cache };
  };

  /** Choose each row's next token from its logits row and finish the rows that are done. */
  const advance = (batch: Row[], logits: Float32Array) => {
    batch.forEach((r, b) => {
      if (r.maxNewTokens === 0) return finish(r, 'length');
      const tok = chooseToken(logits.subarray(b * V, (b + 1) * V), sampling, [...r.ids, ...r.out], r.rng);
      r.out.push(tok);
      produced++;
      opts.onToken?.(r.prompt, tok, r.ids.length + r.out.length - 1);
      if (stopIds.has(tok)) finish(r, 'eos');
      else if (stopStrings.length && stopStrings.some((s) => opts.decode!(r.out.slice(-64)).includes(s))) finish(r, 'stop-string');
      else if (r.out.length >= r.maxNewTokens) finish(r, 'length');
      else if (r.ids.length + r.out.length >= cfg.maxPositionEmbeddings) finish(r, 'context');
    });
  };

  /** Rows for the next waiting requests; a prompt with no room in the context is finished at once, as skipped. */
  const takeWaiting = (room: number): Row[] => {
    const joiners: Row[] = [];
    while (joiners.length < room && waiting.length) {
      const i = waiting.shift()!;
      const req = requests[i]!;
      if (req.ids.length >= cfg.maxPositionEmbeddings) {
        results[i] = {
          ...results[i]!,
          finishReason: 'context',
          skipped: `the prompt has ${req.ids.length} tokens and the model's context is ${cfg.maxPositionEmbeddings}, leaving no room to generate`,
        };
        ready.push(results[i]!);
        continue;
      }
      joiners.push({
        prompt: i,
        ids: req.ids,
        out: [],
        maxNewTokens: budget(req),
        filled: 0,
        rng: !sampling.doSample ? null : req.seed !== undefined ? new Rng(req.seed, 0) : new Rng(opts.seed ?? 0, i),
        scores: probes.map(() => new Float32Array(req.ids.length + budget(req)).fill(NaN)),
        headScale: req.headScale ?? ones,
        finished: false,
      });
    }
    return joiners;
  };

  /** Prefill `joiners` as their own batch (left-padded among themselves) and choose their first tokens. */
  const prefill = async (joiners: Row[]): Promise<KvCache | null> => {
    const longest = Math.max(...joiners.map((r) => r.ids.length));
    let joined = session.emptyCache(joiners.length);
    let logits: Float32Array = new Float32Array(0);
    for (let from = 0; from < longest; from += chunk) {
      if (opts.signal?.aborted) return null;
      const S = Math.min(chunk, longest - from);
      // Every joiner's prompt ends at slot `longest`.
      const step = await runStep(joiners, joined, from, S, (r) => longest - r.ids.length, (r, position) => r.ids[position]!, from + S === longest);
      joined = step.cache;
      logits = step.logits;
      await yieldToEventLoop();
    }
    for (const r of joiners) r.filled = r.ids.length;
    advance(joiners, logits);
    return joined;
  };

  /**
   * Fill free rows: prefill waiting requests, choose their first tokens (again for rows whose answer ended right
   * there), then merge the new rows with the rows still decoding into one cache — the one copy that also drops
   * finished rows and slots that are padding in every row. Returns false when cancelled mid-prefill.
   */
  const admit = async (): Promise<boolean> => {
    const live = rows.filter((r) => !r.finished);
    const joined: { row: Row; cache: KvCache; index: number }[] = [];
    while (continuous || live.length === 0) {
      const joiners = takeWaiting(batchSize - live.length - joined.length);
      if (!joiners.length) break;
      const joinedCache = await prefill(joiners);
      await handOver();
      if (!joinedCache) {
        rows.push(...joiners); // left unfinished: reported as cancelled
        return false;
      }
      joiners.forEach((row, index) => row.finished || joined.push({ row, cache: joinedCache, index }));
    }
    if (live.length + joined.length === 0) {
      rows = [];
      cache = null;
    } else if (live.length < rows.length || joined.length) {
      // One copy: the rows still going, then the new ones, right-aligned and trimmed to the longest.
      cache = rebuildKvCache([
        ...live.map((r) => ({ cache: cache!, row: rows.indexOf(r), length: r.filled })),
        ...joined.map((j) => ({ cache: j.cache, row: j.index, length: j.row.filled })),
      ]);
      rows = [...live, ...joined.map((j) => j.row)];
    }
    return true;
  };

  while (!opts.signal?.aborted && (await admit()) && rows.length) {
    // Decode one token per row: each feeds its last token into the next slot.
    const slots = cache!.length;
    const step = await runStep(rows, cache!, slots, 1, (r) => slots - r.filled, (r) => r.out[r.out.length - 1]!, true);
    cache = step.cache;
    for (const r of rows) r.filled++;
    advance(rows, step.logits);
    await handOver();
    opts.onProgress?.(produced, total);
    await yieldToEventLoop();
  }
  await handOver();
  // Cancelled: what each unfinished row generated so far (never handed to onFinished).
  for (const r of rows) {
    if (!r.finished) results[r.prompt] = { prompt: r.prompt, promptIds: r.ids, outputIds: r.out, finishReason: 'cancelled', skipped: null, scores: r.scores };
  }
  return results;
}
