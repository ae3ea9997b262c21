/**
 * Row shapes the project store reads and writes. Columns are snake_case in SQL and camelCase here; JSON columns come
 * back parsed, BLOB columns as typed arrays, 0/1 flags as booleans.
 */
import type { RejectedRow } from '../engine/datasets/import.js';
import type { ITEM_STATUSES, RUN_KINDS, RUN_STATUSES, SWEEP_CONTROLS } from './schema.js';

export type RunKind = (typeof RUN_KINDS)[number];
export type RunStatus = (typeof RUN_STATUSES)[number];
export type ItemStatus = (typeof ITEM_STATUSES)[number];
export type SweepControl = (typeof SWEEP_CONTROLS)[number];

/** Any JSON-serialisable value (object keys are stored sorted, so equal objects store as equal text). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface ModelRow {
  id: number;
  name: string | null;
  path: string;
  contentHash: string;
  config: JsonObject;
  compileOptions: JsonObject;
  createdAt: string;
}
export interface NewModel {
  path: string;
  contentHash: string;
  name?: string | null;
  /** The checkpoint's parsed config.json (ModelConfig) and the compile options; stored as JSON. */
  config?: object;
  compileOptions?: object;
}

export interface DatasetRow {
  id: number;
  name: string;
  sourceFile: string | null;
  format: string | null;
  contentHash: string;
  mapping: JsonObject;
  columns: string[];
  itemCount: number;
  rejectedCount: number;
  rejected: RejectedRow[];
  createdAt: string;
}

export interface ItemRow {
  id: number;
  datasetId: number;
  idx: number;
  /** Line in the source file (null when the items did not come from a file). */
  line: number | null;
  prompt: string;
  response: string | null;
  label: string | null;
  category: string | null;
  extra: JsonObject;
}

export interface RunRow {
  id: number;
  uid: string;
  kind: RunKind;
  name: string | null;
  /** Labels for filtering and grouping runs (project format 3). */
  tags: string[];
  modelId: number | null;
  datasetId: number | null;
  parentRunId: number | null;
  config: JsonObject;
  versions: JsonObject;
  status: RunStatus;
  error: string | null;
  ownerHost: string | null;
  ownerPid: number | null;
  ownerToken: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}
export interface NewRun {
  kind: RunKind;
  /** Default a new random uid. Given when the run is one of a planned set (the shards of a sharded run share it). */
  uid?: string;
  name?: string | null;
  tags?: readonly string[];
  modelId?: number | null;
  datasetId?: number | null;
  parentRunId?: number | null;
  /** Everything that shapes the results, seeds included, so the run can be repeated (its kind's config shape). */
  config?: object;
  /** Engine, execution provider and library versions. */
  versions?: JsonObject;
}

export interface RunItemRow {
  id: number;
  runId: number;
  key: string;
  status: ItemStatus;
  /** What the item's pipeline kept with it (its own shape per run kind). */
  payload: unknown;
  error: string | null;
  createdAt: string;
}

export interface ProbeRow {
  id: number;
  uid: string;
  modelId: number;
  runId: number | null;
  name: string;
  version: number;
  /** The residual-stack index it reads: 0 = embeddings, i+1 = after block i, L+1 = the final norm. */
  residIndex: number;
  positionRule: string;
  weights: Float32Array;
  bias: number;
  metrics: JsonObject;
  provenance: JsonObject;
  createdAt: string;
}
export interface NewProbe {
  modelId: number;
  runId?: number | null;
  name: string;
  /** Omitted: one more than the latest version of this name for this model. */
  version?: number;
  residIndex: number;
  positionRule: string;
  weights: Float32Array | readonly number[];
  bias: number;
  metrics?: object;
  provenance?: object;
}

export interface TranscriptRow {
  id: number;
  uid: string;
  runId: number;
  itemId: number | null;
  prompt: string;
  tokenIds: Int32Array;
  promptTokens: number;
  text: string;
  thinkingStart: number | null;
  thinkingEnd: number | null;
  answerBoundary: number | null;
  finishReason: string | null;
  headScaleKey: string | null;
  createdAt: string;
}
export interface NewTranscript {
  runId: number;
  itemId?: number | null;
  prompt: string;
  tokenIds: Int32Array | readonly number[];
  promptTokens: number;
  text: string;
  thinkingStart?: number | null;
  thinkingEnd?: number | null;
  answerBoundary?: number | null;
  finishReason?: string | null;
  headScaleKey?: string | null;
}

export interface TraceRow {
  id: number;
  runId: number;
  transcriptId: number;
  probeId: number;
  /** The probe's residual-stack index. */
  residIndex: number;
  scores: Float32Array;
  plateau: number | null;
  final: number | null;
  /** Misalignment score MS = plateau − final. */
  ms: number | null;
  steepestDropPos: number | null;
  cliffWidth: number | null;
  createdAt: string;
}
export type NewTrace = Omit<TraceRow, 'id' | 'createdAt' | 'scores' | 'plateau' | 'final' | 'ms' | 'steepestDropPos' | 'cliffWidth'> & {
  scores: Float32Array | readonly number[];
  plateau?: number | null;
  final?: number | null;
  ms?: number | null;
  steepestDropPos?: number | null;
  cliffWidth?: number | null;
};

export interface HeadMapRow {
  id: number;
  runId: number;
  /** null: averaged over the run's transcripts. */
  transcriptId: number | null;
  probeId: number | null;
  positionRule: string;
  layers: number;
  heads: number;
  /** [layers, heads], row-major: scores[layer * heads + head]. */
  scores: Float32Array;
  tokens: number | null;
  /** [layers, heads, tokens], row-major, when kept. */
  perToken: Float32Array | null;
  createdAt: string;
}
export interface NewHeadMap {
  runId: number;
  transcriptId?: number | null;
  probeId?: number | null;
  positionRule: string;
  layers: number;
  heads: number;
  scores: Float32Array | readonly number[];
  tokens?: number | null;
  perToken?: Float32Array | null;
}

export interface SweepCellRow {
  id: number;
  runId: number;
  headScaleKey: string;
  control: SweepControl;
  k: number;
  fraction: number | null;
  gamma: number;
  seed: number | null;
  heads: [number, number][];
  metrics: JsonObject;
  createdAt: string;
}
export interface NewSweepCell {
  runId: number;
  headScaleKey: string;
  control: SweepControl;
  k: number;
  fraction?: number | null;
  gamma: number;
  seed?: number | null;
  heads?: [number, number][];
  metrics?: JsonObject;
}

export interface VerdictRow {
  id: number;
  runId: number;
  transcriptId: number;
  judge: string;
  verdict: string;
  harmful: boolean | null;
  score: number | null;
  detail: JsonObject;
  createdAt: string;
}
export interface NewVerdict {
  runId: number;
  transcriptId: number;
  judge: string;
  verdict: string;
  harmful?: boolean | null;
  score?: number | null;
  detail?: JsonObject;
}

export interface SelectionRow {
  id: number;
  runId: number;
  itemId: number;
  transcriptId: number | null;
  score: number | null;
  rank: number | null;
  selected: boolean;
  createdAt: string;
}
export interface NewSelection {
  runId: number;
  itemId: number;
  transcriptId?: number | null;
  score?: number | null;
  /** 1-based rank in the selection order, and whether the item is in the selection. */
  rank?: number | null;
  selected?: boolean;
}
