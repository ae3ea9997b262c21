/**
 * Typed views of the `summary` a run stores (run.report's `summary`, free-form JSON per kind, written by the
 * engine's pipelines). Every field is read defensively: a missing or mistyped field reads as null, never throws.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Summary = Record<string, Json> | null | undefined;

export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
export function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
function objects(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)) : [];
}

export interface ProbeRunView {
  samples: number | null;
  positives: number | null;
  negatives: number | null;
  skippedNotRefusal: number | null;
  skippedNoPosition: number | null;
  probes: { layer: number; probeId: number; valAccuracy: number | null; valAuroc: number | null }[];
  bestProbeId: number | null;
  bestLayer: number | null;
}

export function probeRunView(s: Summary): ProbeRunView {
  return {
    samples: num(s?.samples),
    positives: num(s?.positives),
    negatives: num(s?.negatives),
    skippedNotRefusal: num(s?.skippedNotRefusal),
    skippedNoPosition: num(s?.skippedNoPosition),
    probes: objects(s?.probes).flatMap((p) => {
      const layer = num(p.layer);
      const probeId = num(p.probeId);
      return layer === null || probeId === null ? [] : [{ layer, probeId, valAccuracy: num(p.valAccuracy), valAuroc: num(p.valAuroc) }];
    }),
    bestProbeId: num(s?.bestProbeId),
    bestLayer: num(s?.bestLayer),
  };
}

export interface TraceStats {
  transcripts: number | null;
  withBoundary: number | null;
  meanPlateau: number | null;
  meanFinal: number | null;
  meanMs: number | null;
  meanWidth: number | null;
}

function traceStats(s: Record<string, unknown> | null | undefined): TraceStats {
  return {
    transcripts: num(s?.transcripts),
    withBoundary: num(s?.withBoundary),
    meanPlateau: num(s?.meanPlateau),
    meanFinal: num(s?.meanFinal),
    meanMs: num(s?.meanMs),
    meanWidth: num(s?.meanWidth),
  };
}

export interface TraceRunView extends TraceStats {
  probeId: number | null;
  byLabel: { label: string; stats: TraceStats }[];
}

export function traceRunView(s: Summary): TraceRunView {
  const byLabel = s?.byLabel;
  return {
    ...traceStats(s),
    probeId: num(s?.probeId),
    byLabel:
      byLabel && typeof byLabel === 'object' && !Array.isArray(byLabel)
        ? Object.entries(byLabel).map(([label, v]) => ({ label, stats: traceStats(v as Record<string, unknown>) }))
        : [],
  };
}

export interface SelectRunView {
  probeId: number | null;
  variant: string | null;
  fraction: number | null;
  total: number | null;
  budget: number | null;
  selected: number | null;
  threshold: number | null;
}

export function selectRunView(s: Summary): SelectRunView {
  return {
    probeId: num(s?.probeId),
    variant: str(s?.variant),
    fraction: num(s?.fraction),
    total: num(s?.total),
    budget: num(s?.budget),
    selected: num(s?.selected),
    threshold: num(s?.threshold),
  };
}

export interface HeadsRunView {
  probeId: number | null;
  variant: string | null;
  transcripts: number | null;
}

export function headsRunView(s: Summary): HeadsRunView {
  return { probeId: num(s?.probeId), variant: str(s?.variant), transcripts: num(s?.transcripts) };
}
