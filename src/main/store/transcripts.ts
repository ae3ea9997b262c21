/** Transcripts (a prompt and what followed) and traces (a probe's score at each of their tokens). */
import { randomUUID } from 'node:crypto';
import { float32ToBlob, int32ToBlob } from './blobs.js';
import { real, traceFromRow, transcriptFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import { notFound } from './statements.js';
import type { NewTrace, NewTranscript, TraceRow, TranscriptRow } from './types.js';

/** The transcripts runs made or read. */
export class TranscriptsStore {
  constructor(private readonly sql: Statements) {}

  add(t: NewTranscript): number {
    return this.sql.insert(
      `INSERT INTO transcripts (uid, run_id, item_id, prompt, token_ids, prompt_tokens, text, thinking_start, thinking_end,
         answer_boundary, finish_reason, head_scale_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      randomUUID(),
      t.runId,
      t.itemId ?? null,
      t.prompt,
      int32ToBlob(t.tokenIds),
      t.promptTokens,
      t.text,
      t.thinkingStart ?? null,
      t.thinkingEnd ?? null,
      t.answerBoundary ?? null,
      t.finishReason ?? null,
      t.headScaleKey ?? null,
    );
  }

  get(id: number): TranscriptRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM transcripts WHERE id = ?`, id);
    return r ? transcriptFromRow(r) : null;
  }

  require(id: number): TranscriptRow {
    const t = this.get(id);
    if (!t) throw notFound(this.sql.file, 'transcript', id, [], '');
    return t;
  }

  /** A run's transcripts; `headScaleKey` selects one ablation setting (null = the unablated ones). */
  list(runId: number, filter: { headScaleKey?: string | null } = {}): TranscriptRow[] {
    const rows =
      filter.headScaleKey === undefined
        ? this.sql.all<Row>(`SELECT * FROM transcripts WHERE run_id = ? ORDER BY id`, runId)
        : this.sql.all<Row>(`SELECT * FROM transcripts WHERE run_id = ? AND head_scale_key IS ? ORDER BY id`, runId, filter.headScaleKey);
    return rows.map(transcriptFromRow);
  }
}

/** Refusal scores per token of a transcript under a probe. */
export class TracesStore {
  constructor(private readonly sql: Statements) {}

  add(t: NewTrace): number {
    return this.sql.insert(
      `INSERT INTO traces (run_id, transcript_id, probe_id, resid_index, scores, plateau, final, ms, steepest_drop_pos, cliff_width)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      t.runId,
      t.transcriptId,
      t.probeId,
      t.residIndex,
      float32ToBlob(t.scores),
      real(t.plateau),
      real(t.final),
      real(t.ms),
      t.steepestDropPos ?? null,
      t.cliffWidth ?? null,
    );
  }

  list(filter: { runId?: number; transcriptId?: number; probeId?: number }): TraceRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM traces WHERE (@run IS NULL OR run_id = @run) AND (@transcript IS NULL OR transcript_id = @transcript)
         AND (@probe IS NULL OR probe_id = @probe) ORDER BY id`,
      { run: filter.runId ?? null, transcript: filter.transcriptId ?? null, probe: filter.probeId ?? null },
    ).map(traceFromRow);
  }
}
