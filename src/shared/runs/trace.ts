/**
 * `trace` runs (docs/METHOD.md §2): the refusal score of every token of every transcript under a probe, the thinking
 * span's plateau I, the score at the answer boundary I', MS = I − I', the steepest drop and its width; optionally
 * the same under more probes (e.g. one per layer) for the layers × tokens map.
 */
import { z } from 'zod';
import { count, finiteNumber, rowId, scoreList, TranscriptSource } from '../values.js';
import { SOURCE_FLAGS, sourceFromFlags } from './flags.js';
import { checkSource, defineRun, flag, fmt, notClosed } from './spec.js';

export const TraceOptions = z.strictObject({
  /** How the plateau I is taken over the thinking span; default 'max' (the paper's). */
  plateau: z.enum(['max', 'moving-average-max', 'percentile']).optional(),
  window: z.number().int().positive().max(1_000_000).optional(),
  percentile: z.number().min(0).max(100).optional(),
  dropWindow: z.number().int().positive().max(1_000_000).optional(),
});

const input = z.strictObject({
  probeId: rowId,
  /** More probes (e.g. one per layer) scored on the same transcripts, for the layers × tokens map. */
  extraProbeIds: z.array(rowId).optional(),
  source: TranscriptSource,
  options: TraceOptions.optional(),
});

const config = z.strictObject({ probeId: rowId, extraProbeIds: z.array(rowId), source: TranscriptSource, options: TraceOptions });
export type TraceRunConfig = z.infer<typeof config>;

const mean = finiteNumber.nullable();
export const TraceStats = z.strictObject({
  transcripts: count,
  withBoundary: count,
  /** Transcripts whose thinking never closed, read with the closing marker appended (docs/METHOD.md §0); absent on runs traced before it was counted. */
  thinkingNotClosed: count.optional(),
  meanPlateau: mean,
  meanFinal: mean,
  meanMs: mean,
  meanWidth: mean,
});
export type TraceStats = z.infer<typeof TraceStats>;

const summary = TraceStats.extend({
  probeId: rowId,
  /** The same means per dataset label ('unlabelled' for items without one). */
  byLabel: z.record(z.string(), TraceStats),
  /** The tail-aligned average of the main probe's traces (see trace.average), null without a closed transcript. */
  tailAligned: z.strictObject({ positions: z.array(z.number()), mean: scoreList, std: scoreList, count: z.array(count) }).nullable(),
});
export type TraceRunSummary = z.infer<typeof summary>;

export const traceRun = defineRun({
  kind: 'trace',
  about: 'the refusal score per token, plateau / final / MS and the cliff',
  input,
  config,
  summary,
  resolve(c, project) {
    project.probe('config.probeId', c.probeId);
    c.extraProbeIds?.forEach((id, i) => project.probe(`config.extraProbeIds[${i}]`, id));
    checkSource(project, 'config.source', c.source);
    return { probeId: c.probeId, extraProbeIds: c.extraProbeIds ?? [], source: c.source, options: c.options ?? {} };
  },
  links: () => ({}),
  report: (s) => [
    `  traces    ${fmt(s.transcripts)} (${fmt(s.withBoundary)} with an answer boundary${notClosed(s.thinkingNotClosed)})`,
    `  mean      plateau I ${fmt(s.meanPlateau)}  final I' ${fmt(s.meanFinal)}  MS ${fmt(s.meanMs)}  cliff width ${fmt(s.meanWidth, 1)} tokens`,
    ...Object.entries(s.byLabel).map(([label, st]) => `  ${label.padEnd(9)} I ${fmt(st.meanPlateau)}  I' ${fmt(st.meanFinal)}  MS ${fmt(st.meanMs)}  (${fmt(st.transcripts)})`),
  ],
  headlines: (s) => [
    { key: 'transcripts', label: 'transcripts', value: s.transcripts },
    { key: 'meanPlateau', label: 'mean plateau I', value: s.meanPlateau },
    { key: 'meanFinal', label: "mean final I'", value: s.meanFinal },
    { key: 'meanMs', label: 'mean MS', value: s.meanMs },
    { key: 'meanWidth', label: 'mean cliff width', value: s.meanWidth },
  ],
  cli: {
    verb: 'trace',
    summary: 'refusal score per token, plateau / final / MS and the cliff, for a set of transcripts',
    usage: 'trace PROJECT --model DIR --probe ID (--run RUN | --dataset NAME) [--probes ID,ID…] [options]',
    about: `Scores every token of every transcript with the probe (teacher forcing), then reports the plateau I (max over the
thinking span), the final score I' at the answer boundary, MS = I − I', the steepest drop and the cliff's width.
--probes adds more probes (e.g. one per layer from a layer sweep) for the layers × tokens map.`,
    flags: [
      flag('probe', 'the probe', { arg: 'ID', field: 'probeId' }),
      flag('probes', 'more probes scored on the same transcripts', { arg: 'LIST', field: 'extraProbeIds' }),
      ...SOURCE_FLAGS,
      flag('plateau', "how the plateau is taken (default max, the paper's)", { arg: 'max|moving-average-max|percentile', field: 'options.plateau' }),
    ],
    input: (f, cli) => ({
      probeId: cli.id(f.probe, 'probe'),
      extraProbeIds: cli.numbers(f.probes, 'probes'),
      source: sourceFromFlags(f, cli),
      options: typeof f.plateau === 'string' ? { plateau: f.plateau } : {},
    }),
  },
});
