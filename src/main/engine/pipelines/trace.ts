/**
 * `trace` runs (docs/METHOD.md §2): the refusal score of every token of every transcript under a probe, the thinking
 * span's plateau I, the score at the answer boundary I', MS = I − I', the steepest drop and its width; optionally
 * the same for a probe at every layer (the layers × tokens map).
 */
import { tailAlignedAverage, traceMetrics, type TraceOptions } from '../analysis/trace.js';
import { scoreRows } from '../analysis/probe.js';
import { teacherForce } from '../runtime/teacher-force.js';
import { storedThinkingState } from '../runtime/transcript.js';
import type { JsonObject, ProbeRow } from '../store/types.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireSource, requireTokenizer } from './common.js';
import { ensureTranscriptRow, readSource, type TranscriptSource } from './sources.js';

export interface TraceRunConfig {
  probeId: number;
  /** More probes scored on the same transcripts (e.g. one per layer from a layer sweep) for the layers × tokens map. */
  extraProbeIds: number[];
  source: TranscriptSource;
  options: TraceOptions;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export async function runTrace(env: PipelineEnv, config: TraceRunConfig, opts: { resume?: number; name?: string } = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const handle = beginRun(env, { kind: 'trace', name: opts.name ?? null, config: config as unknown as JsonObject }, opts.resume, (c) => {
    const cfg = c as unknown as TraceRunConfig;
    for (const id of [cfg.probeId, ...cfg.extraProbeIds]) requireProbe(env, id);
    requireSource(env, cfg.source);
  });
  const cfg = handle.config as unknown as TraceRunConfig;
  const probes: ProbeRow[] = [cfg.probeId, ...cfg.extraProbeIds].map((id) => requireProbe(env, id));
  const layers = [...new Set(probes.map((p) => p.layer))];
  const d = model.config.hiddenSize;

  await finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, cfg.source);
    let finished = 0;
    for (const t of transcripts) {
      if (env.signal?.aborted) return;
      if (!handle.done.has(t.key)) {
        const out = await teacherForce(model.session, t.ids, { residLayers: layers });
        const span = { thinkingStart: t.thinkingStart, thinkingEnd: t.thinkingEnd, answerBoundary: t.answerBoundary, generatedStart: t.promptLength };
        store.commitItem(handle.run.id, t.key, (s) => {
          const transcriptId = ensureTranscriptRow(s, handle.run.id, t, tok);
          let main: JsonObject = {};
          for (const p of probes) {
            const scores = scoreRows(p, out.resid.get(p.layer)!, d);
            const m = traceMetrics(scores, span, cfg.options);
            s.addTrace({ runId: handle.run.id, transcriptId, probeId: p.id, layer: p.layer, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
            if (p.id === cfg.probeId) main = { transcriptId, label: t.label, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, width: m.dropWidth, thinkingNotClosed: t.thinkingNotClosed };
          }
          return main;
        });
      }
      env.onProgress?.(++finished, transcripts.length, 'transcripts');
    }
    commitSummary(env, handle.run.id, summarizeTraces(env, handle.run.id, cfg.probeId));
  });
  return handle.run.id;
}

/** Means of I, I', MS (overall and per dataset label) and the tail-aligned average curve of the main probe. */
export function summarizeTraces(env: PipelineEnv, runId: number, probeId: number): JsonObject {
  const items = env.store.runItems(runId).filter((i) => i.status === 'done' && i.key !== 'summary').map((i) => i.payload as JsonObject);
  const byLabel = new Map<string, JsonObject[]>();
  for (const it of items) {
    const label = (it.label as string | null) ?? 'unlabelled';
    byLabel.set(label, [...(byLabel.get(label) ?? []), it]);
  }
  const stats = (rows: JsonObject[]) => ({
    transcripts: rows.length,
    withBoundary: rows.filter((r) => r.final !== null).length,
    thinkingNotClosed: rows.filter((r) => r.thinkingNotClosed === true).length,
    meanPlateau: mean(rows.flatMap((r) => (typeof r.plateau === 'number' ? [r.plateau] : []))),
    meanFinal: mean(rows.flatMap((r) => (typeof r.final === 'number' ? [r.final] : []))),
    meanMs: mean(rows.flatMap((r) => (typeof r.ms === 'number' ? [r.ms] : []))),
    meanWidth: mean(rows.flatMap((r) => (typeof r.width === 'number' ? [r.width] : []))),
  });
  // Tail-aligned average: each trace cut at its answer boundary (for thinking that never closed, the last score:
  // the appended closing marker's, docs/METHOD.md §0).
  const traces = env.store.listTraces({ runId, probeId }).flatMap((tr) => {
    const t = env.store.getTranscript(tr.transcriptId);
    const tb = t ? (t.answerBoundary ?? (storedThinkingState(t) === 'not-closed' ? tr.scores.length - 1 : null)) : null;
    if (!t || tb === null) return [];
    return [tr.scores.slice(t.promptTokens, tb + 1)];
  });
  const avg = traces.length ? tailAlignedAverage(traces.filter((t) => t.length >= 2)) : null;
  return {
    probeId,
    ...stats(items),
    byLabel: Object.fromEntries([...byLabel].map(([k, rows]) => [k, stats(rows)])),
    tailAligned: avg ? { positions: Array.from(avg.positions), mean: Array.from(avg.mean), std: Array.from(avg.std), count: Array.from(avg.count) } : null,
  } as JsonObject;
}
