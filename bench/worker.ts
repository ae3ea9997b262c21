/**
 * One bench phase in its own process, so that its peak RSS is its own: `run.ts` spawns
 *
 *   node bin/run-ts.js bench/worker.ts <compile|infer|bandwidth|int4-ceiling|study> JOB.json RESULT.json
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
import { benchProbe, decodeAtContexts, packedTeacherForcing, randomHeadScale, teacherForceLengths, transcriptsRun } from './study.js';
import { log, memorySnapshot, now } from './util.js';

export interface CompileJob {
  checkpointDir: string;
  cacheRoot: string;
  compile: CompileOptions;
}

/** A compiled model to load as the app does, and the seed of its inputs. */
export interface ModelJob {
  checkpointDir: string;
  cacheRoot: string;
  compile: CompileOptions;
  threads: number | null;
  provider: ProviderChoice;
  seed: number;
}

export interface InferJob extends ModelJob {
  prefill: { tokens: number; reps: number; taps: PrefillTaps } | null;
  decode: { promptTokens: number; newTokens: number; batches: number[]; withProbe: boolean; probeLayer: number; reps: number } | null;
}

/** Study measurements on one compiled model (see study.ts); each part null = skipped. */
export interface StudyJob extends ModelJob {
  /** Stack entry of the live probe and of the residual tap in teacher forcing. */
  probeLayer: number;
  /** The length mix, and the same requests with every answer `uniformLength` long, at each batch size. */
  transcripts: { lengths: number[]; uniformLength: number; promptLengths: number[]; batches: number[] } | null;
  /** An ablation sweep: each prompt under every (head count, γ) setting, one continuous batch. */
  sweep: { lengths: number[]; promptLengths: number[]; batch: number; headCounts: number[]; gammas: number[] } | null;
  decode: { contexts: number[]; window: number; windows: number; reps: number } | null;
  teacherForcing: { lengths: number[]; reps: number[]; patternHeads: number[]; patternQueries: number } | null;
  packed: { lengths: number[] } | null;
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

/** The app's own path: compile (cached by the compile phase) and open the session with the same options. */
function loadJobModel(job: ModelJob) {
  const { normPreserve, ...precision } = job.compile;
  return loadModel(job.checkpointDir, { normPreserve, precision, cacheRoot: job.cacheRoot, threads: job.threads ?? undefined, provider: job.provider });
}

async function inferTask(job: InferJob) {
  const baseline = memorySnapshot();
  const t0 = now();
  const model = await loadJobModel(job);
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

async function studyTask(job: StudyJob) {
  const t0 = now();
  const model = await loadJobModel(job);
  const session = model.session;
  const loadSeconds = now() - t0;
  log(`session loaded in ${loadSeconds.toFixed(1)} s on ${session.provider} (KV cache ${session.kvCacheType})`);
  const probe = benchProbe(session, job.probeLayer, job.seed);
  const transcripts = [];
  if (job.transcripts) {
    const t = job.transcripts;
    // Warm-up at the largest batch (the arena grows to its shapes).
    await transcriptsRun(session, { lengths: new Array(Math.max(...t.batches)).fill(4), promptLengths: t.promptLengths, batch: Math.max(...t.batches), batching: 'continuous', probe, seed: job.seed });
    for (const batch of t.batches) {
      for (const [mix, lengths] of [['uniform', t.lengths.map(() => t.uniformLength)], ['mix', t.lengths]] as const) {
        for (const batching of mix === 'uniform' ? (['continuous'] as const) : (['continuous', 'static'] as const)) {
          const r = await transcriptsRun(session, { lengths, promptLengths: t.promptLengths, batch, batching, probe, seed: job.seed });
          log(`transcripts ${mix} batch ${batch} ${batching}: ${r.usefulTokensPerSecond.toFixed(2)} useful tok/s, occupancy ${r.occupancy.toFixed(2)} (schedule ${r.scheduleOccupancy.toFixed(2)}), ${r.seconds.toFixed(0)} s`);
          transcripts.push({ mix, ...r });
        }
      }
    }
  }
  let sweep = null;
  if (job.sweep) {
    const w = job.sweep;
    const settings = w.headCounts.flatMap((k) => w.gammas.map((gamma) => ({ k, gamma, headScale: randomHeadScale(session, k, gamma, job.seed + k) })));
    const per = w.lengths.length / settings.length;
    const r = await transcriptsRun(session, {
      lengths: w.lengths,
      promptLengths: w.promptLengths,
      batch: w.batch,
      batching: 'continuous',
      probe,
      headScales: w.lengths.map((_, i) => settings[Math.floor(i / per)]!.headScale),
      seed: job.seed + 1,
    });
    log(`ablation sweep (${settings.length} settings): ${r.usefulTokensPerSecond.toFixed(2)} useful tok/s`);
    sweep = { settings: settings.map(({ k, gamma }) => ({ k, gamma })), ...r };
  }
  const decode = job.decode ? await decodeAtContexts(session, { ...job.decode, seed: job.seed }) : null;
  const teacherForcing = job.teacherForcing
    ? await teacherForceLengths(session, {
        lengths: job.teacherForcing.lengths,
        reps: job.teacherForcing.reps,
        taps: { residLayer: job.probeLayer, patternHeads: job.teacherForcing.patternHeads, patternQueries: job.teacherForcing.patternQueries },
        seed: job.seed,
      })
    : null;
  const packed = job.packed ? await packedTeacherForcing(session, { lengths: job.packed.lengths, residLayer: job.probeLayer, seed: job.seed }) : null;
  return {
    provider: session.provider,
    providerNotes: session.providerNotes,
    kvCache: session.kvCacheType,
    loadSeconds,
    transcripts,
    sweep,
    decode,
    teacherForcing,
    packed,
    memory: memorySnapshot(),
  };
}

export type StudyResult = Awaited<ReturnType<typeof studyTask>>;

/** Each task's job, by task name. */
export interface WorkerJobs {
  compile: CompileJob;
  infer: InferJob;
  bandwidth: BandwidthJob;
  'int4-ceiling': Int4CeilingJob;
  study: StudyJob;
}

async function bandwidthTask(job: BandwidthJob) {
  const result = await measureBandwidth({ ...job, log });
  return { ...result, memory: memorySnapshot() };
}

async function main(): Promise<void> {
  const [task, jobFile, resultFile] = process.argv.slice(2);
  if (!task || !jobFile || !resultFile) {
    process.stderr.write('usage: worker.ts <compile|infer|bandwidth|int4-ceiling|study> JOB.json RESULT.json\n');
    process.exit(2);
  }
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as unknown;
  try {
    let result: unknown;
    if (task === 'compile') result = await compileTask(job as CompileJob);
    else if (task === 'infer') result = await inferTask(job as InferJob);
    else if (task === 'bandwidth') result = await bandwidthTask(job as BandwidthJob);
    else if (task === 'int4-ceiling') result = { ...(await measureInt4Ceiling(job as Int4CeilingJob)), memory: memorySnapshot() };
    else if (task === 'study') result = await studyTask(job as StudyJob);
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
