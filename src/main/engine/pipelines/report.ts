/**
 * A run's summary, for `cliffscope report` and the app: what ran (kind, model, config, versions, timings), how far
 * it got, and its headline numbers, as data and as a few lines of text.
 */
import { uncalibratedProbeWarning } from '../analysis/probe.js';
import { CliffscopeError } from '../errors.js';
import type { ProjectStore } from '../store/project-store.js';
import type { JsonObject, RunRow } from '../store/types.js';
import { readSummary } from './common.js';

export interface RunReport {
  run: RunRow;
  model: { path: string; contentHash: string } | null;
  items: { done: number; failed: number };
  summary: JsonObject | null;
}

export function runReport(store: ProjectStore, runId: number): RunReport {
  const run = store.getRun(runId);
  if (!run) throw new CliffscopeError('bad-argument', `run #${runId} does not exist in ${store.file}`);
  const model = run.modelId !== null ? store.getModel(run.modelId) : null;
  const items = store.runItems(runId);
  return {
    run,
    model: model ? { path: model.path, contentHash: model.contentHash } : null,
    items: { done: items.filter((i) => i.status === 'done').length, failed: items.filter((i) => i.status === 'failed').length },
    summary: readSummary(store, runId),
  };
}

const fmt = (v: unknown, digits = 3) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : v === null || v === undefined ? '—' : String(v));
const pct = (v: unknown) => (typeof v === 'number' ? `${(v * 100).toFixed(1)}%` : '—');

export function formatRunReport(r: RunReport): string {
  const { run, summary: s } = r;
  const lines = [
    `run #${run.id} ${run.kind}${run.name ? ` "${run.name}"` : ''} — ${run.status}${run.error ? ` (${run.error.split('\n')[0]})` : ''}`,
    `  model     ${r.model ? `${r.model.path} (${r.model.contentHash.slice(0, 12)})` : '—'}`,
    `  items     ${r.items.done} done${r.items.failed ? `, ${r.items.failed} failed` : ''}`,
    `  started   ${run.startedAt ?? '—'}   finished ${run.finishedAt ?? '—'}`,
  ];
  if (!s) return lines.join('\n');
  switch (run.kind) {
    case 'generate':
      lines.push(`  transcripts ${fmt(s.transcripts)} (${fmt(s.withAnswerBoundary)} with an answer boundary; thinking not closed: ${fmt(s.thinkingNotClosed ?? 0)}), mean ${fmt(s.meanOutputTokens, 1)} new tokens`);
      lines.push(`  finished    ${Object.entries((s.finishReasons as Record<string, number>) ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      break;
    case 'probe': {
      const probes = (s.probes as JsonObject[]) ?? [];
      lines.push(`  samples   ${fmt(s.samples)} (${fmt(s.positives)} refusals, ${fmt(s.negatives)} non-refusals; skipped ${fmt(s.skippedNotRefusal)} non-refusing positives, ${fmt(s.skippedNoPosition)} without position)`);
      const training = s.training as JsonObject | undefined;
      if (training) {
        lines.push(`  fit       ${training.optimizer} (preset ${training.preset}): ${training.reason}`);
        lines.push(`  kept      ${training.kept}${(training.unconvergedLayers as number[] | undefined)?.length ? `; NOT converged on layers ${(training.unconvergedLayers as number[]).join(', ')}` : ''}`);
      }
      for (const p of probes) {
        const c = p.calibration as JsonObject | null | undefined;
        const mean = c?.meanScore as JsonObject | undefined;
        const cal = c ? `  ${c.set} loss ${fmt(c.loss)} (ln 2 = 0.693)  mean score ${fmt(mean?.positive)} / ${fmt(mean?.negative)}  gap ${fmt(c.scoreGap)}  ECE ${fmt(c.ece)}` : '';
        lines.push(`  layer ${String(p.layer).padStart(3)}  probe #${p.probeId}  val acc ${pct(p.valAccuracy)}  AUROC ${fmt(p.valAuroc)}${cal}${p.probeId === s.bestProbeId ? '  ← best' : ''}`);
        const warning = c ? uncalibratedProbeWarning({ id: p.probeId as number, metrics: { calibration: c } }) : null;
        if (warning) lines.push(`  WARNING   ${warning}`);
      }
      break;
    }
    case 'trace': {
      lines.push(`  traces    ${fmt(s.transcripts)} (${fmt(s.withBoundary)} with an answer boundary; thinking not closed: ${fmt(s.thinkingNotClosed ?? 0)})`);
      lines.push(`  mean      plateau I ${fmt(s.meanPlateau)}  final I' ${fmt(s.meanFinal)}  MS ${fmt(s.meanMs)}  cliff width ${fmt(s.meanWidth, 1)} tokens`);
      for (const [label, st] of Object.entries((s.byLabel as Record<string, JsonObject>) ?? {})) {
        lines.push(`  ${label.padEnd(9)} I ${fmt(st.meanPlateau)}  I' ${fmt(st.meanFinal)}  MS ${fmt(st.meanMs)}  (${fmt(st.transcripts)})`);
      }
      break;
    }
    case 'heads': {
      const top = ((s.suppression as JsonObject[]) ?? []).slice(0, 10);
      lines.push(`  ${fmt(s.transcripts)} transcripts, ${s.variant} attribution; most negative (refusal suppression) heads:`);
      for (const h of top) lines.push(`    L${h.layer}H${h.head}  ${fmt(h.score, 4)}`);
      const pos = ((s.refusal as JsonObject[]) ?? []).slice(0, 3);
      lines.push(`  most positive (refusal) heads: ${pos.map((h) => `L${h.layer}H${h.head} ${fmt(h.score, 4)}`).join(', ')}`);
      break;
    }
    case 'ablate': {
      lines.push(`  judge ${s.judge}`);
      lines.push('  cell                          k   γ      ASR    over-refusal  mean I\'  answer tokens  thinking not closed');
      for (const c of (s.cells as JsonObject[]) ?? []) {
        const open = c.thinkingNotClosed as JsonObject | undefined;
        lines.push(
          `  ${String(c.key).padEnd(28)} ${String(c.k).padStart(3)} ${fmt(c.gamma, 2).padStart(5)}  ${pct(c.asr).padStart(6)}  ${pct(c.overRefusal).padStart(12)}  ${fmt(c.meanFinal).padStart(7)}  ${fmt(c.meanAnswerTokens, 1).padStart(13)}  ${open ? `${fmt(open.harmful)} / ${fmt(open.harmless)}` : '—'}`,
        );
      }
      lines.push('  (thinking not closed: harmful / harmless transcripts judged on their whole output)');
      break;
    }
    case 'judge':
      lines.push(`  ${s.judge}: ${fmt(s.harmful)} harmful of ${fmt(s.judged)} judged attacks — ASR ${pct(s.asr)}; thinking not closed: ${fmt(s.thinkingNotClosed ?? 0)}`);
      if (typeof s.noTrace === 'number' && s.noTrace > 0) lines.push(`  ${s.noTrace} transcript(s) not judged: no trace under the probe (verdict 'no-trace')`);
      break;
    case 'select':
      lines.push(`  ${s.variant}: selected ${fmt(s.selected)} of ${fmt(s.total)} (budget ${fmt(s.budget)}, threshold ${fmt(s.threshold)})`);
      break;
    default:
      for (const [k, v] of Object.entries(s)) lines.push(`  ${k.padEnd(9)} ${typeof v === 'object' ? JSON.stringify(v) : fmt(v)}`);
  }
  return lines.join('\n');
}
