/**
 * Store rows → the contract's JSON shapes (src/shared/contract.ts): typed arrays become number lists, NaN becomes
 * null, and only the fields the contract names are passed on.
 */
import type { z } from 'zod';
import type { DatasetSummary, ModelSummary, ProbeMetrics, ProbeSummary, RunReport, RunSummary, SweepCell, TailAverage } from '../../shared/contract.js';
import type { RunReport as EngineRunReport } from '../engine/pipelines/report.js';
import { jsonSafe } from '../engine/store/tabular.js';
import type { DatasetRow, JsonObject, JsonValue, ModelRow, ProbeRow, RunRow, SweepCellRow } from '../engine/store/types.js';
import type { TailAlignedAverage } from '../engine/analysis/trace.js';
import { isUncalibrated } from '../engine/analysis/probe.js';

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
  for (const f of ['response', 'label', 'category'] as const) if (typeof m[f] === 'string') out[f] = m[f] as string;
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
  const c = v as JsonObject | null | undefined;
  const mean = c?.meanScore as JsonObject | undefined;
  if (!c || typeof c !== 'object' || !mean) return undefined;
  const positive = num(mean.positive);
  const negative = num(mean.negative);
  return {
    set: c.set === 'train' ? 'train' : 'validation',
    loss: num(c.loss),
    chanceLoss: Math.LN2,
    meanScore: { positive, negative },
    scoreGap: num(c.scoreGap),
    ece: num(c.ece),
    eceBins: int(c.eceBins) ?? 10,
    uncalibrated: positive !== null && negative !== null && isUncalibrated({ meanScore: { positive, negative } }),
  };
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
  const cal = calibrationOf(m.calibration);
  if (cal) out.calibration = cal;
  const training = m.training as JsonObject | undefined;
  if (training && typeof training === 'object' && typeof training.reason === 'string') {
    out.training = {
      preset: String(training.preset),
      optimizer: String(training.optimizer),
      l2: num(training.l2),
      reason: training.reason,
      iterations: int(training.iterations),
      converged: typeof training.converged === 'boolean' ? training.converged : null,
      gradientNorm: num(training.gradientNorm),
      kept: String(training.kept),
    };
  }
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
    layer: p.layer,
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

export function runReportJson(r: EngineRunReport): RunReport {
  return {
    run: { ...runSummary(r.run), config: jsonRecord(r.run.config), versions: jsonRecord(r.run.versions) },
    model: r.model ? { path: r.model.path, contentHash: r.model.contentHash } : null,
    items: { done: r.items.done, failed: r.items.failed },
    summary: r.summary ? jsonRecord(r.summary) : null,
  };
}

/** A cell's count of transcripts whose thinking never closed (absent on cells judged before it was counted). */
function notClosedOf(v: unknown): { thinkingNotClosed?: { harmful: number; harmless: number } } {
  const o = v as { harmful?: unknown; harmless?: unknown } | null | undefined;
  const harmful = int(o?.harmful);
  const harmless = int(o?.harmless);
  return harmful !== null && harmless !== null ? { thinkingNotClosed: { harmful, harmless } } : {};
}

export function sweepCell(c: SweepCellRow): SweepCell {
  const m = c.metrics as Record<string, JsonValue>;
  const judged = Object.keys(m).length > 0;
  return {
    id: c.id,
    key: c.headScaleKey,
    control: c.control,
    k: c.k,
    fraction: num(c.fraction),
    gamma: c.gamma,
    seed: c.seed,
    heads: c.heads.map(([l, h]) => [l, h] as [number, number]),
    metrics: judged
      ? {
          asr: num(m.asr),
          overRefusal: num(m.overRefusal),
          meanFinal: num(m.meanFinal),
          meanAnswerTokens: num(m.meanAnswerTokens),
          harmful: int(m.harmful) ?? 0,
          harmless: int(m.harmless) ?? 0,
          judge: typeof m.judge === 'string' ? m.judge : null,
          ...notClosedOf(m.thinkingNotClosed),
        }
      : null,
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
  };
}

/** Keep the first `n` characters of a string (prompts in lists). */
export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
