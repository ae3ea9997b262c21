/**
 * One bench phase in its own process, so that its peak RSS is its own: `run.ts` spawns
 *
 *   node bin/run-ts.js bench/worker.ts <compile|infer|bandwidth|int4-ceiling> JOB.json RESULT.json
 *
 * reads RESULT.json when the child exits, and keeps the child's output on stderr.
 */
import fs from 'node:fs';
import { openCheckpoint } from '../src/main/engine/model/checkpoint.js';
import { type CompileOptions, compileCheckpoint } from '../src/main/engine/onnx/compile.js';
import { loadModel } from '../src/main/engine/runtime/model.js';
import type { ProviderChoice } from '../src/main/engine/runtime/providers.js';
import { measureBandwidth } from './bandwidth.js';
import { type Int4CeilingJob, measureInt4Ceiling } from './int4-ceiling.js';
import { measureDecode, measurePrefill, RunClock, type PrefillTaps } from './measure.js';
import { log, memorySnapshot, now } from './util.js';

export interface CompileJob {
  checkpointDir: string;
  cacheRoot: string;
  compile: CompileOptions;
}

export interface InferJob {
  checkpointDir: string;
  cacheRoot: string;
  compile: CompileOptions;
  threads: number | null;
  provider: ProviderChoice;
  seed: number;
  prefill: { tokens: number; reps: number; taps: PrefillTaps } | null;
  decode: { promptTokens: number; newTokens: number; batches: number[]; withProbe: boolean; probeLayer: number; reps: number } | null;
}

export interface BandwidthJob {
  dir: string;
  bytes: number;
  K: number;
  threads: number | null;
  runs: number;
}

async function compileTask(job: CompileJob) {
  const baseline = memorySnapshot();
  const t0 = now();
  const ckpt = openCheckpoint(job.checkpointDir);
  let lastPhase = '';
  const compiled = await compileCheckpoint(ckpt, job.compile, {
    cacheRoot: job.cacheRoot,
    onProgress: (p) => {
      if (p.phase !== lastPhase || p.done === p.total) log(`compile ${job.compile.weights ?? 'float32'}: ${p.phase} ${p.done}/${p.total}`);
      lastPhase = p.phase;
    },
  });
  const seconds = now() - t0;
  const weightsFile = `${compiled.dir}/model.weights`;
  const manifest = JSON.parse(fs.readFileSync(`${compiled.dir}/manifest.json`, 'utf8')) as { tensorBytes?: number; compilerVersion?: string };
  return {
    seconds,
    cached: compiled.cached,
    dir: compiled.dir,
    key: compiled.key,
    options: compiled.options,
    compilerVersion: manifest.compilerVersion ?? null,
    weightsFileBytes: fs.statSync(weightsFile).size,
    tensorBytes: manifest.tensorBytes ?? null,
    baseline,
    end: memorySnapshot(),
  };
}

async function inferTask(job: InferJob) {
  const baseline = memorySnapshot();
  const t0 = now();
  // The app's own path: compile (cached by the compile phase) and open the session with the same options.
  const { normPreserve, ...precision } = job.compile;
  const model = await loadModel(job.checkpointDir, {
    normPreserve,
    precision,
    cacheRoot: job.cacheRoot,
    threads: job.threads ?? undefined,
    provider: job.provider,
  });
  const session = model.session;
  const compiledDir = model.compiled.dir;
  const loadSeconds = now() - t0;
  const afterLoad = memorySnapshot();
  log(`session loaded in ${loadSeconds.toFixed(1)} s on ${session.provider}; RSS ${(afterLoad.rssBytes / 1e9).toFixed(2)} GB`);

  const clock = new RunClock(session);
  const threads = job.threads ?? 1;
  const prefill = job.prefill ? await measurePrefill(session, clock, { ...job.prefill, seed: job.seed, threads }) : null;
  const afterPrefill = memorySnapshot();
  const decode = job.decode ? await measureDecode(session, clock, { ...job.decode, seed: job.seed, threads }) : null;
  const end = memorySnapshot();
  return {
    provider: session.provider,
    providerNotes: session.providerNotes,
    compiledDir,
    loadSeconds,
    memory: { baseline, afterLoad, afterPrefill, end },
    prefill,
    decode,
  };
}

async function bandwidthTask(job: BandwidthJob) {
  const result = await measureBandwidth({ ...job, log });
  return { ...result, memory: memorySnapshot() };
}

async function main(): Promise<void> {
  const [task, jobFile, resultFile] = process.argv.slice(2);
  if (!task || !jobFile || !resultFile) {
    process.stderr.write('usage: worker.ts <compile|infer|bandwidth|int4-ceiling> JOB.json RESULT.json\n');
    process.exit(2);
  }
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as unknown;
  try {
    let result: unknown;
    if (task === 'compile') result = await compileTask(job as CompileJob);
    else if (task === 'infer') result = await inferTask(job as InferJob);
    else if (task === 'bandwidth') result = await bandwidthTask(job as BandwidthJob);
    else if (task === 'int4-ceiling') result = { ...(await measureInt4Ceiling(job as Int4CeilingJob)), memory: memorySnapshot() };
    else throw new Error(`unknown task ${task}`);
    // Peak RSS over the whole child, read last.
    fs.writeFileSync(resultFile, JSON.stringify({ ok: true, result, peakRssBytes: memorySnapshot().peakRssBytes }));
    process.exit(0);
  } catch (e) {
    const err = e as Error;
    log(`${task} failed: ${err.stack ?? err.message}`);
    fs.writeFileSync(resultFile, JSON.stringify({ ok: false, error: err.message, peakRssBytes: memorySnapshot().peakRssBytes }));
    process.exit(1);
  }
}

await main();
