/**
 * `trace` runs (docs/METHOD.md §2): the refusal score of every token of every transcript under a probe, the thinking
 * span's plateau I, the score at the answer boundary I', MS = I − I', the steepest drop and its width; optionally
 * the same for a probe at every layer (the layers × tokens map).
 */
import { traceRun, type TraceRunConfig, type TraceRunSummary, type TraceStats } from '../../shared/runs/trace.js';
import { scoreRows } from '../engine/analysis/probe.js';
import { tailAlignedAverage, traceMetrics } from '../engine/analysis/trace.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import type { ProbeRow } from '../store/types.js';
import type { ProjectStore } from '../store/project-store.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireSource, requireTokenizer, type RunOptions, type WorkUnit } from './common.js';
import { ensureTranscriptRow, readSource, sourceUnits } from './sources.js';

export type { TraceRunConfig } from '../../shared/runs/trace.js';

/** What each transcript's committed item holds: its metrics under the main probe. */
interface TracedItem {
  transcriptId: number;
  label: string | null;
  plateau: number | null;
  final: number | null;
  ms: number | null;
  steepestDropPos: number | null;
  width: number | null;
  /** Thinking never closed: read with the closing marker appended (docs/METHOD.md §0); absent on older items. */
  thinkingNotClosed?: boolean;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export async function runTrace(env: PipelineEnv, config: TraceRunConfig, opts: RunOptions = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const handle = beginRun(env, traceRun, config, opts, (cfg) => {
    for (const id of [cfg.probeId, ...cfg.extraProbeIds]) requireProbe(env, id);
    requireSource(env, cfg.source);
  });
  const cfg = handle.config;
  const probes: ProbeRow[] = [cfg.probeId, ...cfg.extraProbeIds].map((id) => requireProbe(env, id));
  const residIndices = [...new Set(probes.map((p) => p.residIndex))];
  const d = model.config.hiddenSize;

  await finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, cfg.source).filter((t) => handle.owns(t.key));
    let finished = 0;
    for (const t of transcripts) {
      if (env.signal?.aborted) return;
      if (handle.todo(t.key)) {
        const out = await teacherForce(model.session, t.ids, { residLayers: residIndices });
        const span = { thinkingStart: t.thinkingStart, thinkingEnd: t.thinkingEnd, answerBoundary: t.answerBoundary, generatedStart: t.promptLength };
        store.runs.commitItem(handle.run.id, t.key, (s) => {
          const transcriptId = ensureTranscriptRow(s, handle.run.id, t, tok);
          let main: TracedItem | null = null;
          for (const p of probes) {
            const scores = scoreRows(p, out.resid.get(p.residIndex)!, d);
            const m = traceMetrics(scores, span, cfg.options);
            s.traces.add({ runId: handle.run.id, transcriptId, probeId: p.id, residIndex: p.residIndex, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
            if (p.id === cfg.probeId) main = { transcriptId, label: t.label, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, width: m.dropWidth, thinkingNotClosed: t.thinkingNotClosed };
          }
          return main;
        });
      }
      env.onProgress?.(++finished, transcripts.length, 'transcripts');
    }
    if (!handle.shard) aggregateTrace(store, handle.run.id, cfg);
  });
  return handle.run.id;
}

/** The items of a trace run: every transcript of its source, costing its tokens. */
export function traceUnits(store: ProjectStore, cfg: TraceRunConfig): WorkUnit[] {
  return sourceUnits(store, cfg.source);
}

/** The run's summary, from its items. */
export function aggregateTrace(store: ProjectStore, runId: number, cfg: TraceRunConfig): void {
  commitSummary(store, traceRun, runId, summarizeTraces(store, runId, cfg.probeId));
}

/** Means of I, I', MS (overall and per dataset label) and the tail-aligned average curve of the main probe. */
export function summarizeTraces(store: ProjectStore, runId: number, probeId: number): TraceRunSummary {
  // In source order (the number in the key), however the items were split over processes and merged.
  const items = store
    .runs.items(runId)
    .filter((i) => i.status === 'done' && i.key !== 'summary')
    .sort((a, b) => Number(a.key.slice(1)) - Number(b.key.slice(1)))
    .map((i) => i.payload as TracedItem);
  const byLabel = new Map<string, TracedItem[]>();
  for (const it of items) {
    const label = it.label ?? 'unlabelled';
    byLabel.set(label, [...(byLabel.get(label) ?? []), it]);
  }
  const meanOf = (rows: TracedItem[], pick: (r: TracedItem) => number | null) => mean(rows.flatMap((r) => (typeof pick(r) === 'number' ? [pick(r)!] : [])));
  const stats = (rows: TracedItem[]): TraceStats => ({
    transcripts: rows.length,
    withBoundary: rows.filter((r) => r.final !== null).length,
    thinkingNotClosed: rows.filter((r) => r.thinkingNotClosed === true).length,
    meanPlateau: meanOf(rows, (r) => r.plateau),
    meanFinal: meanOf(rows, (r) => r.final),
    meanMs: meanOf(rows, (r) => r.ms),
    meanWidth: meanOf(rows, (r) => r.width),
  });
  // Tail-aligned average: each trace cut at its answer boundary (the same cut trace.average reads).
  const traces = store.views.tracesToBoundary(runId, probeId);
  const avg = traces.length ? tailAlignedAverage(traces.filter((t) => t.length >= 2)) : null;
  return {
    probeId,
    ...stats(items),
    byLabel: Object.fromEntries([...byLabel].map(([k, rows]) => [k, stats(rows)])),
    tailAligned: avg ? { positions: Array.from(avg.positions), mean: Array.from(avg.mean), std: Array.from(avg.std), count: Array.from(avg.count) } : null,
  };
}
