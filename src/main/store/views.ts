/**
 * Read models: the joined rows the application's plots, tables and CSV exports read, a query or two each, so no
 * handler writes SQL, decodes a BLOB or looks rows up one by one.
 */
import { traceAnswerBoundary } from '../engine/runtime/transcript.js';
import { blobToFloat32, INT32_BYTES } from './blobs.js';
import { num, str, traceFromRow, transcriptFromRow, verdictFromRow, type Row } from './rows.js';
import type { RunsStore } from './runs.js';
import type { Statements } from './statements.js';
import type { RunRow, TraceRow, TranscriptRow, VerdictRow } from './types.js';

/** A transcript's length in tokens, from its token-id BLOB. */
const TOKENS_SQL = (alias: string) => `length(${alias}.token_ids) / ${INT32_BYTES}`;

/** One traced transcript of a run under a probe, with what a list shows of it. */
export interface TraceListRow {
  transcriptId: number;
  itemId: number | null;
  label: string | null;
  prompt: string;
  headScaleKey: string | null;
  tokens: number;
  plateau: number | null;
  final: number | null;
  ms: number | null;
  steepestDropPos: number | null;
  width: number | null;
}

/** One head's score in one transcript of a heads run, with what a list shows of the transcript. */
export interface HeadScoreRow {
  transcriptId: number;
  itemId: number | null;
  label: string | null;
  prompt: string;
  score: number | null;
  /** The run kept this transcript's scores at every token. */
  perToken: boolean;
}

/** Which traces of a run to cut: a dataset label ('unlabelled' = none), an ablation setting, a dataset. */
export interface TraceFilter {
  label?: string;
  headScaleKey?: string;
  datasetId?: number;
}

/** One transcript of a page, with its item's label, every verdict on it and every trace of it. */
export interface TranscriptPageRow {
  transcript: TranscriptRow;
  label: string | null;
  verdicts: VerdictRow[];
  traces: TraceRow[];
}

export type SelectionViewRow = {
  itemId: number;
  transcriptId: number | null;
  prompt: string;
  score: number | null;
  rank: number | null;
  selected: boolean;
  ms: number | null;
  final: number | null;
};

const idList = (ids: readonly number[]) => JSON.stringify(ids);

export class ProjectViews {
  constructor(
    private readonly sql: Statements,
    private readonly runs: Pick<RunsStore<unknown>, 'get'>,
  ) {}

  /** The probes whose traces a run holds, by residual-stack index. */
  /** Each transcript of a run (of one ablation setting, when given) with its length in tokens and its item's label. */
  transcriptSizes(runId: number, headScaleKey?: string): { id: number; tokens: number; label: string | null }[] {
    const where = headScaleKey === undefined ? '' : ' AND t.head_scale_key IS ?';
    return this.sql
      .all<Row>(
        `SELECT t.id AS id, ${TOKENS_SQL('t')} AS tokens, i.label AS label FROM transcripts t LEFT JOIN dataset_items i ON i.id = t.item_id
         WHERE t.run_id = ?${where} ORDER BY t.id`,
        runId,
        ...(headScaleKey === undefined ? [] : [headScaleKey]),
      )
      .map((r) => ({ id: Number(r.id), tokens: Number(r.tokens), label: str(r.label) }));
  }

  tracedProbes(runId: number): { probeId: number; residIndex: number }[] {
    return this.sql
      .all<Row>(`SELECT DISTINCT probe_id AS probeId, resid_index AS residIndex FROM traces WHERE run_id = ? ORDER BY resid_index, probe_id`, runId)
      .map((r) => ({ probeId: Number(r.probeId), residIndex: Number(r.residIndex) }));
  }

  /** A run's traces under a probe, one row per transcript, in the order they were made. */
  traceList(runId: number, probeId: number): TraceListRow[] {
    return this.sql
      .all<Row>(
        `SELECT tr.transcript_id AS transcriptId, t.item_id AS itemId, i.label AS label, t.prompt AS prompt, t.head_scale_key AS headScaleKey,
           ${TOKENS_SQL('t')} AS tokens, tr.plateau AS plateau, tr.final AS final, tr.ms AS ms, tr.steepest_drop_pos AS steepestDropPos, tr.cliff_width AS width
         FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
         WHERE tr.run_id = ? AND tr.probe_id = ? ORDER BY tr.id`,
        runId,
        probeId,
      )
      .map((r) => ({
        transcriptId: Number(r.transcriptId),
        itemId: num(r.itemId),
        label: str(r.label),
        prompt: String(r.prompt),
        headScaleKey: str(r.headScaleKey),
        tokens: Number(r.tokens),
        plateau: num(r.plateau),
        final: num(r.final),
        ms: num(r.ms),
        steepestDropPos: num(r.steepestDropPos),
        width: num(r.width),
      }));
  }

  /**
   * A run's traces under a probe, each cut to [first generated token, answer boundary t_b] — what the tail-aligned
   * average reads (analysis/trace.ts). t_b by the one rule (runtime/transcript.ts): a transcript whose thinking did
   * not close ends at the closing marker its probe read appended; one without any t_b is left out.
   */
  /** Ordered by item and setting, not by when they were made, so a merged sharded run reads them as one process would. */
  tracesToBoundary(runId: number, probeId: number, filter: TraceFilter = {}): Float32Array[] {
    return this.sql
      .all<Row>(
        `SELECT tr.scores AS scores, t.prompt_tokens AS promptTokens, t.thinking_start AS thinkingStart, t.answer_boundary AS answerBoundary
         FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
         WHERE tr.run_id = @run AND tr.probe_id = @probe
           AND (@label IS NULL OR COALESCE(i.label, 'unlabelled') = @label)
           AND (@key IS NULL OR t.head_scale_key = @key)
           AND (@dataset IS NULL OR i.dataset_id = @dataset)
         ORDER BY t.item_id, t.head_scale_key, t.id`,
        { run: runId, probe: probeId, label: filter.label ?? null, key: filter.headScaleKey ?? null, dataset: filter.datasetId ?? null },
      )
      .flatMap((r) => {
        const scores = blobToFloat32(r.scores as Buffer);
        const tb = traceAnswerBoundary({ thinkingStart: num(r.thinkingStart), answerBoundary: num(r.answerBoundary) }, scores.length);
        return tb === null ? [] : [scores.slice(Number(r.promptTokens), tb + 1)];
      });
  }

  /** The run whose transcripts a run shows: itself, or the run it read them from (a trace / heads run over a run, a judge run). */
  transcriptRunOf(run: RunRow): number {
    const own = this.sql.get<{ n: number }>(`SELECT EXISTS (SELECT 1 FROM transcripts WHERE run_id = ?) AS n`, run.id)!.n;
    if (own) return run.id;
    const cfg = run.config;
    const source = cfg.source;
    const from =
      source && typeof source === 'object' && !Array.isArray(source) && source.kind === 'run' ? source.runId : run.kind === 'judge' ? cfg.runId : undefined;
    return typeof from === 'number' && this.runs.get(from) ? from : run.id;
  }

  /**
   * A page of a run's transcripts (optionally one ablation setting's; null = those without a setting), each with its
   * label, its verdicts and its traces: three queries for the page, whatever its length.
   */
  transcriptPage(runId: number, page: { headScaleKey?: string | null; offset: number; limit: number }): { total: number; rows: TranscriptPageRow[] } {
    const filter = { run: runId, any: page.headScaleKey === undefined ? 1 : 0, key: page.headScaleKey ?? null };
    const where = `t.run_id = @run AND (@any = 1 OR t.head_scale_key IS @key)`;
    const total = this.sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM transcripts t WHERE ${where}`, filter)!.n;
    const rows = this.sql.all<Row>(
      `SELECT t.*, i.label AS item_label FROM transcripts t LEFT JOIN dataset_items i ON i.id = t.item_id WHERE ${where} ORDER BY t.id LIMIT @limit OFFSET @offset`,
      { ...filter, limit: page.limit, offset: page.offset },
    );
    const ids = idList(rows.map((r) => Number(r.id)));
    const byTranscript = <T extends { transcriptId: number }>(list: T[]) => {
      const m = new Map<number, T[]>();
      for (const x of list) m.set(x.transcriptId, [...(m.get(x.transcriptId) ?? []), x]);
      return m;
    };
    const verdicts = byTranscript(this.sql.all<Row>(`SELECT * FROM verdicts WHERE transcript_id IN (SELECT value FROM json_each(?)) ORDER BY id`, ids).map(verdictFromRow));
    const traces = byTranscript(this.sql.all<Row>(`SELECT * FROM traces WHERE transcript_id IN (SELECT value FROM json_each(?)) ORDER BY id`, ids).map(traceFromRow));
    return {
      total,
      rows: rows.map((r) => {
        const transcript = transcriptFromRow(r);
        return { transcript, label: str(r.item_label), verdicts: verdicts.get(transcript.id) ?? [], traces: traces.get(transcript.id) ?? [] };
      }),
    };
  }

  /**
   * One head's score in every per-transcript map of a heads run (row-major [layers × heads], so the cell at
   * layer·heads + head, read as 4 bytes by SQL without decoding the maps), in the order the maps were made.
   */
  headScores(runId: number, layer: number, head: number): HeadScoreRow[] {
    return this.sql
      .all<Row>(
        `SELECT m.transcript_id AS transcriptId, t.item_id AS itemId, i.label AS label, t.prompt AS prompt,
           substr(m.scores, 4 * (@layer * m.heads + @head) + 1, 4) AS cell, m.per_token IS NOT NULL AS perToken
         FROM head_maps m JOIN transcripts t ON t.id = m.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
         WHERE m.run_id = @run AND m.transcript_id IS NOT NULL AND @layer < m.layers AND @head < m.heads ORDER BY m.id`,
        { run: runId, layer, head },
      )
      .map((r) => {
        const cell = r.cell as Buffer;
        const v = cell && cell.length === 4 ? blobToFloat32(cell)[0]! : NaN;
        return { transcriptId: Number(r.transcriptId), itemId: num(r.itemId), label: str(r.label), prompt: String(r.prompt), score: Number.isFinite(v) ? v : null, perToken: r.perToken === 1 };
      });
  }

  /** A select run's ranked samples with their prompts, and MS / I' under `probeId` (the run's probe). */
  selectionRows(runId: number, probeId: number | null, opts: { selectedOnly?: boolean } = {}): SelectionViewRow[] {
    return this.sql
      .all<Row>(
        `SELECT s.item_id AS itemId, s.transcript_id AS transcriptId, i.prompt AS prompt, s.score AS score, s.rank AS rank, s.selected AS selected,
           tr.ms AS ms, tr.final AS final
         FROM selections s JOIN dataset_items i ON i.id = s.item_id
           LEFT JOIN traces tr ON tr.run_id = s.run_id AND tr.transcript_id = s.transcript_id AND tr.probe_id IS @probe
         WHERE s.run_id = @run AND (@selectedOnly = 0 OR s.selected = 1)
         ORDER BY s.rank IS NULL, s.rank, s.id`,
        { run: runId, probe: probeId, selectedOnly: opts.selectedOnly ? 1 : 0 },
      )
      .map((r) => ({
        itemId: Number(r.itemId),
        transcriptId: num(r.transcriptId),
        prompt: String(r.prompt),
        score: num(r.score),
        rank: num(r.rank),
        selected: r.selected === 1,
        ms: num(r.ms),
        final: num(r.final),
      }));
  }

  /** The `traces` CSV table of a run: a row per trace, with its transcript's item, label and length. */
  traceTable(runId: number): Row[] {
    return this.sql.all<Row>(
      `SELECT tr.id AS traceId, tr.transcript_id AS transcriptId, tr.probe_id AS probeId, tr.resid_index AS residIndex, t.item_id AS itemId, i.label AS label,
         t.head_scale_key AS headScaleKey, ${TOKENS_SQL('t')} AS tokens, t.answer_boundary AS answerBoundary, tr.plateau AS plateau,
         tr.final AS final, tr.ms AS ms, tr.steepest_drop_pos AS steepestDropPos, tr.cliff_width AS cliffWidth
       FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id LEFT JOIN dataset_items i ON i.id = t.item_id
       WHERE tr.run_id = ? ORDER BY tr.id`,
      runId,
    );
  }

  /** The `transcripts` CSV table of a run. */
  transcriptTable(runId: number): Row[] {
    return this.sql.all<Row>(
      `SELECT t.id AS id, t.run_id AS runId, t.item_id AS itemId, i.label AS label, t.head_scale_key AS headScaleKey, t.finish_reason AS finishReason,
         ${TOKENS_SQL('t')} AS tokens, t.prompt_tokens AS promptTokens, t.answer_boundary AS answerBoundary, t.prompt AS prompt, t.text AS text
       FROM transcripts t LEFT JOIN dataset_items i ON i.id = t.item_id WHERE t.run_id = ? ORDER BY t.id`,
      runId,
    );
  }
}
