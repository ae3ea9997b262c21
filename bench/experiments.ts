/**
 * Engine experiments behind the bench report's suggestions: the same compiled float32 model run with changes the
 * engine could make, each variant in its own process so its memory is its own.
 *
 *   node bin/run-ts.js bench/experiments.ts [--quick] [--cache DIR] [--threads N] [--seed N] [--only V,...]
 *                                           [--compile JSON] [--profile-context N]
 *
 * needs the bench checkpoint and its float32 compile in the cache (run `npm run bench -- --keep` first).
 * Variants:
 *   baseline         DecoderSession as the engine creates it
 *   no-prepack       session option session.disable_prepacking = 1: Gemm reads the memory-mapped weights instead of
 *                    a prepacked copy
 *   decode           batch-1 decode only (no probe, no prefill): the quick figure when comparing compile options
 *   long-context     batch-1 decode after a short and a long prompt, interleaved: how the per-step cost grows with the
 *                    KV cache (see runtime/kv-cache.ts: the settled past is only read, the recent part copied)
 *   profile          the baseline's profile alone
 * plus, in the baseline process, an ONNX Runtime profile of batch-1 decode steps (after --profile-context N prompt
 * tokens, default 16) summed by op type and by the costliest nodes. Prints one JSON document.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { openCheckpoint } from '../src/main/engine/model/checkpoint.js';
import { type CompileOptions, compileCheckpoint, defaultCacheRoot } from '../src/main/engine/onnx/compile.js';
import { DecoderSession } from '../src/main/engine/runtime/decoder-session.js';
import { ensureCheckpoint, FULL_SHAPE, QUICK_SHAPE } from './checkpoint.js';
import { decodeOnce, measureDecode, measurePrefill, RunClock } from './measure.js';
import { log, memorySnapshot, now, randomIds, stat } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type Variant = 'baseline' | 'no-prepack' | 'long-context' | 'decode' | 'profile';

interface ChildJob {
  variant: Variant;
  modelPath: string;
  checkpointDir: string;
  threads: number;
  seed: number;
  quick: boolean;
  profileDir: string | null;
  /** Prompt tokens before the profiled decode steps. */
  profileContext: number;
}

/** A DecoderSession over a session we created ourselves (the constructor is private to the engine). */
function wrapSession(session: ort.InferenceSession, job: ChildJob): DecoderSession {
  const config = openCheckpoint(job.checkpointDir).config;
  const Ctor = DecoderSession as unknown as new (...args: unknown[]) => DecoderSession;
  return new Ctor(config, session, job.modelPath, 'cpu', []);
}

/** Sum an ONNX Runtime profile's node events by op type and by node, over its last `steps` runs (the decode steps). */
function summariseProfile(file: string, steps: number) {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[];
  // Each session.run is one model_run event; the prompt's prefill runs come first and are left out.
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(-steps);
  const inDecode = (e: { ts: number }) => runs.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  const byOp = new Map<string, number>();
  const byNode = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !inDecode(e)) continue;
    const op = e.args?.op_name ?? '?';
    const node = e.name.replace(/_kernel_time$/, '');
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    byNode.set(node, (byNode.get(node) ?? 0) + e.dur);
    total += e.dur;
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, msPerStep: us / 1000 / runs.length, share: us / total }));
  const wallMsPerStep = runs.reduce((n, r) => n + r.dur, 0) / 1000 / runs.length;
  return { steps: runs.length, wallMsPerStep, kernelMsPerStep: total / 1000 / runs.length, byOp: top(byOp, 14), topNodes: top(byNode, 14) };
}

async function child(job: ChildJob) {
  const baseline = memorySnapshot();
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    intraOpNumThreads: job.threads,
  };
  if (job.variant === 'no-prepack') options.extra = { session: { disable_prepacking: '1' } };
  if (job.profileDir) {
    options.enableProfiling = true;
    options.profileFilePrefix = path.join(job.profileDir, 'decode');
  }
  const t0 = now();
  const ortSession = await ort.InferenceSession.create(job.modelPath, options);
  const loadSeconds = now() - t0;
  const afterLoad = memorySnapshot();
  log(`${job.variant}: loaded in ${loadSeconds.toFixed(1)} s, RSS ${(afterLoad.rssBytes / 1e9).toFixed(2)} GB`);
  const session = wrapSession(ortSession, job);
  const clock = new RunClock(session);

  const L = session.config.numLayers;
  const tapLayer = Math.round(L * 0.6);
  const newTokens = job.quick ? 16 : 24;
  if (job.variant === 'long-context') return { variant: job.variant, loadSeconds, longContext: await longContext(session, clock, job) };
  if (job.variant === 'decode') {
    const opts = { promptTokens: 16, newTokens, batches: [1], withProbe: false, probeLayer: tapLayer, reps: 4, seed: job.seed, threads: job.threads };
    return { variant: job.variant, loadSeconds, decode: await measureDecode(session, clock, opts) };
  }
  let profile = null;
  if (job.profileDir) {
    // Profile batch-1 decode steps after a prompt of job.profileContext tokens (its prefill runs are left out).
    const ids = Array.from({ length: job.profileContext }, (_, i) => (i * 7919) % session.config.vocabSize);
    const { generate } = await import('../src/main/engine/runtime/generate.js');
    await generate(session, [{ ids }], { maxNewTokens: 9, prefillChunk: 512 });
    ortSession.endProfiling();
    // The binding does not return the trace's name; it is the only file in profileDir.
    const file = path.join(job.profileDir, fs.readdirSync(job.profileDir).find((f) => f.endsWith('.json'))!);
    profile = { context: job.profileContext, ...summariseProfile(file, 8) }; // the 8 decode steps after the first token
    fs.rmSync(file, { force: true });
    if (job.variant === 'profile') return { variant: job.variant, loadSeconds, profile };
  }
  const decode = await measureDecode(session, clock, {
    promptTokens: 16,
    newTokens,
    batches: [1, 8],
    withProbe: job.variant !== 'no-prepack',
    probeLayer: tapLayer,
    reps: 2,
    seed: job.seed,
    threads: job.threads,
  });
  const prefill = await measurePrefill(session, clock, {
    tokens: 512,
    reps: 2,
    taps: { residLayers: [tapLayer], zLayers: [tapLayer - 1] },
    seed: job.seed,
    threads: job.threads,
  });
  return { variant: job.variant, loadSeconds, memory: { baseline, afterLoad, end: memorySnapshot() }, decode, prefill, profile };
}

/** Batch-1 decode after a 16-token and a long prompt, interleaved; per-step time inside and outside ONNX Runtime. */
async function longContext(session: DecoderSession, clock: RunClock, job: ChildJob) {
  const long = job.quick ? 1024 : 2048;
  const newTokens = 16;
  const { numLayers: L, numKvHeads: Hkv, headDim: D, vocabSize: V } = session.config;
  const contexts = [16, long];
  const runs = new Map<number, { stepMs: number; ortStepMs: number; jsStepMs: number }[]>(contexts.map((c) => [c, []]));
  await decodeOnce(session, clock, [randomIds(16, V, job.seed)], 4, null); // warm-up
  for (let rep = 0; rep < 2; rep++) {
    for (const ctx of contexts) {
      const r = await decodeOnce(session, clock, [randomIds(ctx, V, job.seed + ctx)], newTokens, null);
      const steps = newTokens - 1;
      runs.get(ctx)!.push({ stepMs: (r.seconds / steps) * 1000, ortStepMs: (r.ortSeconds / steps) * 1000, jsStepMs: ((r.seconds - r.ortSeconds) / steps) * 1000 });
      log(`long-context: ${ctx}-token prompt: ${((r.seconds / steps) * 1000).toFixed(0)} ms/step, ${(((r.seconds - r.ortSeconds) / steps) * 1000).toFixed(1)} ms of it outside ONNX Runtime`);
    }
  }
  return contexts.map((ctx) => {
    const rs = runs.get(ctx)!;
    return {
      promptTokens: ctx,
      kvCacheBytes: 2 * L * Hkv * D * 4 * (ctx + newTokens),
      stepMs: stat(rs.map((x) => x.stepMs)),
      ortStepMs: stat(rs.map((x) => x.ortStepMs)),
      jsStepMs: stat(rs.map((x) => x.jsStepMs)),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------

async function runChild(job: ChildJob) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-exp-'));
  const jobFile = path.join(dir, 'job.json');
  const resultFile = path.join(dir, 'result.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const proc = spawn(process.execPath, [path.join(repoRoot, 'bin', 'run-ts.js'), path.join(repoRoot, 'bench', 'experiments.ts'), '--child', jobFile, resultFile], {
    cwd: repoRoot,
    stdio: ['ignore', 2, 2],
  });
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  const result = fs.existsSync(resultFile) ? (JSON.parse(fs.readFileSync(resultFile, 'utf8')) as unknown) : { ok: false, error: `exit ${code}` };
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const job = JSON.parse(fs.readFileSync(argv[1]!, 'utf8')) as ChildJob;
    try {
      const result = await child(job);
      fs.writeFileSync(argv[2]!, JSON.stringify({ ok: true, result, peakRssBytes: memorySnapshot().peakRssBytes }));
      process.exit(0);
    } catch (e) {
      log(`experiment ${job.variant} failed: ${(e as Error).stack}`);
      fs.writeFileSync(argv[2]!, JSON.stringify({ ok: false, error: (e as Error).message, peakRssBytes: memorySnapshot().peakRssBytes }));
      process.exit(1);
    }
  }

  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const cache = path.resolve(flag('--cache') ?? path.join(defaultCacheRoot(), 'bench'));
  const threads = Number(flag('--threads') ?? os.availableParallelism());
  const seed = Number(flag('--seed') ?? 1);
  const only = flag('--only')?.split(',') as Variant[] | undefined;
  const profileContext = Number(flag('--profile-context') ?? 16);
  const shape = quick ? QUICK_SHAPE : FULL_SHAPE;
  const checkpointDir = ensureCheckpoint(cache, shape, seed, log).dir;
  const compileOptions: CompileOptions = Object.assign({ normPreserve: false }, JSON.parse(flag('--compile') ?? '{}'));
  const compiled = await compileCheckpoint(openCheckpoint(checkpointDir), compileOptions, { cacheRoot: cache });
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-profile-'));
  const results: Record<string, unknown> = {};
  for (const variant of only ?? (['baseline', 'no-prepack', 'long-context'] as Variant[])) {
    log(`experiment ${variant}`);
    results[variant] = await runChild({
      variant,
      modelPath: compiled.modelPath,
      checkpointDir,
      threads,
      seed,
      quick,
      profileDir: variant === 'baseline' || variant === 'profile' ? profileDir : null,
      profileContext,
    });
  }
  fs.rmSync(profileDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ shape: shape.name, compile: compileOptions, threads, loadAverage: os.loadavg(), results }, null, 2) + '\n');
}

await main();
