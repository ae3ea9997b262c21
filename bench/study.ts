/**
 * Study measurements (`npm run bench -- --study`): the throughput a user waits for in a real study, through the
 * engine's own entry points — answers of mixed lengths generated in one continuous batch as the transcripts
 * pipeline does (live probe, a seed per item, a budget per answer), decoding after long prompts, teacher forcing
 * long transcripts with taps, packed teacher forcing of transcripts of mixed lengths, and an ablation sweep whose
 * settings share the batch.
 *
 * Random weights never stop on their own, so the bench forces each answer's length with a per-request budget drawn
 * from a heavy-tailed distribution (lengthMix). With a few dozen answers the longest ones decide how long a run
 * takes whatever the engine does: `scheduleOccupancy` replays the same requests through an ideal continuous (or
 * static) batch, so a run's measured occupancy can be read against what its length mix allows.
 */
import type { DecoderSession, StepInput } from '../src/main/engine/runtime/decoder-session.js';
import { generate, type GenerationRequest, type LiveProbe } from '../src/main/engine/runtime/generate.js';
import { teacherForce, teacherForceBatch } from '../src/main/engine/runtime/teacher-force.js';
import { log, now, randomIds, stat, type Stat } from './util.js';

// ---------------------------------------------------------------------------------------------------------------
// Length mix and the ideal schedule

/** Seeded uniforms in (0, 1) (mulberry32). */
function uniforms(count: number, seed: number): number[] {
  let a = seed >>> 0;
  return Array.from({ length: count }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  });
}

export interface LengthMixSpec {
  count: number;
  min: number;
  max: number;
  /** Pareto tail index: smaller = heavier tail (1.2: infinite variance, most answers short, a few very long). */
  alpha: number;
  seed: number;
}

/**
 * `count` answer lengths from a Pareto distribution with tail index `alpha`, truncated to [min, max] (inverse CDF of
 * the truncated distribution, seeded): a sweep's mix of short refusals and a few long chains of thought.
 */
export function lengthMix(spec: LengthMixSpec): number[] {
  const { min, max, alpha } = spec;
  const tail = 1 - (min / max) ** alpha;
  return uniforms(spec.count, spec.seed).map((u) => Math.min(max, Math.max(min, Math.round(min / (1 - u * tail) ** (1 / alpha)))));
}

export interface Schedule {
  /** Decode steps (each row gets its first token from its prefill, then one per step). */
  decodeSteps: number;
  /** Rows busy per decode step ÷ batch size, over the run. */
  occupancy: number;
}

/**
 * Replay answer lengths through an ideal batch of `batch` rows taking requests in `order`: 'continuous' refills a
 * row as soon as its answer is done, 'static' runs fixed groups to their longest answer. This is what any engine
 * that decodes one token per row per step can at best do with these lengths.
 */
export function scheduleOccupancy(lengths: number[], order: number[], batch: number, batching: 'continuous' | 'static'): Schedule {
  let steps = 0;
  let busy = 0;
  if (batching === 'static') {
    for (let i = 0; i < order.length; i += batch) {
      const group = order.slice(i, i + batch).map((k) => lengths[k]!);
      const longest = Math.max(...group) - 1;
      steps += longest;
      busy += group.reduce((n, len) => n + len - 1, 0);
    }
  } else {
    const queue = order.map((k) => lengths[k]! - 1); // decode steps each answer still needs
    let rows: number[] = [];
    for (;;) {
      rows = rows.filter((r) => r > 0);
      while (rows.length < batch && queue.length) {
        const need = queue.shift()!;
        if (need > 0) rows.push(need); // a one-token answer is done at its prefill
      }
      if (!rows.length) break;
      steps++;
      busy += rows.length;
      rows = rows.map((r) => r - 1);
    }
  }
  return { decodeSteps: steps, occupancy: steps ? busy / (batch * steps) : 1 };
}

/** The order in which `generate` admits requests: shortest prompt first, ties in request order. */
export const admissionOrder = (promptLengths: number[]) => promptLengths.map((_, i) => i).sort((a, b) => promptLengths[a]! - promptLengths[b]! || a - b);

// ---------------------------------------------------------------------------------------------------------------
// Measurements

/** The session with every step recorded: its batch, its chunk length, its wall time. */
function recordSteps(session: DecoderSession) {
  const steps: { batch: number; seq: number; seconds: number }[] = [];
  const spy = Object.create(session) as DecoderSession;
  spy.step = async (input: StepInput) => {
    const t0 = now();
    const out = await session.step(input);
    steps.push({ batch: input.batch, seq: input.seq, seconds: now() - t0 });
    return out;
  };
  return { spy, steps };
}

export interface TranscriptsRunResult {
  batch: number;
  batching: 'continuous' | 'static';
  answers: number;
  /** Tokens generated (the answers' lengths summed). */
  usefulTokens: number;
  /** From the call to the last answer, prefills included: what the user waits for. */
  seconds: number;
  usefulTokensPerSecond: number;
  decodeSteps: number;
  /** Rows busy per decode step ÷ batch, as run. */
  occupancy: number;
  /** The same for an ideal batch with these lengths (scheduleOccupancy). */
  scheduleOccupancy: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

export interface TranscriptsRunSpec {
  /** Answer length per request (forced: the request's budget). */
  lengths: number[];
  promptLengths: number[];
  batch: number;
  batching: 'continuous' | 'static';
  probe: LiveProbe | null;
  /** Per-request head_scale (an ablation sweep), or none. */
  headScales?: (Float32Array | undefined)[];
  seed: number;
}

/** One `generate` call over every request, as the transcripts pipeline makes it. */
export async function transcriptsRun(session: DecoderSession, spec: TranscriptsRunSpec): Promise<TranscriptsRunResult> {
  const V = session.config.vocabSize;
  const requests: GenerationRequest[] = spec.lengths.map((len, i) => ({
    ids: randomIds(spec.promptLengths[i]!, V, spec.seed * 7919 + i),
    maxNewTokens: len,
    headScale: spec.headScales?.[i],
    seed: spec.seed * 1_000_003 + i,
  }));
  const { spy, steps } = recordSteps(session);
  const t0 = now();
  let useful = 0;
  await generate(spy, requests, {
    maxNewTokens: Math.max(...spec.lengths),
    batchSize: spec.batch,
    batching: spec.batching,
    probes: spec.probe ? [spec.probe] : [],
    onFinished: (r) => {
      useful += r.outputIds.length;
    },
  });
  const seconds = now() - t0;
  const expected = spec.lengths.reduce((a, b) => a + b, 0);
  if (useful !== expected) throw new Error(`expected ${expected} generated tokens, got ${useful}`);
  const decode = steps.filter((s) => s.seq === 1);
  const schedule = scheduleOccupancy(spec.lengths, admissionOrder(spec.promptLengths), spec.batch, spec.batching);
  return {
    batch: spec.batch,
    batching: spec.batching,
    answers: spec.lengths.length,
    usefulTokens: useful,
    seconds,
    usefulTokensPerSecond: useful / seconds,
    decodeSteps: decode.length,
    occupancy: decode.length ? decode.reduce((n, s) => n + s.batch, 0) / (spec.batch * decode.length) : 1,
    scheduleOccupancy: schedule.occupancy,
    prefillSeconds: steps.filter((s) => s.seq > 1).reduce((n, s) => n + s.seconds, 0),
    decodeSeconds: decode.reduce((n, s) => n + s.seconds, 0),
  };
}

export interface DecodeAtContextResult {
  context: number;
  /** Decode tokens/s over windows of `window` steps after the prompt (each window of each repetition one sample). */
  tokensPerSecond: Stat;
  /** The fastest repetition's prefill. */
  prefillSeconds: number;
}

/**
 * Batch-1 decoding after a prompt of `context` tokens: one prefill, then 1 + windows × window new tokens, each
 * window of steps timed as one sample (so a 4,096-token prompt is prefilled once per repetition, not once per
 * sample). The contexts are measured in turn `reps` times over, so a machine that slows down for a while (a shared
 * host's memory bandwidth moves by tens of percent over minutes) slows every context's samples alike.
 */
export async function decodeAtContexts(session: DecoderSession, opts: { contexts: number[]; window: number; windows: number; reps: number; seed: number }): Promise<DecodeAtContextResult[]> {
  const V = session.config.vocabSize;
  // Warm-up: the arena grows to decode shapes.
  await generate(session, [{ ids: randomIds(16, V, opts.seed) }], { maxNewTokens: 4 });
  const rates = new Map<number, number[]>(opts.contexts.map((c) => [c, []]));
  const prefills = new Map<number, number[]>(opts.contexts.map((c) => [c, []]));
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const context of opts.contexts) {
      const times: number[] = [];
      const t0 = now();
      await generate(session, [{ ids: randomIds(context, V, opts.seed + context + rep) }], {
        maxNewTokens: 1 + opts.window * opts.windows,
        prefillChunk: 512,
        onToken: () => times.push(now()),
      });
      const got = Array.from({ length: opts.windows }, (_, w) => opts.window / (times[(w + 1) * opts.window]! - times[w * opts.window]!));
      rates.get(context)!.push(...got);
      prefills.get(context)!.push(times[0]! - t0);
      log(`decode after ${context} tokens (repetition ${rep + 1}/${opts.reps}): ${got.map((r) => r.toFixed(2)).join(', ')} tok/s`);
    }
  }
  return opts.contexts.map((context) => ({ context, tokensPerSecond: stat(rates.get(context)!), prefillSeconds: Math.min(...prefills.get(context)!) }));
}

export interface TeacherForceTaps {
  /** Residual-stack entry tapped at every position (the live probe's). */
  residLayer: number;
  /** hook_pattern of these heads at the last `patternQueries` positions, on the first and last layer. */
  patternHeads: number[];
  patternQueries: number;
}

export interface TeacherForceLengthResult {
  tokens: number;
  tokensPerSecond: Stat;
}

/**
 * Teacher forcing one transcript of each length in 512-token chunks with every tap kind: the residual of one layer
 * and hook_z of every layer at every position, and attention patterns of a few heads at the last positions.
 */
export async function teacherForceLengths(session: DecoderSession, opts: { lengths: number[]; reps: number[]; taps: TeacherForceTaps; seed: number }): Promise<TeacherForceLengthResult[]> {
  const { vocabSize: V, numLayers: L } = session.config;
  const out: TeacherForceLengthResult[] = [];
  for (const [i, tokens] of opts.lengths.entries()) {
    const ids = randomIds(tokens, V, opts.seed + tokens);
    const run = async () => {
      const t0 = now();
      const r = await teacherForce(session, ids, {
        chunkSize: 512,
        residLayers: [opts.taps.residLayer],
        zLayers: Array.from({ length: L }, (_, l) => l),
        logprobs: true,
        pattern: { layers: [0, L - 1], heads: opts.taps.patternHeads, positions: Array.from({ length: opts.taps.patternQueries }, (_, k) => tokens - 1 - k) },
      });
      if (r.z.get(L - 1)!.length !== tokens * session.config.numHeads * session.config.headDim) throw new Error('hook_z came back with the wrong size');
      return tokens / (now() - t0);
    };
    if (i === 0) await run(); // warm-up
    const rates: number[] = [];
    for (let k = 0; k < opts.reps[i]!; k++) rates.push(await run());
    log(`teacher forcing ${tokens} tokens: ${rates.map((r) => r.toFixed(1)).join(', ')} tok/s`);
    out.push({ tokens, tokensPerSecond: stat(rates) });
  }
  return out;
}

export interface PackedTeacherForceResult {
  transcripts: number;
  tokens: number;
  /** teacherForceBatch: every transcript in one packed stream of full chunks. */
  packedTokensPerSecond: number;
  /** teacherForce on each transcript in turn. */
  oneByOneTokensPerSecond: number;
}

/** Transcripts of mixed lengths with the live probe's residual tapped everywhere: packed vs one at a time. */
export async function packedTeacherForcing(session: DecoderSession, opts: { lengths: number[]; residLayer: number; seed: number }): Promise<PackedTeacherForceResult> {
  const V = session.config.vocabSize;
  const seqs = opts.lengths.map((n, i) => randomIds(n, V, opts.seed + 31 * i));
  const tokens = opts.lengths.reduce((a, b) => a + b, 0);
  let t0 = now();
  await teacherForceBatch(session, seqs.map((ids) => ({ ids })), { residLayers: [opts.residLayer], chunkSize: 512 });
  const packed = tokens / (now() - t0);
  t0 = now();
  for (const ids of seqs) await teacherForce(session, ids, { residLayers: [opts.residLayer], chunkSize: 512 });
  const oneByOne = tokens / (now() - t0);
  log(`teacher forcing ${seqs.length} transcripts (${tokens} tokens): packed ${packed.toFixed(1)}, one by one ${oneByOne.toFixed(1)} tok/s`);
  return { transcripts: seqs.length, tokens, packedTokensPerSecond: packed, oneByOneTokensPerSecond: oneByOne };
}

/** A random probe on residual-stack entry `residIndex`, as the live probe of the transcripts runs. */
export function benchProbe(session: DecoderSession, residIndex: number, seed: number): LiveProbe {
  const d = session.config.hiddenSize;
  return { residIndex, weights: Float32Array.from(randomIds(d, 2001, seed + 7), (v) => (v - 1000) / 1e5), bias: 0.1 };
}

/** head_scale [L * H] with `k` seeded random heads at γ. */
export function randomHeadScale(session: DecoderSession, k: number, gamma: number, seed: number): Float32Array {
  const { numLayers: L, numHeads: H } = session.config;
  const hs = new Float32Array(L * H).fill(1);
  const picks = randomIds(4 * k + 16, L * H, seed);
  let placed = 0;
  for (const p of picks) {
    if (placed === k) break;
    if (hs[p] === 1) {
      hs[p] = gamma;
      placed++;
    }
  }
  return hs;
}
