/**
 * What the throughput bench (run.ts) and the study bench (study-run.ts) share: arguments, running each heavy phase
 * in its own child process (worker.ts) with the load average around it, targets judged on the best repetition
 * and on the medians, the machine description and the JSON report.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPILER_VERSION, defaultCacheRoot, type ResolvedCompileOptions } from '../src/main/engine/onnx/compile.js';
import { PROVIDER_CHOICES, type ProviderChoice } from '../src/main/engine/runtime/providers.js';
import type { Target } from './targets.js';
import { log } from './util.js';
import type { WorkerJobs } from './worker.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------------------------
// Arguments

export interface Args {
  quick: boolean;
  /** The study bench (study-run.ts) instead of the throughput bench. */
  study: boolean;
  provider: ProviderChoice;
  threads: number;
  out: string | null;
  keep: boolean;
  cache: string;
  seed: number;
  /** The study's measurements to run (--parts; default all). */
  parts: StudyPart[];
}

/** The study bench's measurements, as --parts names them. */
export const STUDY_PARTS = ['transcripts', 'sweep', 'decode', 'teacher'] as const;
export type StudyPart = (typeof STUDY_PARTS)[number];

const USAGE = `usage: npm run bench -- [--study [--parts P,...]] [--quick] [--provider auto|cpu|cuda] [--threads N] [--out FILE] [--keep] [--cache DIR] [--seed N]
  --study      the study bench: mixed answer lengths, long contexts, long transcripts, an ablation sweep
  --quick      small model shape, finishes in about a minute (CI smoke run)
  --provider   execution provider for the model (default auto); bandwidth is always measured on the CPU
  --threads    ONNX Runtime intra-op threads (default: every CPU, ${os.availableParallelism()} here)
  --out        where to write the JSON (default bench/results/<timestamp>-<variant>-<provider>.json)
  --keep       keep the generated checkpoint, compiled models and bandwidth files for the next run
  --cache      folder for generated and compiled files (default ${path.join(defaultCacheRoot(), 'bench')})
  --seed       weight and token seed (default 1)
  --parts      with --study, only these measurements: ${STUDY_PARTS.join(',')} (default all)
`;

export function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    study: false,
    provider: 'auto',
    threads: os.availableParallelism(),
    out: null,
    keep: false,
    cache: path.join(defaultCacheRoot(), 'bench'),
    seed: 1,
    parts: [...STUDY_PARTS],
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
    else if (a === '--study') args.study = true;
    else if (a === '--keep') args.keep = true;
    else if (a === '--provider') {
      const v = value();
      if (!(PROVIDER_CHOICES as readonly string[]).includes(v)) fail(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
      args.provider = v as ProviderChoice;
    } else if (a === '--threads') args.threads = int(value());
    else if (a === '--out') args.out = path.resolve(value());
    else if (a === '--cache') args.cache = path.resolve(value());
    else if (a === '--seed') args.seed = int(value());
    else if (a === '--parts') {
      const parts = value().split(',');
      const bad = parts.filter((p) => !(STUDY_PARTS as readonly string[]).includes(p));
      if (bad.length || !parts.length) fail(`--parts takes ${STUDY_PARTS.join(', ')}; got ${bad.join(', ')}`);
      args.parts = [...new Set(parts)] as StudyPart[];
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  return args;
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

export interface ChildOutcome<T> {
  ok: boolean;
  result: T | null;
  error: string | null;
  peakRssBytes: number | null;
  wallSeconds: number;
}

/** The one-minute load average around one child: above the core count, other processes shared the CPUs. */
export interface LoadRecord {
  phase: string;
  loadAverageBefore: number;
  loadAverageAfter: number;
  wallSeconds: number;
}

/** Runs bench phases as child processes, each with its job and result files in one temporary folder. */
export class Children {
  readonly loadLog: LoadRecord[] = [];
  private readonly jobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-bench-'));

  async run<T, K extends keyof WorkerJobs>(task: K, job: WorkerJobs[K], phase: string): Promise<ChildOutcome<T>> {
    const id = `${task}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const jobFile = path.join(this.jobDir, `${id}.job.json`);
    const resultFile = path.join(this.jobDir, `${id}.result.json`);
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
    this.loadLog.push({ phase, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg()[0]!, wallSeconds });
    if (!fs.existsSync(resultFile)) {
      const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with code ${code}`;
      log(`${task} child ${why} without a result`);
      return { ok: false, result: null, error: `child ${why}`, peakRssBytes: null, wallSeconds };
    }
    const r = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { ok: boolean; result?: T; error?: string; peakRssBytes: number };
    return { ok: r.ok, result: r.result ?? null, error: r.error ?? null, peakRssBytes: r.peakRssBytes, wallSeconds };
  }

  /** A note when other processes competed for the CPUs during any child, or null. */
  contentionNote(cores: number): string | null {
    const busiest = Math.max(...this.loadLog.map((l) => Math.max(l.loadAverageBefore, l.loadAverageAfter)));
    if (!(busiest > cores)) return null;
    return (
      `other processes competed for the CPUs (1-minute load average up to ${busiest.toFixed(1)} on ${cores} cores): ` +
      'throughputs and ratios are noisy; see contention and each cpuUtilisation'
    );
  }

  dispose(): void {
    fs.rmSync(this.jobDir, { recursive: true, force: true });
  }
}

/** What the compile child reports. */
export interface CompileResult {
  seconds: number;
  cached: boolean;
  dir: string;
  key: string;
  options: ResolvedCompileOptions;
  compilerVersion: string | null;
  weightsFileBytes: number;
  tensorBytes: number | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

export const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? a / b : null);

/** Print each target's verdict to stderr. */
function logTargets(targets: Target[]): void {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  log('targets:');
  for (const t of targets) {
    const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL';
    const show = (x: number | null) => (x === null ? 'n/a' : t.name.includes('overhead') ? pct(x) : `${x.toFixed(2)}×`);
    log(`  ${verdict} ${t.name}: ${show(t.measured)} (medians ${show(t.measuredOnMedians)}; ${t.comparison} ${show(t.threshold)}) — ${t.detail}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Machine and report

export function machineInfo(args: Args) {
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

/**
 * End a bench: the report as JSON on stdout and in `--out` (default bench/results/<started>-<variant>-
 * <provider>.json), the targets' verdicts (and `lines`) on stderr, then the generated files deleted unless --keep.
 */
export function publish(
  report: { startedAt: string; variant: string; targets: Target[] },
  opts: { args: Args; provider: string; children: Children; created: string[]; lines?: string[] },
): void {
  const { args } = opts;
  const json = JSON.stringify(report, null, 2);
  const outFile = args.out ?? path.join(repoRoot, 'bench', 'results', `${report.startedAt.replace(/[:.]/g, '-')}-${report.variant}-${opts.provider}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, json + '\n');
  process.stdout.write(json + '\n');
  logTargets(report.targets);
  for (const line of opts.lines ?? []) log(line);
  log(`wrote ${outFile}`);
  if (!args.keep) {
    for (const p of opts.created) fs.rmSync(p, { recursive: true, force: true });
    if (opts.created.length) log(`deleted ${opts.created.length} generated folder(s); pass --keep to reuse them next time`);
  }
  opts.children.dispose();
}
