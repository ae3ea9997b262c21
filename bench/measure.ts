/**
 * Throughput measurements over a loaded DecoderSession, through the same entry points the app uses:
 * `teacherForce` for prefill and `generate` for decoding.
 *
 * Every measurement also reports how much of its wall time was spent inside ONNX Runtime's `run`, so the rest
 * (feeds built in JS, KV cache copied between steps, sampling, probes) shows up as `jsSeconds`.
 */
import type { DecoderSession } from '../src/main/engine/runtime/decoder-session.js';
import { generate, type LiveProbe } from '../src/main/engine/runtime/generate.js';
import { teacherForce } from '../src/main/engine/runtime/teacher-force.js';
import { log, median, now, randomIds, stat, type Stat } from './util.js';

/** Records the start and end of every `session.run` call on a DecoderSession. */
export class RunClock {
  spans: [number, number][] = [];

  constructor(session: DecoderSession) {
    const inner = session.session;
    const original = inner.run.bind(inner);
    const wrapped = async (...args: Parameters<typeof original>) => {
      const start = now();
      try {
        return await original(...args);
      } finally {
        this.spans.push([start, now()]);
      }
    };
    Object.defineProperty(inner, 'run', { value: wrapped, configurable: true, writable: true });
  }

  /** Seconds spent in `run` calls that started at or after `from` and ended by `to`. */
  busy(from: number, to: number): number {
    let total = 0;
    for (const [s, e] of this.spans) if (s >= from && e <= to) total += e - s;
    return total;
  }

  reset(): void {
    this.spans = [];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Prefill

export interface PrefillTaps {
  /** Residual-stack entries tapped at every position. */
  residLayers: number[];
  /** Layers whose hook_z is tapped at every position. */
  zLayers: number[];
}

interface PrefillRun {
  seconds: number;
  ortSeconds: number;
  cpuSeconds: number;
}

/** CPU seconds (all threads) this process has used so far. */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function prefillOnce(session: DecoderSession, clock: RunClock, ids: number[], taps: PrefillTaps | null): Promise<PrefillRun> {
  const start = now();
  const cpu0 = cpuSeconds();
  const out = await teacherForce(session, ids, taps ?? {});
  const end = now();
  const cpu = cpuSeconds() - cpu0;
  if (taps && out.resid.get(taps.residLayers[0]!)?.length !== ids.length * session.config.hiddenSize) {
    throw new Error('prefill taps came back with the wrong size');
  }
  return { seconds: end - start, ortSeconds: clock.busy(start, end), cpuSeconds: cpu };
}

export interface PrefillVariantResult {
  tokensPerSecond: Stat;
  seconds: Stat;
  /** Share of wall time spent outside ONNX Runtime (median over runs). */
  jsFraction: number;
  /** CPU seconds used per wall second per thread (median): well below 1 means other processes took the cores. */
  cpuUtilisation: number;
}

export interface PrefillResult {
  tokens: number;
  reps: number;
  taps: PrefillTaps;
  plain: PrefillVariantResult;
  tapped: PrefillVariantResult;
  /** 1 - tapped/plain tokens per second (medians). */
  tapOverhead: number;
}

export async function measurePrefill(
  session: DecoderSession,
  clock: RunClock,
  opts: { tokens: number; reps: number; taps: PrefillTaps; seed: number; threads: number },
): Promise<PrefillResult> {
  const ids = randomIds(opts.tokens, session.config.vocabSize, opts.seed);
  log(`prefill: warm-up (${opts.tokens} tokens)`);
  await prefillOnce(session, clock, ids, opts.taps);
  await prefillOnce(session, clock, ids, null);
  const runs: { plain: PrefillRun[]; tapped: PrefillRun[] } = { plain: [], tapped: [] };
  // Interleaved, so drift in machine speed hits both variants alike.
  for (let r = 0; r < opts.reps; r++) {
    for (const variant of ['plain', 'tapped'] as const) {
      const run = await prefillOnce(session, clock, ids, variant === 'tapped' ? opts.taps : null);
      runs[variant].push(run);
      log(`prefill ${variant} #${r + 1}: ${(opts.tokens / run.seconds).toFixed(1)} tok/s`);
    }
  }
  const summarise = (rs: PrefillRun[]): PrefillVariantResult => ({
    tokensPerSecond: stat(rs.map((x) => opts.tokens / x.seconds)),
    seconds: stat(rs.map((x) => x.seconds)),
    jsFraction: median(rs.map((x) => 1 - x.ortSeconds / x.seconds)),
    cpuUtilisation: median(rs.map((x) => x.cpuSeconds / x.seconds / opts.threads)),
  });
  const plain = summarise(runs.plain);
  const tapped = summarise(runs.tapped);
  return {
    tokens: opts.tokens,
    reps: opts.reps,
    taps: opts.taps,
    plain,
    tapped,
    tapOverhead: 1 - tapped.tokensPerSecond.median / plain.tokensPerSecond.median,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

export interface DecodeRun {
  /** Tokens generated after each row's first one. */
  tokens: number;
  /** From the moment every row had its first token to the last token. */
  seconds: number;
  /** Prompt prefill plus the first token. */
  firstTokenSeconds: number;
  ortSeconds: number;
  /** CPU seconds over the whole call (prefill included), and its wall time. */
  cpuSeconds: number;
  wallSeconds: number;
}

/** One `generate` call: every row gets `newTokens` tokens; timing starts once every row has its first. */
export async function decodeOnce(
  session: DecoderSession,
  clock: RunClock,
  prompts: number[][],
  newTokens: number,
  probe: LiveProbe | null,
): Promise<DecodeRun> {
  const start = now();
  const cpu0 = cpuSeconds();
  let count = 0;
  let firstDone = NaN;
  let last = NaN;
  await generate(
    session,
    prompts.map((ids) => ({ ids })),
    {
      maxNewTokens: newTokens,
      batchSize: prompts.length,
      probes: probe ? [probe] : [],
      onToken: () => {
        count++;
        last = now();
        if (count === prompts.length) firstDone = last; // the first advance emits one token per row
      },
    },
  );
  const tokens = count - prompts.length;
  if (tokens !== prompts.length * (newTokens - 1)) throw new Error(`expected ${prompts.length * newTokens} tokens, got ${count}`);
  const cpu = cpuSeconds() - cpu0;
  return {
    tokens,
    seconds: last - firstDone,
    firstTokenSeconds: firstDone - start,
    ortSeconds: clock.busy(firstDone, last),
    cpuSeconds: cpu,
    wallSeconds: now() - start,
  };
}

export interface DecodeVariantResult {
  tokensPerSecond: Stat;
  /** Seconds from the start of `generate` to the first token of every row (prompt prefill included). */
  firstTokenSeconds: number;
  /** Median share of decode wall time spent outside ONNX Runtime. */
  jsFraction: number;
  /** CPU seconds per wall second per thread over each call (median): well below 1 means contention. */
  cpuUtilisation: number;
}

export interface DecodeBatchResult {
  batch: number;
  plain: DecodeVariantResult;
  probe: DecodeVariantResult | null;
  /** 1 - probe/plain tokens per second (medians); null when no probe run was asked for. */
  probeOverhead: number | null;
}

export interface DecodeResult {
  promptTokens: number;
  newTokens: number;
  reps: number;
  probeLayer: number | null;
  batches: DecodeBatchResult[];
}

export async function measureDecode(
  session: DecoderSession,
  clock: RunClock,
  opts: {
    promptTokens: number;
    newTokens: number;
    batches: number[];
    withProbe: boolean;
    probeLayer: number;
    reps: number;
    seed: number;
    threads: number;
  },
): Promise<DecodeResult> {
  const { vocabSize: V, hiddenSize: d } = session.config;
  const promptsFor = (batch: number) => Array.from({ length: batch }, (_, b) => randomIds(opts.promptTokens, V, opts.seed + 1000 + b));
  const probeWeights = Float32Array.from(randomIds(d, 2001, opts.seed + 7), (v) => (v - 1000) / 1e5);
  const probe: LiveProbe = { residIndex: opts.probeLayer, weights: probeWeights, bias: 0.1 };

  // Warm-up at every batch size (the first runs grow ONNX Runtime's arena for the bigger shapes).
  for (const batch of opts.batches) {
    log(`decode: warm-up at batch ${batch}`);
    await decodeOnce(session, clock, promptsFor(batch), Math.min(4, opts.newTokens), opts.withProbe ? probe : null);
  }

  const results: DecodeBatchResult[] = [];
  for (const batch of opts.batches) {
    const prompts = promptsFor(batch);
    const runs: { plain: DecodeRun[]; probe: DecodeRun[] } = { plain: [], probe: [] };
    for (let r = 0; r < opts.reps; r++) {
      for (const variant of opts.withProbe ? (['plain', 'probe'] as const) : (['plain'] as const)) {
        const run = await decodeOnce(session, clock, prompts, opts.newTokens, variant === 'probe' ? probe : null);
        runs[variant].push(run);
        log(`decode batch ${batch} ${variant} #${r + 1}: ${(run.tokens / run.seconds).toFixed(2)} tok/s`);
      }
    }
    const summarise = (rs: DecodeRun[]): DecodeVariantResult => ({
      tokensPerSecond: stat(rs.map((x) => x.tokens / x.seconds)),
      firstTokenSeconds: median(rs.map((x) => x.firstTokenSeconds)),
      jsFraction: median(rs.map((x) => 1 - x.ortSeconds / x.seconds)),
      cpuUtilisation: median(rs.map((x) => x.cpuSeconds / x.wallSeconds / opts.threads)),
    });
    const plain = summarise(runs.plain);
    const probed = runs.probe.length ? summarise(runs.probe) : null;
    results.push({
      batch,
      plain,
      probe: probed,
      probeOverhead: probed ? 1 - probed.tokensPerSecond.median / plain.tokensPerSecond.median : null,
    });
  }
  return {
    promptTokens: opts.promptTokens,
    newTokens: opts.newTokens,
    reps: opts.reps,
    probeLayer: opts.withProbe ? opts.probeLayer : null,
    batches: results,
  };
}
