/**
 * Row mapping shared by the store's aggregates: SQL columns (snake_case, JSON text, little-endian BLOBs, 0/1 flags)
 * to the typed rows of types.ts, and the few conversions going the other way.
 */
import { blobToFloat32, blobToInt32 } from './blobs.js';
import { MAX_RUN_TAGS } from '../../shared/values.js';
import { parseJson } from './json.js';
import type { DatasetRow, HeadMapRow, ItemRow, ModelRow, ProbeRow, RunItemRow, RunRow, RunStatus, SelectionRow, SweepCellRow, TraceRow, TranscriptRow, VerdictRow } from './types.js';

export type Row = Record<string, unknown>;

export const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
export const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
/** NaN and ±Infinity cannot live in a REAL column (SQLite turns NaN into NULL anyway); store NULL explicitly. */
export const real = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? null : v);
export const flag = (v: boolean | null | undefined) => (v === null || v === undefined ? null : v ? 1 : 0);

export function modelFromRow(r: Row): ModelRow {
  return {
    id: Number(r.id),
    name: str(r.name),
    path: String(r.path),
    contentHash: String(r.content_hash),
    config: parseJson(r.config as string, {}),
    compileOptions: parseJson(r.compile_options as string, {}),
    createdAt: String(r.created_at),
  };
}

export function datasetFromRow(r: Row): DatasetRow {
  return {
    id: Number(r.id),
    name: String(r.name),
    sourceFile: str(r.source_file),
    format: str(r.format),
    contentHash: String(r.content_hash),
    mapping: parseJson(r.mapping as string, {}),
    columns: parseJson(r.columns as string, []),
    itemCount: Number(r.item_count),
    rejectedCount: Number(r.rejected_count),
    rejected: parseJson(r.rejected as string, []),
    createdAt: String(r.created_at),
  };
}

export function itemFromRow(r: Row): ItemRow {
  return {
    id: Number(r.id),
    datasetId: Number(r.dataset_id),
    idx: Number(r.idx),
    line: num(r.source_line),
    prompt: String(r.prompt),
    response: str(r.response),
    label: str(r.label),
    category: str(r.category),
    extra: parseJson(r.extra as string, {}),
  };
}

/** A run's stored tags: the strings of a JSON list (a damaged or foreign value reads as no tags). */
function tagList(v: unknown): string[] {
  let parsed: unknown = [];
  try {
    parsed = typeof v === 'string' ? parseJson<unknown>(v, []) : [];
  } catch {
    // not JSON (a project file edited by hand): no tags
  }
  return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string' && t.length > 0).slice(0, MAX_RUN_TAGS) : [];
}

export function runFromRow(r: Row): RunRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    kind: r.kind as RunRow['kind'],
    name: str(r.name),
    tags: tagList(r.tags),
    modelId: num(r.model_id),
    datasetId: num(r.dataset_id),
    parentRunId: num(r.parent_run_id),
    config: parseJson(r.config as string, {}),
    versions: parseJson(r.versions as string, {}),
    status: r.status as RunStatus,
    error: str(r.error),
    ownerHost: str(r.owner_host),
    ownerPid: num(r.owner_pid),
    ownerToken: str(r.owner_token),
    createdAt: String(r.created_at),
    startedAt: str(r.started_at),
    finishedAt: str(r.finished_at),
  };
}

export function runItemFromRow(r: Row): RunItemRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    key: String(r.key),
    status: r.status as RunItemRow['status'],
    payload: parseJson(r.payload as string, {}),
    error: str(r.error),
    createdAt: String(r.created_at),
  };
}

export function probeFromRow(r: Row): ProbeRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    modelId: Number(r.model_id),
    runId: num(r.run_id),
    name: String(r.name),
    version: Number(r.version),
    residIndex: Number(r.resid_index),
    positionRule: String(r.position_rule),
    weights: blobToFloat32(r.weights as Buffer),
    bias: Number(r.bias),
    metrics: parseJson(r.metrics as string, {}),
    provenance: parseJson(r.provenance as string, {}),
    createdAt: String(r.created_at),
  };
}

export function transcriptFromRow(r: Row): TranscriptRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    runId: Number(r.run_id),
    itemId: num(r.item_id),
    prompt: String(r.prompt),
    tokenIds: blobToInt32(r.token_ids as Buffer),
    promptTokens: Number(r.prompt_tokens),
    text: String(r.text),
    thinkingStart: num(r.thinking_start),
    thinkingEnd: num(r.thinking_end),
    answerBoundary: num(r.answer_boundary),
    finishReason: str(r.finish_reason),
    headScaleKey: str(r.head_scale_key),
    createdAt: String(r.created_at),
  };
}

export function traceFromRow(r: Row): TraceRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: Number(r.transcript_id),
    probeId: Number(r.probe_id),
    residIndex: Number(r.resid_index),
    scores: blobToFloat32(r.scores as Buffer),
    plateau: num(r.plateau),
    final: num(r.final),
    ms: num(r.ms),
    steepestDropPos: num(r.steepest_drop_pos),
    cliffWidth: num(r.cliff_width),
    createdAt: String(r.created_at),
  };
}

export function headMapFromRow(r: Row): HeadMapRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: num(r.transcript_id),
    probeId: num(r.probe_id),
    positionRule: String(r.position_rule),
    layers: Number(r.layers),
    heads: Number(r.heads),
    scores: blobToFloat32(r.scores as Buffer),
    tokens: num(r.tokens),
    perToken: r.per_token ? blobToFloat32(r.per_token as Buffer) : null,
    createdAt: String(r.created_at),
  };
}

export function sweepCellFromRow(r: Row): SweepCellRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    headScaleKey: String(r.head_scale_key),
    control: r.control as SweepCellRow['control'],
    k: Number(r.k),
    fraction: num(r.fraction),
    gamma: Number(r.gamma),
    seed: num(r.seed),
    heads: parseJson(r.heads as string, []),
    metrics: parseJson(r.metrics as string, {}),
    createdAt: String(r.created_at),
  };
}

export function verdictFromRow(r: Row): VerdictRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: Number(r.transcript_id),
    judge: String(r.judge),
    verdict: String(r.verdict),
    harmful: r.harmful === null ? null : r.harmful === 1,
    score: num(r.score),
    detail: parseJson(r.detail as string, {}),
    createdAt: String(r.created_at),
  };
}

export function selectionFromRow(r: Row): SelectionRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    itemId: Number(r.item_id),
    transcriptId: num(r.transcript_id),
    score: num(r.score),
    rank: num(r.rank),
    selected: r.selected === 1,
    createdAt: String(r.created_at),
  };
}
