/**
 * `npm run bench [-- --quick] [--provider auto|cpu] [--threads N] [--out FILE] [--keep] [--cache DIR] [--seed N]`
 * (`--provider cuda|webgpu` or `--plan gpu` runs the GPU plan instead: gpu.ts)
 *
 * Throughput and memory of the engine on a checkpoint with DeepSeek-R1-Distill-Qwen-1.5B's shape (seeded random
 * BF16 weights generated here, never committed), or a small shape with --quick. Prints one JSON document on stdout
 * (progress goes to stderr) and writes it to bench/results/<timestamp>-<quick|full>-<provider>.json (or --out).
 *
 * Phases, each heavy one in its own child process (worker.ts) so that its peak RSS is its own:
 *   1. generate the sharded BF16 checkpoint (this process; reused from the cache when present)
 *   2. compile to float32 ONNX (child: time and peak RSS of compiling)
 *   3. memory bandwidth with ONNX Runtime's own GEMV and ReduceSum (child)
 *   4. float32 inference: load, prefill 512 tokens ± taps, decode at batch 1 and 8 ± a live probe (child: peak RSS)
 *   5. int4: compile and decode at batch 1, engine defaults and block 128, each with the ceiling of its linear
 *      layers alone (children)
 * then checks each target of the issue and reports pass/fail with the measured ratio.
 *
 * Without --keep, files this run generated (checkpoint, compiled models, bandwidth weights) are deleted at the end;
 * files an earlier --keep run left in the cache are reused and left alone.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPILER_VERSION, type CompileOptions, defaultCacheRoot, type ResolvedCompileOptions } from '../src/main/engine/onnx/compile.js';
import { PROVIDER_CHOICES, type ProviderChoice } from '../src/main/engine/runtime/providers.js';
import type { BandwidthResult } from './bandwidth.js';
import { runClusterBench } from './cluster.js';
import { runGpuBench, wantsGpuPlan } from './gpu.js';
import type { Int4CeilingJob, Int4CeilingResult } from './int4-ceiling.js';
import { type BenchShape, configJson, ensureCheckpoint, FULL_SHAPE, kvBytesPerToken, paramCounts, QUICK_SHAPE } from './checkpoint.js';
import type { DecodeResult, PrefillResult } from './measure.js';
import { gb, log, type MemorySnapshot } from './util.js';
import type { BandwidthJob, CompileJob, InferJob } from './worker.js';
import type { Stat } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------------------------
// Arguments

interface Args {
  quick: boolean;
  provider: ProviderChoice;
  threads: number;
  out: string | null;
  keep: boolean;
  cache: string;
  seed: number;
}

const USAGE = `usage: npm run bench -- [--quick] [--provider auto|cpu|cuda] [--threads N] [--out FILE] [--keep] [--cache DIR] [--seed N]
  --quick      small model shape, finishes in under a minute (CI smoke run)
  --provider   execution provider for the model (default auto); bandwidth is always measured on the CPU
  --threads    ONNX Runtime intra-op threads (default: every CPU, ${os.availableParallelism()} here)
  --out        where to write the JSON (default bench/results/<timestamp>-<quick|full>-<provider>.json)
  --keep       keep the generated checkpoint, compiled models and bandwidth files for the next run
  --cache      folder for generated and compiled files (default ${path.join(defaultCacheRoot(), 'bench')})
  --seed       weight and token seed (default 1)
`;

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    provider: 'auto',
    threads: os.availableParallelism(),
    out: null,
    keep: false,
    cache: path.join(defaultCacheRoot(), 'bench'),
    seed: 1,
  };
  const fail = (msg: string): never => {
    process.stderr.write(`${msg}\n${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? fail(`${a} needs a value`);
    const int = (v: string) => (/^\d+$/.test(v) && Number(v) > 0 ? Number(v) : fail(`${a} must be a positive integer, got ${v}`));
    if (a === '--quick') args.quick = true;
    else if (a === '--keep') args.keep = true;
    else if (a === '--provider') {
      const v = value();
      if (!(PROVIDER_CHOICES as readonly string[]).includes(v)) fail(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
      args.provider = v as ProviderChoice;
    } else if (a === '--threads') args.threads = int(value());
    else if (a === '--out') args.out = path.resolve(value());
    else if (a === '--cache') args.cache = path.resolve(value());
    else if (a === '--seed') args.seed = int(value());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  return args;
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

interface ChildOutcome<T> {
  ok: boolean;
  result: T | null;
  error: string | null;
  peakRssBytes: number | null;
  wallSeconds: number;
}

let jobDir = '';
/** One-minute load average around each child: above the core count, other processes shared the CPUs. */
const loadLog: { phase: string; loadAverageBefore: number; loadAverageAfter: number; wallSeconds: number }[] = [];

async function runChild<T>(
  task: 'compile' | 'infer' | 'bandwidth' | 'int4-ceiling',
  job: CompileJob | InferJob | BandwidthJob | Int4CeilingJob,
): Promise<ChildOutcome<T>> {
  const id = `${task}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const jobFile = path.join(jobDir, `${id}.job.json`);
  const resultFile = path.join(jobDir, `${id}.result.json`);
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const start = performance.now();
  const loadBefore = os.loadavg()[0]!;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'run-ts.js'), path.join(repoRoot, 'bench', 'worker.ts'), task, jobFile, resultFile], {
    cwd: repoRoot,
    // The child's stdout joins our stderr: our stdout carries only the final JSON.
    stdio: ['ignore', 2, 2],
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  const wallSeconds = (performance.now() - start) / 1000;
  const phase = task === 'bandwidth' || task === 'int4-ceiling' ? task : `${task} ${(job as CompileJob).compile.weights ?? 'float32'}`;
  loadLog.push({ phase, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg()[0]!, wallSeconds });
  if (!fs.existsSync(resultFile)) {
    const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with code ${code}`;
    log(`${task} child ${why} without a result`);
    return { ok: false, result: null, error: `child ${why}`, peakRssBytes: null, wallSeconds };
  }
  const r = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { ok: boolean; result?: T; error?: string; peakRssBytes: number };
  return { ok: r.ok, result: r.result ?? null, error: r.error ?? null, peakRssBytes: r.peakRssBytes, wallSeconds };
}

interface CompileResult {
  seconds: number;
  cached: boolean;
  dir: string;
  key: string;
  options: ResolvedCompileOptions;
  compilerVersion: string | null;
  weightsFileBytes: number;
  tensorBytes: number | null;
}

interface InferResult {
  provider: string;
  providerNotes: string[];
  compiledDir: string;
  loadSeconds: number;
  memory: { baseline: MemorySnapshot; afterLoad: MemorySnapshot; afterPrefill: MemorySnapshot; end: MemorySnapshot };
  prefill: PrefillResult | null;
  decode: DecodeResult | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

interface Target {
  name: string;
  description: string;
  /** measured <= threshold, or measured >= threshold. */
  comparison: '<=' | '>=';
  threshold: number;
  /** From the best repetition of each side. */
  measured: number | null;
  pass: boolean | null;
  /** The same from the medians of the repetitions. */
  measuredOnMedians: number | null;
  passOnMedians: boolean | null;
  detail: string;
}

function target(
  name: string,
  description: string,
  comparison: '<=' | '>=',
  threshold: number,
  measured: number | null,
  measuredOnMedians: number | null,
  detail: string,
): Target {
  const valid = measured !== null && Number.isFinite(measured);
  const ok = (x: number) => (comparison === '<=' ? x <= threshold : x >= threshold);
  const medianValid = measuredOnMedians !== null && Number.isFinite(measuredOnMedians);
  return {
    name,
    description,
    comparison,
    threshold,
    measured: valid ? measured : null,
    pass: valid ? ok(measured) : null,
    measuredOnMedians: medianValid ? measuredOnMedians : null,
    passOnMedians: medianValid ? ok(measuredOnMedians) : null,
    detail,
  };
}

// ---------------------------------------------------------------------------------------------------------------

function machineInfo(args: Args) {
  const require = createRequire(import.meta.url);
  const ortPackage = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'package.json');
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    compilerVersion: COMPILER_VERSION,
    onnxruntime: (JSON.parse(fs.readFileSync(ortPackage, 'utf8')) as { version: string }).version,
    threads: args.threads,
    loadAverageAtStart: os.loadavg(),
    providerRequested: args.provider,
    providerUsed: null as string | null,
    providerNotes: [] as string[],
  };
}

async function main(): Promise<void> {
  // GPU providers (or --plan gpu) get the GPU plan: float16, decode at batch 1/8/32, prefill 512/4,096 (gpu.ts).
  if (wantsGpuPlan(process.argv.slice(2))) return runGpuBench(process.argv.slice(2));
  // --cluster: merging shards and a sharded sweep (cluster.ts).
  if (process.argv.includes('--cluster')) return runClusterBench(process.argv.slice(2));
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = performance.now();
  const shape: BenchShape = args.quick ? QUICK_SHAPE : FULL_SHAPE;
  const plan = args.quick
    ? { prefillTokens: 512, prefillReps: 3, promptTokens: 16, newTokens: 16, decodeReps: 2, bandwidthBytes: 256 << 20, bandwidthRuns: 5, bandwidthTwice: false }
    : { prefillTokens: 512, prefillReps: 3, promptTokens: 16, newTokens: 32, decodeReps: 4, bandwidthBytes: 1 << 30, bandwidthRuns: 15, bandwidthTwice: true };
  const L = shape.layers;
  const tapLayer = Math.round(L * 0.6); // a mid-late layer, where refusal probes usually read
  const params = paramCounts(shape);
  const machine = machineInfo(args);
  const notes: string[] = [];
  const created: string[] = [];
  fs.mkdirSync(args.cache, { recursive: true });
  jobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-bench-'));

  log(`${args.quick ? 'quick' : 'full'} bench: ${shape.name}, ${(params.total / 1e9).toFixed(3)} B parameters, ${args.threads} threads, cache ${args.cache}`);

  // 1. Checkpoint
  const ckpt = ensureCheckpoint(args.cache, shape, args.seed, log);
  if (ckpt.generated) created.push(ckpt.dir);
  log(`checkpoint ${ckpt.generated ? `generated in ${ckpt.seconds.toFixed(1)} s` : 'reused'}: ${ckpt.dir}`);

  // 2. float32 compile
  const floatOptions: CompileOptions = { normPreserve: false };
  const compileF32 = await runChild<CompileResult>('compile', { checkpointDir: ckpt.dir, cacheRoot: args.cache, compile: floatOptions });
  if (compileF32.result && !compileF32.result.cached) created.push(compileF32.result.dir);
  if (!compileF32.ok || !compileF32.result) throw new Error(`float32 compile failed: ${compileF32.error}`);
  log(`float32 compile: ${compileF32.result.seconds.toFixed(1)} s (${compileF32.result.cached ? 'cached' : 'fresh'}), peak RSS ${gb(compileF32.peakRssBytes ?? 0)}`);

  // 3. Bandwidth, measured now and (full run) again after the float32 inference; the best counts (see bandwidth.ts).
  const bandwidthDir = path.join(args.cache, 'bandwidth');
  if (!fs.existsSync(bandwidthDir)) created.push(bandwidthDir);
  const bandwidthJob: BandwidthJob = { dir: bandwidthDir, bytes: plan.bandwidthBytes, K: shape.hidden, threads: args.threads, runs: plan.bandwidthRuns };
  const bandwidthRuns = [await runChild<BandwidthResult>('bandwidth', bandwidthJob)];

  // 4. float32 inference
  const inferF32 = await runChild<InferResult>('infer', {
    checkpointDir: ckpt.dir,
    cacheRoot: args.cache,
    compile: floatOptions,
    threads: args.threads,
    provider: args.provider,
    seed: args.seed,
    prefill: { tokens: plan.prefillTokens, reps: plan.prefillReps, taps: { residLayers: [tapLayer], zLayers: [tapLayer - 1] } },
    decode: { promptTokens: plan.promptTokens, newTokens: plan.newTokens, batches: [1, 8], withProbe: true, probeLayer: tapLayer, reps: plan.decodeReps },
  });
  if (!inferF32.ok) notes.push(`float32 inference failed: ${inferF32.error}`);
  if (plan.bandwidthTwice) bandwidthRuns.push(await runChild<BandwidthResult>('bandwidth', bandwidthJob));
  for (const b of bandwidthRuns) if (!b.ok) notes.push(`bandwidth measurement failed: ${b.error}`);
  machine.providerUsed = inferF32.result?.provider ?? null;
  machine.providerNotes = inferF32.result?.providerNotes ?? [];

  // 5. int4: the engine's defaults (block 32), then block 128 (the GPTQ / AWQ group size), which CPU kernels run
  // faster for a little more error. Each with its kernel ceiling: the same linear layers alone (int4-ceiling.ts).
  const int4Variants: { name: string; options: CompileOptions }[] = [
    { name: 'default', options: { normPreserve: false, weights: 'int4' } },
    { name: 'block-128', options: { normPreserve: false, weights: 'int4', int4BlockSize: 128 } },
  ];
  const int4Results = [];
  let int4Available = true;
  for (const variant of int4Variants) {
    if (!int4Available) break;
    const compile = await runChild<CompileResult>('compile', { checkpointDir: ckpt.dir, cacheRoot: args.cache, compile: variant.options });
    if (compile.result && !compile.result.cached) created.push(compile.result.dir);
    if (!compile.ok || !compile.result || compile.result.options.weights !== 'int4') {
      int4Available = false;
      notes.push(`int4 unavailable: ${compile.error ?? 'the compiler ignored weights: int4'}`);
      break;
    }
    const infer = await runChild<InferResult>('infer', {
      checkpointDir: ckpt.dir,
      cacheRoot: args.cache,
      compile: variant.options,
      threads: args.threads,
      provider: args.provider,
      seed: args.seed,
      prefill: null,
      decode: { promptTokens: plan.promptTokens, newTokens: plan.newTokens, batches: [1], withProbe: false, probeLayer: tapLayer, reps: plan.decodeReps },
    });
    if (!infer.ok) notes.push(`int4 ${variant.name} inference failed: ${infer.error}`);
    const o = compile.result.options;
    const ceiling = await runChild<Int4CeilingResult>('int4-ceiling', {
      shape,
      blockSize: o.int4BlockSize,
      scheme: o.int4Scheme,
      accuracyLevel: o.int4AccuracyLevel,
      quantizeLmHead: o.quantizeLmHead,
      threads: args.threads,
      runs: plan.decodeReps * 2,
    });
    if (!ceiling.ok) notes.push(`int4 ${variant.name} kernel ceiling failed: ${ceiling.error}`);
    int4Results.push({
      name: variant.name,
      options: compile.result.options,
      compile: {
        seconds: compile.result.seconds,
        cached: compile.result.cached,
        compilerVersion: compile.result.compilerVersion,
        peakRssBytes: compile.peakRssBytes,
        weightsFileBytes: compile.result.weightsFileBytes,
      },
      loadSeconds: infer.result?.loadSeconds ?? null,
      peakRssBytes: infer.peakRssBytes,
      decodeBatch1TokensPerSecond: infer.result?.decode?.batches[0]?.plain.tokensPerSecond ?? null,
      jsFraction: infer.result?.decode?.batches[0]?.plain.jsFraction ?? null,
      linearLayersOnly: ceiling.result ? { ...ceiling.result, peakRssBytes: ceiling.peakRssBytes } : null,
    });
  }

  // ---- figures and targets
  // Each target is judged on the best repetition of each side (other processes only ever slow a run down, so the
  // best is the closest to what this machine and engine can do) and also reported on the medians.
  const bytesPerToken = params.readPerToken * 4;
  const bwResults = bandwidthRuns.flatMap((b) => (b.result ? [b.result] : []));
  const bw = bwResults.length ? bwResults.reduce((a, b) => (b.bytesPerSecond > a.bytesPerSecond ? b : a)) : null;
  const bandwidthBytesPerSecond = bw?.bytesPerSecond ?? null;
  const gemvBytesPerSecond = bwResults.length ? Math.max(...bwResults.map((b) => b.gemv.bytesPerSecond)) : null;
  const boundTokensPerSecond = bandwidthBytesPerSecond !== null ? bandwidthBytesPerSecond / bytesPerToken : null;
  const prefill = inferF32.result?.prefill ?? null;
  const decode = inferF32.result?.decode ?? null;
  const b1 = decode?.batches.find((b) => b.batch === 1) ?? null;
  const b8 = decode?.batches.find((b) => b.batch === 8) ?? null;
  const int4DefaultResult = int4Results.find((r) => r.name === 'default');
  const int4Default = int4DefaultResult?.decodeBatch1TokensPerSecond ?? null;
  const int4Ceiling = int4DefaultResult?.linearLayersOnly?.tokensPerSecond ?? null;
  const float32WeightBytes = compileF32.result.tensorBytes ?? params.total * 4;
  const kvTokens = Math.max(plan.prefillTokens, 8 * (plan.promptTokens + plan.newTokens));
  const kvCacheBytes = kvTokens * kvBytesPerToken(shape);
  const peakRss = inferF32.peakRssBytes;
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? a / b : null);
  const overhead = (tapped: number | undefined, plain: number | undefined) => (tapped != null && plain ? 1 - tapped / plain : null);
  const best = (s: Stat | null | undefined) => s?.max;
  const mid = (s: Stat | null | undefined) => s?.median;
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  const rate = (s: Stat | null | undefined) => (s ? `best ${s.max.toFixed(3)}, median ${s.median.toFixed(3)} tok/s` : 'n/a');

  const targets: Target[] = [
    target('decode-probe-overhead-batch1', 'live probe tap costs ≤ 5% of float32 decode throughput at batch 1', '<=', 0.05,
      overhead(best(b1?.probe?.tokensPerSecond), best(b1?.plain.tokensPerSecond)),
      overhead(mid(b1?.probe?.tokensPerSecond), mid(b1?.plain.tokensPerSecond)),
      `probe ${rate(b1?.probe?.tokensPerSecond)}; plain ${rate(b1?.plain.tokensPerSecond)}`),
    target('decode-probe-overhead-batch8', 'live probe tap costs ≤ 5% of float32 decode throughput at batch 8', '<=', 0.05,
      overhead(best(b8?.probe?.tokensPerSecond), best(b8?.plain.tokensPerSecond)),
      overhead(mid(b8?.probe?.tokensPerSecond), mid(b8?.plain.tokensPerSecond)),
      `probe ${rate(b8?.probe?.tokensPerSecond)}; plain ${rate(b8?.plain.tokensPerSecond)}`),
    target('prefill-tap-overhead', `residual + hook_z taps at all ${plan.prefillTokens} positions cost ≤ 15% of prefill throughput`, '<=', 0.15,
      overhead(best(prefill?.tapped.tokensPerSecond), best(prefill?.plain.tokensPerSecond)),
      overhead(mid(prefill?.tapped.tokensPerSecond), mid(prefill?.plain.tokensPerSecond)),
      `tapped ${rate(prefill?.tapped.tokensPerSecond)}; plain ${rate(prefill?.plain.tokensPerSecond)}`),
    target('decode-batch1-vs-bandwidth-bound', 'float32 decode at batch 1 reaches ≥ 75% of bandwidth ÷ weight bytes per token', '>=', 0.75,
      ratio(best(b1?.plain.tokensPerSecond), boundTokensPerSecond), ratio(mid(b1?.plain.tokensPerSecond), boundTokensPerSecond),
      `${rate(b1?.plain.tokensPerSecond)} vs bound ${boundTokensPerSecond?.toFixed(3)} tok/s = ` +
        `${((bandwidthBytesPerSecond ?? NaN) / 1e9).toFixed(2)} GB/s ÷ ${gb(bytesPerToken)} per token`),
    target('decode-batch8-vs-batch1', 'float32 decode at batch 8 ≥ 4× batch-1 tokens/s', '>=', 4,
      ratio(best(b8?.plain.tokensPerSecond), best(b1?.plain.tokensPerSecond)), ratio(mid(b8?.plain.tokensPerSecond), mid(b1?.plain.tokensPerSecond)),
      `batch 8 ${rate(b8?.plain.tokensPerSecond)}; batch 1 ${rate(b1?.plain.tokensPerSecond)}`),
    target('int4-vs-float32-batch1', 'int4 decode at batch 1 (engine defaults) ≥ 5× float32', '>=', 5,
      ratio(best(int4Default), best(b1?.plain.tokensPerSecond)), ratio(mid(int4Default), mid(b1?.plain.tokensPerSecond)),
      int4Available
        ? `int4 ${rate(int4Default)}; float32 ${rate(b1?.plain.tokensPerSecond)}; ` +
            `the int4 linear layers alone run at ${int4Ceiling?.toFixed(2) ?? 'n/a'} steps/s = ` +
            `${ratio(int4Ceiling, best(b1?.plain.tokensPerSecond))?.toFixed(2) ?? 'n/a'}× float32 (this kernel's ceiling here)`
        : 'int4 unavailable'),
    target('peak-rss', 'peak RSS of inference ≤ 1.3 × (float32 weight bytes + KV cache)', '<=', 1.3,
      ratio(peakRss, float32WeightBytes + kvCacheBytes), ratio(peakRss, float32WeightBytes + kvCacheBytes),
      `${gb(peakRss ?? NaN)} vs ${gb(float32WeightBytes)} weights + ${gb(kvCacheBytes)} KV cache`),
  ];
  const info = {
    ortGemvFractionOfBandwidth: ratio(gemvBytesPerSecond, bandwidthBytesPerSecond),
    int4Variants: int4Results.map((r) => ({
      name: r.name,
      vsFloat32Batch1: ratio(best(r.decodeBatch1TokensPerSecond), best(b1?.plain.tokensPerSecond)),
      // How far the kernel alone could go, and how much of that the whole step keeps.
      linearLayersOnlyVsFloat32Batch1: ratio(r.linearLayersOnly?.tokensPerSecond, best(b1?.plain.tokensPerSecond)),
      fractionOfLinearCeiling: ratio(best(r.decodeBatch1TokensPerSecond), r.linearLayersOnly?.tokensPerSecond),
    })),
  };
  const busiest = Math.max(...loadLog.map((l) => Math.max(l.loadAverageBefore, l.loadAverageAfter)));
  if (busiest > machine.cores) {
    notes.push(
      `other processes competed for the CPUs (1-minute load average up to ${busiest.toFixed(1)} on ${machine.cores} cores): ` +
        'throughputs and overhead ratios are noisy; see contention and each cpuUtilisation',
    );
  }
  if (args.quick) notes.push('quick shape: its weights fit in this CPU\'s last-level cache, so bandwidth-bound figures are not meaningful');
  if (machine.providerUsed && machine.providerUsed !== 'cpu') notes.push('the bandwidth bound is host-memory bandwidth; on a GPU provider it does not bound decoding');

  const finishedAt = new Date();
  const report = {
    bench: 'cliffscope',
    variant: args.quick ? 'quick' : 'full',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    machine,
    checkpoint: {
      shape,
      config: configJson(shape),
      seed: args.seed,
      parameters: params,
      bf16Bytes: ckpt.bytes,
      shards: ckpt.shards,
      float32WeightBytes,
      dir: ckpt.dir,
      generated: ckpt.generated,
      generationSeconds: ckpt.seconds,
    },
    compile: {
      float32: { ...compileF32.result, peakRssBytes: compileF32.peakRssBytes, peakRssOverWeights: ratio(compileF32.peakRssBytes, float32WeightBytes) },
    },
    load: {
      seconds: inferF32.result?.loadSeconds ?? null,
      compileSeconds: compileF32.result.seconds,
      compileCached: compileF32.result.cached,
      memoryAfterLoad: inferF32.result?.memory.afterLoad ?? null,
    },
    bandwidth: { bytesPerSecond: bandwidthBytesPerSecond, gemvBytesPerSecond, best: bw, runs: bwResults },
    bytesPerToken,
    boundTokensPerSecond,
    prefill,
    decode,
    int4: { available: int4Available, variants: int4Results },
    memory: {
      inferencePeakRssBytes: peakRss,
      inferenceBaselineRssBytes: inferF32.result?.memory.baseline.peakRssBytes ?? null,
      snapshots: inferF32.result?.memory ?? null,
      float32WeightBytes,
      kvCacheBytes,
      kvCacheTokens: kvTokens,
      limitBytes: 1.3 * (float32WeightBytes + kvCacheBytes),
      compilePeakRssBytes: compileF32.peakRssBytes,
      bandwidthChildPeakRssBytes: Math.max(...bandwidthRuns.map((b) => b.peakRssBytes ?? 0)),
    },
    targets,
    info,
    contention: loadLog,
    notes,
    files: { cache: args.cache, kept: args.keep, deleted: args.keep ? [] : created },
  };

  // ---- output
  const json = JSON.stringify(report, null, 2);
  const outFile =
    args.out ??
    path.join(repoRoot, 'bench', 'results', `${startedAt.toISOString().replace(/[:.]/g, '-')}-${report.variant}-${machine.providerUsed ?? args.provider}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, json + '\n');
  process.stdout.write(json + '\n');

  log('targets:');
  for (const t of targets) {
    const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL';
    const show = (x: number | null) => (x === null ? 'n/a' : t.name.includes('overhead') ? pct(x) : `${x.toFixed(2)}×`);
    log(`  ${verdict} ${t.name}: ${show(t.measured)} (medians ${show(t.measuredOnMedians)}; ${t.comparison} ${show(t.threshold)}) — ${t.detail}`);
  }
  log(`ONNX Runtime GEMV reaches ${pct(info.ortGemvFractionOfBandwidth)} of the measured bandwidth`);
  log(`wrote ${outFile}`);

  if (!args.keep) {
    for (const p of created) fs.rmSync(p, { recursive: true, force: true });
    if (created.length) log(`deleted ${created.length} generated folder(s); pass --keep to reuse them next time`);
  }
  fs.rmSync(jobDir, { recursive: true, force: true });
}

await main();
