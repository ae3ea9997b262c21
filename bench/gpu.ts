/**
 * The GPU bench plan: `npm run bench -- --provider cuda|webgpu [--shape 1.5b|7b] [--quick] [--out FILE] [--keep]
 * [--cache DIR] [--seed N]` (or `--plan gpu` with any provider, e.g. `--provider cpu --quick` to run these code paths
 * without a GPU).
 *
 * On the provider, in float16 (the graph GPU providers are given by default):
 *   1. the device's memory bandwidth, measured through ONNX Runtime on that provider (device-bandwidth.ts);
 *   2. prefill at 512 and 4,096 tokens, without and with residual + hook_z taps at every position;
 *   3. decode at batch 1, 8 and 32, without and with a live probe tap;
 * each throughput also as a fraction of its HBM bandwidth bound: bytes one step reads (float16 weights + the KV
 * cache) ÷ measured bandwidth. Targets: batch-1 decode ≥ 50 % of its bound, batch 32 ≥ 15× batch 1, taps ≤ 5 %.
 * The 1.5B shape (DeepSeek-R1-Distill-Qwen-1.5B) by default; `--shape 7b` is Qwen2-7B's.
 *
 * Everything runs in this one process: nothing here measures host memory peaks, and one session at a time holds the
 * device's memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCliffscopeError } from '../src/main/engine/errors.js';
import { COMPILER_VERSION, defaultCacheRoot } from '../src/main/engine/onnx/compile.js';
import { nvidiaGpu, onnxruntimeNodeVersion } from '../src/main/engine/runtime/cuda-provider.js';
import { loadModel } from '../src/main/engine/runtime/model.js';
import { planProviders, PROVIDER_CHOICES, type ProviderChoice } from '../src/main/engine/runtime/providers.js';
import { type BenchShape, ensureCheckpoint, FULL_SHAPE, kvBytesPerToken, paramCounts, QUICK_SHAPE } from './checkpoint.js';
import { measureDeviceBandwidth } from './device-bandwidth.js';
import { type DecodeResult, measureDecode, measurePrefill, type PrefillResult, RunClock } from './measure.js';
import { type Target, target } from './targets.js';
import { gb, log, type Stat } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Qwen2-7B's shape (DeepSeek-R1-Distill-Qwen-7B has the same). */
export const QWEN2_7B_SHAPE: BenchShape = {
  name: 'qwen2-7b-shape',
  hidden: 3584,
  layers: 28,
  heads: 28,
  kvHeads: 4,
  headDim: 128,
  intermediate: 18944,
  vocab: 152064,
  maxPositions: 131072,
  shardBytes: 1 << 30,
};

export type GpuShapeName = 'quick' | '1.5b' | '7b';

export interface GpuPlan {
  shape: BenchShape;
  prefillTokens: number[];
  prefillReps: number;
  promptTokens: number;
  newTokens: number;
  decodeBatches: number[];
  decodeReps: number;
  bandwidthBytes: number;
  bandwidthRuns: number;
}

export function gpuPlan(name: GpuShapeName): GpuPlan {
  const lengths = { decodeBatches: [1, 8, 32], promptTokens: 32, newTokens: 64 };
  if (name === 'quick') {
    return { ...lengths, shape: QUICK_SHAPE, prefillTokens: [64, 256], prefillReps: 2, newTokens: 8, promptTokens: 16, decodeReps: 2, bandwidthBytes: 64 << 20, bandwidthRuns: 5 };
  }
  const shape = name === '7b' ? QWEN2_7B_SHAPE : FULL_SHAPE;
  return { ...lengths, shape, prefillTokens: [512, 4096], prefillReps: 3, decodeReps: name === '7b' ? 2 : 3, bandwidthBytes: 2 << 30, bandwidthRuns: 20 };
}

// ---------------------------------------------------------------------------------------------------------------
// Bounds

/** float16 weights one step reads in full: every linear layer and the LM head (embedding rows are negligible). */
export function float16WeightBytes(shape: BenchShape): number {
  return paramCounts(shape).readPerToken * 2;
}

/**
 * Tokens/s a decode step at `batch` rows could reach if it only had to read its bytes once at `bandwidth`: the
 * weights once per step, the KV cache of every row (float32 at the graph's interface) at `context` tokens.
 */
export function decodeBound(shape: BenchShape, bandwidth: number, batch: number, context: number): number {
  return (batch * bandwidth) / (float16WeightBytes(shape) + batch * context * kvBytesPerToken(shape));
}

/** Tokens/s of a `tokens`-long prefill bounded the same way: one read of the weights, the KV cache written and read. */
export function prefillBound(shape: BenchShape, bandwidth: number, tokens: number): number {
  return (tokens * bandwidth) / (float16WeightBytes(shape) + 2 * tokens * kvBytesPerToken(shape));
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? a / b : null);
const overhead = (tapped: number | null | undefined, plain: number | null | undefined) => (tapped != null && plain ? 1 - tapped / plain : null);
const rate = (s: Stat | null | undefined) => (s ? `best ${s.max.toFixed(1)}, median ${s.median.toFixed(1)} tok/s` : 'n/a');

export function gpuTargets(plan: GpuPlan, bandwidth: number | null, prefill: PrefillResult[], decode: DecodeResult | null): Target[] {
  const batch = (b: number) => decode?.batches.find((x) => x.batch === b) ?? null;
  const b1 = batch(1);
  const b32 = batch(32);
  const context = plan.promptTokens + plan.newTokens / 2;
  const bound1 = bandwidth !== null ? decodeBound(plan.shape, bandwidth, 1, context) : null;
  const targets = [
    target('gpu-decode-batch1-vs-bound', 'float16 decode at batch 1 reaches ≥ 50% of its HBM bandwidth bound', '>=', 0.5,
      ratio(b1?.plain.tokensPerSecond.max, bound1), ratio(b1?.plain.tokensPerSecond.median, bound1),
      `${rate(b1?.plain.tokensPerSecond)} vs bound ${bound1?.toFixed(1) ?? 'n/a'} tok/s = ${bandwidth !== null ? (bandwidth / 1e9).toFixed(0) : 'n/a'} GB/s ÷ ` +
        `${gb(float16WeightBytes(plan.shape) + context * kvBytesPerToken(plan.shape))} per step`),
    target('gpu-decode-batch32-vs-batch1', 'float16 decode at batch 32 ≥ 15× batch-1 tokens/s', '>=', 15,
      ratio(b32?.plain.tokensPerSecond.max, b1?.plain.tokensPerSecond.max), ratio(b32?.plain.tokensPerSecond.median, b1?.plain.tokensPerSecond.median),
      `batch 32 ${rate(b32?.plain.tokensPerSecond)}; batch 1 ${rate(b1?.plain.tokensPerSecond)}`),
  ];
  for (const b of plan.decodeBatches) {
    const r = batch(b);
    targets.push(target(`gpu-probe-overhead-batch${b}`, `live probe tap costs ≤ 5% of float16 decode throughput at batch ${b}`, '<=', 0.05,
      overhead(r?.probe?.tokensPerSecond.max, r?.plain.tokensPerSecond.max), overhead(r?.probe?.tokensPerSecond.median, r?.plain.tokensPerSecond.median),
      `probe ${rate(r?.probe?.tokensPerSecond)}; plain ${rate(r?.plain.tokensPerSecond)}`));
  }
  for (const p of prefill) {
    targets.push(target(`gpu-prefill-tap-overhead-${p.tokens}`, `residual + hook_z taps at all ${p.tokens} positions cost ≤ 5% of float16 prefill throughput`, '<=', 0.05,
      overhead(p.tapped.tokensPerSecond.max, p.plain.tokensPerSecond.max), overhead(p.tapped.tokensPerSecond.median, p.plain.tokensPerSecond.median),
      `tapped ${rate(p.tapped.tokensPerSecond)}; plain ${rate(p.plain.tokensPerSecond)}`));
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments

export interface GpuBenchArgs {
  provider: ProviderChoice;
  shape: GpuShapeName;
  out: string | null;
  keep: boolean;
  cache: string;
  seed: number;
}

const GPU_PROVIDERS: readonly string[] = ['cuda', 'webgpu', 'dml', 'coreml'];

/** The GPU plan runs for `--plan gpu`, or for a GPU provider unless `--plan cpu` says otherwise. */
export function wantsGpuPlan(argv: readonly string[]): boolean {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const plan = value('--plan');
  if (plan !== undefined) return plan === 'gpu';
  return GPU_PROVIDERS.includes(value('--provider') ?? '');
}

export const GPU_USAGE = `usage: npm run bench -- --provider cuda|webgpu [--shape 1.5b|7b] [--quick] [--out FILE] [--keep] [--cache DIR] [--seed N]
       npm run bench -- --plan gpu --provider cpu --quick      (the GPU plan's code paths on the CPU)
  --shape      1.5b (default: DeepSeek-R1-Distill-Qwen-1.5B's shape) or 7b (Qwen2-7B's)
  --quick      a small shape and short lengths: a smoke run
  --out        where to write the JSON (default bench/results/<timestamp>-gpu-<shape>-<provider>.json)
  --keep       keep the generated checkpoint, compiled model and bandwidth files for the next run
  --cache      folder for generated and compiled files (default ${path.join(defaultCacheRoot(), 'bench')})
  --seed       weight and token seed (default 1)
`;

export function parseGpuArgs(argv: readonly string[]): GpuBenchArgs {
  const args: GpuBenchArgs = { provider: 'auto', shape: '1.5b', out: null, keep: false, cache: path.join(defaultCacheRoot(), 'bench'), seed: 1 };
  let quick = false;
  const fail = (msg: string): never => {
    throw new Error(`${msg}\n${GPU_USAGE}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? fail(`${a} needs a value`);
    if (a === '--plan') value();
    else if (a === '--quick') quick = true;
    else if (a === '--keep') args.keep = true;
    else if (a === '--provider') {
      const v = value();
      if (!(PROVIDER_CHOICES as readonly string[]).includes(v)) fail(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
      args.provider = v as ProviderChoice;
    } else if (a === '--shape') {
      const v = value();
      if (v !== '1.5b' && v !== '7b') fail('--shape must be 1.5b or 7b');
      args.shape = v as GpuShapeName;
    } else if (a === '--out') args.out = path.resolve(value());
    else if (a === '--cache') args.cache = path.resolve(value());
    else if (a === '--seed') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) <= 0) fail(`--seed must be a positive integer, got ${v}`);
      args.seed = Number(v);
    } else fail(`unknown argument ${a}`);
  }
  if (quick) args.shape = 'quick';
  return args;
}

// ---------------------------------------------------------------------------------------------------------------

export async function runGpuBench(argv: readonly string[]): Promise<void> {
  let args: GpuBenchArgs;
  try {
    args = parseGpuArgs(argv);
    planProviders(args.provider); // an explicit provider that cannot run here fails now, naming why
  } catch (e) {
    process.stderr.write(isCliffscopeError(e) ? `error: ${e.describe()}\n` : (e as Error).message);
    process.exitCode = 2;
    return;
  }
  try {
    await gpuBench(args);
  } catch (e) {
    if (!isCliffscopeError(e)) throw e;
    process.stderr.write(`error: ${e.describe()}\n`);
    process.exitCode = 2;
  }
}

async function gpuBench(args: GpuBenchArgs): Promise<void> {
  const plan = gpuPlan(args.shape);
  const shape = plan.shape;
  const startedAt = new Date();
  const t0 = performance.now();
  const created: string[] = [];
  const notes: string[] = [];
  try {
    fs.mkdirSync(args.cache, { recursive: true });
    const params = paramCounts(shape);
    log(`gpu bench: ${shape.name}, ${(params.total / 1e9).toFixed(3)} B parameters, provider ${args.provider}, float16`);

    // 1. The device's bandwidth, first: it also opens the provider, so one that cannot run stops the bench before the
    // checkpoint is generated.
    const bandwidthDir = path.join(args.cache, 'device-bandwidth');
    if (!fs.existsSync(bandwidthDir)) created.push(bandwidthDir);
    const bandwidth = await measureDeviceBandwidth({ dir: bandwidthDir, bytes: plan.bandwidthBytes, K: shape.hidden, provider: args.provider, runs: plan.bandwidthRuns, log });

    // 2. Checkpoint (seeded, generated here: never carried to a device machine).
    const ckpt = ensureCheckpoint(args.cache, shape, args.seed, log);
    if (ckpt.generated) created.push(ckpt.dir);

    // 3. The model, float16, on the provider: an explicit provider that cannot run stops the bench here.
    const tl = performance.now();
    const model = await loadModel(ckpt.dir, { provider: args.provider, precision: { activations: 'float16' }, cacheRoot: args.cache });
    const loadSeconds = (performance.now() - tl) / 1000;
    if (!model.compiled.cached) created.push(model.compiled.dir);
    const session = model.session;
    log(`loaded in ${loadSeconds.toFixed(1)} s on ${session.provider} (${model.compiled.options.activations})`);
    const clock = new RunClock(session);
    const tapLayer = Math.round(shape.layers * 0.6);
    const threads = os.availableParallelism();
    const prefill: PrefillResult[] = [];
    let decode: DecodeResult | null = null;
    try {
      for (const tokens of plan.prefillTokens) {
        if (tokens > shape.maxPositions) {
          notes.push(`prefill ${tokens} skipped: the shape's context is ${shape.maxPositions}`);
          continue;
        }
        prefill.push(await measurePrefill(session, clock, { tokens, reps: plan.prefillReps, taps: { residLayers: [tapLayer], zLayers: [tapLayer - 1] }, seed: args.seed, threads }));
      }
      decode = await measureDecode(session, clock, {
        promptTokens: plan.promptTokens,
        newTokens: plan.newTokens,
        batches: plan.decodeBatches,
        withProbe: true,
        probeLayer: tapLayer,
        reps: plan.decodeReps,
        seed: args.seed,
        threads,
      });
    } finally {
      await session.release();
    }

    const bw = bandwidth.bytesPerSecond;
    const context = plan.promptTokens + plan.newTokens / 2;
    const fractions = {
      decode: (decode?.batches ?? []).map((b) => {
        const bound = decodeBound(shape, bw, b.batch, context);
        return { batch: b.batch, boundTokensPerSecond: bound, fraction: b.plain.tokensPerSecond.max / bound, probeFraction: b.probe ? b.probe.tokensPerSecond.max / bound : null };
      }),
      prefill: prefill.map((p) => {
        const bound = prefillBound(shape, bw, p.tokens);
        return { tokens: p.tokens, boundTokensPerSecond: bound, fraction: p.plain.tokensPerSecond.max / bound, tappedFraction: p.tapped.tokensPerSecond.max / bound };
      }),
    };
    const targets = gpuTargets(plan, bw, prefill, decode);
    if (session.provider === 'cpu') notes.push('ran on the CPU: the bound is host-memory bandwidth and the targets are the GPU’s, so they say little here');
    notes.push(
      'prefill is compute-bound on a GPU: its fraction of the bandwidth bound is expected to be small; ' +
        'the KV cache crosses between host and device every step (the runtime feeds it from host memory), which the bound does not count',
    );

    const report = {
      bench: 'cliffscope',
      variant: `gpu-${args.shape}`,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallSeconds: (performance.now() - t0) / 1000,
      machine: {
        gpu: nvidiaGpu(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        onnxruntime: onnxruntimeNodeVersion(),
        compilerVersion: COMPILER_VERSION,
        providerRequested: args.provider,
        providerUsed: session.provider,
        providerNotes: session.providerNotes,
      },
      checkpoint: { shape, seed: args.seed, parameters: params, float16WeightBytesPerStep: float16WeightBytes(shape), kvBytesPerToken: kvBytesPerToken(shape), dir: ckpt.dir, generated: ckpt.generated },
      compile: { options: model.compiled.options, cached: model.compiled.cached, dir: model.compiled.dir },
      load: { seconds: loadSeconds },
      bandwidth,
      prefill,
      decode,
      fractionsOfBound: fractions,
      targets,
      notes,
      files: { cache: args.cache, kept: args.keep, deleted: args.keep ? [] : created },
    };
    const json = JSON.stringify(report, null, 2);
    const outFile = args.out ?? path.join(repoRoot, 'bench', 'results', `${startedAt.toISOString().replace(/[:.]/g, '-')}-gpu-${args.shape}-${session.provider}.json`);
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${json}\n`);
    process.stdout.write(`${json}\n`);

    log('targets:');
    for (const t of targets) {
      const show = (x: number | null) => (x === null ? 'n/a' : t.name.includes('overhead') ? `${(x * 100).toFixed(1)}%` : `${x.toFixed(2)}×`);
      log(`  ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL'} ${t.name}: ${show(t.measured)} (medians ${show(t.measuredOnMedians)}; ${t.comparison} ${show(t.threshold)}) — ${t.detail}`);
    }
    for (const f of fractions.decode) log(`  decode batch ${f.batch}: ${(f.fraction * 100).toFixed(1)}% of its bound (${f.boundTokensPerSecond.toFixed(1)} tok/s)`);
    for (const f of fractions.prefill) log(`  prefill ${f.tokens}: ${(f.fraction * 100).toFixed(1)}% of its bandwidth bound`);
    log(`wrote ${outFile}`);
  } finally {
    if (!args.keep) {
      for (const p of created) fs.rmSync(p, { recursive: true, force: true });
      if (created.length) log(`deleted ${created.length} generated folder(s); pass --keep to reuse them next time`);
    }
  }
}
