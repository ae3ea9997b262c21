/**
 * Store rows → the contract's JSON shapes (src/shared/contract.ts): typed arrays become number lists, NaN becomes
 * null, and only the fields the contract names are passed on.
 */
import type { z } from 'zod';
import { type DatasetItem, type DatasetSummary, type ModelSummary, ProbeMetrics, type ProbeSummary, type RunSummary, type SweepCell, type TailAverage } from '../../shared/contract.js';
import { isUncalibrated } from '../../shared/method.js';
import { SweepCellMetrics } from '../../shared/runs/ablate.js';
import { ProbeCalibration } from '../../shared/runs/probe.js';
import { jsonSafe } from '../store/tabular.js';
import type { DatasetRow, ItemRow, JsonObject, JsonValue, ModelRow, ProbeRow, RunRow, SweepCellRow } from '../store/types.js';
import { averageHasCliff, type TailAlignedAverage } from '../engine/analysis/trace.js';

type Json = z.infer<ReturnType<typeof z.json>>;
type JsonRecord = Record<string, Json>;

/** A finite number, or null. */
export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function int(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

/** A score list for the wire: NaN / ±Infinity → null. */
export function scores(v: ArrayLike<number>): (number | null)[] {
  return Array.from(v, (x) => (Number.isFinite(x) ? x : null));
}

/** Any stored JSON object → a JSON-safe record. */
export function jsonRecord(v: unknown): JsonRecord {
  const safe = jsonSafe(v);
  return safe !== null && typeof safe === 'object' && !Array.isArray(safe) ? (safe as JsonRecord) : {};
}

export function modelSummary(m: ModelRow): ModelSummary {
  const c = m.config as Record<string, JsonValue>;
  return {
    id: m.id,
    name: m.name,
    path: m.path,
    contentHash: m.contentHash,
    architecture: typeof c.architecture === 'string' ? c.architecture : null,
    layers: int(c.numLayers),
    heads: int(c.numHeads),
    hidden: int(c.hiddenSize),
    createdAt: m.createdAt,
  };
}

export function mappingOf(v: unknown): DatasetSummary['mapping'] {
  const m = (v ?? {}) as Record<string, unknown>;
  const out: DatasetSummary['mapping'] = { prompt: typeof m.prompt === 'string' ? m.prompt : '' };
  for (const f of ['response', 'label', 'category', 'safe_response', 'fileLabel'] as const) if (typeof m[f] === 'string') out[f] = m[f] as string;
  return out;
}

export function datasetSummary(d: DatasetRow): DatasetSummary {
  return {
    id: d.id,
    name: d.name,
    sourceFile: d.sourceFile,
    format: d.format,
    itemCount: d.itemCount,
    rejectedCount: d.rejectedCount,
    columns: d.columns.map(String),
    mapping: mappingOf(d.mapping),
    createdAt: d.createdAt,
  };
}

const counts = (v: unknown) => {
  const c = v as { positive?: unknown; negative?: unknown } | null;
  return c && typeof c === 'object' && int(c.positive) !== null && int(c.negative) !== null ? { positive: c.positive as number, negative: c.negative as number } : undefined;
};
const numList = (v: unknown) => (Array.isArray(v) ? v.map((x) => num(x)) : undefined);

/** A probe's stored calibration (absent on probes trained before it was recorded), with the uncalibrated flag. */
function calibrationOf(v: unknown): z.infer<typeof ProbeMetrics>['calibration'] {
  const c = ProbeCalibration.safeParse(jsonSafe(v));
  if (!c.success) return undefined;
  const { positive, negative } = c.data.meanScore;
  return { ...c.data, uncalibrated: positive !== null && negative !== null && isUncalibrated({ meanScore: { positive, negative } }) };
}

/** What was fitted and why, as stored (absent on probes trained before it was recorded). */
function trainingOf(v: unknown): z.infer<typeof ProbeMetrics>['training'] {
  const t = ProbeMetrics.shape.training.safeParse(jsonSafe(v));
  return t.success ? t.data : undefined;
}

/** The stored probe metrics, picked field by field (per-epoch lists only when `full`). */
export function probeMetrics(m: JsonObject, full: boolean): z.infer<typeof ProbeMetrics> {
  const out: z.infer<typeof ProbeMetrics> = {};
  for (const k of ['trainAccuracy', 'valAccuracy', 'valAuroc'] as const) if (k in m) out[k] = num(m[k]);
  for (const k of ['bestEpoch', 'nTrain', 'nVal'] as const) if (k in m) out[k] = int(m[k]);
  const cc = counts(m.classCounts);
  if (cc) out.classCounts = cc;
  const icc = counts(m.inputClassCounts);
  if (icc) out.inputClassCounts = icc;
  const calibration = calibrationOf(m.calibration);
  if (calibration) out.calibration = calibration;
  const training = trainingOf(m.training);
  if (training) out.training = training;
  if (full) {
    for (const k of ['trainLoss', 'valLoss', 'valAccuracyPerEpoch'] as const) {
      const l = numList(m[k]);
      if (l) out[k] = l;
    }
  }
  return out;
}

export function probeSummary(p: ProbeRow, full = false): ProbeSummary {
  return {
    id: p.id,
    uid: p.uid,
    modelId: p.modelId,
    runId: p.runId,
    name: p.name,
    version: p.version,
    residIndex: p.residIndex,
    positionRule: p.positionRule,
    dim: p.weights.length,
    metrics: probeMetrics(p.metrics, full),
    createdAt: p.createdAt,
  };
}

export function runSummary(r: RunRow): RunSummary {
  return {
    id: r.id,
    uid: r.uid,
    kind: r.kind,
    name: r.name,
    tags: r.tags,
    status: r.status,
    error: r.error,
    modelId: r.modelId,
    datasetId: r.datasetId,
    parentRunId: r.parentRunId,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}

export function sweepCell(c: SweepCellRow): SweepCell {
  // Metrics are stored once the cell's transcripts are judged (see the ablate pipeline); until then, none.
  const metrics = SweepCellMetrics.safeParse(c.metrics);
  return {
    id: c.id,
    key: c.headScaleKey,
    control: c.control,
    k: c.k,
    fraction: num(c.fraction),
    gamma: c.gamma,
    seed: c.seed,
    heads: c.heads.map(([l, h]) => [l, h] as [number, number]),
    metrics: metrics.success ? metrics.data : null,
  };
}

/** A dataset item as the API shows it (a preview's have no id yet). */
export function datasetItem(it: Omit<ItemRow, 'id' | 'datasetId' | 'extra'> & { id?: number; extra: unknown }): DatasetItem {
  return {
    ...(it.id !== undefined ? { id: it.id } : {}),
    idx: it.idx,
    line: it.line,
    prompt: it.prompt,
    response: it.response,
    label: it.label,
    category: it.category,
    extra: jsonRecord(it.extra),
  };
}

export function tailAverage(a: TailAlignedAverage): TailAverage {
  return {
    positions: Array.from(a.positions),
    mean: scores(a.mean),
    std: scores(a.std),
    count: Array.from(a.count),
    traces: a.traces,
    cliffFrom: a.cliffRegion.from,
    cliffFirstIndex: a.cliffRegion.firstIndex,
    hasCliff: averageHasCliff(a),
  };
}

/** Keep the first `n` characters of a string (prompts in lists). */
export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
