/**
 * The one API contract between Cliffscope's engine and its three faces (the Electron app, the CLI, `serve` mode).
 *
 * Every method is a name → { params, result } pair of zod schemas. The main process (or the serve server, or the
 * CLI) validates a request with `validateRequest` before any handler sees it, and validates what the handler returns
 * with `validateResult` before it crosses the boundary; clients validate again on their side. Schemas here must stay
 * JSON-safe and transform-free, so the wire shape and the TypeScript type are the same thing.
 *
 * This module is imported by the renderer as well as by Node code: it must not import anything from Node or Electron.
 */
import { z } from 'zod';
import {
  batchSize,
  count,
  filePath,
  HeadScale,
  jsonObject,
  maxNewTokens,
  maybeNumber,
  ModelRef,
  positive,
  residIndex,
  rowId,
  Sampling,
  scoreList,
  seed,
  finiteNumber,
  fraction01,
  HeadRefSchema,
  PositionRule,
  runName,
  RunTags,
  TranscriptSource,
} from './values.js';
import { HEADLINE_UNITS_LIST } from './compare.js';
import { RandomSpread, SWEEP_CONTROLS, SweepCellMetrics } from './runs/ablate.js';
import { ProbeCalibration, ProbeTraining } from './runs/probe.js';
import { RUN_KINDS, type RunSummaryOf, specOf } from './runs/registry.js';

export { HeadRefSchema, ModelRef, PositionRule, Precision, Sampling, TranscriptSource } from './values.js';

// ---------------------------------------------------------------------------------------------------------------------
// Methods

/** `app.info`: takes no params (`{}` or nothing). */
export const AppInfoParams = z.strictObject({});

export const AppInfoResult = z.strictObject({
  /** package.json `name`. */
  name: z.string().min(1),
  /** package.json `version`. */
  version: z.string().min(1),
  /** The engine's own version, once the engine declares one apart from the app's. */
  engineVersion: z.string().min(1).optional(),
  /** `process.platform` of the process running the engine, e.g. `linux`. */
  platform: z.string().min(1),
  /** `process.arch`, e.g. `x64`. */
  arch: z.string().min(1),
  versions: z.strictObject({
    node: z.string().min(1),
    /** null outside Electron (CLI, serve). */
    electron: z.string().min(1).nullable(),
    /** Chromium's version; null outside Electron. */
    chrome: z.string().min(1).nullable(),
  }),
  /** Version of the onnxruntime-node package the engine runs on. */
  onnxruntimeVersion: z.string().min(1),
  /** Execution providers the engine can use here, best-effort order as the engine reports them; always has `cpu`. */
  providers: z.array(z.string().min(1)),
  /**
   * Providers this ONNX Runtime build lists but that cannot be used here (e.g. `cuda` when its libraries were not
   * installed, `tensorrt`). Disjoint from `providers`.
   */
  unavailableProviders: z.array(z.string().min(1)),
});

export const ModelInspectParams = z.strictObject({
  /** A Hugging Face checkpoint folder (config.json + *.safetensors). */
  dir: z.string().trim().min(1, 'must name a model folder').max(4096, 'path too long'),
});


export const ModelInspectResult = z.strictObject({
  /** HF class name, e.g. `Qwen2ForCausalLM`. */
  architecture: z.string().min(1),
  family: z.enum(['llama', 'qwen2', 'qwen3', 'mistral']),
  layers: positive,
  heads: positive,
  kvHeads: positive,
  headDim: positive,
  hidden: positive,
  vocab: positive,
  /** Distinct tensor dtypes in the checkpoint, sorted, e.g. `["BF16"]`. */
  dtypes: z.array(z.string().min(1)),
  /** Total number of weights over all tensors (tied embeddings counted once). */
  parameters: count,
  /** The LM head shares the embedding matrix. */
  tied: z.boolean(),
});

export const GenerateRunParams = z.strictObject({
  model: ModelRef,
  prompts: z.array(z.string().max(1_000_000)).min(1).max(100_000),
  /** Wrap each prompt as a user message in the model's chat template (with the generation prompt). */
  chat: z.boolean().optional(),
  system: z.string().max(100_000).optional(),
  maxNewTokens,
  /** Omitted = greedy. */
  sampling: Sampling.optional(),
  /** Sampling seed (default 0); each prompt draws from its own stream. */
  seed: seed.optional(),
  stop: z.array(z.string().min(1)).max(64).optional(),
  /** γ per [layer][head] for every prompt; checked against the model's shape by the engine. */
  headScale: HeadScale.optional(),
  batchSize: batchSize.optional(),
  /** A linear probe scored live on every token, at a residual-stack index (see values.ts `residIndex`). */
  probe: z.strictObject({ residIndex, weights: z.array(finiteNumber).min(1), bias: finiteNumber }).optional(),
});

const tokenIndex = z.number().int().nonnegative().nullable();

/** A refusal trace's metrics (analysis/trace.ts): plateau I, final I' at t_b, MS = I − I', the steepest drop and its width. */
export const TraceMetricsSummary = z.strictObject({
  plateau: maybeNumber,
  final: maybeNumber,
  ms: maybeNumber,
  steepestDropPos: z.number().int().nullable(),
  /** The 10–90 % width of the fall; meaningful only where the trace has a cliff. */
  width: maybeNumber,
  /** The trace has a refusal cliff by the rule of docs/METHOD.md §2 (analysis/trace.ts `hasCliff`). */
  hasCliff: z.boolean(),
});

export const Transcript = z.strictObject({
  prompt: z.string(),
  inputIds: z.array(z.number().int().nonnegative()),
  outputIds: z.array(z.number().int().nonnegative()),
  text: z.string(),
  thinking: z.string(),
  answer: z.string(),
  finishReason: z.enum(['eos', 'stop-string', 'length', 'context', 'cancelled']),
  /** Why the prompt produced nothing (finishReason 'context': it leaves no room in the model's context). */
  skipped: z.string().optional(),
  thinkOpen: tokenIndex,
  thinkClose: tokenIndex,
  answerBoundary: tokenIndex,
  /** Display text of every token (prompt + output): hover text for the prompt's tokens too. */
  tokens: z.array(z.string()).optional(),
  /** The live probe's score per transcript position (prompt + output, one per token); null where none was computed. */
  scores: z.array(z.number().nullable()).optional(),
  /** The live probe's trace metrics, computed by the engine as a trace run computes them. */
  metrics: TraceMetricsSummary.optional(),
});
export type Transcript = z.infer<typeof Transcript>;

export const GenerateRunResult = z.strictObject({
  /** The execution provider that ran the model, and why `auto` skipped better ones. */
  provider: z.string().min(1),
  providerNotes: z.array(z.string()),
  transcripts: z.array(Transcript),
  seconds: z.number().nonnegative(),
});

// ---------------------------------------------------------------------------------------------------------------------
// Workbench: projects, datasets, runs and the data behind every panel's plots and tables.
//
// `project` / `file` is the path of a project file (a `.cliffscope` SQLite file). Ids are the store's integer row
// ids. Typed arrays travel as plain number lists; a NaN inside a score list travels as null. Methods marked "job"
// run long: they stream `progress` / `log` events under the call's job id and stop when the call is cancelled.


export const RunKind = z.enum(RUN_KINDS);
export type RunKind = z.infer<typeof RunKind>;
export const RunStatus = z.enum(['pending', 'running', 'done', 'interrupted', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

export const ModelSummary = z.strictObject({
  id: rowId,
  name: z.string().nullable(),
  /** The checkpoint folder the model was last used from. */
  path: z.string(),
  contentHash: z.string(),
  /** From the stored config; null when the project row carries no config. */
  architecture: z.string().nullable(),
  layers: z.number().int().nullable(),
  heads: z.number().int().nullable(),
  hidden: z.number().int().nullable(),
  createdAt: z.string(),
});
export type ModelSummary = z.infer<typeof ModelSummary>;

/** Which source column feeds each item field (as stored / as detected). */
export const ColumnMapping = z.strictObject({
  prompt: z.string(),
  response: z.string().optional(),
  label: z.string().optional(),
  category: z.string().optional(),
  /** A safe answer column, kept in each item's extra fields as `safe_response` (select --safe-response safe_response). */
  safe_response: z.string().optional(),
  /** The label every item was given on import (`dataset.import`'s `label`), in place of a label column. */
  fileLabel: z.string().optional(),
});
/** One label for every item of a file, given on import (`--label`). */
const fileLabel = z.string().trim().min(1, 'a label cannot be empty').max(200);
/** A mapping given by the user: a field left out is auto-detected, null keeps it unmapped. */
export const ColumnMappingInput = z.strictObject({
  prompt: z.string().min(1).nullable().optional(),
  response: z.string().min(1).nullable().optional(),
  label: z.string().min(1).nullable().optional(),
  category: z.string().min(1).nullable().optional(),
  safe_response: z.string().min(1).nullable().optional(),
});
export const DatasetFormat = z.enum(['csv', 'tsv', 'json', 'jsonl']);

export const RejectedRow = z.strictObject({ line: z.number().int(), reason: z.string() });

export const DatasetSummary = z.strictObject({
  id: rowId,
  name: z.string(),
  sourceFile: z.string().nullable(),
  format: z.string().nullable(),
  itemCount: count,
  rejectedCount: count,
  columns: z.array(z.string()),
  mapping: ColumnMapping,
  createdAt: z.string(),
});
export type DatasetSummary = z.infer<typeof DatasetSummary>;

/** The probe's metrics as stored (ProbeMetrics of the engine). Per-epoch lists only in `probe.get`. */
export const ProbeMetrics = z.strictObject({
  trainAccuracy: maybeNumber.optional(),
  valAccuracy: maybeNumber.optional(),
  valAuroc: maybeNumber.optional(),
  bestEpoch: z.number().int().nullable().optional(),
  nTrain: z.number().int().nullable().optional(),
  nVal: z.number().int().nullable().optional(),
  classCounts: z.strictObject({ positive: count, negative: count }).optional(),
  inputClassCounts: z.strictObject({ positive: count, negative: count }).optional(),
  /** Mean BCE at the end of each epoch (null without validation). `probe.get` only. */
  trainLoss: scoreList.optional(),
  valLoss: scoreList.optional(),
  valAccuracyPerEpoch: scoreList.optional(),
  /** Calibration on the validation set (train set without one); probes trained before it was recorded lack it. */
  calibration: ProbeCalibration.extend({
    /** Both classes' mean scores within 0.5 ± 0.05: the probe's scores say nothing (docs/METHOD.md §1). */
    uncalibrated: z.boolean(),
  }).optional(),
  /** What was fitted and why (probes trained before it was recorded lack it). */
  training: ProbeTraining.extend({
    /** The L2 coefficient used ('auto' resolved). */
    l2: maybeNumber,
    /** L-BFGS: iterations, whether it converged, max |∂f| at the end; null for Adam / SGD. */
    iterations: z.number().int().nullable(),
    converged: z.boolean().nullable(),
    gradientNorm: maybeNumber,
  }).optional(),
});

export const ProbeSummary = z.strictObject({
  id: rowId,
  uid: z.string(),
  modelId: rowId,
  /** The probe run that trained it; null when imported or its run was deleted. */
  runId: rowId.nullable(),
  name: z.string(),
  version: z.number().int(),
  /** The residual-stack index it reads (values.ts `residIndex`): 0 = embeddings, i+1 = after block i, L+1 = final norm. */
  residIndex,
  positionRule: z.string(),
  /** Width of the probe's direction (the model's residual width). */
  dim: count,
  metrics: ProbeMetrics,
  createdAt: z.string(),
});
export type ProbeSummary = z.infer<typeof ProbeSummary>;

export const RunSummary = z.strictObject({
  id: rowId,
  uid: z.string(),
  kind: RunKind,
  name: z.string().nullable(),
  /** Labels for filtering and grouping runs; set with run.start or run.update. */
  tags: z.array(z.string()),
  status: RunStatus,
  error: z.string().nullable(),
  modelId: rowId.nullable(),
  datasetId: rowId.nullable(),
  parentRunId: rowId.nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const ProjectSummary = z.strictObject({
  /** Absolute path of the project file. */
  file: z.string(),
  models: z.array(ModelSummary),
  datasets: z.array(DatasetSummary),
  probes: z.array(ProbeSummary),
  runs: z.array(RunSummary),
});
export type ProjectSummary = z.infer<typeof ProjectSummary>;

// ---- project.* ------------------------------------------------------------------------------------------------------

/** `project.open`: read a project's contents (`create`: make an empty project when the file does not exist). */
export const ProjectOpenParams = z.strictObject({ file: filePath, create: z.boolean().optional() });
export const ProjectOpenResult = ProjectSummary;

/** `project.recent`: recently opened project files, most recent first (at most 10; files that vanished are dropped). */
export const ProjectRecentParams = z.strictObject({});
export const ProjectRecentResult = z.strictObject({ files: z.array(z.string()) });

/** `project.remember`: put a project file at the top of the recent list. Returns the new list. */
export const ProjectRememberParams = z.strictObject({ file: filePath });
export const ProjectRememberResult = ProjectRecentResult;

const demoTrace = z.strictObject({ transcripts: count, meanPlateau: maybeNumber, meanFinal: maybeNumber, meanMs: maybeNumber });

export const DemoReport = z.strictObject({
  projectFile: z.string(),
  modelDir: z.string(),
  /** The execution provider that ran the demo model, and why `auto` skipped better ones. */
  provider: z.string().min(1),
  providerNotes: z.array(z.string()),
  /** Run id per demo stage: probe, transcripts, transcriptsHarmless, trace, traceHarmless, heads, ablate, select. */
  runs: z.record(z.string(), rowId),
  /** The best probe: its id, the residual-stack index it reads, and its validation numbers. */
  probe: z.strictObject({ id: rowId, residIndex, valAccuracy: maybeNumber, valAuroc: maybeNumber }),
  trace: z.strictObject({ harmful: demoTrace, harmless: demoTrace }),
  heads: z.strictObject({
    ranked: z.array(z.strictObject({ layer: count, head: count, score: z.number() })),
    planted: z.array(z.strictObject({ layer: count, head: count })),
    topMatchesPlanted: z.boolean(),
  }),
  ablation: z.array(
    z.strictObject({
      key: z.string(),
      control: z.string(),
      k: count,
      gamma: z.number(),
      asr: maybeNumber,
      overRefusal: maybeNumber,
      meanFinal: maybeNumber,
    }),
  ),
  selection: z.strictObject({ selected: count, total: count, threshold: maybeNumber }),
});
export type DemoReport = z.infer<typeof DemoReport>;

/**
 * `project.demo` (job): run the built-in demo (probe → transcripts → trace → heads → ablation → selection) into the
 * default demo project (`<cache>/demo/demo.cliffscope`, or `file`), reusing finished runs. Also remembers the file.
 * Cancelling it answers with a 'cancelled' error; the runs it finished are kept and the next call continues.
 */
export const ProjectDemoParams = z.strictObject({ file: filePath.optional() });
export const ProjectDemoResult = z.strictObject({ file: z.string(), report: DemoReport });

/** `project.export`: copy the whole project (or one run with everything it needs) to a new file `dest`. */
export const ProjectExportParams = z.strictObject({ file: filePath, dest: filePath, runId: rowId.optional() });
export const ProjectExportResult = z.strictObject({ dest: z.string(), bytes: count });

/** `project.import`: merge the runs of another project file `src` (e.g. one written by project.export) into `file`. */
export const ProjectImportParams = z.strictObject({ file: filePath, src: filePath });
export const ProjectImportResult = z.strictObject({
  runs: z.array(z.strictObject({ sourceId: rowId, id: rowId, uid: z.string(), kind: z.string(), imported: z.boolean() })),
  models: z.strictObject({ added: count, reused: count }),
  datasets: z.strictObject({ added: count, reused: count }),
  probes: z.strictObject({ added: count, reused: count }),
  transcripts: z.strictObject({ added: count, reused: count }),
});

// ---- dataset.* ------------------------------------------------------------------------------------------------------

export const DatasetItem = z.strictObject({
  /** Store id; absent in a preview (nothing is stored yet). */
  id: rowId.optional(),
  idx: count,
  /** 1-based line in the source file, when known. */
  line: z.number().int().nullable(),
  prompt: z.string(),
  response: z.string().nullable(),
  label: z.string().nullable(),
  category: z.string().nullable(),
  /** Every unmapped source column. */
  extra: jsonObject,
});
export type DatasetItem = z.infer<typeof DatasetItem>;

/** `dataset.preview`: read a dataset file without storing it: detected format, columns, mapping, first rows. */
export const DatasetPreviewParams = z.strictObject({
  file: filePath,
  mapping: ColumnMappingInput.optional(),
  format: DatasetFormat.optional(),
  /** One label for every item (a label column is then left unmapped). */
  label: fileLabel.optional(),
});
export const DatasetPreviewResult = z.strictObject({
  format: DatasetFormat,
  columns: z.array(z.string()),
  mapping: ColumnMapping,
  /** Items that would be imported. */
  count: count,
  /** The first 20 of them. */
  rows: z.array(DatasetItem),
  /** The first 50 rows that cannot be imported, and how many there are in all. */
  rejected: z.array(RejectedRow),
  rejectedCount: count,
});

/** `dataset.import`: read a dataset file into the project under `name`. */
export const DatasetImportParams = z.strictObject({
  project: filePath,
  name: z.string().trim().min(1, 'a dataset needs a name').max(200),
  file: filePath,
  mapping: ColumnMappingInput.optional(),
  format: DatasetFormat.optional(),
  /** One label for every item (a label column is then left unmapped). */
  label: fileLabel.optional(),
  /** Refuse files larger than this many MB (default 512: a bound on what a mistaken path can cost). */
  maxMb: z.number().int().min(1, 'must be at least 1 (MB)').max(1_000_000).optional(),
});
export const DatasetImportResult = z.strictObject({
  dataset: DatasetSummary,
  /** The first 50 rejected rows (dataset.rejectedCount has the number). */
  rejected: z.array(RejectedRow),
});

/** `dataset.items`: a page of a stored dataset's items, in order. */
export const DatasetItemsParams = z.strictObject({
  project: filePath,
  datasetId: rowId,
  offset: count.optional(),
  /** Default 100, at most 500. */
  limit: z.number().int().min(1).max(500, 'at most 500 items per page').optional(),
  /** Only items whose prompt, response, label or category contains this text (case-insensitive). */
  search: z.string().max(1000).optional(),
});
/** `total`: the items there are (with `search`, those that match). */
export const DatasetItemsResult = z.strictObject({ total: count, offset: count, items: z.array(DatasetItem) });

// ---- run.* ----------------------------------------------------------------------------------------------------------
// Each run kind's config and summary come from its spec (src/shared/runs/): one definition per kind.

/** The most shards one run may be split into. */
export const MAX_SHARDS = 10_000;
/** A run's uid: what every shard of a sharded run carries, and what merging matches. */
export const RunUid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a run uid (8-4-4-4-12 hex digits)');

/**
 * One process's share of a run split over a job array (README "Running on a cluster"): it runs only its items, into
 * a project file of its own, and leaves the run's aggregates to `run.merge`.
 */
export const ShardParams = z
  .strictObject({
    /** 0-based. */
    index: z.number().int().min(0),
    count: z.number().int().min(1).max(MAX_SHARDS),
    /** The shard's project file; default beside the project: `<project>.shards/<kind>-<uid prefix>-<index>of<count>.cliffscope`. */
    out: filePath.optional(),
    /** The run the shards belong to; default one derived from the kind, config, model and count (every task agrees). */
    runUid: RunUid.optional(),
  })
  .refine((s) => s.index < s.count, { message: 'index must be below count (shards count from 0)', path: ['index'] });

const runStartCommon = {
  project: filePath,
  model: ModelRef,
  /** The run's stored name. For probe runs it is also the probe's name. */
  name: runName.optional(),
  /** Labels for filtering and grouping runs (Compare); each once, no commas. */
  tags: RunTags.optional(),
  /** Continue this unfinished run (same kind, same model) instead of starting a new one; its stored config is used. */
  resume: rowId.optional(),
  /** Run only one shard's share, into its own file (not with `resume`: a shard file resumes itself). */
  shard: ShardParams.optional(),
};

function startParamsOf<K extends RunKind>(kind: K) {
  return z.strictObject({ ...runStartCommon, kind: z.literal(kind), config: specOf(kind).input.optional() });
}

/**
 * `run.start` (job): start (or resume) one pipeline run. `config` is required unless `resume` is given, and must be
 * left out with it (a resumed run keeps its stored config). Finished items are committed as they complete; a
 * cancelled run ends 'cancelled' with its finished items kept and can be resumed.
 */
export const RunStartParams = z.discriminatedUnion('kind', [
  startParamsOf('transcripts'),
  startParamsOf('probe'),
  startParamsOf('trace'),
  startParamsOf('heads'),
  startParamsOf('ablate'),
  startParamsOf('judge'),
  startParamsOf('select'),
  startParamsOf('truncate'),
  startParamsOf('causal'),
]);
export type RunStartParams = z.infer<typeof RunStartParams>;

const reportModel = z.strictObject({ path: z.string(), contentHash: z.string() }).nullable();
const reportItems = z.strictObject({ done: count, failed: count });

function reportOf<K extends RunKind>(kind: K) {
  const spec = specOf(kind);
  return z.strictObject({
    kind: z.literal(kind),
    run: RunSummary.extend({ kind: z.literal(kind), config: spec.config, versions: jsonObject }),
    model: reportModel,
    items: reportItems,
    /** The run's headline numbers; null until the run finishes. */
    summary: spec.summary.nullable(),
  });
}

/** A run's report: what ran (with its stored config), how far it got, and its headline numbers, typed per kind. */
export const RunReport = z.discriminatedUnion('kind', [
  reportOf('transcripts'),
  reportOf('probe'),
  reportOf('trace'),
  reportOf('heads'),
  reportOf('ablate'),
  reportOf('judge'),
  reportOf('select'),
  reportOf('truncate'),
  reportOf('causal'),
]);
export type RunReport = z.infer<typeof RunReport>;
export type RunReportOf<K extends RunKind> = Extract<RunReport, { kind: K }>;

/** The summary of a report of kind `kind` (null for another kind, or before the run finishes). */
export function summaryOf<K extends RunKind>(report: RunReport | null | undefined, kind: K): RunSummaryOf<K> | null {
  if (!report || report.kind !== kind) return null;
  return (report as RunReportOf<K>).summary as RunSummaryOf<K> | null;
}

export const RunStartResult = z.strictObject({
  runId: rowId,
  /** 'done', or 'cancelled' when the call was cancelled (finished items kept; resume with `resume: runId`). */
  status: RunStatus,
  report: RunReport,
  /** A shard's run: `runId` and `report` are the shard file's; merge it with `run.merge`. */
  shard: z
    .strictObject({
      file: z.string(),
      index: count,
      count: positive,
      runUid: z.string(),
      /** Items in this shard's share, and those done. */
      items: count,
      done: count,
    })
    .optional(),
});

/**
 * `run.merge` (job): merge shard files (what `run.start` with `shard` writes) into the project's run: the run is
 * created from the shards when the project does not have it; identical duplicate items are accepted once, a
 * conflicting or foreign shard is refused whole with the reason; safe to repeat as more shards finish. When every
 * item is in, the run's aggregates are computed from them and it is done; until then it is interrupted and the
 * result lists what is missing.
 */
export const RunMergeParams = z.strictObject({ project: filePath, files: z.array(filePath).min(1).max(MAX_SHARDS) });
export const ShardMergeSummary = z.strictObject({ file: z.string(), index: count, added: count, identical: count });
export const RunMergeResult = z.strictObject({
  runId: rowId,
  runUid: z.string(),
  kind: RunKind,
  /** The project did not have the run before this merge. */
  created: z.boolean(),
  files: z.array(ShardMergeSummary),
  items: z.strictObject({ expected: count, done: count, failed: count, missing: count }),
  /** The first 50 items not done, with the shard they belong to. */
  missing: z.array(z.strictObject({ key: z.string(), shard: count })),
  complete: z.boolean(),
  report: RunReport,
});

// ---- cluster.* (a run's shards as a Slurm job array) -----------------------------------------------------------------

/** Resources and placement of every array task (each becomes an #SBATCH line when given). */
export const SlurmResources = z.strictObject({
  partition: z.string().min(1).max(200).optional(),
  account: z.string().min(1).max(200).optional(),
  gpusPerTask: z.number().int().min(0).max(64).optional(),
  cpusPerTask: z.number().int().min(1).max(4096).optional(),
  /** As sbatch takes it: `32G`, `16000M`. */
  mem: z.string().regex(/^\d+[KMGT]?$/i, 'a size such as 32G or 16000M').optional(),
  /** As sbatch takes it: minutes, `HH:MM:SS` or `D-HH:MM:SS`. */
  time: z.string().regex(/^(\d+-)?\d+(:\d{2}){0,2}$/, 'minutes, HH:MM:SS or D-HH:MM:SS').optional(),
  /** At most this many tasks at once (`--array=0-(N-1)%MAX`). */
  maxParallel: z.number().int().min(1).max(MAX_SHARDS).optional(),
});

/**
 * `cluster.plan`: write a self-contained Slurm job directory for one run split into `shards`: the array script, the
 * command each task runs (the run's verb on its shard), a manifest, and a snapshot of the project as the tasks'
 * input. Nothing is submitted and no model is loaded; the project is only read.
 */
export const ClusterPlanParams = z.strictObject({
  /** The run, as run.start takes it (no resume, no shard). */
  run: RunStartParams,
  shards: z.number().int().min(1).max(MAX_SHARDS),
  /** The job directory to write (must not hold a job already). */
  jobDir: filePath,
  resources: SlurmResources.optional(),
  /** Shell lines sourced before each task (module loads, CUDA paths), from this file. */
  setupFile: filePath.optional(),
  /** How a node starts Node.js and Cliffscope; default `node` and this checkout's bin/cliffscope.js. */
  node: z.string().min(1).max(4096).optional(),
  cliffscope: z.string().min(1).max(4096).optional(),
});
export const ClusterCommands = z.strictObject({ submit: z.string(), status: z.string(), collect: z.string(), sbatch: z.string() });
export const ClusterPlanResult = z.strictObject({
  dir: z.string(),
  runUid: z.string(),
  kind: RunKind,
  shards: positive,
  /** Items per shard. */
  items: z.array(count),
  commands: ClusterCommands,
});

export const ShardState = z.enum(['done', 'running', 'pending', 'failed', 'cancelled', 'not-submitted', 'lost']);
export const ClusterShard = z.strictObject({
  index: count,
  state: ShardState,
  /** Items in its share, and those its shard file holds done. */
  items: count,
  done: count,
  exitCode: z.number().int().nullable(),
  /** What Slurm last said of the task (RUNNING, CANCELLED, …), when it knows it. */
  slurm: z.string().nullable(),
  file: z.string(),
  log: z.string(),
});

/** `cluster.submit`: sbatch the job directory's array (every shard, or the ones named). */
export const ClusterSubmitParams = z.strictObject({ jobDir: filePath, shards: z.array(count).min(1).max(MAX_SHARDS).optional() });
export const ClusterSubmitResult = z.strictObject({ jobId: z.string(), array: z.string() });

/** `cluster.status`: each shard's state from its exit file, squeue / sacct and its shard file. */
export const ClusterStatusParams = z.strictObject({ jobDir: filePath });
export const ClusterStatusResult = z.strictObject({
  dir: z.string(),
  project: z.string(),
  runUid: z.string(),
  kind: RunKind,
  shards: z.array(ClusterShard),
  submissions: z.array(z.strictObject({ jobId: z.string(), array: z.string(), at: z.string() })),
  /** What could not be read (e.g. sacct without accounting), and why. */
  notes: z.array(z.string()),
  commands: ClusterCommands,
});

/**
 * `cluster.collect` (job): merge every shard file there is into the project (run.merge), then resubmit only the
 * shards that failed, were cancelled or were lost (they resume their own files), unless `resubmit` is false or
 * sbatch is not here.
 */
export const ClusterCollectParams = z.strictObject({
  jobDir: filePath,
  /** Default the project the job was planned from. */
  project: filePath.optional(),
  /** Default true. */
  resubmit: z.boolean().optional(),
});
export const ClusterCollectResult = z.strictObject({
  merge: RunMergeResult.nullable(),
  resubmitted: z.strictObject({ jobId: z.string(), array: z.string(), shards: z.array(count) }).nullable(),
  status: ClusterStatusResult,
});

/**
 * `cluster.list`: the Slurm job directories planned from the project (cluster.plan records each), oldest first, with
 * the run the merge made of each (null until a first merge) and whether its directory is still there.
 */
export const ClusterListParams = z.strictObject({ project: filePath });
export const ClusterListResult = z.strictObject({
  jobs: z.array(
    z.strictObject({
      dir: z.string(),
      runUid: z.string(),
      kind: RunKind,
      name: z.string().nullable(),
      shards: positive,
      plannedAt: z.string(),
      runId: rowId.nullable(),
      /** The directory still holds its manifest. */
      exists: z.boolean(),
    }),
  ),
});

/** `run.report`: the report as data and as the CLI's text. */
export const RunReportParams = z.strictObject({ project: filePath, runId: rowId });
export const RunReportResult = z.strictObject({ report: RunReport, text: z.string() });

/**
 * `run.update`: rename a run (null: no name) or replace its tags. Allowed in any state. A probe run's probes keep
 * the name they were trained under (their name is part of their identity: name + version).
 */
export const RunUpdateParams = z
  .strictObject({ project: filePath, runId: rowId, name: runName.nullable().optional(), tags: RunTags.optional() })
  .refine((p) => p.name !== undefined || p.tags !== undefined, { message: 'give a new name or new tags', path: ['name'] });
export const RunUpdateResult = z.strictObject({ run: RunSummary });

/** `run.delete`: delete a run that is not running and that no other run stands on (run-handlers.ts dependentRuns), with everything it produced. */
export const RunDeleteParams = z.strictObject({ project: filePath, runId: rowId });
export const RunDeleteResult = z.strictObject({ deleted: rowId });

// ---- plot data ------------------------------------------------------------------------------------------------------


/** `trace.list`: one row per traced transcript of a run (under `probeId`, default the run's main probe). */
export const TraceListParams = z.strictObject({ project: filePath, runId: rowId, probeId: rowId.optional() });
export const TraceListResult = z.strictObject({
  runId: rowId,
  /** The probe listed; null when the run has no traces. */
  probeId: rowId.nullable(),
  /** Every probe that traced this run's transcripts (several for a residual-stack × tokens run). */
  probes: z.array(z.strictObject({ probeId: rowId, residIndex })),
  /** How many of the traces listed have a cliff (docs/METHOD.md §2), and the mean width of those cliffs. */
  cliffs: z.strictObject({ traces: count, withCliff: count, meanWidth: maybeNumber }),
  traces: z.array(
    TraceMetricsSummary.extend({
      transcriptId: rowId,
      itemId: rowId.nullable(),
      label: z.string().nullable(),
      /** At most 300 characters. */
      prompt: z.string(),
      headScaleKey: z.string().nullable(),
      /** Transcript length in tokens. */
      tokens: count,
    }),
  ),
});

/** `trace.get`: one transcript's refusal scores token by token, with the tokens as display text. */
export const TraceGetParams = z.strictObject({
  project: filePath,
  transcriptId: rowId,
  probeId: rowId.optional(),
  /** Only traces made by this run (a transcript may be traced by several runs); default any. */
  runId: rowId.optional(),
  /** Include perResid even when one probe traced the transcript. */
  perResid: z.boolean().optional(),
});
export const TraceGetResult = z.strictObject({
  transcriptId: rowId,
  /** The run that made the transcript, and the run / probe / residual-stack index of the trace shown. */
  transcriptRunId: rowId,
  runId: rowId.nullable(),
  probeId: rowId.nullable(),
  residIndex: residIndex.nullable(),
  itemId: rowId.nullable(),
  label: z.string().nullable(),
  prompt: z.string(),
  text: z.string(),
  headScaleKey: z.string().nullable(),
  finishReason: z.string().nullable(),
  /**
   * One per token the probe read (prompt + output, and the closing marker appended to thinking that did not close,
   * docs/METHOD.md §0); empty when the transcript has no trace.
   */
  scores: scoreList,
  /** The transcript's tokens, with that appended closing marker when the trace scored it (and the tokenizer loads). */
  tokenIds: z.array(count),
  /** Display text of each token (same length as tokenIds). */
  tokens: z.array(z.string()),
  /** 'ids' when the model's tokenizer could not be loaded and tokens are shown as `#id`. */
  tokensFrom: z.enum(['tokenizer', 'ids']),
  promptTokens: count,
  thinkingStart: z.number().int().nullable(),
  thinkingEnd: z.number().int().nullable(),
  /** t_b as the trace reads it: the appended closing marker's last token when thinking did not close. */
  answerBoundary: z.number().int().nullable(),
  metrics: TraceMetricsSummary.nullable(),
  /** Scores per probe (by residual-stack index) when several probes traced the transcript, or `perResid`. */
  perResid: z.array(z.strictObject({ probeId: rowId, residIndex, scores: scoreList })).optional(),
});

/** `trace.average`: the tail-aligned average of a run's traces (each cut at its answer boundary), 100 points. */
export const TraceAverageParams = z.strictObject({
  project: filePath,
  runId: rowId,
  probeId: rowId.optional(),
  /** Only transcripts whose dataset label is this ('unlabelled' = no label). */
  label: z.string().optional(),
  /** Only transcripts generated under this ablation setting (an ablate run's cell). */
  headScaleKey: z.string().optional(),
  /** Only transcripts of this dataset's items (an ablate run's harmful set). */
  datasetId: rowId.optional(),
  points: z.number().int().min(2).max(10_000).optional(),
});
export const TailAverage = z.strictObject({
  /** 0 = first generated token, 1 = t_b. */
  positions: z.array(z.number()),
  mean: scoreList,
  std: scoreList,
  count: z.array(count),
  /** Traces averaged. */
  traces: count,
  /** The shaded cliff region starts here (normalised position) and at this index. */
  cliffFrom: z.number(),
  cliffFirstIndex: count,
  /** The averaged curve itself has a cliff (docs/METHOD.md §2): only then is the region shaded. */
  hasCliff: z.boolean(),
});
export type TailAverage = z.infer<typeof TailAverage>;
export const TraceAverageResult = TailAverage.extend({
  runId: rowId,
  probeId: rowId.nullable(),
  label: z.string().nullable(),
});

export const HeadScore = z.strictObject({ layer: count, head: count, score: z.number() });

/** `heads.map`: a heads run's layers × heads attribution map (averaged, or one transcript's) and its ranking. */
export const HeadsMapParams = z.strictObject({ project: filePath, runId: rowId, transcriptId: rowId.optional() });
export const HeadsMapResult = z.strictObject({
  runId: rowId,
  /** null: the run's average over its transcripts. */
  transcriptId: rowId.nullable(),
  probeId: rowId.nullable(),
  layers: positive,
  heads: positive,
  /** Row-major [layers × heads]: scores[layer * heads + head]. */
  scores: scoreList,
  /** Standard deviation over transcripts per head (the average map only). */
  std: scoreList.optional(),
  /** Most negative first (refusal suppression heads), top 20. */
  suppression: z.array(HeadScore),
  /** Most positive first (refusal heads), top 20. */
  refusal: z.array(HeadScore),
  /** Transcripts with their own map in this run (for a picker). */
  transcriptIds: z.array(rowId),
  /** Per-token scores of one transcript, when the run kept them: [layers × heads × tokens], row-major. */
  perToken: z
    .strictObject({ tokens: count, tokenStrings: z.array(z.string()), data: scoreList })
    .optional(),
});

/** `heads.head`: one head of a heads run, for its page: its average, its rank, and its score in every transcript. */
export const HeadsHeadParams = z.strictObject({ project: filePath, runId: rowId, layer: count, head: count });
export const HeadsHeadResult = z.strictObject({
  runId: rowId,
  layer: count,
  head: count,
  /** Its score in the run's averaged map, and the standard deviation over transcripts. */
  mean: maybeNumber,
  std: maybeNumber,
  /** 1 = the run's most negative head (its strongest refusal suppression head), of `of` = the heads scored. */
  rank: positive.nullable(),
  of: positive,
  /** Its score in every transcript, most negative first: where it suppresses refusal most. */
  transcripts: z.array(
    z.strictObject({
      transcriptId: rowId,
      itemId: rowId.nullable(),
      label: z.string().nullable(),
      /** At most 300 characters. */
      prompt: z.string(),
      score: maybeNumber,
      /** The run kept this transcript's scores at every token. */
      perToken: z.boolean(),
    }),
  ),
});

/**
 * `heads.inspect` (job): one head on one transcript of a heads run, teacher-forced again with the run's probe and
 * attribution variant: its write along the probe at every token up to t_b (docs/METHOD.md §3), and which tokens its
 * query at t_b attends to. `model` must be the run's model (its hash is
 * checked).
 */
export const HeadsInspectParams = z.strictObject({ project: filePath, model: ModelRef, runId: rowId, transcriptId: rowId, layer: count, head: count });
export const HeadsInspectResult = z.strictObject({
  transcriptId: rowId,
  layer: count,
  head: count,
  variant: z.string(),
  /** Display text of each token read (prompt through t_b). */
  tokens: z.array(z.string()),
  /** The head's score at each of those tokens (the heads run's formula; at t_b it is the transcript's map cell). */
  scores: scoreList,
  promptTokens: count,
  thinkingStart: z.number().int().nullable(),
  thinkingEnd: z.number().int().nullable(),
  answerBoundary: count,
  /** The head's attention (blocks.{layer}.attn.hook_pattern) at query t_b over keys 0..t_b, one per token; sums to 1. */
  attention: scoreList,
});

export const SweepCell = z.strictObject({
  id: rowId,
  key: z.string(),
  control: z.enum(SWEEP_CONTROLS),
  k: count,
  fraction: maybeNumber,
  gamma: z.number(),
  seed: z.number().int().nullable(),
  /** [layer, head] pairs ablated. */
  heads: z.array(z.tuple([count, count])),
  /** null while the cell is not yet judged. */
  metrics: SweepCellMetrics.nullable(),
});
export type SweepCell = z.infer<typeof SweepCell>;

/** `sweep.cells`: an ablate run's cells with their metrics. */
export const SweepCellsParams = z.strictObject({ project: filePath, runId: rowId });
export const SweepCellsResult = z.strictObject({
  runId: rowId,
  /** Total heads of the model (L·H), for "% of heads" axes; null when unknown. */
  totalHeads: positive.nullable(),
  /**
   * Cells' metrics are computed from the answers stored so far: a sweep that is not done (cancelled, interrupted,
   * running) shows its finished answers, and `status` says whether it can be resumed.
   */
  cells: z.array(SweepCell),
  status: RunStatus,
  /** Answers each cell gets when the sweep is finished (its harmful and harmless prompts). */
  answersPerCell: count,
  /**
   * Every judge of the cells' answers, the headline one first: the sweep's own (runId null) and each finished judge
   * run over it (its verdicts named `run #N <judge>`). Cells' metrics.byJudge and agreement use these ids.
   */
  judges: z.array(z.strictObject({ id: z.string(), runId: rowId.nullable() })),
  /** The random controls over their seeds, per k and γ (sweeps with --random-seeds > 1). */
  randomSpread: z.array(RandomSpread),
});

/** `transcripts.list`: a page of a run's transcripts with their verdicts and final refusal score. */
export const TranscriptsListParams = z.strictObject({
  project: filePath,
  runId: rowId,
  /** One ablation setting; null = transcripts without a setting. Omitted = all. */
  headScaleKey: z.string().nullable().optional(),
  offset: count.optional(),
  /** Default 100, at most 500. */
  limit: z.number().int().min(1).max(500, 'at most 500 transcripts per page').optional(),
});
export const TranscriptsListResult = z.strictObject({
  total: count,
  offset: count,
  /**
   * The run whose transcripts are listed: `runId` itself, or, for a run that made none of its own (a trace / heads
   * run over a transcripts run, a judge run), the run it read them from.
   */
  fromRunId: rowId,
  transcripts: z.array(
    z.strictObject({
      id: rowId,
      itemId: rowId.nullable(),
      label: z.string().nullable(),
      prompt: z.string(),
      text: z.string(),
      /** Decoded thinking and answer (absent when the model's tokenizer cannot be loaded). */
      thinking: z.string().optional(),
      answer: z.string().optional(),
      finishReason: z.string().nullable(),
      headScaleKey: z.string().nullable(),
      tokens: count,
      answerBoundary: z.number().int().nullable(),
      verdicts: z.array(z.strictObject({ runId: rowId, judge: z.string(), verdict: z.string(), harmful: z.boolean().nullable() })),
      /** I' under the run's probe, when the transcript was traced. */
      final: maybeNumber.optional(),
    }),
  ),
});

/** `selection.export`: write a finished selection as fine-tuning files (LLaMA-Factory alpaca JSON, messages JSONL). */
/** `force`: replace the files and dataset_info.json entries of an earlier export in `outDir` (others are kept). */
export const SelectionExportParams = z.strictObject({ project: filePath, runId: rowId, outDir: filePath, force: z.boolean().optional() });
export const SelectionExportResult = z.strictObject({ files: z.array(z.string()) });

/** `selection.list`: a select run's ranked samples. */
export const SelectionListParams = z.strictObject({
  project: filePath,
  runId: rowId,
  selectedOnly: z.boolean().optional(),
  offset: count.optional(),
  limit: z.number().int().min(1).max(100_000).optional(),
});
export const SelectionListResult = z.strictObject({
  runId: rowId,
  total: count,
  selected: count,
  variant: z.string().nullable(),
  threshold: maybeNumber,
  /**
   * Samples whose score equals the threshold, and how many of them were selected: when not all were, the tie was
   * broken by the variant's rule (top-ms: lower I′, then input order; lowest-final: higher MS, then input order).
   */
  ties: z.strictObject({ atThreshold: count, selected: count }),
  rows: z.array(
    z.strictObject({
      itemId: rowId,
      transcriptId: rowId.nullable(),
      prompt: z.string(),
      score: maybeNumber,
      rank: z.number().int().nullable(),
      selected: z.boolean(),
      ms: maybeNumber,
      final: maybeNumber,
    }),
  ),
});

/** `probe.list`: the project's probes (optionally one model's). */
export const ProbeListParams = z.strictObject({ project: filePath, modelId: rowId.optional() });
export const ProbeListResult = z.strictObject({ probes: z.array(ProbeSummary) });

/** `probe.get`: one probe with its full metrics (per-epoch losses) and provenance; weights only when asked. */
export const ProbeGetParams = z.strictObject({ project: filePath, probeId: rowId, weights: z.boolean().optional() });
export const ProbeGetResult = z.strictObject({
  probe: ProbeSummary,
  bias: z.number(),
  provenance: jsonObject,
  weights: z.array(z.number()).optional(),
});

/** One headline number of a run, and its difference to the first compared run of the same kind. */
export const Headline = z.strictObject({
  key: z.string(),
  label: z.string(),
  /** How to show it (src/shared/compare.ts): percent (a fraction as %), count, tokens, or number (a score). */
  unit: z.enum(HEADLINE_UNITS_LIST),
  value: maybeNumber,
  /** value − the first compared run's value of the same kind and key; null for the first run or when unknown. */
  delta: maybeNumber,
});

/** Most runs one compare.runs call takes. */
export const MAX_COMPARED_RUNS = 50;

/**
 * `compare.runs`: any number of runs (2 to MAX_COMPARED_RUNS) side by side: headline numbers (with deltas and units),
 * the settings that differ, and each kind's plot data.
 */
export const CompareRunsParams = z.strictObject({
  project: filePath,
  runIds: z.array(rowId).min(2, 'compare at least 2 runs').max(MAX_COMPARED_RUNS, `compare at most ${MAX_COMPARED_RUNS} runs`),
});
export const CompareRunsResult = z.strictObject({
  /** Settings (dotted config paths) whose value is not the same in every run, each run's value in the order of `runs`. */
  configDiff: z.array(z.strictObject({ key: z.string(), values: z.array(z.json()) })),
  runs: z.array(
    z.strictObject({
      run: RunSummary,
      /** The model's checkpoint folder (its name is what the runs list shows); null when the run records none. */
      modelPath: z.string().nullable(),
      headline: z.array(Headline),
      /** Trace runs: the tail-aligned average of the main probe's traces. */
      average: TailAverage.optional(),
      /** Heads runs: the averaged map. */
      headsMap: z.strictObject({ layers: positive, heads: positive, scores: scoreList }).optional(),
      /** Ablate runs: the sweep's cells, and the model's L·H (the plots' x is k / (L·H)). */
      cells: z.array(SweepCell).optional(),
      totalHeads: positive.nullable().optional(),
    }),
  ),
});

/** Tables the CSV export knows; no SQL comes from the client. */
export const TableName = z.enum(['runs', 'traces', 'heads', 'cells', 'transcripts', 'selection']);

/** `table.csv`: one named table as CSV (RFC 4180). Every table but `runs` needs `runId`. */
export const TableCsvParams = z.strictObject({ project: filePath, query: TableName, runId: rowId.optional() });
export const TableCsvResult = z.strictObject({ csv: z.string(), rows: count, filename: z.string() });

/** `model.add` (job): compile (or reuse) the checkpoint's graph with progress, load it, and record it in the project. */
export const ModelAddParams = z.strictObject({
  project: z.string().trim().min(1).max(4096),
  model: ModelRef,
});
export const ModelAddResult = z.strictObject({
  modelId: z.number().int().positive(),
  contentHash: z.string().min(1),
  /** The execution provider that loaded it, and why better ones were skipped. */
  provider: z.string().min(1),
  providerNotes: z.array(z.string()),
  /** The compiled graph's cache key, and whether this call reused it. */
  compileKey: z.string().min(1),
  cached: z.boolean(),
  seconds: z.number().nonnegative(),
});

// ---- files -----------------------------------------------------------------------------------------------------------

/**
 * `files.list`: a folder's entries, for the browser's file chooser in serve mode (the desktop app uses native
 * dialogs). Like every path, `dir` is checked by the face first: serve lists only the folders it may use.
 */
export const FilesListParams = z.strictObject({
  dir: filePath,
  /** Include names starting with a dot. */
  hidden: z.boolean().optional(),
});
export const FileEntry = z.strictObject({
  name: z.string(),
  /** Absolute path. */
  path: z.string(),
  kind: z.enum(['folder', 'file']),
  /** What it looks like: a project file (.cliffscope), a checkpoint folder (has config.json), a dataset file (.csv, .tsv, .json, .jsonl). */
  looksLike: z.enum(['project', 'model', 'dataset', 'other']),
  /** Bytes (files only). */
  size: count.nullable(),
  modified: z.string().nullable(),
});
export type FileEntry = z.infer<typeof FileEntry>;
export const FilesListResult = z.strictObject({
  /** The folder listed (absolute, links resolved). */
  dir: z.string(),
  /** Its parent; null at the file system's root. */
  parent: z.string().nullable(),
  /** The user's home folder, for a "Home" button. */
  home: z.string(),
  /** Folders first, then files, each by name. */
  entries: z.array(FileEntry),
  /** More entries than listed (at most 5,000 are). */
  truncated: z.boolean(),
});

/** Every method the engine answers. Add new ones here; the handler table and the clients follow the types. */
export const api = {
  'app.info': { params: AppInfoParams, result: AppInfoResult },
  'model.inspect': { params: ModelInspectParams, result: ModelInspectResult },
  'generate.run': { params: GenerateRunParams, result: GenerateRunResult },
  'model.add': { params: ModelAddParams, result: ModelAddResult },
  'project.open': { params: ProjectOpenParams, result: ProjectOpenResult },
  'project.recent': { params: ProjectRecentParams, result: ProjectRecentResult },
  'project.remember': { params: ProjectRememberParams, result: ProjectRememberResult },
  'project.demo': { params: ProjectDemoParams, result: ProjectDemoResult },
  'project.export': { params: ProjectExportParams, result: ProjectExportResult },
  'project.import': { params: ProjectImportParams, result: ProjectImportResult },
  'dataset.preview': { params: DatasetPreviewParams, result: DatasetPreviewResult },
  'dataset.import': { params: DatasetImportParams, result: DatasetImportResult },
  'dataset.items': { params: DatasetItemsParams, result: DatasetItemsResult },
  'run.start': { params: RunStartParams, result: RunStartResult },
  'run.report': { params: RunReportParams, result: RunReportResult },
  'run.update': { params: RunUpdateParams, result: RunUpdateResult },
  'run.delete': { params: RunDeleteParams, result: RunDeleteResult },
  'run.merge': { params: RunMergeParams, result: RunMergeResult },
  'cluster.plan': { params: ClusterPlanParams, result: ClusterPlanResult },
  'cluster.submit': { params: ClusterSubmitParams, result: ClusterSubmitResult },
  'cluster.status': { params: ClusterStatusParams, result: ClusterStatusResult },
  'cluster.collect': { params: ClusterCollectParams, result: ClusterCollectResult },
  'cluster.list': { params: ClusterListParams, result: ClusterListResult },
  'trace.list': { params: TraceListParams, result: TraceListResult },
  'trace.get': { params: TraceGetParams, result: TraceGetResult },
  'trace.average': { params: TraceAverageParams, result: TraceAverageResult },
  'heads.map': { params: HeadsMapParams, result: HeadsMapResult },
  'heads.head': { params: HeadsHeadParams, result: HeadsHeadResult },
  'heads.inspect': { params: HeadsInspectParams, result: HeadsInspectResult },
  'sweep.cells': { params: SweepCellsParams, result: SweepCellsResult },
  'transcripts.list': { params: TranscriptsListParams, result: TranscriptsListResult },
  'selection.list': { params: SelectionListParams, result: SelectionListResult },
  'selection.export': { params: SelectionExportParams, result: SelectionExportResult },
  'probe.list': { params: ProbeListParams, result: ProbeListResult },
  'probe.get': { params: ProbeGetParams, result: ProbeGetResult },
  'compare.runs': { params: CompareRunsParams, result: CompareRunsResult },
  'table.csv': { params: TableCsvParams, result: TableCsvResult },
  'files.list': { params: FilesListParams, result: FilesListResult },
} as const satisfies Record<string, { params: z.ZodType; result: z.ZodType }>;

export type Api = typeof api;

/** Methods that run long: call them with a job id to get progress / log (and token) events and to cancel them. */
export const JOB_METHODS = Object.freeze(['generate.run', 'model.add', 'project.demo', 'run.start', 'heads.inspect', 'run.merge', 'cluster.collect'] as const satisfies readonly (keyof typeof api)[]);
export type Method = keyof Api;
export type ParamsOf<M extends Method> = z.infer<Api[M]['params']>;
export type ResultOf<M extends Method> = z.infer<Api[M]['result']>;

export type AppInfo = ResultOf<'app.info'>;
export type ModelInspection = ResultOf<'model.inspect'>;

export const METHODS = Object.freeze(Object.keys(api) as Method[]);

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(api, name);
}

/** Methods whose params may be left out entirely (every field optional). */
type ParamsArgs<M extends Method> =
  Record<never, never> extends ParamsOf<M> ? [params?: ParamsOf<M>] : [params: ParamsOf<M>];

/** A typed client: one async function per method. The preload bridge, the serve web client and the CLI share it. */
export type ApiClient = { readonly [M in Method]: (...args: ParamsArgs<M>) => Promise<ResultOf<M>> };

/** The generic form of one call. */
export type ApiInvoke = <M extends Method>(method: M, ...args: ParamsArgs<M>) => Promise<ResultOf<M>>;

// ---------------------------------------------------------------------------------------------------------------------
// Validation

export interface ContractIssue {
  /** Dotted path to the field at fault, e.g. `dir` or `versions.node`; empty for the whole value. */
  path: string;
  message: string;
}

export type ContractErrorCode = 'unknown-method' | 'bad-params' | 'bad-result' | 'bad-message';

/** A payload did not match the contract. `message` names the method and every field at fault. */
export class ContractError extends Error {
  readonly code: ContractErrorCode;
  readonly issues: ContractIssue[];

  constructor(code: ContractErrorCode, message: string, issues: ContractIssue[] = []) {
    super(message);
    this.name = 'ContractError';
    this.code = code;
    this.issues = issues;
  }
}

export function isContractError(e: unknown): e is ContractError {
  return e instanceof ContractError;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** zod issues → one issue per field, with unknown keys reported under their own names. */
export function toIssues(error: z.ZodError): ContractIssue[] {
  const issues: ContractIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
    } else {
      issues.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return issues;
}

function describeIssues(issues: ContractIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

/** "required (expected string)" instead of zod's "expected string, received undefined" for a missing field. */
function missingFieldMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type' && issue.input === undefined && issue.path && issue.path.length > 0) {
    return `required (expected ${issue.expected})`;
  }
  return undefined;
}

function parseWith<T extends z.ZodType>(
  schema: T,
  value: unknown,
  code: ContractErrorCode,
  what: string,
): z.infer<T> {
  const parsed = schema.safeParse(value, { error: missingFieldMessage });
  if (parsed.success) return parsed.data;
  const issues = toIssues(parsed.error);
  throw new ContractError(code, `${what}: ${describeIssues(issues)}`, issues);
}

function requireMethod(method: unknown): Method {
  if (isMethod(method)) return method;
  const shown = typeof method === 'string' ? `"${method}"` : `a ${method === null ? 'null' : typeof method}`;
  throw new ContractError('unknown-method', `unknown method ${shown}; known methods: ${METHODS.join(', ')}`, [
    { path: 'method', message: `unknown method ${shown}` },
  ]);
}

export type ValidatedRequest = { [M in Method]: { method: M; params: ParamsOf<M> } }[Method];

/**
 * Check a request from outside (IPC, HTTP, CLI argv): the method must exist and the params must match its schema
 * exactly (no missing, mistyped or extra fields). `undefined` params count as `{}`. Throws a `ContractError` whose
 * message names the method and each field at fault.
 */
export function validateRequest<M extends Method>(method: M, params: unknown): { method: M; params: ParamsOf<M> };
export function validateRequest(method: unknown, params: unknown): ValidatedRequest;
export function validateRequest(method: unknown, params: unknown): ValidatedRequest {
  const m = requireMethod(method);
  const value = parseWith(api[m].params, params === undefined ? {} : params, 'bad-params', `invalid params for ${m}`);
  return { method: m, params: value } as ValidatedRequest;
}

/** Check what a handler (or a server) returned for `method`. Throws a `ContractError` naming each field at fault. */
export function validateResult<M extends Method>(method: M, result: unknown): ResultOf<M> {
  const m = requireMethod(method);
  return parseWith(api[m].result, result, 'bad-result', `invalid result from ${m}`) as ResultOf<M>;
}

// ---------------------------------------------------------------------------------------------------------------------
// Wire envelopes (IPC reply, HTTP body)

/** An error as it crosses the boundary: plain data, no stack. Engine errors keep their code, file and hint. */
export const ApiErrorInfo = z.strictObject({
  /** `unknown-method`, `bad-params`, `bad-result`, `forbidden`, an engine error code, or `internal`. */
  code: z.string().min(1),
  message: z.string(),
  file: z.string().optional(),
  hint: z.string().optional(),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ApiErrorInfo = z.infer<typeof ApiErrorInfo>;

/** The body of a request in serve mode (`POST /api/invoke`). */
export const ApiRequest = z.strictObject({
  method: z.string().min(1),
  params: z.unknown().optional(),
});
export type ApiRequest = z.infer<typeof ApiRequest>;

/** What every transport answers: a result or an error, never a thrown exception across the boundary. */
export const ApiResponse = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ ok: z.literal(false), error: ApiErrorInfo }),
]);
export type ApiResponse<R = unknown> = { ok: true; result: R } | { ok: false; error: ApiErrorInfo };

export function validateResponse(value: unknown): ApiResponse {
  return parseWith(ApiResponse, value, 'bad-message', 'malformed API response') as ApiResponse;
}

// ---------------------------------------------------------------------------------------------------------------------
// Job events: what a long job (compile, sweep, probe training) streams while it runs.

const jobId = z.string().min(1).max(128);
/** Milliseconds since the Unix epoch when the event was emitted. */
const at = z.number().int().nonnegative();

export const JobEvent = z.discriminatedUnion('kind', [
  z.strictObject({
    jobId,
    at,
    kind: z.literal('progress'),
    /** Units finished so far. */
    done: z.number().nonnegative(),
    /** Units in all; null while unknown. */
    total: z.number().positive().nullable(),
    /** What is being worked on now, e.g. `layer 12/28`. */
    label: z.string().optional(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('token'),
    /** Which prompt of the call (index into its prompts). */
    prompt: z.number().int().nonnegative(),
    tokenId: z.number().int().nonnegative(),
    /** Position of the token in the transcript (prompt + output). */
    position: z.number().int().nonnegative(),
    /** The text this token adds to the prompt's output (may be empty mid-character). */
    text: z.string(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('score'),
    /** Which prompt of the call. */
    prompt: z.number().int().nonnegative(),
    /** Transcript position whose residual the live probe just read (prompt + output). */
    position: z.number().int().nonnegative(),
    score: z.number(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('done'),
    /** The job's result, validated against its own method's schema by whoever started it. */
    result: z.unknown().optional(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('error'),
    error: ApiErrorInfo,
  }),
]);
export type JobEvent = z.infer<typeof JobEvent>;
export type JobEventKind = JobEvent['kind'];

export function validateJobEvent(value: unknown): JobEvent {
  return parseWith(JobEvent, value, 'bad-message', 'malformed job event');
}
