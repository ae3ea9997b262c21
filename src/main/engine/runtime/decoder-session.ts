/**
 * One ONNX Runtime session over a compiled decoder graph, and `step`: run one chunk of tokens for a batch against a
 * KV cache, returning only the taps the caller selected. Everything above (teacher forcing, generation) is loops
 * over `step`.
 *
 * `session.run` blocks the calling thread for the length of the step; callers that own a UI run this in a worker
 * or utility process.
 */
import * as ort from 'onnxruntime-node';
import { CliffscopeError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { checkedStep } from '../model/numerics.js';
import { IO, type KvCacheType, kvStreams } from '../onnx/decoder-graph.js';
import { emptyKvCache, type KvCache, withRecent } from './kv-cache.js';
import { openSession, type ProviderChoice, type ProviderName } from './providers.js';

export interface SessionOptions {
  /** Intra-op threads; default: ONNX Runtime's choice (one per physical core). */
  threads?: number;
  /**
   * Execution provider, or `auto` (default): the platform's GPU provider when it loads, else CPU. An explicit provider
   * that cannot load is an error (see providers.ts).
   */
  provider?: ProviderChoice;
}

export interface TapSelection {
  /** Flat rows (b * seq + s) whose residual stream to return, and which residual-stack entries. */
  residRows?: number[];
  residLayers?: number[];
  /** Flat rows whose per-head outputs to return, and for which layers. */
  zRows?: number[];
  zLayers?: number[];
  /** Flat rows whose attention pattern to return, for these heads and layers: [layers, rows, heads, T]. */
  patternRows?: number[];
  patternHeads?: number[];
  patternLayers?: number[];
  /** Flat rows whose full logits to return. */
  logitRows?: number[];
  /** Flat rows whose log-probability of `logprobTargets[k]` to return. */
  logprobRows?: number[];
  logprobTargets?: number[];
}

export interface StepInput {
  batch: number;
  seq: number;
  /** [B * S] token ids. */
  ids: ArrayLike<number>;
  /** [B * S] position ids (rotary positions). */
  positions: ArrayLike<number>;
  /** [B * S * (past + S)] additive bias, see buildAttentionBias. */
  bias: Float32Array;
  /** [B * L * H] γ per row, layer and head; omitted = all ones. */
  headScale?: Float32Array;
  cache: KvCache;
  taps?: TapSelection;
}

export interface StepOutput {
  /** [logitRows, V] */
  logits: Float32Array;
  /** [logprobRows] */
  tokenLogprobs: Float32Array;
  /** [residLayers, residRows, d] */
  resid: Float32Array;
  /** [zLayers, zRows, H, D] */
  z: Float32Array;
  /** [patternLayers, patternRows, patternHeads, T]: softmax over the T = cache + chunk key slots. */
  pattern: Float32Array;
  cache: KvCache;
}

const int64 = (values: ArrayLike<number>) => BigInt64Array.from(Array.from(values, (v) => BigInt(v)));

export class DecoderSession {
  private constructor(
    readonly config: ModelConfig,
    readonly session: ort.InferenceSession,
    readonly modelPath: string,
    /** The provider that loaded this session. */
    readonly provider: ProviderName,
    /** Why `auto` skipped better providers, e.g. "cuda: libonnxruntime_providers_cuda.so is not installed …". */
    readonly providerNotes: string[],
  ) {
    this.kvCacheType = session.inputNames.includes(IO.past('key_scale', 0))
      ? 'int8'
      : (session.inputMetadata.find((m) => m.name === IO.past('key', 0)) as { type?: string } | undefined)?.type === 'float16'
        ? 'float16'
        : 'float32';
  }

  /** How the compiled graph stores its KV cache (read from its inputs). */
  readonly kvCacheType: KvCacheType;

  static async create(modelPath: string, config: ModelConfig, opts: SessionOptions = {}): Promise<DecoderSession> {
    const { session, provider, notes } = await openSession(modelPath, opts.provider ?? 'auto', { threads: opts.threads });
    return new DecoderSession(config, session, modelPath, provider, notes);
  }

  emptyCache(batch: number): KvCache {
    return emptyKvCache(batch, this.config.numLayers, this.config.numKvHeads, this.config.headDim, kvStreams(this.kvCacheType));
  }

  async step(input: StepInput): Promise<StepOutput> {
    const { batch: B, seq: S, cache } = input;
    const { numLayers: L, numHeads: H, hiddenSize: d, headDim: D, vocabSize: V } = this.config;
    const T = cache.length + S;
    if (cache.batch !== B) throw new CliffscopeError('bad-argument', `KV cache holds ${cache.batch} rows, step has ${B}`);
    if (input.ids.length !== B * S || input.positions.length !== B * S) {
      throw new CliffscopeError('bad-argument', `ids/positions must hold batch*seq = ${B * S} values`);
    }
    if (input.bias.length !== B * S * T) {
      throw new CliffscopeError('bad-argument', `attention bias must hold ${B * S * T} values, got ${input.bias.length}`);
    }
    const limit = this.config.maxPositionEmbeddings;
    for (let i = 0; i < input.positions.length; i++) {
      if (input.positions[i]! >= limit) {
        throw new CliffscopeError('context-overflow', `position ${input.positions[i]} is beyond the model's context of ${limit} tokens`, {
          hint: 'shorten the prompt or lower max_new_tokens',
        });
      }
    }
    const requested = input.taps ?? {};
    // The graph returns tapped layers in ascending stack order, each once; callers may ask in any order.
    const ascending = (v?: number[]) => (v && v.length ? [...new Set(v)].sort((a, b) => a - b) : v);
    const taps: TapSelection = {
      ...requested,
      residLayers: ascending(requested.residLayers),
      zLayers: ascending(requested.zLayers),
      patternLayers: ascending(requested.patternLayers),
    };
    // The graph always gathers at least one row/layer; empty selections ask for row 0 and drop it afterwards.
    const sel = (v: number[] | undefined) => (v && v.length ? v : [0]);
    const headScale = input.headScale ?? new Float32Array(B * L * H).fill(1);
    if (headScale.length !== B * L * H) {
      throw new CliffscopeError('bad-argument', `head_scale must hold batch*layers*heads = ${B * L * H} values`);
    }
    if ((taps.logprobRows?.length ?? 0) !== (taps.logprobTargets?.length ?? 0)) {
      throw new CliffscopeError('bad-argument', 'logprobRows and logprobTargets must have the same length');
    }
    // Pattern rows are (row, head) pairs as flat indices into the graph's [B*H*S, T] view: (b*H + h)*S + s.
    const patternHeads = taps.patternHeads ?? [];
    for (const h of patternHeads) if (!Number.isInteger(h) || h < 0 || h >= H) throw new CliffscopeError('bad-argument', `pattern head ${h} is outside 0..${H - 1}`);
    const patternIndex = (taps.patternRows ?? []).flatMap((row) => patternHeads.map((h) => (Math.floor(row / S) * H + h) * S + (row % S)));

    const feeds: Record<string, ort.Tensor> = {
      [IO.inputIds]: new ort.Tensor('int64', int64(input.ids), [B, S]),
      [IO.positionIds]: new ort.Tensor('int64', int64(input.positions), [B, S]),
      [IO.attnBias]: new ort.Tensor('float32', input.bias, [B, S, T]),
      [IO.headScale]: new ort.Tensor('float32', headScale, [B, L, H]),
      [IO.residRows]: new ort.Tensor('int64', int64(sel(taps.residRows)), [sel(taps.residRows).length]),
      [IO.residLayers]: new ort.Tensor('int64', int64(sel(taps.residLayers)), [sel(taps.residLayers).length]),
      [IO.zRows]: new ort.Tensor('int64', int64(sel(taps.zRows)), [sel(taps.zRows).length]),
      [IO.zLayers]: new ort.Tensor('int64', int64(sel(taps.zLayers)), [sel(taps.zLayers).length]),
      [IO.patternIndex]: new ort.Tensor('int64', int64(sel(patternIndex)), [sel(patternIndex).length]),
      [IO.patternLayers]: new ort.Tensor('int64', int64(sel(taps.patternLayers)), [sel(taps.patternLayers).length]),
      [IO.logitRows]: new ort.Tensor('int64', int64(sel(taps.logitRows)), [sel(taps.logitRows).length]),
      [IO.logprobRows]: new ort.Tensor('int64', int64(sel(taps.logprobRows)), [sel(taps.logprobRows).length]),
      [IO.logprobTargets]: new ort.Tensor('int64', int64(sel(taps.logprobTargets)), [sel(taps.logprobTargets).length]),
    };
    if (cache.streams.length !== kvStreams(this.kvCacheType).length) {
      throw new CliffscopeError('bad-argument', `this KV cache does not fit the model's ${this.kvCacheType} cache`);
    }
    for (let i = 0; i < L; i++) {
      cache.streams.forEach((stream, si) => {
        feeds[IO.past(stream.name, i)] = cache.past[i]![si]!;
        feeds[IO.recent(stream.name, i)] = cache.recent[i]![si]!;
      });
    }

    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      throw new CliffscopeError('runtime', `inference failed: ${(e as Error).message}`, { cause: e });
    }
    const data = (name: string, wanted: number[] | undefined, perRow: number): Float32Array => {
      if (!wanted || wanted.length === 0) return new Float32Array(0);
      const t = out[name] as ort.Tensor;
      const arr = t.data as Float32Array;
      return arr.length === wanted.length * perRow ? arr : arr.slice(0, wanted.length * perRow);
    };
    // Layers × rows outputs: if either selection was empty the whole tap is empty.
    const both = (rows?: number[], layers?: number[]) => (rows?.length && layers?.length ? layers : undefined);
    /** Blocks of `perLayer` values in `got` order, rearranged into the caller's `want` order. */
    const inOrder = (values: Float32Array, got: number[] | undefined, want: number[] | undefined, perLayer: number) => {
      if (!got || !want || values.length === 0 || (got.length === want.length && got.every((l, i) => l === want[i]))) return values;
      const out = new Float32Array(want.length * perLayer);
      want.forEach((layer, i) => out.set(values.subarray(got.indexOf(layer) * perLayer, (got.indexOf(layer) + 1) * perLayer), i * perLayer));
      return out;
    };
    const residPer = (taps.residRows?.length ?? 0) * d;
    const zPer = (taps.zRows?.length ?? 0) * H * D;
    const patternPer = patternIndex.length * T;
    // Every logit the engine uses (generation and teacher forcing alike) leaves the graph here and nowhere else:
    // the one place to check them.
    return checkedStep({
      logits: data(IO.logits, taps.logitRows, V),
      tokenLogprobs: data(IO.tokenLogprobs, taps.logprobRows, 1),
      resid: inOrder(data(IO.residTaps, both(taps.residRows, taps.residLayers), residPer), taps.residLayers, requested.residLayers, residPer),
      z: inOrder(data(IO.zTaps, both(taps.zRows, taps.zLayers), zPer), taps.zLayers, requested.zLayers, zPer),
      pattern: inOrder(data(IO.patternTaps, both(patternIndex, taps.patternLayers), patternPer), taps.patternLayers, requested.patternLayers, patternPer),
      cache: withRecent(
        cache,
        Array.from({ length: L }, (_, i) => cache.streams.map((stream) => out[IO.present(stream.name, i)] as ort.Tensor)),
      ),
    }, this.config, headScale);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
