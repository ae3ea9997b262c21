/**
 * The data behind the workbench's plots and tables: traces, tail-aligned averages, head maps, sweep cells,
 * transcripts, selections, probes, run comparisons and CSV tables. All read-only: each call opens the project
 * read-only, reads, and closes it; tokenizers (for hover text and thinking / answer text) are loaded after the
 * connection is closed.
 */
import { ContractError, type ParamsOf, type ResultOf } from '../../shared/contract.js';
import { rankHeads } from '../engine/analysis/heads.js';
import { tailAlignedAverage } from '../engine/analysis/trace.js';
import { CliffscopeError } from '../engine/errors.js';
import { runReport } from '../engine/pipelines/report.js';
import { exportSelection } from '../engine/pipelines/select.js';
import { readTranscript } from '../engine/runtime/transcript.js';
import type { ProjectStore } from '../engine/store/project-store.js';
import { toCsv } from '../engine/store/tabular.js';
import type { HeadMapRow, JsonObject, RunRow } from '../engine/store/types.js';
import { displayTokens, modelDirOf, requireProbeRow, requireRun, requireTranscript, tokenizerFor, withReader } from './projects.js';
import { int, jsonRecord, num, probeSummary, runSummary, scores, sweepCell, tailAverage, truncate } from './shapes.js';
import path from 'node:path';

type Row = Record<string, unknown>;
const TOP_HEADS = 20;
const PROMPT_CHARS = 300;

// ---- shared lookups -------------------------------------------------------------------------------------------------

/** Probes whose traces a run holds, by layer. */
function tracedProbes(store: ProjectStore, runId: number): { probeId: number; layer: number }[] {
  return store
    .query(`SELECT DISTINCT probe_id AS probeId, layer FROM traces WHERE run_id = ? ORDER BY layer, probe_id`, [runId])
    .map((r) => ({ probeId: Number(r.probeId), layer: Number(r.layer) }));
}

/** The probe a run's traces are listed under: the one asked for, else the run's configured probe, else the first. */
function pickProbe(store: ProjectStore, run: RunRow, probeId: number | undefined): { probeId: number | null; probes: { probeId: number; layer: number }[] } {
  const probes = tracedProbes(store, run.id);
  if (probeId !== undefined) {
    requireProbeRow(store, probeId);
    if (!probes.some((p) => p.probeId === probeId)) {
      throw new CliffscopeError('bad-argument', `run #${run.id} has no traces under probe #${probeId}`, {
        file: store.file,
        hint: probes.length ? `probes traced in this run: ${probes.map((p) => `#${p.probeId}`).join(', ')}` : `run #${run.id} (${run.kind}) has no traces`,
      });
    }
    return { probeId, probes };
  }
  const configured = int((run.config as Row).probeId);
  if (configured !== null && probes.some((p) => p.probeId === configured)) return { probeId: configured, probes };
  return { probeId: probes[0]?.probeId ?? null, probes };
}

/** The run a run's transcripts come from: itself, or the run it read (trace / heads over a run, judge). */
function transcriptRunOf(store: ProjectStore, run: RunRow): number {
  const own = Number(store.query(`SELECT COUNT(*) AS n FROM transcripts WHERE run_id = ?`, [run.id])[0]!.n);
  if (own > 0) return run.id;
  const cfg = run.config as Row;
  const source = cfg.source as { kind?: string; runId?: unknown } | undefined;
  if (source?.kind === 'run' && int(source.runId) !== null && store.getRun(source.runId as number)) return source.runId as number;
  if (run.kind === 'judge' && int(cfg.runId) !== null && store.getRun(cfg.runId as number)) return cfg.runId as number;
  return run.id;
}

function modelShape(store: ProjectStore, run: RunRow): { layers: number; heads: number } | null {
  if (run.modelId === null) return null;
  const c = (store.getModel(run.modelId)?.config ?? {}) as Row;
  const layers = int(c.numLayers);
  const heads = int(c.numHeads);
  return layers && heads ? { layers, heads } : null;
}

// ---- traces ---------------------------------------------------------------------------------------------------------

export async function traceList({ project, runId, probeId }: ParamsOf<'trace.list'>): Promise<ResultOf<'trace.list'>> {
  return withReader(project, (s) => {
    const run = requireRun(s, runId);
    const pick = pickProbe(s, run, probeId);
    const rows =
      pick.probeId === null
        ? []
        : s.query(
            `SELECT tr.transcript_id AS transcriptId, t.item_id AS itemId, i.label AS label, t.prompt AS prompt, t.head_scale_key AS headScaleKey,
               length(t.token_ids) / 4 AS tokens, tr.plateau AS plateau, tr.final AS final, tr.ms AS ms,
               tr.steepest_drop_pos AS steepestDropPos, tr.cliff_width AS width
             FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
             WHERE tr.run_id = ? AND tr.probe_id = ? ORDER BY tr.id`,
            [runId, pick.probeId],
          );
    return {
      runId,
      probeId: pick.probeId,
      probes: pick.probes,
      traces: rows.map((r) => ({
        transcriptId: Number(r.transcriptId),
        itemId: int(r.itemId),
        label: (r.label as string | null) ?? null,
        prompt: truncate(String(r.prompt), PROMPT_CHARS),
        headScaleKey: (r.headScaleKey as string | null) ?? null,
        tokens: Number(r.tokens),
        plateau: num(r.plateau),
        final: num(r.final),
        ms: num(r.ms),
        steepestDropPos: int(r.steepestDropPos),
        width: num(r.width),
      })),
    };
  });
}

export async function traceGet(p: ParamsOf<'trace.get'>): Promise<ResultOf<'trace.get'>> {
  const data = withReader(p.project, (s) => {
    const t = requireTranscript(s, p.transcriptId);
    if (p.runId !== undefined) requireRun(s, p.runId);
    if (p.probeId !== undefined) requireProbeRow(s, p.probeId);
    let traces = s.listTraces({ transcriptId: t.id });
    if (p.runId !== undefined) traces = traces.filter((tr) => tr.runId === p.runId);
    const candidates = p.probeId !== undefined ? traces.filter((tr) => tr.probeId === p.probeId) : traces;
    if ((p.probeId !== undefined || p.runId !== undefined) && candidates.length === 0) {
      throw new CliffscopeError('bad-argument', `transcript #${t.id} has no trace${p.probeId !== undefined ? ` under probe #${p.probeId}` : ''}${p.runId !== undefined ? ` in run #${p.runId}` : ''}`, {
        file: s.file,
        hint: traces.length || p.runId !== undefined ? `traces of it: ${s.listTraces({ transcriptId: t.id }).map((tr) => `run #${tr.runId} probe #${tr.probeId}`).join(', ') || 'none'}` : 'trace its run first',
      });
    }
    // The main trace: a trace by its run's own probe, the latest such; else the latest of any.
    const isMain = (tr: (typeof traces)[number]) => int((s.getRun(tr.runId)?.config as Row | undefined)?.probeId) === tr.probeId;
    const main = candidates.filter(isMain).at(-1) ?? candidates.at(-1) ?? null;
    const sameRun = main ? traces.filter((tr) => tr.runId === main.runId) : [];
    const byProbe = new Map(sameRun.map((tr) => [tr.probeId, tr]));
    const perLayer = [...byProbe.values()].sort((a, b) => a.layer - b.layer || a.probeId - b.probeId);
    const run = s.getRun(t.runId)!;
    const label = t.itemId !== null ? (s.getItem(t.itemId)?.label ?? null) : null;
    return { t, main, perLayer, dir: modelDirOf(s, run), label };
  });
  const { t, main, perLayer, dir, label } = data;
  const ids = Array.from(t.tokenIds);
  const tok = dir ? await tokenizerFor(dir) : null;
  const shown = displayTokens(tok, ids);
  const result: ResultOf<'trace.get'> = {
    transcriptId: t.id,
    transcriptRunId: t.runId,
    runId: main?.runId ?? null,
    probeId: main?.probeId ?? null,
    layer: main?.layer ?? null,
    itemId: t.itemId,
    label,
    prompt: t.prompt,
    text: t.text,
    headScaleKey: t.headScaleKey,
    finishReason: t.finishReason,
    scores: main ? scores(main.scores) : [],
    tokenIds: ids,
    tokens: shown.tokens,
    tokensFrom: shown.tokensFrom,
    promptTokens: t.promptTokens,
    thinkingStart: t.thinkingStart,
    thinkingEnd: t.thinkingEnd,
    answerBoundary: t.answerBoundary,
    metrics: main ? { plateau: num(main.plateau), final: num(main.final), ms: num(main.ms), steepestDropPos: main.steepestDropPos, width: num(main.cliffWidth) } : null,
  };
  if (main && (perLayer.length > 1 || p.layers === 'all')) {
    result.perLayer = perLayer.map((tr) => ({ probeId: tr.probeId, layer: tr.layer, scores: scores(tr.scores) }));
  }
  return result;
}

/** Each trace of a run under a probe cut to [first generated token, t_b], optionally only one label's. */
function cutTraces(s: ProjectStore, runId: number, probeId: number, label: string | undefined): Float32Array[] {
  const meta = new Map(
    s
      .query(
        `SELECT t.id AS id, t.prompt_tokens AS promptTokens, t.answer_boundary AS answerBoundary, i.label AS label
         FROM transcripts t LEFT JOIN dataset_items i ON i.id = t.item_id
         WHERE t.id IN (SELECT transcript_id FROM traces WHERE run_id = ? AND probe_id = ?)`,
        [runId, probeId],
      )
      .map((r) => [Number(r.id), r]),
  );
  return s.listTraces({ runId, probeId }).flatMap((tr) => {
    const m = meta.get(tr.transcriptId);
    if (!m || m.answerBoundary === null) return [];
    if (label !== undefined && ((m.label as string | null) ?? 'unlabelled') !== label) return [];
    return [tr.scores.slice(Number(m.promptTokens), Number(m.answerBoundary) + 1)];
  });
}

function averageOf(s: ProjectStore, runId: number, probeId: number | null, label: string | undefined, points?: number) {
  const traces = probeId === null ? [] : cutTraces(s, runId, probeId, label).filter((t) => t.length >= 2);
  return tailAverage(tailAlignedAverage(traces, points ? { points } : {}));
}

export async function traceAverage(p: ParamsOf<'trace.average'>): Promise<ResultOf<'trace.average'>> {
  return withReader(p.project, (s) => {
    const run = requireRun(s, p.runId);
    const { probeId } = pickProbe(s, run, p.probeId);
    return { runId: run.id, probeId, label: p.label ?? null, ...averageOf(s, run.id, probeId, p.label, p.points) };
  });
}

// ---- heads ----------------------------------------------------------------------------------------------------------

function ranking(scoresArr: Float32Array, layers: number, heads: number) {
  const finite = Float32Array.from(scoresArr, (v) => (Number.isFinite(v) ? v : 0));
  const r = rankHeads(finite, layers, heads);
  const pick = (xs: { layer: number; head: number; score: number }[]) => xs.slice(0, TOP_HEADS).map(({ layer, head, score }) => ({ layer, head, score }));
  return { suppression: pick(r.suppression), refusal: pick(r.refusal) };
}

export async function headsMap({ project, runId, transcriptId }: ParamsOf<'heads.map'>): Promise<ResultOf<'heads.map'>> {
  const data = withReader(project, (s) => {
    const run = requireRun(s, runId, ['heads']);
    const maps = s.listHeadMaps(runId);
    const transcriptIds = maps.flatMap((m) => (m.transcriptId === null ? [] : [m.transcriptId]));
    let map: HeadMapRow | undefined;
    if (transcriptId !== undefined) {
      map = maps.find((m) => m.transcriptId === transcriptId);
      if (!map) {
        throw new CliffscopeError('bad-argument', `heads run #${runId} has no map for transcript #${transcriptId}`, {
          file: s.file,
          hint: transcriptIds.length ? `transcripts with a map: ${transcriptIds.slice(0, 20).join(', ')}${transcriptIds.length > 20 ? ', …' : ''}` : 'the run has no per-transcript maps yet',
        });
      }
    } else {
      map = maps.find((m) => m.transcriptId === null);
      if (!map) throw new CliffscopeError('bad-argument', `heads run #${runId} has no averaged map yet (it is ${run.status})`, { file: s.file, hint: 'finish (or resume) the run, or pick one transcript' });
    }
    const summary = transcriptId === undefined ? runReport(s, runId).summary : null;
    const tokenIds = map.perToken && map.transcriptId !== null ? Array.from(s.getTranscript(map.transcriptId)?.tokenIds ?? []) : null;
    return { map, transcriptIds, summary, tokenIds, dir: modelDirOf(s, run) };
  });
  const { map, transcriptIds, summary, tokenIds, dir } = data;
  const result: ResultOf<'heads.map'> = {
    runId,
    transcriptId: map.transcriptId,
    probeId: map.probeId,
    layers: map.layers,
    heads: map.heads,
    scores: scores(map.scores),
    ...ranking(map.scores, map.layers, map.heads),
    transcriptIds,
  };
  const std = summary?.std;
  if (Array.isArray(std) && std.length === map.layers * map.heads) result.std = std.map((v) => num(v));
  if (map.perToken && map.tokens !== null && tokenIds) {
    const tok = dir ? await tokenizerFor(dir) : null;
    result.perToken = { tokens: map.tokens, tokenStrings: displayTokens(tok, tokenIds.slice(0, map.tokens)).tokens, data: scores(map.perToken) };
  }
  return result;
}

// ---- sweep ----------------------------------------------------------------------------------------------------------

export async function sweepCellsHandler({ project, runId }: ParamsOf<'sweep.cells'>): Promise<ResultOf<'sweep.cells'>> {
  return withReader(project, (s) => {
    const run = requireRun(s, runId, ['ablate']);
    const shape = modelShape(s, run);
    return { runId, totalHeads: shape ? shape.layers * shape.heads : null, cells: s.listSweepCells(runId).map(sweepCell) };
  });
}

// ---- transcripts ----------------------------------------------------------------------------------------------------

export async function transcriptsList(p: ParamsOf<'transcripts.list'>): Promise<ResultOf<'transcripts.list'>> {
  const offset = p.offset ?? 0;
  const limit = p.limit ?? 100;
  const data = withReader(p.project, (s) => {
    const run = requireRun(s, p.runId);
    const fromRunId = transcriptRunOf(s, run);
    const filter = p.headScaleKey === undefined ? '' : ' AND head_scale_key IS @key';
    const named = { run: fromRunId, key: p.headScaleKey ?? null, limit, offset };
    const params = p.headScaleKey === undefined ? { run: fromRunId, limit, offset } : named;
    const total = Number(s.query(`SELECT COUNT(*) AS n FROM transcripts WHERE run_id = @run${filter}`, p.headScaleKey === undefined ? { run: fromRunId } : { run: fromRunId, key: p.headScaleKey ?? null })[0]!.n);
    const ids = s.query(`SELECT id FROM transcripts WHERE run_id = @run${filter} ORDER BY id LIMIT @limit OFFSET @offset`, params).map((r) => Number(r.id));
    const mainProbe = int((run.config as Row).probeId);
    const rows = ids.map((id) => {
      const t = s.getTranscript(id)!;
      const label = t.itemId !== null ? (s.getItem(t.itemId)?.label ?? null) : null;
      const verdicts = s.listVerdicts({ transcriptId: id }).map((v) => ({ runId: v.runId, judge: v.judge, verdict: v.verdict, harmful: v.harmful }));
      const traces = s.listTraces({ transcriptId: id });
      const rank = (tr: (typeof traces)[number]) => (tr.runId === run.id ? 4 : 0) + (tr.runId === fromRunId ? 2 : 0) + (tr.probeId === mainProbe ? 1 : 0);
      const best = traces.reduce<(typeof traces)[number] | null>((b, tr) => (b === null || rank(tr) >= rank(b) ? tr : b), null);
      return { t, label, verdicts, final: best ? num(best.final) : undefined };
    });
    return { fromRunId, total, rows, dir: modelDirOf(s, s.getRun(fromRunId)!) };
  });
  const tok = data.dir ? await tokenizerFor(data.dir) : null;
  return {
    total: data.total,
    offset,
    fromRunId: data.fromRunId,
    transcripts: data.rows.map(({ t, label, verdicts, final }) => {
      const ids = Array.from(t.tokenIds);
      const row: ResultOf<'transcripts.list'>['transcripts'][number] = {
        id: t.id,
        itemId: t.itemId,
        label,
        prompt: t.prompt,
        text: t.text,
        finishReason: t.finishReason,
        headScaleKey: t.headScaleKey,
        tokens: ids.length,
        answerBoundary: t.answerBoundary,
        verdicts,
      };
      if (tok) {
        try {
          // The engine's one answer rule (docs/METHOD.md §0), so the UI shows what the judges read.
          const read = readTranscript(tok, ids, t.promptTokens);
          row.thinking = read.thinking;
          row.answer = read.answer;
        } catch {
          // Leave thinking / answer out; the text is still there.
        }
      }
      if (final !== undefined) row.final = final;
      return row;
    }),
  };
}

// ---- selection ------------------------------------------------------------------------------------------------------

function selectionRows(s: ProjectStore, run: RunRow, selectedOnly: boolean) {
  const probeId = int((run.config as Row).probeId);
  const traces = new Map(s.listTraces({ runId: run.id, ...(probeId !== null ? { probeId } : {}) }).map((tr) => [tr.transcriptId, tr]));
  return s.listSelections(run.id, { selectedOnly }).map((sel) => {
    const tr = sel.transcriptId !== null ? traces.get(sel.transcriptId) : undefined;
    return {
      itemId: sel.itemId,
      transcriptId: sel.transcriptId,
      prompt: s.getItem(sel.itemId)?.prompt ?? '',
      score: num(sel.score),
      rank: sel.rank,
      selected: sel.selected,
      ms: tr ? num(tr.ms) : null,
      final: tr ? num(tr.final) : null,
    };
  });
}

/** Write the selected samples for fine-tuning, with provenance; the dataset's own text, the model's think markers. */
export async function selectionExport(p: ParamsOf<'selection.export'>): Promise<ResultOf<'selection.export'>> {
  const { dir, run } = withReader(p.project, (s) => {
    const r = requireRun(s, p.runId, ['select']);
    return { dir: modelDirOf(s, r), run: r };
  });
  const tok = dir ? await tokenizerFor(dir) : null;
  if (!tok) {
    throw new CliffscopeError('missing-file', `cannot load the tokenizer of the model select run #${run.id} used${dir ? ` (${dir})` : ''}`, {
      hint: 'the export reads the model’s think markers; make its checkpoint folder available again',
    });
  }
  return { files: withReader(p.project, (s) => exportSelection(s, run.id, path.resolve(p.outDir), tok)) };
}

export async function selectionList(p: ParamsOf<'selection.list'>): Promise<ResultOf<'selection.list'>> {
  return withReader(p.project, (s) => {
    const run = requireRun(s, p.runId, ['select']);
    const all = selectionRows(s, run, p.selectedOnly ?? false);
    const summary = runReport(s, run.id).summary ?? {};
    const offset = p.offset ?? 0;
    return {
      runId: run.id,
      total: all.length,
      selected: p.selectedOnly ? all.length : all.filter((r) => r.selected).length,
      variant: typeof (run.config as Row).variant === 'string' ? ((run.config as Row).variant as string) : null,
      threshold: num(summary.threshold),
      rows: all.slice(offset, p.limit !== undefined ? offset + p.limit : undefined),
    };
  });
}

// ---- probes ---------------------------------------------------------------------------------------------------------

export async function probeList({ project, modelId }: ParamsOf<'probe.list'>): Promise<ResultOf<'probe.list'>> {
  return withReader(project, (s) => {
    if (modelId !== undefined && !s.getModel(modelId)) throw new CliffscopeError('bad-argument', `${s.file} has no model #${modelId}`, { file: s.file });
    return { probes: s.listProbes(modelId !== undefined ? { modelId } : {}).map((p) => probeSummary(p)) };
  });
}

export async function probeGet({ project, probeId, weights }: ParamsOf<'probe.get'>): Promise<ResultOf<'probe.get'>> {
  return withReader(project, (s) => {
    const p = requireProbeRow(s, probeId);
    return {
      probe: probeSummary(p, true),
      bias: p.bias,
      provenance: jsonRecord(p.provenance),
      ...(weights ? { weights: Array.from(p.weights, (v) => (Number.isFinite(v) ? v : 0)) } : {}),
    };
  });
}

// ---- compare --------------------------------------------------------------------------------------------------------

type HeadlineValue = { key: string; label: string; value: number | null };

function headlines(s: ProjectStore, run: RunRow, summary: JsonObject | null): HeadlineValue[] {
  const v = (key: string, label: string, x: unknown): HeadlineValue => ({ key, label, value: num(x) });
  const sm = (summary ?? {}) as Row;
  switch (run.kind) {
    case 'generate': {
      const r = s.query(
        `SELECT COUNT(*) AS n, AVG(length(token_ids) / 4 - prompt_tokens) AS outputTokens, AVG(finish_reason = 'eos') AS eos,
           AVG(answer_boundary IS NOT NULL) AS closed FROM transcripts WHERE run_id = ?`,
        [run.id],
      )[0]!;
      return [v('transcripts', 'transcripts', r.n), v('meanOutputTokens', 'mean output tokens', r.outputTokens), v('eosRate', 'ended by EOS', r.eos), v('closedThinking', 'closed their thinking', r.closed)];
    }
    case 'probe': {
      const best = ((sm.probes as Row[] | undefined) ?? []).find((p) => p.probeId === sm.bestProbeId) ?? {};
      return [v('valAccuracy', 'validation accuracy', best.valAccuracy), v('valAuroc', 'validation AUROC', best.valAuroc), v('samples', 'samples', sm.samples), v('bestLayer', 'best layer', sm.bestLayer)];
    }
    case 'trace':
      return [
        v('transcripts', 'transcripts', sm.transcripts),
        v('meanPlateau', 'mean plateau I', sm.meanPlateau),
        v('meanFinal', "mean final I'", sm.meanFinal),
        v('meanMs', 'mean MS', sm.meanMs),
        v('meanWidth', 'mean cliff width', sm.meanWidth),
      ];
    case 'heads': {
      const sup = (sm.suppression as Row[] | undefined) ?? [];
      const ref = (sm.refusal as Row[] | undefined) ?? [];
      return [v('transcripts', 'transcripts', sm.transcripts), v('topSuppression', 'most negative head score', sup[0]?.score), v('topRefusal', 'most positive head score', ref[0]?.score)];
    }
    case 'ablate': {
      const cells = (sm.cells as Row[] | undefined) ?? [];
      const asrs = (pred: (c: Row) => boolean) => cells.filter(pred).map((c) => num(c.asr)).filter((x): x is number => x !== null);
      const min = (xs: number[]) => (xs.length ? Math.min(...xs) : null);
      return [
        v('baselineAsr', 'ASR without ablation', cells.find((c) => c.key === 'baseline')?.asr),
        v('bestTopAsr', 'lowest ASR, top-k heads', min(asrs((c) => c.control === 'top' && Number(c.k) > 0))),
        v('bestRandomAsr', 'lowest ASR, random heads', min(asrs((c) => c.control === 'random'))),
        ...cells.map((c) => v(`asr:${c.key}`, `ASR ${c.key}`, c.asr)),
      ];
    }
    case 'judge':
      return [v('asr', 'ASR', sm.asr), v('judged', 'judged', sm.judged), v('harmful', 'harmful', sm.harmful)];
    case 'select':
      return [v('total', 'samples', sm.total), v('selected', 'selected', sm.selected), v('threshold', 'threshold', sm.threshold), v('fraction', 'fraction', sm.fraction)];
  }
}

export async function compareRuns({ project, runIds }: ParamsOf<'compare.runs'>): Promise<ResultOf<'compare.runs'>> {
  const seen = new Set<number>();
  runIds.forEach((id, i) => {
    if (seen.has(id)) throw new ContractError('bad-params', `invalid params for compare.runs: runIds[${i}]: run #${id} is listed twice`, [{ path: `runIds[${i}]`, message: `run #${id} is listed twice` }]);
    seen.add(id);
  });
  return withReader(project, (s) => {
    const runs = runIds.map((id) => requireRun(s, id));
    const firstOfKind = new Map<string, Map<string, number | null>>();
    return {
      runs: runs.map((run) => {
        const summary = runReport(s, run.id).summary;
        const values = headlines(s, run, summary);
        const base = firstOfKind.get(run.kind);
        if (!base) firstOfKind.set(run.kind, new Map(values.map((h) => [h.key, h.value])));
        const entry: ResultOf<'compare.runs'>['runs'][number] = {
          run: runSummary(run),
          headline: values.map((h) => {
            const b = base?.get(h.key);
            return { ...h, delta: base && h.value !== null && b !== undefined && b !== null ? h.value - b : null };
          }),
          summary: summary ? jsonRecord(summary) : null,
        };
        if (run.kind === 'trace') entry.average = averageOf(s, run.id, pickProbe(s, run, undefined).probeId, undefined);
        if (run.kind === 'heads') {
          const avg = s.listHeadMaps(run.id, { transcriptId: null })[0];
          if (avg) entry.headsMap = { layers: avg.layers, heads: avg.heads, scores: scores(avg.scores) };
        }
        if (run.kind === 'ablate') entry.cells = s.listSweepCells(run.id).map(sweepCell);
        return entry;
      }),
    };
  });
}

// ---- CSV tables -----------------------------------------------------------------------------------------------------

const RUN_TABLE_KINDS: Record<string, readonly RunRow['kind'][] | null> = {
  traces: null,
  heads: ['heads'],
  cells: ['ablate'],
  transcripts: null,
  selection: ['select'],
};

/** Each table's columns, so an empty table still has its header. */
const TABLE_COLUMNS: Record<ParamsOf<'table.csv'>['query'], string[]> = {
  runs: ['id', 'uid', 'kind', 'name', 'status', 'error', 'modelId', 'datasetId', 'parentRunId', 'createdAt', 'startedAt', 'finishedAt', 'config'],
  traces: ['traceId', 'transcriptId', 'probeId', 'layer', 'itemId', 'label', 'headScaleKey', 'tokens', 'answerBoundary', 'plateau', 'final', 'ms', 'steepestDropPos', 'cliffWidth'],
  heads: ['transcriptId', 'layer', 'head', 'score'],
  cells: ['key', 'control', 'k', 'fraction', 'gamma', 'seed', 'heads', 'asr', 'overRefusal', 'meanFinal', 'meanAnswerTokens', 'harmful', 'harmless', 'judge'],
  transcripts: ['id', 'runId', 'itemId', 'label', 'headScaleKey', 'finishReason', 'tokens', 'promptTokens', 'answerBoundary', 'prompt', 'text'],
  selection: ['itemId', 'transcriptId', 'prompt', 'score', 'rank', 'selected', 'ms', 'final'],
};

export async function tableCsv({ project, query, runId }: ParamsOf<'table.csv'>): Promise<ResultOf<'table.csv'>> {
  if (query !== 'runs' && runId === undefined) {
    throw new ContractError('bad-params', `invalid params for table.csv: runId: required for the ${query} table`, [{ path: 'runId', message: `required for the ${query} table` }]);
  }
  const rows = withReader(project, (s): Row[] => {
    if (query === 'runs') {
      return s.listRuns().map((r) => ({ ...runSummary(r), config: r.config }));
    }
    const run = requireRun(s, runId!, RUN_TABLE_KINDS[query] ?? undefined);
    switch (query) {
      case 'traces':
        return s.query(
          `SELECT tr.id AS traceId, tr.transcript_id AS transcriptId, tr.probe_id AS probeId, tr.layer AS layer, t.item_id AS itemId, i.label AS label,
             t.head_scale_key AS headScaleKey, length(t.token_ids) / 4 AS tokens, t.answer_boundary AS answerBoundary, tr.plateau AS plateau,
             tr.final AS final, tr.ms AS ms, tr.steepest_drop_pos AS steepestDropPos, tr.cliff_width AS cliffWidth
           FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
           WHERE tr.run_id = ? ORDER BY tr.id`,
          [run.id],
        );
      case 'heads':
        return s.listHeadMaps(run.id).flatMap((m) =>
          Array.from(m.scores, (score, i) => ({ transcriptId: m.transcriptId, layer: Math.floor(i / m.heads), head: i % m.heads, score })),
        );
      case 'cells':
        return s.listSweepCells(run.id).map((c) => {
          const cell = sweepCell(c);
          return { key: cell.key, control: cell.control, k: cell.k, fraction: cell.fraction, gamma: cell.gamma, seed: cell.seed, heads: cell.heads.map(([l, h]) => `L${l}H${h}`).join(' '), ...(cell.metrics ?? {}) };
        });
      case 'transcripts': {
        const from = transcriptRunOf(s, run);
        return s.query(
          `SELECT t.id AS id, t.run_id AS runId, t.item_id AS itemId, i.label AS label, t.head_scale_key AS headScaleKey, t.finish_reason AS finishReason,
             length(t.token_ids) / 4 AS tokens, t.prompt_tokens AS promptTokens, t.answer_boundary AS answerBoundary, t.prompt AS prompt, t.text AS text
           FROM transcripts t LEFT JOIN dataset_items i ON i.id = t.item_id WHERE t.run_id = ? ORDER BY t.id`,
          [from],
        );
      }
      case 'selection':
        return selectionRows(s, run, false);
    }
  });
  const base = path.basename(project).replace(/\.[^.]*$/, '') || 'project';
  return { csv: toCsv(rows, TABLE_COLUMNS[query]), rows: rows.length, filename: `${base}-${query}${runId !== undefined && query !== 'runs' ? `-run${runId}` : ''}.csv` };
}
