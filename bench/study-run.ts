/**
 * `npm run bench -- --study [--quick] [...]`: the study bench. On DeepSeek-R1-Distill-Qwen-1.5B's shape (seeded
 * random weights; --quick: the small shape) it measures what a user waits for in a study rather than on short,
 * uniform sequences:
 *
 *   transcripts  useful tokens/s of one `generate` call over 64 requests with the live probe, answers forced to a
 *                heavy-tailed length mix between 8 and 4,096 tokens (study.ts, lengthMix), at batch 8 and 16,
 *                continuous and static batching; and the same requests with every answer the mix's mean length
 *                (uniform), the throughput the mix is judged against
 *   sweep        a 2 × 2-setting ablation sweep (head count × γ, per-row head_scale) in one continuous batch
 *   decode       batch-1 decode tokens/s after 16, 1,024 and 4,096 prompt tokens: float32 and int4, each with the
 *                KV cache as computed and as int8 (and float32 with a float16 cache)
 *   teacher      teacher forcing 512- and 4,096-token transcripts in 512-token chunks with every tap kind, and a
 *                packed batch of transcripts of mixed lengths against forcing them one at a time
 *
 * Each compiled variant runs in its own child (worker.ts, task study). Targets (issue 14) are judged here; the
 * figures that explain them (occupancy against the ideal schedule of the same mix, the static-batching baseline)
 * sit beside them in `info`.
 */
import fs from 'node:fs';
import type { CompileOptions } from '../src/main/engine/onnx/compile.js';
import { kvStreams } from '../src/main/engine/onnx/decoder-graph.js';
import { type BenchShape, configJson, ensureCheckpoint, FULL_SHAPE, paramCounts, QUICK_SHAPE } from './checkpoint.js';
import { type Args, Children, type CompileResult, machineInfo, publish, ratio, STUDY_PARTS, type StudyPart } from './harness.js';
import { type Target, target } from './targets.js';
import { lengthMix, type LengthMixSpec } from './study.js';
import { log, randomIds, type Stat } from './util.js';
import type { StudyJob, StudyResult } from './worker.js';

interface StudyPlan {
  mix: LengthMixSpec;
  batches: number[];
  /** Prompt lengths drawn uniformly from this range (a chat template plus a question). */
  promptTokens: [number, number];
  sweep: { prompts: number; headFractions: number[]; gammas: number[]; batch: number };
  contexts: number[];
  /** Contexts for the KV-cache variants (a subset: each is a compile and a long prefill). */
  variantContexts: number[];
  window: number;
  windows: number;
  /** Times each context is measured, in turn with the others. */
  decodeReps: number;
  teacher: { lengths: number[]; reps: number[] };
  packed: { count: number; max: number };
}

const FULL_PLAN: StudyPlan = {
  mix: { count: 64, min: 8, max: 4096, alpha: 1.2, seed: 0 },
  batches: [8, 16],
  promptTokens: [24, 96],
  sweep: { prompts: 16, headFractions: [0.02, 0.05], gammas: [0, 0.5], batch: 16 },
  contexts: [16, 1024, 4096],
  variantContexts: [16, 4096],
  window: 16,
  windows: 2,
  decodeReps: 2,
  teacher: { lengths: [512, 4096], reps: [3, 2] },
  packed: { count: 32, max: 1024 },
};

const QUICK_PLAN: StudyPlan = {
  mix: { count: 16, min: 8, max: 512, alpha: 1.2, seed: 0 },
  batches: [4, 8],
  promptTokens: [24, 96],
  sweep: { prompts: 4, headFractions: [0.05, 0.1], gammas: [0, 0.5], batch: 8 },
  contexts: [16, 512, 2048],
  variantContexts: [16, 2048],
  window: 8,
  windows: 2,
  decodeReps: 2,
  teacher: { lengths: [512, 2048], reps: [2, 2] },
  packed: { count: 16, max: 256 },
};

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function runStudy(args: Args): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  const shape: BenchShape = args.quick ? QUICK_SHAPE : FULL_SHAPE;
  const base = args.quick ? QUICK_PLAN : FULL_PLAN;
  const plan: StudyPlan = { ...base, mix: { ...base.mix, seed: args.seed } };
  const L = shape.layers;
  const probeLayer = Math.round(L * 0.6);
  const machine = machineInfo(args);
  const notes: string[] = [];
  const created: string[] = [];
  fs.mkdirSync(args.cache, { recursive: true });
  const children = new Children();
  log(`study bench (${args.quick ? 'quick' : 'full'}): ${shape.name}, ${args.threads} threads, cache ${args.cache}`);

  const ckpt = ensureCheckpoint(args.cache, shape, args.seed, log);
  if (ckpt.generated) created.push(ckpt.dir);

  // The requests: answer lengths from the mix, prompt lengths uniform in a range, both seeded.
  const lengths = lengthMix(plan.mix);
  const promptLengths = (n: number, seed: number) => randomIds(n, plan.promptTokens[1] - plan.promptTokens[0] + 1, seed).map((x) => x + plan.promptTokens[0]);
  const uniformLength = Math.round(mean(lengths));
  const sweepCount = plan.sweep.prompts * plan.sweep.headFractions.length * plan.sweep.gammas.length;
  const sweepLengths = lengthMix({ ...plan.mix, count: sweepCount, seed: args.seed + 1 });
  const packedLengths = lengthMix({ ...plan.mix, count: plan.packed.count, max: plan.packed.max, seed: args.seed + 2 });
  const headCount = (fraction: number) => Math.max(1, Math.round(fraction * L * shape.heads));

  const common = (compile: CompileOptions) => ({
    checkpointDir: ckpt.dir,
    cacheRoot: args.cache,
    compile,
    threads: args.threads,
    provider: args.provider,
    seed: args.seed,
    probeLayer,
  });
  const nothing = { transcripts: null, sweep: null, decode: null, teacherForcing: null, packed: null };
  type Job = Omit<StudyJob, keyof ReturnType<typeof common>>;
  const allVariants: { name: string; compile: CompileOptions; job: Job }[] = [
    {
      name: 'float32',
      compile: { normPreserve: false },
      job: {
        transcripts: { lengths, uniformLength, promptLengths: promptLengths(lengths.length, args.seed), batches: plan.batches },
        sweep: { lengths: sweepLengths, promptLengths: promptLengths(sweepCount, args.seed + 1), batch: plan.sweep.batch, headCounts: plan.sweep.headFractions.map(headCount), gammas: plan.sweep.gammas },
        decode: { contexts: plan.contexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps },
        teacherForcing: { lengths: plan.teacher.lengths, reps: plan.teacher.reps, patternHeads: [0, shape.heads - 1], patternQueries: 8 },
        packed: { lengths: packedLengths },
      },
    },
    { name: 'int4', compile: { normPreserve: false, weights: 'int4' }, job: { ...nothing, decode: { contexts: plan.contexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps } } },
    { name: 'float32, int8 KV cache', compile: { normPreserve: false, kvCache: 'int8' }, job: { ...nothing, decode: { contexts: plan.variantContexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps } } },
    { name: 'int4, int8 KV cache', compile: { normPreserve: false, weights: 'int4', kvCache: 'int8' }, job: { ...nothing, decode: { contexts: plan.variantContexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps } } },
    { name: 'float32, float16 KV cache', compile: { normPreserve: false, kvCache: 'float16' }, job: { ...nothing, decode: { contexts: plan.variantContexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps } } },
    // int4's default cache is float16 (compile.ts defaultKvCache); this keeps the exact one in view.
    { name: 'int4, float32 KV cache', compile: { normPreserve: false, weights: 'int4', kvCache: 'float32' }, job: { ...nothing, decode: { contexts: plan.variantContexts, window: plan.window, windows: plan.windows, reps: plan.decodeReps } } },
  ];
  // --parts: only these measurements (a variant left with nothing to measure is not compiled or run).
  const partOf: Record<StudyPart, (keyof Job)[]> = { transcripts: ['transcripts'], sweep: ['sweep'], decode: ['decode'], teacher: ['teacherForcing', 'packed'] };
  const kept = new Set(args.parts.flatMap((p) => partOf[p]));
  const variants = allVariants
    .map((v) => ({ ...v, job: Object.fromEntries(Object.entries(v.job).map(([k, value]) => [k, kept.has(k as keyof Job) ? value : null])) as Job }))
    .filter((v) => Object.values(v.job).some((x) => x !== null));
  if (args.parts.length < STUDY_PARTS.length) notes.push(`only these parts were measured (--parts): ${args.parts.join(', ')}`);

  const results: { name: string; options: CompileResult['options'] | null; compileSeconds: number | null; peakRssBytes: number | null; result: StudyResult | null }[] = [];
  for (const v of variants) {
    const compile = await children.run<CompileResult, 'compile'>('compile', { checkpointDir: ckpt.dir, cacheRoot: args.cache, compile: v.compile }, `compile ${v.name}`);
    if (compile.result && !compile.result.cached) created.push(compile.result.dir);
    if (!compile.ok || !compile.result) {
      notes.push(`${v.name}: compile failed: ${compile.error}`);
      results.push({ name: v.name, options: null, compileSeconds: null, peakRssBytes: null, result: null });
      continue;
    }
    const run = await children.run<StudyResult, 'study'>('study', { ...common(v.compile), ...v.job }, `study ${v.name}`);
    if (!run.ok) notes.push(`${v.name}: study failed: ${run.error}`);
    // Compiled models are large (7 GB for float32 on the full shape): delete each when done unless kept.
    if (!args.keep && !compile.result.cached) fs.rmSync(compile.result.dir, { recursive: true, force: true });
    results.push({ name: v.name, options: compile.result.options, compileSeconds: compile.result.seconds, peakRssBytes: run.peakRssBytes, result: run.result });
  }
  machine.providerUsed = results[0]?.result?.provider ?? null;
  machine.providerNotes = results[0]?.result?.providerNotes ?? [];

  // ---- figures and targets
  const main = results[0]?.result ?? null;
  const run = (mix: 'mix' | 'uniform', batch: number, batching: 'continuous' | 'static') =>
    main?.transcripts.find((r) => r.mix === mix && r.batch === batch && r.batching === batching) ?? null;
  const decodeOf = (name: string, context: number) => results.find((r) => r.name === name)?.result?.decode?.find((d) => d.context === context)?.tokensPerSecond ?? null;
  const best = (s: Stat | null) => s?.max ?? null;
  const mid = (s: Stat | null) => s?.median ?? null;
  const rate = (s: Stat | null) => (s ? `best ${s.max.toFixed(2)}, median ${s.median.toFixed(2)} tok/s` : 'n/a');
  const short = plan.contexts[0]!;
  const long = plan.contexts[plan.contexts.length - 1]!;
  const tf = (tokens: number) => main?.teacherForcing?.find((t) => t.tokens === tokens)?.tokensPerSecond ?? null;
  const [tfShort, tfLong] = plan.teacher.lengths as [number, number];

  const targets: Target[] = [
    ...plan.batches.map((batch) => {
      const mix = run('mix', batch, 'continuous');
      const uniform = run('uniform', batch, 'continuous');
      const r = ratio(mix?.usefulTokensPerSecond, uniform?.usefulTokensPerSecond);
      return target(
        `mix-vs-uniform-batch${batch}`,
        `useful tokens/s under the length mix ≥ 0.8 × uniform-length throughput at batch ${batch} (continuous batching, live probe)`,
        '>=',
        0.8,
        r,
        r,
        `mix ${mix?.usefulTokensPerSecond.toFixed(2) ?? 'n/a'} tok/s (occupancy ${mix?.occupancy.toFixed(2) ?? 'n/a'}, the ideal schedule of this mix allows ${mix?.scheduleOccupancy.toFixed(2) ?? 'n/a'}); ` +
          `uniform ${uniform?.usefulTokensPerSecond.toFixed(2) ?? 'n/a'} tok/s`,
      );
    }),
    ...([
      ['float32', 0.8],
      ['int4', 0.7],
    ] as const).map(([name, threshold]) =>
      target(
        `decode-${long}-vs-${short}-${name}`,
        `${name} decode at batch 1 after ${long} tokens ≥ ${threshold} × after ${short}`,
        '>=',
        threshold,
        ratio(best(decodeOf(name, long)), best(decodeOf(name, short))),
        ratio(mid(decodeOf(name, long)), mid(decodeOf(name, short))),
        `after ${long}: ${rate(decodeOf(name, long))}; after ${short}: ${rate(decodeOf(name, short))}`,
      ),
    ),
    target(
      `teacher-forcing-${tfLong}-vs-${tfShort}`,
      `teacher forcing a ${tfLong}-token transcript (512-token chunks, every tap kind) ≥ 0.8 × a ${tfShort}-token one, tokens/s`,
      '>=',
      0.8,
      ratio(best(tf(tfLong)), best(tf(tfShort))),
      ratio(mid(tf(tfLong)), mid(tf(tfShort))),
      `${tfLong}: ${rate(tf(tfLong))}; ${tfShort}: ${rate(tf(tfShort))}`,
    ),
  ];

  const kvBytesPerToken = Object.fromEntries(
    (['float32', 'float16', 'int8'] as const).map((type) => [
      type,
      kvStreams(type).reduce((n, s) => n + L * shape.kvHeads * (s.width === 'head' ? shape.headDim : 1) * (s.type === 'float32' ? 4 : s.type === 'float16' ? 2 : 1), 0),
    ]),
  );
  const info = {
    continuousOverStatic: plan.batches.map((batch) => ({
      batch,
      ratio: ratio(run('mix', batch, 'continuous')?.usefulTokensPerSecond, run('mix', batch, 'static')?.usefulTokensPerSecond),
      continuousOccupancy: run('mix', batch, 'continuous')?.occupancy ?? null,
      staticOccupancy: run('mix', batch, 'static')?.occupancy ?? null,
    })),
    sweepUsefulTokensPerSecond: main?.sweep?.usefulTokensPerSecond ?? null,
    sweepVsUniform: ratio(main?.sweep?.usefulTokensPerSecond, run('uniform', plan.sweep.batch, 'continuous')?.usefulTokensPerSecond),
    packedOverOneByOne: ratio(main?.packed?.packedTokensPerSecond, main?.packed?.oneByOneTokensPerSecond),
    decodeLongVsShort: results.map((r) => ({
      variant: r.name,
      kvCache: r.result?.kvCache ?? null,
      ratio: ratio(best(decodeOf(r.name, long)), best(decodeOf(r.name, short))),
      shortTokensPerSecond: best(decodeOf(r.name, short)),
      longTokensPerSecond: best(decodeOf(r.name, long)),
    })),
    kvBytesPerToken,
  };
  const contended = children.contentionNote(machine.cores);
  if (contended) notes.push(contended);
  if (args.quick) notes.push('quick shape: figures show the bench works, not what the 1.5B shape does');

  const report = {
    bench: 'cliffscope',
    variant: args.quick ? 'study-quick' : 'study',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    machine,
    checkpoint: { shape, config: configJson(shape), seed: args.seed, parameters: paramCounts(shape), dir: ckpt.dir, generated: ckpt.generated },
    plan: { ...plan, probeLayer, lengths, uniformLength, sweepLengths, packedLengths },
    variants: results,
    targets,
    info,
    contention: children.loadLog,
    notes,
    files: { cache: args.cache, kept: args.keep, deleted: args.keep ? [] : created },
  };
  publish(report, { args, provider: machine.providerUsed ?? args.provider, children, created });
}
